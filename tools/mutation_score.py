"""Mutation score: run the conformance suite on every mutant of ``tests/faulty/catalogue.py`` and report which
were caught by their named check, and that the correct reference backends pass the same selections.

    python tools/mutation_score.py                   # -> reports/mutation_score.json and reports/mutation_score.md
    python tools/mutation_score.py --readme README.md  # also regenerate the README table (nox -s mutation)
    conformance report reports/results.json --mutation-score reports/mutation_score.json  # the report's section

All ``conformance run`` mutants go into ONE run (every faulty backend plus the references, ``-k`` the exact
parametrizations named by the catalogue, ``--strict-tier`` when a strict check is named, ``-n 2``); each audited
model is one ``conformance audit`` run, its genuine factory another. Importable: :func:`run_all`, :func:`score`,
:func:`markdown`, :func:`update_readme`.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.faulty.catalogue import MUTANTS, Mutant, upstream_classes  # noqa: E402
from tools.readme_markers import replace_between  # noqa: E402

START, END = "<!-- mutation-score:start -->", "<!-- mutation-score:end -->"
REGENERATE = "python3 -m nox -s mutation   (or: python tools/mutation_score.py --readme README.md)"


# -- planning --------------------------------------------------------------------------------------------------------
def run_command(mutants: list[Mutant], report_dir: Path, workers: str | None = "2") -> list[str]:
    """The single ``conformance run`` command covering every ``run`` mutant and its reference."""
    runs = [m for m in mutants if m.kind == "run"]
    adapters = sorted({m.adapters for m in runs})
    backends = sorted({m.backend for m in runs}) + sorted({m.reference for m in runs})
    nodes = sorted({m.node() for m in runs} | {m.node(m.reference) for m in runs})
    cmd = [sys.executable, "-m", "conformance", "run", "--report-dir", str(report_dir), "-q", "-k", " or ".join(nodes)]
    for a in adapters:
        cmd += ["--adapters", a]
    for b in backends:
        cmd += ["--backend", b]
    if any(m.strict for m in runs):
        cmd.append("--strict-tier")
    if workers:  # "0" or "1": one process
        cmd += ["-n", "0" if str(workers) in ("0", "1") else str(workers)]
    return cmd


def audit_command(factory: str, mutant: Mutant, report_dir: Path) -> list[str]:
    spec = mutant.check[len("audit["):-1]
    return [sys.executable, "-m", "conformance", "audit", factory, "--spec", spec, "--dtype", mutant.dtype or "float32",
            "--report-dir", str(report_dir), "--failing-only", *mutant.audit_args]


# -- running ---------------------------------------------------------------------------------------------------------
def _run(cmd: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - t0


def run_all(out_dir: Path, mutants: list[Mutant] | None = None, workers: str | None = "2",
            timeout: float = 900) -> dict:
    """Run everything; returns {"results": results.json of the run, "audits": {factory: audit.json}, "timings"}."""
    mutants = MUTANTS if mutants is None else mutants
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw: dict = {"results": None, "audits": {}, "timings": {}, "commands": [], "errors": []}
    if any(m.kind == "run" for m in mutants):
        cmd = run_command(mutants, out_dir / "run", workers)
        proc, secs = _run(cmd, timeout)
        raw["timings"]["conformance run"] = round(secs, 1)
        raw["commands"].append(_shell(cmd))
        path = out_dir / "run" / "results.json"
        if path.exists():
            raw["results"] = json.loads(path.read_text())
        else:
            raw["errors"].append(f"conformance run wrote no results.json (exit {proc.returncode}): "
                                 f"{(proc.stdout + proc.stderr)[-2000:]}")
    for m in mutants:
        if m.kind != "audit":
            continue
        for factory in (m.backend, m.reference):
            if factory in raw["audits"]:
                continue
            d = out_dir / "audit" / re.sub(r"[^A-Za-z0-9_.-]", "_", factory)
            cmd = audit_command(factory, m, d)
            proc, secs = _run(cmd, timeout)
            raw["timings"][f"audit {factory}"] = round(secs, 1)
            raw["commands"].append(_shell(cmd))
            path = d / "audit.json"
            raw["audits"][factory] = json.loads(path.read_text()) if path.exists() else {
                "error": f"exit {proc.returncode}: {(proc.stdout + proc.stderr)[-1000:]}"}
    return raw


def _shell(cmd: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(c) for c in ["python" if c == sys.executable else c for c in cmd])


# -- scoring ---------------------------------------------------------------------------------------------------------
def _records(results: dict | None, check: str, backend: str, dtype: str | None) -> list[dict]:
    if not results:
        return []
    return [r for r in results["records"] if r["id"] == check and r["backend"] == backend and r["dtype"] == dtype]


def _judge_run(m: Mutant, results: dict | None) -> dict:
    recs = _records(results, m.check, m.backend, m.dtype)
    ref = _records(results, m.check, m.reference, m.dtype)
    # caught in the default tier: the named verdict fails as a DEFECT (the run may use --strict-tier for the
    # strict-tier checks some mutants name; a deviation would fail there too, so it does not count)
    counted = {"defect"} if not m.strict else {"defect", "deviation"}
    row = {"outcome": recs[0]["outcome"] if recs else "not run",
           "failed_tests": sorted({v["test"] for v in recs[0]["verdicts"] if not v["passed"]
                                   and v.get("severity", "defect") in counted}) if recs else [],
           "severity": recs[0].get("severity") if recs else None,
           "message": recs[0]["message"][:300] if recs else "",
           "reference_outcome": ref[0]["outcome"] if ref else "not run"}
    if m.test is None:  # the check must fail by raising: a failure or an error, never a skip
        row["caught"] = row["outcome"] in ("failed", "error") and not row["failed_tests"]
    else:
        row["caught"] = row["outcome"] == "failed" and m.test in row["failed_tests"]
    return row


def _audit_report(audits: dict, factory: str) -> dict | None:
    data = audits.get(factory) or {}
    reports = data.get("reports") or []
    return reports[0] if reports else None


def _judge_audit(m: Mutant, audits: dict) -> dict:
    rep, ref = _audit_report(audits, m.backend), _audit_report(audits, m.reference)
    counts = (rep or {}).get("counts", {})
    failing = sorted(k for k, v in counts.items() if v and k not in ("pass", "ignored"))
    return {"outcome": "not run" if rep is None else ("passed" if rep["passed"] else "failed"),
            "failed_tests": failing,
            "message": ((rep or {}).get("failures") or [""])[0][:300] or (audits.get(m.backend) or {}).get("error", ""),
            "reference_outcome": "not run" if ref is None else ("passed" if ref["passed"] else "failed"),
            "caught": rep is not None and not rep["passed"] and counts.get(m.test or "", 0) > 0}


def score(raw: dict, mutants: list[Mutant] | None = None) -> dict:
    """The mutation score document (``reports/mutation_score.json``)."""
    mutants = MUTANTS if mutants is None else mutants
    rows = []
    for m in mutants:
        judged = _judge_run(m, raw.get("results")) if m.kind == "run" else _judge_audit(m, raw.get("audits", {}))
        rows.append({"mutant": m.name, "backend": m.backend, "adapters": m.adapters, "upstream": m.upstream,
                     "bug": m.bug, "check": m.check, "dtype": m.dtype, "test": m.test, "select": m.select,
                     "kind": m.kind, "strict": m.strict, "reference": m.reference, **judged})
    caught = sum(r["caught"] for r in rows)
    upstream = [r for r in rows if r["upstream"] != "design"]
    refs_ok = all(r["reference_outcome"] in ("passed", "xfailed") for r in rows)
    return {"schema": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "caught": caught, "total": len(rows),
            "upstream_caught": sum(r["caught"] for r in upstream), "upstream_total": len(upstream),
            "upstream_classes": len(upstream_classes()),
            "references_pass": refs_ok, "timings_s": raw.get("timings", {}), "commands": raw.get("commands", []),
            "errors": raw.get("errors", []), "mutants": rows}


# -- Markdown --------------------------------------------------------------------------------------------------------
def table(mutants: list[Mutant] | None = None, caught: dict[str, bool] | None = None) -> str:
    """The catalogue as a Markdown table; ``caught`` (key -> bool) fills the last column (blank when None)."""
    mutants = MUTANTS if mutants is None else mutants
    lines = ["| mutant | upstream bug | reproduces | caught by (check, dtype, verdict) | caught |",
             "|---|---|---|---|---|"]
    for m in mutants:
        verdict = m.test or "raises -> failed"
        where = f"`{m.check}`" + (f" {m.dtype}" if m.dtype else "") + f", `{verdict}`" + (" (strict tier)"
                                                                                         if m.strict else "")
        mark = "" if caught is None else ("yes" if caught.get(m.key) else "**NO**")
        lines.append(f"| `{m.name}` | {m.upstream} | {m.bug} | {where} | {mark} |")
    return "\n".join(lines)


def markdown(doc: dict, mutants: list[Mutant] | None = None) -> str:
    mutants = MUTANTS if mutants is None else mutants
    caught = {f"{r['mutant']} | {r['check']} | {r['dtype'] or '-'}": r["caught"] for r in doc["mutants"]}
    strict = sum(m.strict for m in mutants)
    head = (f"**{doc['caught']}/{doc['total']} mutants caught by their named check, each as a defect** (the default "
            f"tier fails on it; {strict} named check{'s are' if strict != 1 else ' is'} a strict-tier check, run with "
            "`--strict-tier`) "
            f"({doc['upstream_caught']}/{doc['upstream_total']} reproduce {doc['upstream_classes']} upstream bug "
            f"classes from BUGS.md; the other {doc['total'] - doc['upstream_total']} are synthetic defects at the "
            f"design sizes); the correct references ({', '.join(_references(mutants))}, the genuine model factory) "
            + ("pass" if doc["references_pass"] else "**do not all pass**") + " the same selections.")
    return head + "\n\n" + table(mutants, caught) + f"\n\nRegenerate: `{REGENERATE}`."


def _references(mutants: list[Mutant]) -> list[str]:
    """The correct backends the ``run`` mutants are compared with, in catalogue order."""
    out: list[str] = []
    for m in mutants:
        if m.kind == "run" and m.reference not in out:
            out.append(m.reference)
    return out


def expected_markdown(mutants: list[Mutant] | None = None) -> str:
    """The README section the catalogue promises: every mutant caught, every reference passing."""
    mutants = MUTANTS if mutants is None else mutants
    rows = [{"mutant": m.name, "check": m.check, "dtype": m.dtype, "caught": True, "upstream": m.upstream}
            for m in mutants]
    upstream = [r for r in rows if r["upstream"] != "design"]
    doc = {"caught": len(rows), "total": len(rows), "upstream_caught": len(upstream), "upstream_total": len(upstream),
           "upstream_classes": len(upstream_classes()), "references_pass": True, "mutants": rows}
    return markdown(doc, mutants)


def update_readme(readme: Path, body: str) -> bool:
    """Replace the text between this tool's README markers; returns True when the file changed."""
    return replace_between(readme, START, END, body)


