"""Framework-free checkpoint vocabulary: the errors users see, what adapters report, provenance.

Contract
--------
* Every problem with a checkpoint file is a :class:`CheckpointError` whose message is **one line** naming the file
  and, where there is one, the key: ``checkpoint model.pt: key 'head.weight' has shape (64, 32), the model expects
  (32, 64)``. Subclasses say what went wrong (:class:`CheckpointCorrupt`, :class:`UnsafeCheckpoint`,
  :class:`MissingKeys`, :class:`UnexpectedKeys`, :class:`ShapeMismatch`, :class:`DtypeMismatch`,
  :class:`ProvenanceMismatch`) and carry ``path`` and ``key`` attributes. A file whose pickle names a global outside
  the weights-only allowlist is :class:`UnsafeCheckpoint` (never "corrupt"), and no message ever relays advice to
  turn ``weights_only`` off (:func:`strip_unsafe_advice` removes torch's from every detail).
* Adapters describe a model's state as a :class:`ModelState`: one :class:`TensorRecord` per state entry (bits as a
  numpy array, dtype, shape, strides in elements, bytes), the groups of names that share storage (tied
  parameters) and the provenance read back from the file.
* Checkpoint files are written with :func:`conformance.harness.files.atomic_write` (temporary file, fsync,
  ``os.replace``): if the writer raises (or the process dies) the destination keeps its old bytes.
* Provenance is a flat JSON object (:data:`PROVENANCE_FIELDS` plus ``tensors``: sha256 of each saved tensor's
  bytes); :func:`verify_provenance` compares the fields a caller expects and raises :class:`ProvenanceMismatch`.

Nothing here imports a framework.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.backends.base import ConformanceError

#: Format tag written into every checkpoint this package saves.
FORMAT_TAG = "dl-conformance/checkpoint-1"

#: Provenance fields every checkpoint carries (plus ``tensors``: name -> sha256 of its bytes).
PROVENANCE_FIELDS: tuple[str, ...] = ("format", "model", "seed", "init", "framework", "versions", "device", "dtype")


# -- errors ---------------------------------------------------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+|\t+")
_ADVICE = re.compile(r"re-?running|add_safe_globals|safe_globals|allowlist this global|\btrust|two options|"
                     r"alternatively|weights only load failed|check the documentation of torch\.load|"
                     r"in pytorch 2\.6|do (it|those steps) only", re.I)


def strip_unsafe_advice(text: str) -> str:
    """``text`` without the sentences that advise loading with ``weights_only`` off or allowlisting globals (torch's
    error messages carry both); ANSI escapes removed."""
    kept = []
    for sentence in _SENTENCES.split(_ANSI.sub("", str(text))):
        low = sentence.lower()
        if ("weights_only" in low or "weights only" in low) and "false" in low:
            continue
        if _ADVICE.search(sentence):
            continue
        if sentence.strip():
            kept.append(sentence.strip())
    return " ".join(kept)


class CheckpointError(ConformanceError):
    """A checkpoint cannot be saved or loaded; the message is one line naming the file (and the key)."""

    def __init__(self, path: str | os.PathLike | None, detail: str, key: str | None = None):
        self.path = str(path) if path is not None else None
        self.key = key
        detail = strip_unsafe_advice(detail) or "refused by torch's weights-only unpickler"
        self.detail = detail
        where = f"checkpoint {self.path}: " if self.path else "checkpoint: "
        super().__init__(where + " ".join(str(detail).split()))


class CheckpointCorrupt(CheckpointError):
    """The file is truncated, not in the expected format, or its bytes differ from the digests saved with it."""


class UnsafeCheckpoint(CheckpointError):
    """The file holds a pickle that would import or call something outside the allowed tensor types; refused.

    ``globals``: the unsafe globals found (``posix.system``, ``subprocess.Popen``, ``builtins.exec``), worst first.
    """

    def __init__(self, path, detail: str, key: str | None = None, names: list[str] | None = None):
        super().__init__(path, detail, key)
        self.globals = list(names or [])


class StateMismatch(CheckpointError):
    """The file's entries do not fit the model (base of the key errors)."""


class MissingKeys(StateMismatch):
    """The model has entries the file lacks."""


class UnexpectedKeys(StateMismatch):
    """The file has entries the model lacks."""


class ShapeMismatch(StateMismatch):
    """An entry's shape differs between file and model."""


class DtypeMismatch(StateMismatch):
    """An entry's dtype differs between file and model (no silent casts)."""


