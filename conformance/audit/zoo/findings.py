"""Findings across real-library runs: merge run files, classify every failure, render the findings table.

A *run file* (written by :mod:`conformance.audit.zoo.realworld`) holds one environment's verdicts: the installed
library versions and, per zoo factory, its status and the failing tensors of each audit (code and intent spec, per
build mode). :func:`merge` combines run files (pinned, latest, older releases) into ``results.json``;
:func:`findings` turns them into rows, one per (library, model, parameter role, spec kind), with the versions where
it fails and where it passes, so a change between releases shows as a regression with its version range.

Reviewed knowledge lives in ``findings.toml`` beside this module: each ``[[finding]]`` says a failure was confirmed
in the upstream code (``confirmed``: a link to the file and line at a commit), optionally with an upstream issue or
PR (``issue``) and a note. A failure that no entry matches is ``UNREVIEWED``: someone must read the upstream code
and either confirm it there or fix the spec.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from importlib import resources

from conformance.harness.toml_entries import entries

#: Schema of run files and of the merged results.json.
SCHEMA = 1
#: Keys of a [[finding]] in findings.toml.
FINDING_KEYS = ("factory", "parameter", "kind", "confirmed", "issue", "note", "versions", "check")


class FindingsError(ValueError):
    """A malformed findings.toml or run file (the message names the file, the entry and what to do)."""


@dataclass(frozen=True)
class Known:
    """One reviewed finding of findings.toml."""

    factory: str
    parameter: str
    kind: str
    confirmed: str
    issue: str = ""
    note: str = ""
    versions: str = ""
    check: str = ""

    def matches(self, row: Row) -> bool:
        """``parameter``, ``versions`` and ``check`` hold one glob, or several separated by `` | ``; a row matches when
        its factory, kind and parameter do, every version it fails at matches ``versions`` (when given) and, for a
        spec-free scan row, its check letter matches ``check`` (when given)."""
        def any_of(text: str, globs: str) -> bool:
            return any(fnmatch.fnmatchcase(text, g.strip()) for g in globs.split(" | "))

        return (fnmatch.fnmatchcase(row.model, self.factory) and self.kind == row.kind
                and any_of(row.parameter, self.parameter)
                and (not self.versions or all(any_of(v, self.versions) for v in row.failing))
                and (not self.check or any_of(row.check, self.check)))


def load_known(text: str | None = None, origin: str = "findings.toml") -> list[Known]:
    """The reviewed findings (the packaged findings.toml unless ``text`` is given)."""
    if text is None:
        text = resources.files(__package__).joinpath("findings.toml").read_text(encoding="utf-8")
    out = []
    for where, raw in entries(text, origin, "finding", FINDING_KEYS, FindingsError):
        for key in ("factory", "parameter", "kind", "confirmed"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise FindingsError(f"{where} needs {key} = \"...\" (a non-empty string)")
        if raw["kind"] not in ("code", "intent", "scan"):
            raise FindingsError(f"{where}: kind must be code, intent or scan, got "
                                f"{raw['kind']!r}")
        if not raw["confirmed"].startswith("https://"):
            raise FindingsError(f"{where}: confirmed must be a link to the upstream code "
                                "(https://github.com/OWNER/REPO/blob/COMMIT/PATH#L...)")
        out.append(Known(**{k: str(raw.get(k, "")) for k in FINDING_KEYS}))
    return out


def role(name: str) -> str:
    """A parameter name with its layer indices replaced by ``*`` (``h.3.mlp.proj.weight`` -> ``h.*.mlp...``)."""
    return re.sub(r"(?<=\.)\d+(?=\.)|^\d+(?=\.)", "*", name)


@dataclass
class Row:
    """One line of the findings table."""

    library: str
    model: str
    parameter: str
    kind: str  # "code" | "intent": the kind of the spec that fails; "scan": a spec-free Hugging Face check
    expected: str
    observed: str
    evidence: str
    modes: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)  # versions
    passing: set[str] = field(default_factory=set)
    upstream: str = ""
    known: Known | None = None
    check: str = ""  # a spec-free scan row: the check letter (a-e)

    @property
    def verdict(self) -> str:
        what = {"intent": "finding: the code differs from its stated intent",
                "code": "deviation from the code spec", "scan": "spec-free check fails"}[self.kind]
        if self.passing:
            passing, failing = sorted_versions(self.passing), sorted_versions(self.failing)
            ranges = f"passes at {', '.join(passing)}, fails at {', '.join(failing)}"
            if sorted_versions([passing[-1], failing[0]])[0] == passing[-1]:
                what = f"regression: {ranges}"
            elif sorted_versions([failing[-1], passing[0]])[0] == failing[-1]:
                what = f"{what}, fixed in a later release: {ranges}"
            else:
                what = f"{what}, changes between releases: {ranges}"
        if self.known is None:
            return f"UNREVIEWED {what}"
        return f"{what} (confirmed in upstream code)"

    @property
    def link(self) -> str:
        if self.known is None:
            return self.upstream
        return self.known.issue or self.known.confirmed


def _version_key(v: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"[.+-]", v)]


def sorted_versions(versions) -> list[str]:
    return sorted(versions, key=lambda v: [(0, p) if isinstance(p, int) else (1, p) for p in _version_key(v)])


def _describe_tensor(t: dict) -> tuple[str, str, str]:
    exp = t.get("expected", "")
    obs = t.get("observed", "")
    return exp, obs, t.get("evidence", "")


def findings(runs: list[dict], known: list[Known] | None = None) -> list[Row]:
    """Rows from run files: every failing tensor role and model-wide check, with the versions it fails and passes."""
    known = load_known() if known is None else known
    rows: dict[tuple, Row] = {}
    for run in runs:
        for entry in run.get("entries", []):
            if entry.get("status") in ("unavailable", "error") or not entry.get("version"):
                continue
            version = entry["version"]
            for rep in entry.get("reports", []):
                kind = rep["spec_kind"]
                code_failing = _code_failing(entry, rep["device_init"])
                for t in rep.get("failing", []):
                    r = role(t["name"])
                    if kind == "intent" and r in code_failing:
                        continue  # the code spec already fails there: that row says it
                    key = (entry["library"], entry["name"], r, kind)
                    exp, obs, ev = _describe_tensor(t)
                    row = rows.setdefault(key, Row(entry["library"], entry["name"], r, kind, exp, obs, ev,
                                                   upstream=entry.get("upstream", "")))
                    row.modes.add(rep["device_init"])
                    row.failing.add(version)
                for m in rep.get("model_failures", []):
                    if m["test"] == "depth_profile" and rep.get("failing"):
                        continue  # the failing tensors of that rule are rows already
                    what = f"(model) {m['test']}"
                    key = (entry["library"], entry["name"], what, kind)
                    row = rows.setdefault(key, Row(entry["library"], entry["name"], what, kind, "",
                                                   m["message"], "", upstream=entry.get("upstream", "")))
                    row.modes.add(rep["device_init"])
                    row.failing.add(version)
        scan = run.get("hf_scan") or {}
        for f in scan.get("findings", []):
            params = sorted({role(n) for n in f["names"]}) or ["(model)"]
            key = ("transformers", f"hf-scan/{f['family']}", f"check {f['check']}", "scan", tuple(params))
            row = rows.setdefault(key, Row("transformers", f"hf-scan/{f['family']}", " + ".join(params), "scan",
                                           f"check {f['check']}: {f['title']}", f["message"], "",
                                           upstream="https://github.com/huggingface/transformers",
                                           check=f["check"]))
            row.modes.add(f["path"])
            row.failing.add(scan.get("transformers") or "?")
    # versions where the same factory (or scanned family) ran and the row did not fail
    # (a parameter renamed between releases passes nowhere: it must exist in the run that passes)
    for run in runs:
        ran: dict[str, tuple[str, set[str] | None]] = {}
        for e in run.get("entries", []):
            if e.get("status") not in ("unavailable", "error") and e.get("version"):
                roles = {x for rep in e.get("reports", []) for x in rep.get("roles", [])}
                ran[e["name"]] = (e["version"], roles if any("roles" in rep for rep in e.get("reports", [])) else None)
        scan = run.get("hf_scan") or {}
        ran.update({f"hf-scan/{fam}": (scan.get("transformers") or "?", None)
                    for fam in scan.get("covered_families", [])})
        for row in rows.values():
            version, roles = ran.get(row.model, (None, None))
            if version is None or version in row.failing:
                continue
            if roles is not None and not row.parameter.startswith("(model)") and row.parameter not in roles:
                continue
            row.passing.add(version)
    out = list(rows.values())
    for row in out:
        row.known = next((k for k in known if k.matches(row)), None)
    out.sort(key=lambda r: (r.library, r.model, r.kind, r.parameter))
    return out


def _code_failing(entry: dict, mode: str) -> set[str]:
    out = set()
    for rep in entry.get("reports", []):
        if rep["spec_kind"] == "code" and rep["device_init"] == mode:
            out |= {role(t["name"]) for t in rep.get("failing", [])}
    return out


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _p(evidence: str) -> str:
    return evidence.replace("p = 0 ", "p < 1e-300 ")


def summary(rows: list[Row], max_parameters: int = 4) -> list[dict]:
    """Display lines: rows that share library, model, spec kind, review, versions and modes are one line (a confirmed
    cause with a wildcard factory, one library bug seen in many models, is one line over all of them); the first
    row's numbers stand for the line. results.json keeps one row per parameter."""
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        model = r.known.factory if r.known is not None and any(c in r.known.factory for c in "*?[") else r.model
        key = (r.library, model, r.kind, id(r.known), tuple(sorted(r.failing)), tuple(sorted(r.passing)),
               tuple(sorted(r.modes)))
        groups.setdefault(key, []).append(r)
    out = []
    for group in groups.values():
        r = group[0]
        models = sorted({g.model for g in group})
        more = f" and {len(models) - 3} more" if len(models) > 3 else ""
        names = list(dict.fromkeys(g.parameter for g in group))
        out.append({
            "library": r.library, "failing": sorted_versions(r.failing), "passing": sorted_versions(r.passing),
            "model": models[0] if len(models) == 1 else f"{len(models)} models: {', '.join(models[:3])}{more}",
            "modes": sorted(r.modes), "parameters": names[:max_parameters],
            "more_parameters": max(len(names) - max_parameters, 0), "rows": len(group), "kind": r.kind,
            "expected": r.expected, "observed": r.observed + (f"; {_p(r.evidence)}" if r.evidence else ""),
            "verdict": r.verdict, "reviewed": r.known is not None, "note": r.known.note if r.known else "",
            "code": r.known.confirmed if r.known else r.upstream, "issue": r.known.issue if r.known else ""})
    return out


