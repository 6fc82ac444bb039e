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
    cpu_flags = ["avx512f"]                   # optional: the entry applies only on a CPU with all these flags
    tier = "strict"                           # optional: a deviation that fails only with --strict-tier

Keys and their types (anything else is an error naming the file, the entry, its line and the key):

``check``     (required) a pattern, or a non-empty array of patterns, on the check id
``backend``   (required) a pattern on the backend spec
``reason``    (required) a non-empty string
``dtype``     a pattern or a non-empty array of patterns on the dtype (default ``"*"``)
``evidence``, ``upstream``  strings
``tests``     a verdict test name or an array of them. Such an entry is decided when the check runs: only these
              verdicts may fail (then ``xfailed``), and a check that passes is ``passed``, not ``xpassed``
``sporadic``  a boolean. Only for deviations with evidence of run-to-run or seed-to-seed variation (a rare random
              event, or inputs that hypothesis draws in some runs only); never for a deviation that depends on the
              machine: that is what ``cpu_flags`` is for. A sporadic entry should name its ``tests``: without them a
              run where the deviation does not show records ``xpassed``, which ``--strict`` fails.
``cpu_flags`` a flag name or a non-empty array of them (lower case, as in the ``flags`` line of Linux's
              ``/proc/cpuinfo``, e.g. ``avx512f``). The entry applies only where the CPU running the suite has
              every one of them; elsewhere it neither matches a check nor is reported stale. Flags are read from
              ``/proc/cpuinfo`` (``flags``, or ``Features`` on ARM; the flags every CPU listed has) on Linux and from
              ``sysctl machdep.cpu.features machdep.cpu.leaf7_features`` (lower-cased) on macOS. Where they cannot
              be read (other systems, or no such file) an entry with ``cpu_flags`` does NOT apply: the deviation
              then shows as a real failure, to be investigated, rather than being hidden.

``tier``      ``"default"`` (the default) or ``"strict"``: an entry for a deviation
              (:mod:`conformance.stats.severity`), which fails a check only with ``--strict-tier``, applies only in
              that tier; in the default tier the check passes and its record carries ``severity = "deviation"``

Patterns are literal text where ``*`` matches any run of characters (brackets are literal);
``check`` and ``dtype`` take one pattern or a list. Besides ``schema`` and ``failure`` no top-level key is allowed.

:meth:`KnownFailures.stale` lists, one line each, the entries that match no check of an unfiltered run that
included their backend, and the non-sporadic entries whose matching checks all passed;
:meth:`KnownFailures.overbroad` lists the non-sporadic entries some of whose matching checks passed.
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .harness.host import host_cpu_flags, parse_cpuinfo  # noqa: F401 - parse_cpuinfo is part of this module's API

#: The suite's own known-failures file, package data read through importlib.resources.
DEFAULT_PATH = Path(str(importlib.resources.files("conformance").joinpath("known_failures.toml")))
SCHEMA = 1
_KEYS = {"check", "backend", "dtype", "reason", "evidence", "upstream", "tests", "sporadic", "cpu_flags", "tier"}
_REQUIRED = ("check", "backend", "reason")
_TOP_KEYS = {"schema", "failure"}
_PASSING = ("passed", "xpassed")


def _passes(record: dict) -> bool:
    """The record shows nothing an entry could describe: it passed with no deviation either."""
    return (record["outcome"] in _PASSING and record.get("severity") != "deviation"
            and all(v.get("passed", True) for v in record.get("verdicts", [])))


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
    cpu_flags: tuple[str, ...] = ()
    tier: str = "default"
    #: where the entry is written: 1-based position in its file, the file's name and the line of ``[[failure]]``
    index: int = field(default=0, compare=False)
    where: str = field(default="", compare=False)

    def covers(self, failed_tests: set[str]) -> bool:
        """Whether failures of these verdict tests are what this entry expects (any, when ``tests`` is empty)."""
        return not self.tests or failed_tests <= set(self.tests)

    def applies(self, flags: frozenset[str] | None = None) -> bool:
        """Whether the entry's conditions hold on this machine (``flags``: the CPU flags, default the host's)."""
        if not self.cpu_flags:
            return True
        flags = host_cpu_flags() if flags is None else flags
        return flags is not None and set(self.cpu_flags) <= flags

    def matches(self, check: str, backend: str, dtype: str | None) -> bool:
        return (_matches(self.check, check) and _matches(self.backend, backend) and _matches(self.dtype, dtype or "")
                and self.applies())

    def headline(self) -> str:
        """The entry in one short line for the terminal: the first sentence of its reason."""
        first = " ".join(self.reason.split()).split(". ")[0].rstrip(".")
        return "known failure: " + (first if len(first) <= 100 else first[:97] + "...")

    def describe(self) -> str:
        text = self.reason
        if self.evidence:
            text += f" Evidence: {self.evidence}"
        if self.upstream:
            text += f" Upstream: {self.upstream}"
        return text

    def label(self) -> str:
        """One line naming the entry: position in its file, first check pattern, backend, dtype(s)."""
        checks = (self.check,) if isinstance(self.check, str) else self.check
        dtypes = (self.dtype,) if isinstance(self.dtype, str) else self.dtype
        text = checks[0] + (f" (+{len(checks) - 1} more patterns)" if len(checks) > 1 else "")
        text += f" on {self.backend} dtype {'|'.join(dtypes)}"
        if self.cpu_flags:
            text += f" cpu_flags {'+'.join(self.cpu_flags)}"
        if self.index:
            text = f"entry {self.index}" + (f" ({self.where})" if self.where else "") + f": {text}"
        return text

    def __str__(self) -> str:
        return self.label()


