"""Is a checkpoint file intact, and does it carry the provenance this suite writes? Decided without running code.

Contract
--------
:func:`verify_file` returns one :class:`Finding` per file, never raises for a bad file. Its ``status``:

=================  ====================================================================================================
``OK``             intact, every tensor's sha256 matches its provenance, every provenance field present and well formed
``CORRUPT``        truncated, malformed, a digest that differs (naming the tensor), a tensor without a digest or a
                   digest without a tensor, a provenance field missing or malformed
``UNSAFE``         a pickle names a global outside the weights-only allowlist (``os.system``, ``subprocess.Popen``,
                   ``builtins.exec``, ...); found by a static opcode scan, so the file is never unpickled
``MISSING``        no such file
``NO-PROVENANCE``  a plain state dict (``torch.save(model.state_dict())``, safetensors without our metadata): it may
                   be intact, but neither its bytes nor its origin can be checked, so it does not verify
``MISMATCH``       intact, but a provenance field differs from one the caller expects (``--expect seed=11``)
``UNKNOWN FORMAT`` not a torch.save file, a pickle or safetensors (or another checkpoint format version)
``UNCHECKED``      a torch.save file, statically safe, but torch is not installed to read its tensors
``UNREADABLE``     the file cannot be read (permissions)
=================  ====================================================================================================

Order: the file exists; :func:`conformance.harness.pickle_scan.sniff` names its container from its bytes (not its
name); torch containers are scanned statically first (:func:`~conformance.harness.pickle_scan.scan_torch_file`) and
only a file that names nothing unsafe is read, with ``torch.load(weights_only=True)``
(:mod:`conformance.backends.torch.checkpoint_io`, imported only then); safetensors files are checked here, in pure
Python (the header is JSON; each tensor's sha256 is the sha256 of its raw little-endian bytes, which is what
:func:`~conformance.harness.checkpoints.tensor_digest` of the loaded array hashes), so neither torch nor the
safetensors package is needed for them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoints import (
    FORMAT_TAG,
    PROVENANCE_FIELDS,
    CheckpointError,
    ProvenanceMismatch,
    UnsafeCheckpoint,
    verify_provenance,
)
from .pickle_scan import describe, scan_torch_file, sniff

STATUSES = ("OK", "CORRUPT", "UNSAFE", "MISSING", "NO-PROVENANCE", "MISMATCH", "UNKNOWN FORMAT", "UNCHECKED",
            "UNREADABLE")
#: Suffixes of checkpoint files: unrecognizable bytes under one of these names are a damaged checkpoint (CORRUPT),
#: under any other name an UNKNOWN FORMAT.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
#: safetensors' own limit on the JSON header
MAX_HEADER = 100_000_000
#: bytes per element of safetensors dtypes
SAFETENSORS_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
                        "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Finding:
    """The verdict on one file: ``status`` (one of :data:`STATUSES`), the reason (``detail``), the tensor at fault
    (``key``) and, when OK, the provenance and tensor count."""

    path: str
    status: str
    detail: str = ""
    key: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    tensors: int = 0
    container: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    def line(self) -> str:
        """``OK   path  (...)`` or ``STATUS path: detail`` (one line)."""
        if self.ok:
            return f"OK   {self.path}  ({self.detail})"
        return f"{self.status} {self.path}: {' '.join(self.detail.split())}"


class _Bad(Exception):
    """A finding other than OK, raised inside the checks."""

    def __init__(self, status: str, detail: str, key: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.key = status, detail, key


def verify_file(path: str | os.PathLike, expect: Mapping[str, Any] | None = None) -> Finding:
    """Verify one checkpoint file (see the module's contract); ``expect``: provenance fields that must match."""
    shown = str(path)
    path = Path(path)
    try:
        if not path.exists():
            return Finding(shown, "MISSING", "no such file")
        if not path.is_file():
            return Finding(shown, "UNKNOWN FORMAT", "not a regular file")
        kind = sniff(path)
        if kind == "safetensors":
            try:
                prov, names = _safetensors(path)
            except _Bad as bad:  # a pickle whose 9th byte is "{" looks like safetensors: unsafe beats corrupt
                scan = scan_torch_file(path) if bad.status == "CORRUPT" else None
                if scan is not None and scan.unsafe:
                    raise _Bad("UNSAFE", f"{describe(scan)}; not loaded") from None
                raise
            container = "safetensors"
        elif kind in ("zip", "pickle"):
            prov, names, container = _torch(path)
        elif kind == "tar":
            raise _Bad("UNKNOWN FORMAT", "torch's legacy tar checkpoint format (early torch versions), which cannot "
                                         "be read weights-only")
        elif kind == "empty":
            raise _Bad("CORRUPT", "empty file (0 bytes)")
        elif path.suffix in CHECKPOINT_SUFFIXES:
            raise _Bad("CORRUPT", f"not a valid {'safetensors' if path.suffix == '.safetensors' else 'torch.save'} "
                                  f"file (truncated or corrupted? {path.stat().st_size} bytes, none of the known "
                                  "headers)")
        else:
            raise _Bad("UNKNOWN FORMAT", "neither a torch.save file, a pickle nor safetensors")
        _check_provenance(prov, names)
        if expect:
            try:
                verify_provenance(path, prov, expect)
            except ProvenanceMismatch as exc:
                raise _Bad("MISMATCH", exc.detail.replace("the loader expects", "expected"), exc.key) from None
    except _Bad as bad:
        return Finding(shown, bad.status, bad.detail, bad.key)
    except OSError as exc:
        return Finding(shown, "UNREADABLE", f"{exc.strerror or exc}")
    return Finding(shown, "OK", _summary(container, prov), provenance=prov, tensors=len(prov["tensors"]),
                   container=container)


def _summary(container: str, prov: Mapping[str, Any]) -> str:
    framework = prov.get("framework") or "framework"
    version = (prov.get("versions") or {}).get(framework) or "(version not recorded)"
    return (f"{container}, {_count(len(prov['tensors']))}, model {prov.get('model')}, seed {prov.get('seed')}, "
            f"spec {_short(prov.get('init'))}, {framework} {version}")


def _count(n: int) -> str:
    return f"{n} tensor{'' if n == 1 else 's'}"


def _short(spec: Any, limit: int = 40) -> str:
    """The name part of an init spec: ``'tiny_tied-v1: embedding ...'`` -> ``tiny_tied-v1``."""
    text = str(spec)
    for cut in (": ", " ("):
        text = text.split(cut)[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


# -- torch.save files ----------------------------------------------------------------------------------------------
def _torch(path: Path) -> tuple[dict, set[str], str]:
    scan = scan_torch_file(path)
    if scan.unsafe:
        raise _Bad("UNSAFE", f"{describe(scan)}; not loaded")
    if scan.kind == "zip without data.pkl":
        raise _Bad("UNKNOWN FORMAT", "a zip archive without data.pkl (not a torch.save file)")
    if scan.error:
        raise _Bad("CORRUPT", scan.error)
    container = "torch.save zip" if scan.kind == "zip" else "torch.save legacy"
    try:
        from conformance.backends.torch import checkpoint_io as cio
    except ImportError as exc:
        raise _Bad("UNCHECKED", f"torch is required to read the tensors of a {container} file and cannot be imported "
                                f"({exc}); the static scan found nothing unsafe") from None
    try:
        obj = cio.safe_torch_load(path)
        if not isinstance(obj, dict):
            raise _Bad("UNKNOWN FORMAT", f"a torch.save file holding a {type(obj).__name__}, not a checkpoint")
        tag = obj.get("format")
        if not (isinstance(tag, str) and tag == FORMAT_TAG):
            if all(isinstance(v, cio.torch.Tensor) for v in obj.values()):
                raise _Bad("NO-PROVENANCE", f"a plain state dict ({_count(len(obj))}) without dl-conformance "
                                            "provenance: its digests and origin cannot be checked")
            if isinstance(tag, str):
                raise _Bad("UNKNOWN FORMAT", f"checkpoint format tag {tag!r}, this suite reads {FORMAT_TAG!r}")
            raise _Bad("UNKNOWN FORMAT", "a torch.save file holding a dict that is not a state dict of tensors")
        sd, prov = cio.unpack_torch_object(path, obj)
        if not prov:
            raise _Bad("CORRUPT", "the provenance saved with the checkpoint is missing")
        _digests_shape(prov)
        cio.check_digests(path, sd, prov)
    except CheckpointError as exc:
        if isinstance(exc, UnsafeCheckpoint):
            raise _Bad("UNSAFE", f"{exc.detail.removeprefix('unsafe: ')}; not loaded", exc.key) from None
        raise _Bad("CORRUPT", exc.detail, exc.key) from None
    return prov, set(sd), container


# -- safetensors files ---------------------------------------------------------------------------------------------
def _safetensors(path: Path) -> tuple[dict, set[str]]:
    """Parse and check the header, hash every tensor's bytes against the provenance; (provenance, names)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > MAX_HEADER:
            raise _Bad("CORRUPT", f"safetensors header of {n} bytes exceeds the format's limit")
        if 8 + n > size:
            raise _Bad("CORRUPT", f"truncated: the safetensors header says {n} bytes, the file has {size}")
        raw = f.read(n)
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Bad("CORRUPT", f"the safetensors header is not valid JSON: {exc}") from None
        if not isinstance(header, dict):
            raise _Bad("CORRUPT", "the safetensors header is not a JSON object")
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict):
            raise _Bad("CORRUPT", "the safetensors __metadata__ is not a JSON object")
        entries = _entries(header, size - 8 - n)
        if meta.get("format") is None and meta.get("provenance") is None:
            raise _Bad("NO-PROVENANCE", f"safetensors file ({_count(len(entries))}) without dl-conformance provenance "
                                        "in its metadata: its digests and origin cannot be checked")
        if meta.get("format") != FORMAT_TAG:
            raise _Bad("UNKNOWN FORMAT", f"checkpoint format tag {meta.get('format')!r}, this suite reads "
                                         f"{FORMAT_TAG!r}")
        prov = _parse(meta.get("provenance"))
        digests = _digests_shape(prov)
        actual = {name: _sha256(f, 8 + n + begin, end - begin) for name, (begin, end) in entries.items()}
    names = set(actual)
    for group in prov.get("aliases") or []:  # tied names dropped on save read their bytes from the kept one
        present = [g for g in group if g in actual]
        for name in group:
            if name not in actual and present:
                actual[name] = actual[present[0]]
                names.add(name)
    for name in sorted(actual):
        if name in digests and digests[name] != actual[name]:
            raise _Bad("CORRUPT", f"bytes of tensor {name!r} do not match the sha256 saved with the checkpoint",
                       key=name)
    return prov, names


def _entries(header: Mapping[str, Any], data_size: int) -> dict[str, tuple[int, int]]:
    """name -> (begin, end) in the data section, after the checks safetensors itself makes."""
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise _Bad("CORRUPT", f"safetensors entry {name!r} lacks dtype, shape or data_offsets", key=name)
        offsets, shape = info["data_offsets"], info["shape"]
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)):
            raise _Bad("CORRUPT", f"safetensors entry {name!r} has malformed shape or offsets", key=name)
        begin, end = offsets
        itemsize = SAFETENSORS_ITEMSIZE.get(info["dtype"])
        count = 1
        for d in shape:
            count *= d
        if itemsize is not None and end - begin != count * itemsize:
            raise _Bad("CORRUPT", f"tensor {name!r}: {info['dtype']}{tuple(shape)} needs {count * itemsize} bytes, "
                                  f"its offsets span {end - begin}", key=name)
        spans.append((begin, end, name))
    at = 0
    for begin, end, name in sorted(spans):
        if begin != at or end < begin:
            raise _Bad("CORRUPT", f"tensor {name!r}: data offsets {begin}..{end} overlap or leave a gap", key=name)
        at = end
    if at != data_size:
        what = "truncated" if at > data_size else "trailing bytes"
        raise _Bad("CORRUPT", f"{what}: the header accounts for {at} data bytes, the file holds {data_size}")
    return {name: (begin, end) for begin, end, name in spans}


def _sha256(f, offset: int, length: int, chunk: int = 1 << 24) -> str:
    f.seek(offset)
    h = hashlib.sha256()
    while length > 0:
        block = f.read(min(chunk, length))
        if not block:
            raise _Bad("CORRUPT", "truncated tensor data")
        h.update(block)
        length -= len(block)
    return h.hexdigest()


# -- provenance ----------------------------------------------------------------------------------------------------
def _parse(text) -> dict:
    if not isinstance(text, str):
        raise _Bad("CORRUPT", "the provenance saved with the checkpoint is missing")
    try:
        prov = json.loads(text)
    except ValueError as exc:
        raise _Bad("CORRUPT", f"provenance is not valid JSON: {exc}") from None
    if not isinstance(prov, dict):
        raise _Bad("CORRUPT", "provenance is not a JSON object")
    return prov


def _digests_shape(prov: Mapping[str, Any]) -> dict[str, str]:
    digests = prov.get("tensors")
    if not isinstance(digests, dict) or not all(isinstance(v, str) and _HEX64.fullmatch(v) for v in digests.values()):
        raise _Bad("CORRUPT", "provenance field 'tensors' is not a map of tensor name to sha256", key="tensors")
    return digests


def _check_provenance(prov: Mapping[str, Any], names: set[str]) -> None:
    """Every field present and well formed; the digests name exactly the file's tensors."""
    lacking = [f for f in (*PROVENANCE_FIELDS, "tensors") if f not in prov]
    if lacking:
        raise _Bad("CORRUPT", f"provenance lacks field{'s' if len(lacking) > 1 else ''} "
                              f"{', '.join(repr(f) for f in lacking)}", key=lacking[0])
    if prov["format"] != FORMAT_TAG:
        raise _Bad("UNKNOWN FORMAT", f"provenance format {prov['format']!r}, this suite reads {FORMAT_TAG!r}")
    if prov["seed"] is not None and (not isinstance(prov["seed"], int) or isinstance(prov["seed"], bool)):
        raise _Bad("CORRUPT", f"provenance seed {prov['seed']!r} is not an integer", key="seed")
    for name in ("model", "init", "framework", "device", "dtype"):
        if not isinstance(prov[name], str):
            raise _Bad("CORRUPT", f"provenance field {name!r} is {prov[name]!r}, not a string", key=name)
    versions = prov["versions"]
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        raise _Bad("CORRUPT", "provenance field 'versions' is not a map of library to version", key="versions")
    aliases = prov.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(g, list) and all(isinstance(n, str) for n in g)
                                                for g in aliases):
        raise _Bad("CORRUPT", "provenance field 'aliases' is not a list of name groups", key="aliases")
    digests = _digests_shape(prov)
    undigested = sorted(names - set(digests))
    if undigested:
        raise _Bad("CORRUPT", f"tensor {undigested[0]!r} has no sha256 in the provenance (added after saving?)",
                   key=undigested[0])
    absent = sorted(set(digests) - names)
    if absent:
        raise _Bad("CORRUPT", f"tensor {absent[0]!r} listed in the provenance is missing from the file",
                   key=absent[0])
