"""Reading, validating and writing golden fingerprint files (JSON only, never pickle).

Contract
--------
* A file is keyed by ``(kind, framework, framework version, device, device name)``; its path is
  :meth:`GoldenKey.relpath` under the golden directory (:func:`default_dir`: ``$CONFORMANCE_GOLDEN_DIR``, else the
  data shipped with the package); :func:`write_dir` says where an update may write.
* :func:`load_file` never returns a file it does not fully trust. A missing field, invalid JSON, a checksum that
  does not match the entries (hand edits), an unknown schema, or a file written by a *newer* suite raise
  :class:`GoldenError` whose message names the file and what to do (the ``conformance golden update`` command
  that regenerates it, or the upgrade that reads it).
* :func:`write_file` is atomic (temporary file + ``os.replace``): on any error the old file is untouched.
* Nothing here talks to a framework; adapters are only asked for ``versions()`` in :func:`key_of`.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.resources
import json
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

from conformance.backends.base import ConformanceError

from .. import __version__
from ..harness.files import atomic_write

#: Version of the fingerprint file format this suite reads and writes.
SCHEMA = 1
#: Environment variable that points the suite and the CLI at another golden directory.
ENV_DIR = "CONFORMANCE_GOLDEN_DIR"
_REQUIRED = {"schema": int, "kind": str, "suite_version": str, "key": dict, "provenance": dict, "entries": dict,
             "checksum": str}
_KEY_FIELDS = ("spec", "framework", "version", "device", "device_name")
#: ``versions()`` fields that never identify a framework version (the fallback key joins the others).
_NOT_VERSIONS = {"device", "threads", "cpu_capability", "simd"}


class GoldenError(ConformanceError):
    """A golden file is missing, corrupt, of an unknown schema or from a newer suite; the message says what to do."""


class NewerGoldenError(GoldenError):
    """The file was written by a newer suite (newer schema or suite version): upgrade, or overwrite with --force."""


def shipped_dir() -> Path:
    """The golden data shipped with the package (``conformance.goldens.data``, mapped from the ``golden/`` folder of
    a checkout), read through :mod:`importlib.resources`."""
    files = importlib.resources.files("conformance.goldens.data")
    if not isinstance(files, Path):  # a zip import: nothing on disk to read or compare against
        raise GoldenError(f"the golden data of this installation is not a directory ({files!r}); install "
                          f"dl-conformance unzipped or point ${ENV_DIR} at a copy of its golden/ folder")
    return files


def default_dir() -> Path:
    """Where golden data is read from: ``$CONFORMANCE_GOLDEN_DIR`` if set, else the data shipped with the package."""
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else shipped_dir()


def is_checkout(directory: Path) -> bool:
    """Whether ``directory`` is the ``golden/`` folder of a source checkout (a ``pyproject.toml`` beside it)."""
    directory = Path(directory).resolve()
    return directory.name == "golden" and (directory.parent / "pyproject.toml").is_file()


def write_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where ``conformance golden update`` writes: ``explicit`` (``--golden-dir``), else ``$CONFORMANCE_GOLDEN_DIR``,
    else the checkout's ``golden/`` folder. Never an installed package's data unasked: that raises
    :class:`GoldenError` saying how to choose a directory."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    shipped = shipped_dir()
    if is_checkout(shipped):
        return shipped
    raise GoldenError(f"refusing to write golden files into the installed package ({shipped}): pass "
                      f"--golden-dir DIR (or set ${ENV_DIR}) to write them elsewhere, or run `conformance golden "
                      "update` from a source checkout, where they go to its golden/ folder")


def update_command(kind: str, spec: str | None = None, directory: Path | None = None) -> str:
    """The exact command that (re)creates the golden of ``kind`` for ``spec``."""
    cmd = f"conformance golden update --only {kind}" + (f":{spec}" if spec else "")
    if directory is not None and directory.resolve() != default_dir().resolve():
        cmd += f" --golden-dir {directory}"
    elif os.environ.get(ENV_DIR):
        cmd += f" --golden-dir {os.environ[ENV_DIR]}"
    return cmd


def version_key(version: str) -> tuple:
    """Sort key of a version string: its leading dotted integers, then the rest (``2.13.0+cpu`` -> (2, 13, 0))."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    nums = tuple(int(p) for p in match.group(0).split(".")) if match else ()
    return nums, version[match.end():] if match else version


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "_"