def _combo(record: dict) -> str:
    return f"{record['check']} {record.get('dtype') or ''}".rstrip()


@dataclass
class KnownFailures:
    entries: list[Entry] = field(default_factory=list)
    source: str = ""

    def match(self, check: str, backend: str, dtype: str | None, strict_tier: bool = False) -> Entry | None:
        """The first entry matching the check; entries of the strict tier only when ``strict_tier``."""
        return next((e for e in self.entries if (strict_tier or e.tier == "default")
                     and e.matches(check, backend, dtype)), None)

    def in_tier(self, strict_tier: bool) -> KnownFailures:
        """The entries that apply in the tier (``tier = "strict"`` entries only with ``--strict-tier``)."""
        return KnownFailures([e for e in self.entries if strict_tier or e.tier == "default"], self.source)

    def stale(self, records: list[dict], backends: list[str] | None = None, filtered: bool = False) -> list[str]:
        """One line per stale entry: a non-sporadic entry whose matched checks all passed (xpassed), and, in an
        unfiltered run that included the entry's backend, an entry that matched no check at all. Entries whose
        conditions (``cpu_flags``) do not hold on this machine are never stale."""
        out = []
        for entry in self.entries:
            if not entry.applies():
                continue
            hits = [r for r in records if entry.matches(r["check"], r["backend"], r.get("dtype"))]
            ran = [r for r in hits if r["outcome"] not in ("skipped",)]
            in_run = backends is None or any(_matches(entry.backend, b) for b in backends)
            if not hits and in_run and not filtered:
                out.append(f"{entry}: matches no check in this run; correct its check/backend/dtype patterns or "
                           "remove it")
            elif ran and not entry.sporadic and all(_passes(r) for r in ran):
                out.append(f"{entry}: every matching check now passes ({len(ran)} of {len(ran)}); remove the entry "
                           "(or, with evidence of machine dependence, condition it with cpu_flags)")
        return out

    def overbroad(self, records: list[dict]) -> list[str]:
        """One line per non-sporadic entry some (not all) of whose matched checks passed: the entry is broader
        than the deviation it describes. The line names up to three passing checks."""
        out = []
        for entry in self.entries:
            if entry.sporadic or not entry.applies():
                continue
            ran = [r for r in records if r["outcome"] != "skipped"
                   and entry.matches(r["check"], r["backend"], r.get("dtype"))]
            passing = sorted({_combo(r) for r in ran if _passes(r)})
            if passing and len(passing) < len({_combo(r) for r in ran}):
                more = f" and {len(passing) - 3} more" if len(passing) > 3 else ""
                out.append(f"{entry}: {len(passing)} of its matching checks pass ({', '.join(passing[:3])}{more}); "
                           "narrow its check/dtype patterns to the failing ones")
        return out


# --- loading and validation ------------------------------------------------------------------------------------------