def readme_section(readme: Path) -> str:
    text = readme.read_text()
    if START not in text or END not in text:
        return ""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "reports"), help="directory for mutation_score.json/.md")
    p.add_argument("--readme", default=None, help="also regenerate the table between the markers in this file")
    p.add_argument("-n", dest="workers", default="2", help="xdist workers for the conformance run (default 2)")
    p.add_argument("--only", action="append", default=[], help="only mutants whose name contains this (repeatable)")
    args = p.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or any(o in m.name for o in args.only)]
    out = Path(args.out)
    t0 = time.perf_counter()
    raw = run_all(out / "mutation_runs", mutants, args.workers)
    doc = score(raw, mutants)
    doc["timings_s"]["total"] = round(time.perf_counter() - t0, 1)
    (out / "mutation_score.json").write_text(json.dumps(doc, indent=1))
    md = markdown(doc, mutants)
    (out / "mutation_score.md").write_text(md + "\n")
    print(md)
    print(f"\ntimings: {doc['timings_s']}")
    for e in doc["errors"]:
        print("ERROR:", e, file=sys.stderr)
    if args.readme:
        print(("updated " if update_readme(Path(args.readme), md) else "unchanged ") + args.readme)
    return 0 if doc["caught"] == doc["total"] and doc["references_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
