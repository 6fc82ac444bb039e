"""Checkpoint files of torch models: ``torch.save`` and safetensors formats, atomic save, refusing load.

Contract
--------
* **Save** (:func:`save_state_dict`, :func:`save_model`): atomic (:func:`conformance.harness.files.atomic_write`).
  ``torch`` format: one ``torch.save`` of ``{"format", "provenance" (JSON string), "state_dict"}``;
  ``safetensors``: the state dict with tied duplicates dropped (kept as ``aliases`` in the provenance) and the
  provenance in the header metadata. Provenance: :data:`conformance.harness.checkpoints.PROVENANCE_FIELDS` plus the
  sha256 of every tensor's bytes.
* **Load** (:func:`read_checkpoint`, :func:`load_into`): a static opcode scan first
  (:func:`conformance.harness.pickle_scan.scan_torch_file`: nothing is unpickled), then
  ``torch.load(weights_only=True)`` only (:func:`safe_torch_load`). A pickle that names a global outside the
  weights-only allowlist (``os.system``, ``subprocess.Popen``, ``builtins.exec`` ...), in torch's zip or legacy
  format or as a bare pickle under a ``.safetensors`` name, is
  :class:`~conformance.harness.checkpoints.UnsafeCheckpoint` naming the global (never "corrupt", never with advice to
  turn ``weights_only`` off); truncated or malformed files and bytes that do not match the saved digests are
  :class:`~conformance.harness.checkpoints.CheckpointCorrupt`; keys are checked before anything is copied (missing,
  unexpected, shape, dtype: no silent casts), then ``load_state_dict(strict=True)``
  copies into the existing tensors, so ties, strides and non-persistent buffers of the fresh model survive.
* **State** (:func:`model_state`): what a model holds now (every state-dict entry plus the non-persistent buffers,
  with strides and ties) as a :class:`~conformance.harness.checkpoints.ModelState`; :func:`file_entries`: what a
  file holds.

This module talks to torch only; comparing states is the checks' business.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from conformance.harness.checkpoints import (
    FORMAT_TAG,
    CheckpointCorrupt,
    CheckpointError,
    ModelState,
    TensorRecord,
    UnsafeCheckpoint,
    check_entries,
    dumps_provenance,
    strip_unsafe_advice,
    tensor_digest,
)
from conformance.harness.files import atomic_write
from conformance.harness.pickle_scan import describe, scan_torch_file, sniff

from ..base import UnsupportedOperation
from .tensors import dtype_name, to_numpy

FORMATS: tuple[str, ...] = ("torch", "safetensors")


def safetensors_available() -> str | None:
    """``None`` when safetensors can be imported, else the reason it cannot."""
    try:
        import safetensors.torch  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means unavailable
        return f"safetensors is not installed (pip install 'dl-conformance[checkpoint]'): {exc!r}"
    return None


def require_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown checkpoint format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "safetensors" and (reason := safetensors_available()):
        raise UnsupportedOperation(reason)


def format_of(path: str | os.PathLike) -> str:
    """``safetensors`` for ``*.safetensors``, else ``torch``."""
    return "safetensors" if str(path).endswith(".safetensors") else "torch"


# -- what a model holds --------------------------------------------------------------------------------------------
def alias_groups(named: Mapping[str, Any]) -> list[list[str]]:
    """Groups (two or more names) of tensors that share storage, sorted."""
    by_storage: dict[tuple, list[str]] = {}
    for name, t in named.items():
        if t.numel() == 0:
            continue
        by_storage.setdefault((t.device.type, t.untyped_storage().data_ptr()), []).append(name)
    return sorted(sorted(g) for g in by_storage.values() if len(g) > 1)


def model_state(model, name: str) -> ModelState:
    """What a model holds now: every state-dict entry plus the non-persistent buffers, with layout and ties."""
    sd = model.state_dict(keep_vars=True)
    tensors: dict[str, TensorRecord] = {}
    named = dict(sd)
    for key, t in sd.items():
        kind = "parameter" if isinstance(t, torch.nn.Parameter) else "buffer"
        tensors[key] = _record(t, kind)
    for key, t in model.named_buffers(remove_duplicate=False):
        if key not in sd:
            tensors[key] = _record(t, "nonpersistent")
            named[key] = t
    return ModelState(name, tensors, alias_groups(named))


def _record(t, kind: str) -> TensorRecord:
    return TensorRecord(to_numpy(t), dtype_name(t), tuple(t.shape), tuple(t.stride()),
                        t.numel() * t.element_size(), kind, str(t.device))


# -- save ----------------------------------------------------------------------------------------------------------
def save_state_dict(sd: Mapping[str, Any], path, fmt: str, provenance: Mapping[str, Any]) -> dict:
    """Write ``sd`` atomically in ``fmt`` with ``provenance`` (digests and aliases added); return the provenance."""
    require_format(fmt)
    cpu = {k: v.detach().cpu() for k, v in sd.items()}
    aliases = alias_groups(dict(sd))
    prov = dict(provenance)
    prov["aliases"] = aliases
    prov["tensors"] = {k: tensor_digest(to_numpy(v)) for k, v in cpu.items()}
    text = dumps_provenance(prov)
    if fmt == "torch":
        obj = {"format": FORMAT_TAG, "provenance": text, "state_dict": dict(sd)}
        atomic_write(path, lambda f: torch.save(obj, f))
    else:
        import safetensors.torch

        dropped = {n for group in aliases for n in group[1:]}
        flat = {k: v.contiguous() for k, v in cpu.items() if k not in dropped}
        data = safetensors.torch.save(flat, metadata={"format": FORMAT_TAG, "provenance": text})
        atomic_write(path, lambda f: f.write(data))
    return prov


def save_model(model, path, fmt: str, provenance: Mapping[str, Any]) -> dict:
    return save_state_dict(model.state_dict(), path, fmt, provenance)


# -- load ----------------------------------------------------------------------------------------------------------
#: the global torch's weights-only unpickler refused, in its error text
_TORCH_REFUSED = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL)\s+([\w.<>]+)")


def refuse_unsafe(path) -> None:
    """Raise :class:`UnsafeCheckpoint` naming the worst global when the static scan of ``path`` (as ``torch.load``
    reads it) finds a global outside the weights-only allowlist; nothing is unpickled."""
    scan = scan_torch_file(path)
    if scan.unsafe:
        raise UnsafeCheckpoint(path, f"unsafe: {describe(scan)}; refused, nothing was unpickled", names=scan.unsafe)


def safe_torch_load(path, map_location: str = "cpu"):
    """A static scan (:func:`refuse_unsafe`), then ``torch.load(path, weights_only=True)``; every failure is a one-line
    :class:`CheckpointError` (torch's advice to turn ``weights_only`` off is never passed on)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        raise CheckpointCorrupt(path, f"truncated: the zip archive torch.save writes has no end-of-central-directory "
                                      f"record ({path.stat().st_size} bytes)")
    refuse_unsafe(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        named = _TORCH_REFUSED.search(text)
        if named:
            name = named.group(1).rstrip(".")
            raise UnsafeCheckpoint(path, f"unsafe: pickle names {name}, outside the weights-only allowlist; refused by "
                                         "torch's weights-only unpickler", names=[name]) from None
        raise CheckpointCorrupt(path, f"not a weights-only torch checkpoint: {_first_line(text)}") from None
    except (RuntimeError, EOFError, ValueError, OSError, IndexError, KeyError, AttributeError) as exc:
        reason = _first_line(str(exc))
        if not any(c.isalpha() for c in reason):  # KeyError('105') says nothing alone
            reason = f"{type(exc).__name__} {reason}"
        raise CheckpointCorrupt(path, f"cannot be read (truncated or corrupted?): {reason}") from None


def _first_line(text: str) -> str:
    """The first line of ``text`` that says something once torch's advice is removed (at most 300 characters)."""
    for line in str(text).strip().splitlines():
        if strip_unsafe_advice(line):
            return strip_unsafe_advice(line)[:300]
    return strip_unsafe_advice(str(text))[:300] or "unreadable"


def read_checkpoint(path, fmt: str | None = None, device: str = "cpu") -> tuple[dict, dict]:
    """The state dict (tensors on ``device``, tied names restored) and the provenance of a checkpoint file.

    Verifies the sha256 of every tensor against the provenance when the file has one.
    """
    fmt = fmt or format_of(path)
    require_format(fmt)
    path = Path(path)
    if fmt == "torch":
        sd, prov = unpack_torch_object(path, safe_torch_load(path, device))
    else:
        sd, prov = _read_safetensors(path, device)
    check_digests(path, sd, prov)
    return sd, prov


def unpack_torch_object(path, obj) -> tuple[dict, dict]:
    """The state dict and provenance of what :func:`safe_torch_load` returned: ``{"format", "provenance",
    "state_dict"}`` as :func:`save_state_dict` writes it, or a plain state dict (provenance ``{}``)."""
    if isinstance(obj, dict) and obj.get("format") == FORMAT_TAG:
        sd, prov = obj.get("state_dict"), _parse_provenance(path, obj.get("provenance"))
    else:
        sd, prov = obj, {}
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointCorrupt(path, f"holds a {type(sd).__name__}, not a state dict of tensors")
    return sd, prov


def check_digests(path, sd: dict, prov: Mapping[str, Any]) -> None:
    """Restore the tied names the provenance lists (in place), then compare each tensor's sha256 with the one saved
    (:class:`CheckpointCorrupt` naming the first key that differs)."""
    for group in prov.get("aliases", []):
        present = [n for n in group if n in sd]
        for name in group:
            if name not in sd and present:
                sd[name] = sd[present[0]]
    digests = prov.get("tensors") or {}
    for name in sorted(sd):
        want = digests.get(name)
        if want is not None and tensor_digest(to_numpy(sd[name])) != want:
            raise CheckpointCorrupt(path, f"bytes of key {name!r} do not match the sha256 saved with the checkpoint "
                                          "(corrupted file)", key=name)


def _parse_provenance(path, text) -> dict:
    if text is None:
        return {}
    try:
        prov = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CheckpointCorrupt(path, f"provenance is not valid JSON: {exc}") from None
    if not isinstance(prov, dict):
        raise CheckpointCorrupt(path, "provenance is not a JSON object")
    return prov


def _read_safetensors(path: Path, device: str) -> tuple[dict, dict]:
    import safetensors
    import safetensors.torch

    if not path.is_file():
        raise CheckpointError(path, "no such file")
    data = path.read_bytes()
    try:
        sd = safetensors.torch.load(data)
        with safetensors.safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (safetensors.SafetensorError, ValueError, OSError, RuntimeError) as exc:
        if sniff(path) != "safetensors":
            refuse_unsafe(path)  # a pickle under a .safetensors name is unsafe, not merely corrupt
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointCorrupt(path, f"not a valid safetensors file (truncated or corrupted?): {first[:300]}"
                                ) from None
    if device != "cpu":
        sd = {k: v.to(device) for k, v in sd.items()}
    return sd, _parse_provenance(path, meta.get("provenance"))


def entries_of(sd: Mapping[str, Any]) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {k: (dtype_name(v), tuple(v.shape)) for k, v in sd.items()}


def load_into(model, sd: Mapping[str, Any], path) -> None:
    """Check keys, shapes and dtypes of ``sd`` against ``model`` (naming the key), then copy strictly."""
    check_entries(path, entries_of(sd), entries_of(model.state_dict()))
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:  # pragma: no cover - check_entries catches what load_state_dict would
        raise CheckpointCorrupt(path, str(exc).splitlines()[0]) from None


def file_entries(path, fmt: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """What the file itself holds (before tied names are restored): name -> (dtype, shape)."""
    if fmt == "safetensors":
        import safetensors

        with safetensors.safe_open(str(path), framework="pt") as f:
            return {k: (_st_dtype(f.get_slice(k).get_dtype()), tuple(f.get_slice(k).get_shape())) for k in f.keys()}
    obj = safe_torch_load(path)
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else {}
    return entries_of(sd)


_ST_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64", "I64": "int64",
              "I32": "int32", "U8": "uint8", "BOOL": "bool"}


def _st_dtype(code: str) -> str:
    return _ST_DTYPES.get(code, code.lower())
