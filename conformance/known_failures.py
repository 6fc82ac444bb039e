"""Known failures: deviations of a released framework that were investigated and are kept,
with their evidence, as expected failures (never as loosened checks or declared contracts).

File format (TOML)::

    schema = 1
    [[failure]]
    check = ["init_schemes/test_random_scheme[uniform-*]"]  # patterns on the check id
    backend = "torch:cpu"                     # pattern on the backend spec
    dtype = ["float16", "bfloat16"]           # optional patterns on the dtype
    reason = "what is wrong, in one sentence"
    evidence = "observed vs expected, n, p-value"
    upstream = "link to the upstream report, if any"
    tests = ["support"]                       # optional: only these verdicts may fail; any other failure is real
    sporadic = true                           # optional: the deviation shows in only some runs (a rare event);
                                              # a passing run does not make the entry stale

Patterns are literal text where ``*`` matches any run of characters (brackets are literal);
``check`` and ``dtype`` take one pattern or a list. An entry that matches no check of a run,
or whose checks now all pass, is reported as stale.
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

#: The suite's own known-failures file, package data read through importlib.resources.
DEFAULT_PATH = Path(str(importlib.resources.files("conformance").joinpath("known_failures.toml")))
SCHEMA = 1
_KEYS = {"check", "backend", "dtype", "reason", "evidence", "upstream", "tests", "sporadic"}


class KnownFailuresError(ValueError):
    """The known-failures file is malformed; the message names the file and entry."""


def _matches(patterns: str | tuple[str, ...], text: str) -> bool:
    pats = [patterns] if isinstance(patterns, str) else patterns
    return any(re.fullmatch(".*".join(map(re.escape, p.split("*"))), text) for p in pats)


@dataclass(frozen=True)
class Entry:
    check: str | tuple[str, ...]
    backend: str
    reason: str
    dtype: str | tuple[str, ...] = "*"
    evidence: str = ""
    upstream: str = ""
    tests: tuple[str, ...] = ()
    sporadic: bool = False

    def covers(self, failed_tests: set[str]) -> bool:
        """Whether failures of these verdict tests are what this entry expects (any, when ``tests`` is empty)."""
        return not self.tests or failed_tests <= set(self.tests)

    def matches(self, check: str, backend: str, dtype: str | None) -> bool:
        return _matches(self.check, check) and _matches(self.backend, backend) and _matches(self.dtype, dtype or "")

    def describe(self) -> str:
        text = self.reason
        if self.evidence:
            text += f" Evidence: {self.evidence}"
        if self.upstream:
            text += f" Upstream: {self.upstream}"
        return text

    def __str__(self) -> str:
        return f"{self.check} on {self.backend} {self.dtype}".replace("'", "")


@dataclass
class KnownFailures:
    entries: list[Entry] = field(default_factory=list)
    source: str = ""

    def match(self, check: str, backend: str, dtype: str | None) -> Entry | None:
        return next((e for e in self.entries if e.matches(check, backend, dtype)), None)

    def stale(self, records: list[dict], backends: list[str] | None = None, filtered: bool = False) -> list[str]:
        """Entries whose matched checks all passed (xpassed), and, in an unfiltered run that included
        the entry's backend, entries that matched no check at all."""
        out = []
        for entry in self.entries:
            hits = [r for r in records if entry.matches(r["check"], r["backend"], r.get("dtype"))]
            ran = [r for r in hits if r["outcome"] not in ("skipped",)]
            in_run = backends is None or any(_matches(entry.backend, b) for b in backends)
            if not hits and in_run and not filtered:
                out.append(f"{entry}: matches no check in this run")
            elif ran and not entry.sporadic and all(r["outcome"] in ("xpassed", "passed") for r in ran):
                out.append(f"{entry}: every matching check now passes; remove the entry")
        return out


def load(path: Path) -> KnownFailures:
    """Parse and validate ``path``; raise :class:`KnownFailuresError` naming the problem."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise KnownFailuresError(f"known-failures file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise KnownFailuresError(f"known-failures file {path} is not valid TOML: {exc}") from None
    if data.get("schema") != SCHEMA:
        raise KnownFailuresError(f"known-failures file {path}: schema must be {SCHEMA}, got {data.get('schema')!r}")
    entries = []
    for i, raw in enumerate(data.get("failure", []), 1):
        unknown = set(raw) - _KEYS
        missing = {"check", "backend", "reason"} - set(raw)
        if unknown or missing:
            raise KnownFailuresError(f"known-failures file {path}, entry {i}: "
                                     + (f"unknown keys {sorted(unknown)} " if unknown else "")
                                     + (f"missing keys {sorted(missing)}" if missing else ""))
        for key in ("check", "dtype", "tests"):
            if isinstance(raw.get(key), list):
                raw[key] = tuple(raw[key])
        if isinstance(raw.get("tests"), str):
            raw["tests"] = (raw["tests"],)
        entries.append(Entry(**raw))
    return KnownFailures(entries, str(path))
