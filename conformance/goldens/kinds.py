"""The registry of golden kinds behind ``conformance golden``: how each kind is updated, verified and listed.

* ``streams``: RNG stream fingerprints per backend (:func:`.fingerprints.stream_entries`).
* ``model_init``: per-parameter fingerprints of the built-in reference models (:func:`.fingerprints.model_entries`).
* ``activations``: correctly rounded activation references, delegated to :mod:`conformance.areas.activations.golden`
  (backend-independent and slow, so only updated when asked for with ``--only activations``).

Updates are two-phase: every file is computed in memory first, and only then written, each atomically; an error
while computing leaves every file as it was. A file whose entries did not change is not rewritten.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import fingerprints as fp
from . import store


@dataclass
class Plan:
    """One file an update will write, with the diff summary it prints."""

    path: Path
    lines: list[str]
    write: Callable[[], None] | None = None  # None: nothing to write
    changed: list[str] = field(default_factory=list)


@dataclass
class Check:
    """The outcome of verifying one golden: ``problem`` makes ``verify`` exit 1; ``status`` is what is printed
    (``ok``, ``FAIL``, ``skip`` for a missing or inapplicable golden, ``note`` for a change since another version)."""

    what: str
    ok: bool
    lines: list[str]
    problem: bool = False
    status: str = ""

    def __post_init__(self):
        self.status = self.status or ("ok" if self.ok else "FAIL")


class FingerprintKind:
    """A per-backend kind whose files are :class:`.store.GoldenFile` fingerprints."""

    per_backend = True
    default = True

    def __init__(self, name: str, compute: Callable, describe: str, needs: tuple[str, ...],
                 frameworks: Callable[[], set[str] | None] = lambda: None):
        self.name = name
        self.compute = compute
        self.describe = describe
        self.needs = needs
        self.frameworks = frameworks

    def inapplicable(self, backend) -> str | None:
        """Why this kind has nothing to pin on ``backend`` (None when it applies)."""
        missing = [c for c in self.needs if c not in backend.capabilities]
        if missing:
            return f"{backend.spec} does not declare capability {', '.join(map(repr, missing))}"
        known = self.frameworks()
        if known is not None and backend.framework not in known:
            return f"no {self.name} cases for framework {backend.framework}"
        return None

    # -- update ------------------------------------------------------------------------------------------------
    def plan(self, backend, directory: Path, argv: list[str], force: bool) -> Plan:
        key = store.key_of(self.name, backend)
        path = directory / key.relpath()
        head = f"{self.name} {key.describe()} -> {path}"
        why = self.inapplicable(backend)
        if why:
            return Plan(path, [f"{self.name} {key.describe()}: not applicable ({why}); no file written"])
        skipped: list[str] = []
        entries = self.compute(backend, skipped.append)
        if not entries:
            return Plan(path, [head, *skipped, "  nothing to fingerprint on this backend; no file written"])
        old, note = None, ""
        if path.exists():
            try:
                old = store.load_file(path, self.name)
            except store.NewerGoldenError:
                if not force:
                    raise
                note = "  overwriting a file written by a newer suite (--force)"
            except store.GoldenError as exc:
                note = f"  replacing a file that did not validate: {exc}"
        diff = store.diff_entries(old.entries if old else None, entries)
        lines = [head, *skipped] + ([note] if note else [])
        if old is not None and diff.identical:
            lines.append(f"  unchanged ({len(diff.unchanged)} entries); not rewritten")
            return Plan(path, lines)
        if old is None:
            lines.append(f"  new file: {len(diff.added)} entries added")
            previous = None
            try:
                previous = store.lookup(key, directory).other
            except store.GoldenError as exc:
                lines.append(f"  (previous versions unreadable: {exc})")
            if previous is not None:
                pdiff = store.diff_entries(previous.entries, entries)
                lines.append(f"  compared with {key.framework} {previous.key.version}: {pdiff.counts()}")
                if pdiff.changed:
                    lines.append(f"  changed since {previous.key.version}: {', '.join(pdiff.changed)}")
        else:
            lines.append(f"  {diff.counts()}")
            for label, names in (("changed", diff.changed), ("added", diff.added), ("removed", diff.removed)):
                if names:
                    lines.append(f"  {label}: {', '.join(names)}")
        golden = store.GoldenFile(path, self.name, key, store.__version__,
                                  store.provenance(backend, argv, fp.GOLDEN_SEED), entries)
        return Plan(path, lines, lambda: store.write_file(golden), diff.changed)

    # -- verify ------------------------------------------------------------------------------------------------
    def verify_backend(self, backend, directory: Path, log) -> Check:
        key = store.key_of(self.name, backend)
        what = f"{self.name} {key.describe()}"
        why = self.inapplicable(backend)
        if why:
            return Check(what, True, [f"not applicable: {why}"], status="skip")
        try:
            found = store.lookup(key, directory)
        except store.GoldenError as exc:
            return Check(what, False, [str(exc)], problem=True)
        golden = found.exact or found.other
        if golden is None:
            return Check(what, True, [f"MISSING: {found.missing_reason()}"], status="skip")
        entries = self.compute(backend, log)
        diff = store.diff_entries(golden.entries, entries)
        if diff.identical:
            note = "" if found.exact else (f" (golden of {key.framework} {golden.key.version}: unchanged since "
                                           f"{golden.key.version}; pin this version with `{found.command}`)")
            return Check(what, True, [f"OK: {len(diff.unchanged)} entries match {golden.path}{note}"])
        details = [f"  {name}: {fp.compare(golden.entries[name], entries[name])}" for name in diff.changed]
        details += [f"  {name}: not produced any more" for name in diff.removed]
        details += [f"  {name}: no golden entry yet" for name in diff.added]
        if found.exact:
            return Check(what, False, [f"CHANGED within {key.framework} {key.version}: {diff.counts()} "
                                       f"vs {golden.path}", *details], problem=bool(diff.changed or diff.removed))
        return Check(what, True, [f"changed since {golden.key.version} ({diff.counts()}); accept the change "
                                  f"with `{found.command}`", *details], status="note")

    def validate_files(self, directory: Path) -> list[Check]:
        out = []
        for path in store.files_of(directory, self.name):
            try:
                g = store.load_file(path, self.name)
                out.append(Check(f"file {path}", True, [f"valid: {len(g.entries)} entries, {g.key.describe()}"]))
            except store.GoldenError as exc:
                out.append(Check(f"file {path}", False, [str(exc)], problem=True))
        return out

    def list_files(self, directory: Path) -> list[str]:
        lines = []
        for path in store.files_of(directory, self.name):
            try:
                g = store.load_file(path, self.name)
                lines.append(f"{path}: {g.key.describe()}, {len(g.entries)} entries, {g.provenance.get('date')} "
                             f"by `{g.provenance.get('generator')}` (suite {g.suite_version})")
            except store.GoldenError as exc:
                lines.append(f"{path}: INVALID - {exc}")
        return lines


class ActivationsKind:
    """Delegates to :mod:`conformance.areas.activations.golden` (mpmath references, one file per dtype)."""

    name = "activations"
    per_backend = False
    default = False
    describe = "correctly rounded activation references (mpmath; slow, backend-independent)"

    @staticmethod
    def module():
        try:
            return importlib.import_module("conformance.areas.activations.golden")
        except ImportError:
            return None

    def available(self) -> bool:
        mod = self.module()
        return mod is not None and callable(getattr(mod, "update", None)) and callable(getattr(mod, "check", None))

    def _files(self, directory: Path) -> dict:
        import json

        try:
            return json.loads((directory / "manifest.json").read_text()).get("files", {})
        except (OSError, ValueError):
            return {}

    def plan(self, selector: str | None, directory: Path, argv: list[str]) -> Plan:
        mod = self.module()
        sub = directory / "activations"
        choices = tuple(mod.EXHAUSTIVE_DTYPES + mod.SWEEP_DTYPES)
        if selector and selector not in choices:
            raise ValueError(f"--only activations:{selector}: unknown dtype; known: {', '.join(choices)}")
        dtypes = (selector,) if selector else choices

        def write() -> None:
            before = self._files(sub)
            mod.update(dtypes, sub, argv=["update", *(["--only", selector] if selector else [])])
            after = self._files(sub)
            for name in sorted(after):
                old = before.get(name, {}).get("sha256")
                status = "added" if old is None else ("unchanged" if old == after[name]["sha256"] else "changed")
                print(f"  {name}: {status}")

        return Plan(sub, [f"activations {', '.join(dtypes)} -> {sub} (mpmath; takes minutes)"], write)

    def verify(self, directory: Path) -> Check:
        problems = self.module().check(directory / "activations")
        return Check("activations", not problems, problems or [f"OK: {directory / 'activations'}"],
                     problem=bool(problems))


STREAMS = FingerprintKind("streams", fp.stream_entries, "RNG stream fingerprints (sample, init, module_params)",
                          ("seed",))
MODEL_INIT = FingerprintKind("model_init", fp.model_entries, "per-parameter init fingerprints of reference models",
                             ("seed", "models"), lambda: set(fp.MODEL_CASES))
ACTIVATIONS = ActivationsKind()
#: Every kind by name; ``default`` ones are updated/verified when ``--only`` is not given.
KINDS: dict[str, FingerprintKind | ActivationsKind] = {k.name: k for k in (STREAMS, MODEL_INIT, ACTIVATIONS)}