def canonical_checksum(entries: dict) -> str:
    """sha256 of the entries as canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class GoldenKey:
    """What a golden file pins: one kind, one framework version, one device (and device model)."""

    kind: str
    spec: str
    framework: str
    version: str
    device: str
    device_name: str = ""

    @property
    def device_label(self) -> str:
        return f"{self.device} ({self.device_name})" if self.device_name else self.device

    def file_name(self) -> str:
        return _safe(self.device) + (f"--{_safe(self.device_name)}" if self.device_name else "") + ".json"

    def relpath(self) -> Path:
        return Path(self.kind) / _safe(self.framework) / _safe(self.version) / self.file_name()

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in _KEY_FIELDS}

    def describe(self) -> str:
        return f"{self.spec} ({self.framework} {self.version}, {self.device_label})"


def key_of(kind: str, backend) -> GoldenKey:
    """The key of ``backend``'s golden of ``kind``.

    Framework version: ``versions()[framework]``, else every reported version but the device, thread count and
    CPU capability (recorded in the provenance, named when a stream changes). Device name:
    ``versions()["device"]`` (the GPU model on CUDA, whose streams depend on the multiprocessor count; the CPU
    architecture on CPU), followed by ``versions()["simd"]`` when the adapter reports the vector extension its
    numerics depend on (the numpy reference: AVX-512 and AVX2 kernels of float64 exp/log differ in the last bit).
    """
    versions = {k: str(v) for k, v in backend.versions().items()}
    version = versions.get(backend.framework) or ";".join(f"{k}={v}" for k, v in sorted(versions.items())
                                                           if k not in _NOT_VERSIONS) or "unknown"
    device_name = versions.get("device", "")
    if versions.get("simd"):  # streams that depend on the CPU's vector kernels (the numpy reference's float64 exp/log)
        device_name = f"{device_name} {versions['simd']}".strip()
    return GoldenKey(kind, backend.spec, backend.framework, version, backend.device, device_name)


def provenance(backend, argv: list[str] | None, seed: int) -> dict:
    """How a file was generated: command, suite version, every version the adapter reports, machine, date."""
    return {
        "generator": "conformance golden " + " ".join(argv if argv is not None else ["update"]),
        "suite_version": __version__,
        "versions": {k: str(v) for k, v in backend.versions().items()},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "seed": seed,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@dataclass
class GoldenFile:
    """One validated fingerprint file."""

    path: Path
    kind: str
    key: GoldenKey
    suite_version: str
    provenance: dict
    entries: dict[str, dict]
    schema: int = SCHEMA
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        """Sorted-key JSON, one entry per line (reviewable diffs)."""
        doc = {"schema": self.schema, "kind": self.kind, "suite_version": self.suite_version,
               "key": self.key.as_dict(), "provenance": self.provenance, "entries": {},
               "checksum": canonical_checksum(self.entries)}
        text = json.dumps(doc, indent=1, sort_keys=True, allow_nan=False)
        lines = [f"  {json.dumps(name)}: {json.dumps(self.entries[name], sort_keys=True, allow_nan=False)}"
                 for name in sorted(self.entries)]
        body = "{\n" + ",\n".join(lines) + "\n }" if lines else "{}"
        return text.replace('"entries": {}', f'"entries": {body}', 1) + "\n"


def _regen_hint(path: Path, kind: str | None, spec: str | None) -> str:
    directory = path.parents[3] if len(path.parents) > 3 else None
    return update_command(kind or "<kind>", spec, directory)


def _spec_from_path(path: Path) -> tuple[str | None, str | None]:
    """Best guess of (kind, spec) from a file's location, for messages about files that cannot be read."""
    parts = path.parts
    if len(parts) < 4:
        return None, None
    return parts[-4], f"{parts[-3]}:{path.stem.split('--')[0]}"


