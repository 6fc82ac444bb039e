"""``conformance realworld``: audit every available zoo factory here, write a run file, merge the runs.

One invocation measures one environment (the library versions installed in it) and writes
``OUT/runs/<label>.json`` atomically; then every run file in ``OUT/runs/`` is merged into ``OUT/results.json`` and
``OUT/index.html`` (:mod:`.findings`, :mod:`.html`), and with ``readme`` the README's findings table is regenerated.
The nox session ``realworld`` runs this once per library group and release set (pinned, ``--latest``,
``--older``), each in its own virtual environment, because the libraries' own pins conflict (LitGPT 0.5.13 wants
huggingface-hub < 1.4, transformers 5 wants >= 1.0).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import platform
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ...harness.files import atomic_write
from . import version_of
from .findings import SCHEMA, FindingsError, findings, markdown, replace_block, role, summary
from .runner import ZooRun, run_entry


def _num(x) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.4g}"


def _tensor(t) -> dict:
    """A failing tensor, compact: what was expected, what was seen, the weakest p-value and n."""
    exp = t.expected
    obs = t.observed
    expected = exp.get("distribution") or t.rule or ""
    if t.rule and t.rule != expected:
        expected = f"{expected} [{t.rule}]"
    if "std" in exp and "std" in obs and exp["std"]:
        observed = f"std {_num(obs['std'])} ({(obs['std'] / exp['std'] - 1) * 100:+.1f}%)"
    elif "std" in obs:
        observed = f"mean {_num(obs.get('mean'))}, std {_num(obs['std'])}"
    else:
        observed = t.message.split(": ", 1)[-1] if t.kind == "buffer" else t.status
    failed = [v for v in t.verdicts if not v.passed]
    ps = [v.pvalue for v in failed if v.pvalue is not None]
    evidence = f"n = {obs.get('n', t.shape and math.prod(t.shape))}"
    if ps:
        evidence += f", p = {min(ps):.3g} ({', '.join(sorted({v.test for v in failed}))})"
    elif failed:
        evidence += f", exact: {', '.join(sorted({v.test for v in failed}))}"
    return {"name": t.name, "status": t.status, "expected": expected, "observed": observed, "evidence": evidence,
            "message": t.message}


def compact(run: ZooRun) -> dict:
    """A :class:`ZooRun` as a run-file entry (failing tensors only; the full reports are in the per-factory JSON)."""
    d = run.to_dict()
    d["reports"] = [{
        "spec": r.spec, "spec_kind": r.spec_kind, "spec_sources": r.spec_sources, "device_init": r.device_init,
        "init_method": r.init_method, "passed": r.passed,
        "counts": dict(Counter(t.status for t in r.tensors)),
        "failing": [_tensor(t) for t in r.tensors if not t.passed],
        "roles": sorted({role(t.name) for t in r.tensors}),
        "model_failures": [{"test": v.test, "message": v.message} for v in r.model_checks if not v.passed]
                          + [{"test": "depth_profile", "message": f.verdict.message} for f in r.depth
                             if not f.verdict.passed],
        "timings": {k: round(v, 3) for k, v in r.timings.items()},
    } for r in run.reports]
    return d


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_all(out: Path, *, label: str, libraries: list[str] | None = None, names: list[str] | None = None,
            backend: str = "torch:cpu", seed: int = 0, hf_scan: bool = True,
            progress: Callable[[str], None] = print) -> tuple[Path, list[ZooRun]]:
    """Audit the selected factories (default: all) and write ``out/runs/<label>.json``; return it and the runs."""
    from . import catalogue  # looked up per call: the catalogue is the package's, whatever replaced it since
    entries = [e for e in catalogue() if (not libraries or e.library in libraries) and (not names or e.name in names)]
    runs: list[ZooRun] = []
    t0 = time.perf_counter()
    for i, entry in enumerate(entries, 1):
        if version_of(entry.library):
            progress(f"[{i}/{len(entries)}] {entry.name} ({entry.library})")
        run = run_entry(entry, backend=backend, seed=seed, progress=progress)
        runs.append(run)
        tail = f": {run.reason}" if run.reason else ""
        progress(f"[{i}/{len(entries)}] {entry.name} {run.status.upper()} "
                 f"({entry.library} {run.version or 'missing'}, {run.seconds:.1f} s){tail}")
    scan = None
    if hf_scan and (not libraries or "transformers" in libraries) and _version("transformers"):
        scan = _hf_scan(out, label, progress)
    libs = sorted({e.library for e in entries})
    doc = {"schema": SCHEMA, "kind": "conformance-realworld-run", "label": label,
           "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
           "python": platform.python_version(), "torch": _version("torch") or "missing",
           "libraries": {lib: _version(lib) for lib in libs}, "seconds": round(time.perf_counter() - t0, 1),
           "entries": [compact(r) for r in runs], "hf_scan": scan}
    path = out / "runs" / f"{label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(doc, indent=1, sort_keys=True))
    return path, runs


def _hf_scan(out: Path, label: str, progress) -> dict | None:
    """The spec-free Hugging Face scan of every decoder family: details in ``out/hf_scan/<label>.json``, a summary
    (counts and one finding per check, family and build path) for the run file."""
    from .. import hf_scan

    ok, _version, reason = hf_scan.environment()
    if not ok:
        progress(f"hf-scan skipped: {reason}")
        return None
    progress("hf-scan: every causal-LM family of the installed transformers, spec-free")
    report = hf_scan.scan(progress=lambda r: progress(f"  hf-scan {r.line()}"))
    for line in report.summary_lines():
        progress(line)
    atomic_write(out / "hf_scan" / f"{label}.json", json.dumps(report.to_dict(), indent=1))
    return {"transformers": report.transformers, "covered": len(report.covered), "skipped": len(report.skipped),
            "skip_reasons": report.skip_reasons(), "seconds": round(report.seconds, 1), "tests": report.tests,
            "covered_families": [r.family for r in report.covered],
            "findings": [{"family": fam, "check": f.check, "title": hf_scan.CHECKS[f.check], "path": f.path,
                          "names": list(f.names), "message": f.message} for fam, f in report.findings]}


def load_runs(out: Path) -> list[dict]:
    """Every run file in ``out/runs`` (sorted by name); a malformed one is a :class:`FindingsError`."""
    runs = []
    for path in sorted((out / "runs").glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FindingsError(f"{path}: not a readable run file ({exc}); delete it or rerun its session") from None
        if not isinstance(doc, dict) or doc.get("kind") != "conformance-realworld-run" or doc.get("schema") != SCHEMA:
            raise FindingsError(f"{path}: not a run file of schema {SCHEMA} (kind conformance-realworld-run); "
                                "delete it or rerun its session")
        runs.append(doc)
    return runs


def merge(out: Path, readme: Path | None = None) -> dict:
    """``out/results.json`` and ``out/index.html`` from every run file; with ``readme``, its findings table."""
    from .html import render

    runs = load_runs(out)
    rows = findings(runs)
    table = markdown(rows, runs)
    doc = {"schema": SCHEMA, "kind": "conformance-realworld-results", "runs": runs,
           "findings": [{"library": r.library, "model": r.model, "parameter": r.parameter, "kind": r.kind,
                         "modes": sorted(r.modes), "failing": sorted(r.failing), "passing": sorted(r.passing),
                         "expected": r.expected, "observed": r.observed, "evidence": r.evidence,
                         "verdict": r.verdict, "link": r.link, "reviewed": r.known is not None,
                         "note": r.known.note if r.known else ""} for r in rows],
           "summary": summary(rows)}
    atomic_write(out / "results.json", json.dumps(doc, indent=1, sort_keys=True))
    atomic_write(out / "index.html", render(doc))
    if readme is not None:
        text = readme.read_text(encoding="utf-8")
        atomic_write(readme, replace_block(text, table))
    return doc
