"""Resume findings: the reviewed causes of every divergence the built-in harnesses show, and the README table.

Contract
--------
* ``findings.toml`` (package data) holds one ``[[cause]]`` per reviewed outcome: ``harness``, ``options`` (one glob
  over :meth:`~conformance.resume.protocol.Options.label`, or several separated by `` | ``), ``versions`` (optional
  glob over the stack's version), ``verdict`` (``diverged``, ``not deterministic``, ``bit-exact``, ``unsupported``
  or ``error``: a run crashed, for example the resume itself), ``first_step`` (for ``diverged``), ``cause`` (one
  sentence, the mechanism), ``code`` (a link to the upstream lines at the installed release tag), and
  ``documented`` (how a user could know: the warning the stack prints, a doc page or an upstream issue, or ``no``).
  :func:`load_causes` validates it with the entry's number in every error.
* :func:`rows` joins run files (``OUT/runs/<label>.json``: ``{"label", "audits": [result dicts]}``) with the causes:
  a divergence without a matching cause is ``UNREVIEWED``; a cause whose first step disagrees with the run's is
  ``MISMATCH``. :func:`markdown` renders the README table; :func:`replace_readme` rewrites the block between
  :data:`BEGIN` and :data:`END`.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from conformance.harness.toml_entries import entries

BEGIN, END = "<!-- resume-findings:begin -->", "<!-- resume-findings:end -->"
CAUSE_KEYS = ("harness", "options", "versions", "verdict", "first_step", "cause", "code", "documented")
VERDICTS = ("diverged", "not deterministic", "bit-exact", "unsupported", "error")


class FindingsError(ValueError):
    """A malformed findings.toml or run file (the message names the file, the entry and what to do)."""


@dataclass(frozen=True)
class Cause:
    harness: str
    options: str
    verdict: str
    cause: str
    code: str = ""
    documented: str = "no"
    versions: str = ""
    first_step: int | None = None

    def matches(self, audit: dict) -> bool:
        def any_of(text: str, globs: str) -> bool:
            return any(fnmatch.fnmatchcase(text, g.strip()) for g in globs.split(" | "))

        stack = str(next(iter((audit.get("versions") or {}).values()), ""))
        return (audit.get("harness") == self.harness and any_of(audit.get("label", ""), self.options)
                and (not self.versions or any_of(stack, self.versions)) and verdict_of(audit) == self.verdict)


def verdict_of(audit: dict) -> str:
    if audit.get("unsupported"):
        return "unsupported"
    if audit.get("error"):
        return "error"
    if audit.get("deterministic") is False:
        return "not deterministic"
    return "bit-exact" if audit.get("bit_exact") else "diverged"


def load_causes(text: str | None = None, origin: str = "findings.toml") -> list[Cause]:
    if text is None:
        text = resources.files(__package__).joinpath("findings.toml").read_text(encoding="utf-8")
    out = []
    for where, raw in entries(text, origin, "cause", CAUSE_KEYS, FindingsError):
        for key in ("harness", "options", "verdict", "cause"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise FindingsError(f"{where} needs {key} = \"...\" (a non-empty string)")
        if raw["verdict"] not in VERDICTS:
            raise FindingsError(f"{where}: verdict must be one of {', '.join(VERDICTS)}, got {raw['verdict']!r}")
        if raw["verdict"] == "diverged" and not isinstance(raw.get("first_step"), int):
            raise FindingsError(f"{where}: a diverged cause needs first_step = N (the first divergent step)")
        if raw["verdict"] in ("diverged", "not deterministic", "error") and \
                not str(raw.get("code", "")).startswith("https://"):
            raise FindingsError(f"{where}: code must link the upstream lines that cause it (https://github.com/...)")
        out.append(Cause(**{k: raw[k] for k in CAUSE_KEYS if k in raw}))
    return out


def load_runs(folder: Path) -> list[dict]:
    runs = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            doc = json.loads(path.read_text())
            if not isinstance(doc.get("audits"), list):
                raise ValueError("no 'audits' list")
        except (OSError, ValueError) as exc:
            raise FindingsError(f"{path}: not a resume run file ({exc}); delete it or rerun `nox -s resume`") from None
        runs.append(doc)
    return runs


@dataclass
class Row:
    stack: str
    version: str
    options: str
    verdict: str
    first_step: str
    diverged: str
    cause: str
    documented: str
    status: str  # "reviewed", "UNREVIEWED", "MISMATCH", "ok"
    origin: str = ""  # where C's first diverging batch or RNG state came from in A


def rows(runs: list[dict], causes: list[Cause] | None = None) -> list[Row]:
    causes = load_causes() if causes is None else causes
    out = []
    for run in runs:
        for a in run["audits"]:
            verdict = verdict_of(a)
            versions = a.get("versions") or {}
            version = ", ".join(f"{k} {v}" for k, v in versions.items())
            match = next((c for c in causes if c.matches(a)), None)
            step = a.get("first_divergent_step")
            if verdict == "diverged" and step is None:
                step_text = "final state"
            else:
                step_text = "" if step is None else str(step)
            if match is None:
                status = "ok" if verdict == "bit-exact" else "UNREVIEWED"
                cause = a.get("unsupported") or ("" if verdict == "bit-exact" else
                                                                   "UNREVIEWED: " + "; ".join(a.get("details", [])[:2]))
                documented = ""
            else:
                status = "reviewed"
                if verdict == "diverged" and match.first_step != step:
                    status = "MISMATCH"
                cause = match.cause + (f" ([code]({match.code}))" if match.code else "")
                if status == "MISMATCH":
                    cause = f"MISMATCH: the reviewed cause says step {match.first_step}, the run {step}. {cause}"
                documented = match.documented
            origin = "; ".join(a.get("origin", [])[:1])
            later = [f"{f} from step {s}" for f, s in (a.get("first_step_by_field") or {}).items()
                     if f not in a.get("diverged", []) and s != step]
            what = ", ".join(a.get("diverged", [])) + (f"; {', '.join(later)}" if later else "")
            if verdict == "error":
                what = (a.get("error") or "").split("; stderr:")[0][:300]
            out.append(Row(a.get("harness", "?"), version, a.get("label", ""), verdict, step_text, what, cause,
                           documented, status, origin))
    return sorted(out, key=lambda r: (r.stack, r.version, r.options))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def grouped(table: list[Row]) -> list[tuple[Row, list[str]]]:
    """Rows that agree in everything but their options (and origin line), merged: (first row, options)."""
    groups: dict[tuple, tuple[Row, list[str]]] = {}
    for r in table:
        key = (r.stack, r.version, r.verdict, r.first_step, r.diverged, r.cause, r.documented, r.status)
        groups.setdefault(key, (r, []))[1].append(r.options)
    return list(groups.values())


def markdown(table: list[Row], runs: list[dict]) -> str:
    """The README table: one line per outcome of a stack; the option combinations that share it in one cell."""
    measured = sorted({r.get("measured", "") for r in runs if r.get("measured")})
    per_stack: dict[str, int] = {}
    for r in table:
        per_stack[r.stack] = per_stack.get(r.stack, 0) + 1
    head = [f"Measured with: {'; '.join(measured)}." if measured else "",
            "", "| stack | version | options | verdict | first divergent step | what diverged | cause | documented |",
            "|---|---|---|---|---|---|---|---|"]
    body = []
    for r, options in grouped(table):
        opts = (f"all {len(options)} option combinations" if len(options) == per_stack[r.stack] > 1
                else "<br>".join(options))
        what = r.diverged + (f" ({r.origin})" if r.origin else "")
        cells = (r.stack, r.version, opts, r.verdict, r.first_step, what, r.cause, r.documented)
        body.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(head + body)


def replace_readme(readme: Path, table: str) -> None:
    from conformance.harness.files import atomic_write
    from conformance.report.readme import replace_block

    text = readme.read_text(encoding="utf-8")
    new = replace_block(text, table, BEGIN, END, FindingsError)
    atomic_write(readme, lambda f: f.write(new.encode("utf-8")))