class ProvenanceMismatch(CheckpointError):
    """The provenance stored with the checkpoint is missing or differs from what the loader expects."""


def _names(keys: Iterable[str], limit: int = 5) -> str:
    keys = sorted(keys)
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_entries(path, file_entries: Mapping[str, tuple[str, tuple[int, ...]]],
                  model_entries: Mapping[str, tuple[str, tuple[int, ...]]]) -> None:
    """Raise the first of missing keys, unexpected keys, shape mismatch, dtype mismatch (each naming keys).

    Both mappings go from entry name to ``(dtype name, shape)``.
    """
    missing = set(model_entries) - set(file_entries)
    if missing:
        raise MissingKeys(path, f"missing key{'s' if len(missing) > 1 else ''} {_names(missing)} "
                                f"(in the model, not in the file)", key=sorted(missing)[0])
    unexpected = set(file_entries) - set(model_entries)
    if unexpected:
        raise UnexpectedKeys(path, f"unexpected key{'s' if len(unexpected) > 1 else ''} {_names(unexpected)} "
                                   "(not in the model)", key=sorted(unexpected)[0])
    for name in sorted(model_entries):
        fdtype, fshape = file_entries[name]
        mdtype, mshape = model_entries[name]
        if tuple(fshape) != tuple(mshape):
            raise ShapeMismatch(path, f"key {name!r} has shape {tuple(fshape)}, the model expects {tuple(mshape)}",
                                key=name)
        if fdtype != mdtype:
            raise DtypeMismatch(path, f"key {name!r} has dtype {fdtype}, the model expects {mdtype}", key=name)


# -- what adapters report -------------------------------------------------------------------------------------------
@dataclass
class TensorRecord:
    """One state entry: its bits (``array``, bfloat16 as ``ml_dtypes.bfloat16``) and its layout.

    ``strides`` are in elements (the framework's own strides, not numpy's bytes); ``kind`` is ``"parameter"``,
    ``"buffer"`` (persistent, saved) or ``"nonpersistent"`` (never saved; rebuilt by the model).
    """

    array: np.ndarray
    dtype: str
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    nbytes: int
    kind: str = "parameter"
    device: str = "cpu"


@dataclass
class ModelState:
    """A model's state as an adapter sees it after building or loading it.

    ``aliases``: sorted groups (of two or more names) whose tensors share storage, e.g. tied embedding and head.
    ``file_keys``: what the checkpoint file holds (name -> ``(dtype, shape)``), when the state came from a file or
    was just saved. ``provenance``: the provenance saved with (or read back from) the file.
    """

    model: str
    tensors: dict[str, TensorRecord]
    aliases: list[list[str]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    file_keys: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    path: str = ""

    @property
    def nonpersistent(self) -> list[str]:
        return sorted(n for n, r in self.tensors.items() if r.kind == "nonpersistent")


# -- provenance ----------------------------------------------------------------------------------------------------
def tensor_digest(array: np.ndarray) -> str:
    """sha256 hex of an array's C-order bytes."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def verify_provenance(path, stored: Mapping[str, Any] | None, expect: Mapping[str, Any] | None) -> None:
    """Raise :class:`ProvenanceMismatch` if ``stored`` lacks or differs from a field of ``expect``.

    ``versions`` compares only the names ``expect`` lists (``{"torch": "2.13.0"}``).
    """
    if not expect:
        return
    if not stored:
        raise ProvenanceMismatch(path, "no provenance stored with the checkpoint "
                                       f"(expected {', '.join(sorted(expect))})")
    for name in sorted(expect):
        want = expect[name]
        if name not in stored:
            raise ProvenanceMismatch(path, f"provenance field {name!r} missing (expected {want!r})", key=name)
        got = stored[name]
        if name == "versions" and isinstance(want, Mapping):
            for lib in sorted(want):
                if (got or {}).get(lib) != want[lib]:
                    raise ProvenanceMismatch(path, f"provenance: saved with {lib} {(got or {}).get(lib)!r}, "
                                                   f"loader expects {want[lib]!r}", key=f"versions.{lib}")
        elif got != want:
            raise ProvenanceMismatch(path, f"provenance field {name!r} is {got!r}, the loader expects {want!r}",
                                     key=name)


def dumps_provenance(provenance: Mapping[str, Any]) -> str:
    """Canonical JSON (sorted keys, no spaces) of a provenance record."""
    return json.dumps(provenance, sort_keys=True, separators=(",", ":"))