def _toml_type(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


def _got(value: object) -> str:
    text = repr(value)
    return f"{_toml_type(value)} {text if len(text) <= 60 else text[:57] + '...'}"


def _strings(value: object, *, allow_str: bool, nonempty_list: bool) -> bool:
    if isinstance(value, str):
        return allow_str and value != ""
    return (isinstance(value, list) and (bool(value) or not nonempty_list)
            and all(isinstance(v, str) and v != "" for v in value))


_FLAG = re.compile(r"[a-z0-9_.]+")

#: key -> (is the value valid, what it should be)
_CHECKS = {
    "check": (lambda v: _strings(v, allow_str=True, nonempty_list=True),
              "a non-empty pattern string or a non-empty array of them"),
    "backend": (lambda v: isinstance(v, str) and v != "", "a non-empty pattern string such as \"torch:cpu\""),
    "dtype": (lambda v: _strings(v, allow_str=True, nonempty_list=True),
              "a dtype pattern string or a non-empty array of them"),
    "reason": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "evidence": (lambda v: isinstance(v, str), "a string"),
    "upstream": (lambda v: isinstance(v, str), "a string"),
    "tests": (lambda v: _strings(v, allow_str=True, nonempty_list=False),
              "a verdict test name or an array of them"),
    "sporadic": (lambda v: isinstance(v, bool), "a boolean (true or false)"),
    "tier": (lambda v: v in ("default", "strict"), "\"default\" or \"strict\""),
    "cpu_flags": (lambda v: _strings(v, allow_str=True, nonempty_list=True)
                  and all(_FLAG.fullmatch(f) for f in ([v] if isinstance(v, str) else v)),
                  "a lower-case CPU flag name such as \"avx512f\" or a non-empty array of them"),
}

_HEADER = re.compile(r"\s*\[\[\s*failure\s*\]\]\s*(#.*)?$")
_KEY = re.compile(r"""\s*["']?([A-Za-z0-9_-]+)["']?\s*=""")


def _locate(text: str) -> list[tuple[int, dict[str, int]]]:
    """For each ``[[failure]]`` header: its line and the line of each key under it (a cheap scan that skips
    multi-line strings; used for messages only)."""
    out: list[tuple[int, dict[str, int]]] = []
    delim = None
    for n, line in enumerate(text.splitlines(), 1):
        if delim is None:
            if _HEADER.match(line):
                out.append((n, {}))
            elif out and (m := _KEY.match(line)):
                out[-1][1].setdefault(m.group(1), n)
        for d in ('"""', "'''"):
            if (delim is None or delim == d) and line.count(d) % 2:
                delim = d if delim is None else None
    return out


#: Longest known-failures file accepted (characters; the suite's own is under 40,000).
MAX_CHARS = 1 << 20
#: Most parts of a dotted key accepted before parsing (tomllib takes quadratic time in them).
MAX_KEY_PARTS = 16
_LONG_DOTTED_KEY = re.compile(r"^[ \t]*[\w\-\"' ]+(?:\.[\w\-\"' ]+){" + str(MAX_KEY_PARTS) + r",}[ \t]*=",
                              re.MULTILINE)


def load(path: Path) -> KnownFailures:
    """Parse and validate ``path``; raise :class:`KnownFailuresError` naming the problem (one line)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise KnownFailuresError(f"known-failures file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KnownFailuresError(f"known-failures file {path} cannot be read: {exc}") from None
    if len(text) > MAX_CHARS:
        raise KnownFailuresError(f"known-failures file {path}: {len(text)} characters, more than the limit of "
                                 f"{MAX_CHARS}; is this the right file?")
    dotted = _LONG_DOTTED_KEY.search(text)
    if dotted:  # tomllib is quadratic in the parts of a dotted key
        line = text.count("\n", 0, dotted.start()) + 1
        raise KnownFailuresError(f"known-failures file {path}, line {line}: a dotted key of more than "
                                 f"{MAX_KEY_PARTS} parts; entries use only the keys check, backend, dtype, ...")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KnownFailuresError(f"known-failures file {path} is not valid TOML: {exc}") from None
    except (RecursionError, MemoryError) as exc:
        raise KnownFailuresError(f"known-failures file {path}: the TOML parser gave up ({type(exc).__name__}): "
                                 "nested too deeply; entries hold only strings and arrays of strings") from None
    if data.get("schema") != SCHEMA:
        raise KnownFailuresError(f"known-failures file {path}: schema must be {SCHEMA}, got {data.get('schema')!r}")
    unknown_top = set(data) - _TOP_KEYS
    if unknown_top:
        raise KnownFailuresError(f"known-failures file {path}: unknown top-level keys {sorted(unknown_top)}; only "
                                 "'schema' and [[failure]] sections are allowed")
    failures = data.get("failure", [])
    if not isinstance(failures, list):
        raise KnownFailuresError(f"known-failures file {path}: 'failure' must be an array of tables ([[failure]] "
                                 f"sections), got {_got(failures)}")
    located = _locate(text)
    if len(located) != len(failures):  # e.g. failure = [{...}] inline: no line numbers
        located = [(0, {})] * len(failures)
    name = path.name
    entries = []
    for i, (raw, (header, key_lines)) in enumerate(zip(failures, located, strict=True), 1):
        def where(key: str | None = None, header: int = header, key_lines: dict = key_lines, i: int = i) -> str:
            line = key_lines.get(key, header) if key else header
            return f"known-failures file {path}, entry {i}" + (f" (line {line})" if line else "")

        if not isinstance(raw, dict):
            raise KnownFailuresError(f"{where()}: must be a table ([[failure]] section), got {_got(raw)}")
        unknown = set(raw) - _KEYS
        missing = [k for k in _REQUIRED if k not in raw]
        if unknown or missing:
            raise KnownFailuresError(f"{where(sorted(unknown)[0] if unknown else None)}: "
                                     + (f"unknown keys {sorted(unknown)} " if unknown else "")
                                     + (f"missing keys {missing}" if missing else "")
                                     + f" (allowed keys: {', '.join(sorted(_KEYS))})")
        values = {}
        for key, value in raw.items():
            valid, what = _CHECKS[key]
            if not valid(value):
                raise KnownFailuresError(f"{where(key)}: key '{key}' must be {what}, got {_got(value)}")
            if key in ("tests", "cpu_flags") and isinstance(value, str):
                value = (value,)
            values[key] = tuple(value) if isinstance(value, list) else value
        entries.append(Entry(**values, index=i, where=f"{name}:{header}" if header else name))
    return KnownFailures(entries, str(path))