def markdown(rows: list[Row], runs: list[dict], max_parameters: int = 4) -> str:
    """The README's findings table (:func:`summary` lines) and the versions it was measured at."""
    seen: dict[str, set[str]] = {}
    for run in runs:
        for entry in run.get("entries", []):
            if entry.get("version") and entry.get("status") not in ("unavailable",):
                seen.setdefault(entry["library"], set()).add(entry["version"])
    lines = ["Measured at: " + "; ".join(f"{lib} {', '.join(sorted_versions(v))}" for lib, v in sorted(seen.items()))
             + " (torch " + ", ".join(sorted({r.get('torch', '?') for r in runs})) + ").", ""]
    if not rows:
        return "\n".join(lines + ["No findings: every factory matched its code and intent specs."])
    lines += ["| library | failing at | model | parameters | expected | observed (first parameter) | verdict "
              "| upstream |", "|---|---|---|---|---|---|---|---|"]
    for line in summary(rows, max_parameters):
        params = ", ".join(f"`{p}`" for p in line["parameters"]) + (
            f" and {line['more_parameters']} more" if line["more_parameters"] else "")
        links = (f"[code]({line['code']})" if line["reviewed"] else f"[repo]({line['code']})") if line["code"] else ""
        links += f" [issue]({line['issue']})" if line["issue"] else ""
        lines.append("| " + " | ".join(_cell(c) for c in (
            line["library"], ", ".join(line["failing"]), f"{line['model']} ({'+'.join(line['modes'])})", params,
            line["expected"], line["observed"], line["verdict"])) + f" | {links} |")
    return "\n".join(lines)


#: The README block the table replaces (both markers must be present).
BEGIN, END = "<!-- realworld-findings:begin -->", "<!-- realworld-findings:end -->"


def replace_block(text: str, table: str) -> str:
    """``text`` with the block between :data:`BEGIN` and :data:`END` replaced by ``table``."""
    from conformance.report.readme import replace_block as replace

    return replace(text, table, BEGIN, END, FindingsError)