def load_file(path: Path, kind: str | None = None) -> GoldenFile:
    """Read and validate one golden file; raise :class:`GoldenError` naming the file and the remedy."""
    path = Path(path)
    guess_kind, guess_spec = _spec_from_path(path)
    hint = _regen_hint(path, kind or guess_kind, guess_spec)

    def fail(why: str, remedy: str | None = None, cls: type[GoldenError] = GoldenError) -> GoldenError:
        return cls(f"golden file {path}: {why}. " + (remedy or f"Restore it from version control "
                   f"(`git checkout -- {path}`) or regenerate it with `{hint}` and review the diff."))

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise fail("does not exist", f"Create it with `{hint}`.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot be read ({exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"is corrupt: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or "schema" not in doc:
        raise fail("is corrupt: no 'schema' field (not a golden fingerprint file)")
    schema, written_by = doc.get("schema"), doc.get("suite_version")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise fail(f"has an unknown schema version {schema!r} (this suite reads schema {SCHEMA})")
    if schema > SCHEMA:
        raise fail(f"has schema {schema} (written by dl-conformance {written_by}), newer than this suite's schema "
                   f"{SCHEMA} (dl-conformance {__version__})",
                   f"Upgrade dl-conformance to {written_by} or newer to read it, or regenerate it for this version "
                   f"with `{hint} --force` (which rewrites it in schema {SCHEMA}).", NewerGoldenError)
    if schema != SCHEMA:
        raise fail(f"has schema {schema}, which this suite (schema {SCHEMA}) no longer reads",
                   f"Regenerate it with `{hint}`.")
    for name, typ in _REQUIRED.items():
        if not isinstance(doc.get(name), typ):
            raise fail(f"is corrupt: field {name!r} is missing or not a {typ.__name__}")
    if version_key(written_by) > version_key(__version__):
        raise fail(f"was written by dl-conformance {written_by}, newer than this one ({__version__})",
                   f"Upgrade dl-conformance to {written_by} or newer, or regenerate it with this version using "
                   f"`{hint} --force`.", NewerGoldenError)
    if kind is not None and doc["kind"] != kind:
        raise fail(f"holds kind {doc['kind']!r}, expected {kind!r}")
    key = doc["key"]
    if not all(isinstance(key.get(f), str) for f in _KEY_FIELDS):
        raise fail(f"is corrupt: 'key' needs string fields {', '.join(_KEY_FIELDS)}")
    if canonical_checksum(doc["entries"]) != doc["checksum"]:
        raise fail("is corrupt: its entries do not match their checksum (edited by hand or damaged; only "
                   "`conformance golden update` changes golden files)")
    for name, entry in doc["entries"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise fail(f"is corrupt: entry {name!r} has no sha256")
    gkey = GoldenKey(doc["kind"], *(key[f] for f in _KEY_FIELDS))
    return GoldenFile(path, doc["kind"], gkey, written_by, doc["provenance"], doc["entries"], schema)


def write_file(golden: GoldenFile) -> None:
    """Write atomically (temporary file in the same directory, then ``os.replace``)."""
    atomic_write(golden.path, golden.to_json())


def files_of(directory: Path, kind: str) -> list[Path]:
    """Every golden file of ``kind`` under ``directory`` (sorted)."""
    root = Path(directory) / kind
    return sorted(p for p in root.glob("*/*/*.json")) if root.is_dir() else []


@dataclass
class Lookup:
    """Which golden file applies to a backend: the one of its exact version, else the nearest other version."""

    key: GoldenKey
    directory: Path
    exact: GoldenFile | None = None
    other: GoldenFile | None = None

    @property
    def command(self) -> str:
        return update_command(self.key.kind, self.key.spec, self.directory)

    @property
    def path(self) -> Path:
        return self.directory / self.key.relpath()

    def missing_reason(self) -> str:
        return (f"no golden {self.key.kind} for {self.key.describe()} in {self.directory}; "
                f"create it with `{self.command}`")


def lookup(key: GoldenKey, directory: Path | None = None) -> Lookup:
    """The golden file for ``key``: the exact version's if present; otherwise the same framework and device's
    file of the nearest older version (else the nearest newer one). Files that fail validation raise."""
    directory = Path(directory) if directory is not None else default_dir()
    found = Lookup(key, directory)
    path = directory / key.relpath()
    if path.exists():
        found.exact = load_file(path, key.kind)
        return found
    candidates = []
    for p in sorted((directory / key.kind / _safe(key.framework)).glob(f"*/{key.file_name()}")):
        g = load_file(p, key.kind)
        if g.key.device == key.device and g.key.device_name == key.device_name and g.key.version != key.version:
            candidates.append(g)
    older = [g for g in candidates if version_key(g.key.version) < version_key(key.version)]
    newer = [g for g in candidates if version_key(g.key.version) >= version_key(key.version)]
    if older:
        found.other = max(older, key=lambda g: version_key(g.key.version))
    elif newer:
        found.other = min(newer, key=lambda g: version_key(g.key.version))
    return found


@dataclass
class EntryDiff:
    """Entries of an old and a new version of one file, by status."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def counts(self) -> str:
        return (f"{len(self.added)} added, {len(self.changed)} changed, {len(self.unchanged)} unchanged, "
                f"{len(self.removed)} removed")


def diff_entries(old: dict | None, new: dict) -> EntryDiff:
    """Compare entries by name (an entry changes when any of its fields differs)."""
    old = old or {}
    d = EntryDiff()
    for name in sorted(set(old) | set(new)):
        if name not in old:
            d.added.append(name)
        elif name not in new:
            d.removed.append(name)
        elif old[name] != new[name]:
            d.changed.append(name)
        else:
            d.unchanged.append(name)
    return d
