"""Merge results files from different machines into one results set (one matrix report).

Contract: every input is validated (schema); each input becomes a ``machines`` entry keeping its
environment, backends, seed and creation time; every record gains ``machine`` (the input's label).
Two records for the same (check id, backend, dtype) are a *duplicate* when outcome and p-value
agree and a *conflict* otherwise; both are kept in ``merge.duplicates`` / ``merge.conflicts`` and
the matrix shows the last one, marked. Nothing is written unless every input loads.

Status: the merged ``status`` is ``interrupted`` when any input is (``interrupted`` then names the inputs and why),
``empty`` when every input is, else ``complete`` (an input without ``status`` is ``complete``). ``strict``, when any
input has it: ``enabled`` when any input's is, ``violations`` the inputs' lists concatenated in input order.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..harness.files import atomic_write
from ..results import OUTCOMES, SCHEMA
from ..stats import design
from .load import load_mutation_score, load_results, load_resume_audits


def _key(record: dict) -> tuple:
    return record["id"], record["backend"], record["dtype"]


def _seeds(machines: list[dict]) -> list:
    """The distinct master seeds of the inputs (a merged input's list of seeds counts each)."""
    found = []
    for m in machines:
        for seed in m["seed"] if isinstance(m["seed"], list) else [m["seed"]]:
            if seed is not None and seed not in found:
                found.append(seed)
    try:
        return sorted(found)
    except TypeError:  # seeds of mixed types: keep them, in a stable order
        return sorted(found, key=repr)


def merged_status(inputs: list[dict], labels: list[str]) -> tuple[str, str]:
    """``(status, why)`` of several results: interrupted if any is, empty if all are, else complete."""
    statuses = [res.get("status") or "complete" for res in inputs]
    if "interrupted" in statuses:
        why = "; ".join(f"{label}: {res.get('interrupted') or 'interrupted'}"
                        for label, res, s in zip(labels, inputs, statuses, strict=True) if s == "interrupted")
        return "interrupted", why
    if statuses and all(s == "empty" for s in statuses):
        return "empty", ""
    return "complete", ""


def merged_strict(inputs: list[dict]) -> dict | None:
    """The inputs' ``strict`` entries combined (violations concatenated), or None when no input has one."""
    given = [res["strict"] for res in inputs if isinstance(res.get("strict"), dict)]
    if not given:
        return None
    return {"enabled": any(bool(s.get("enabled")) for s in given),
            "violations": [v for s in given for v in s.get("violations") or []]}


def merge_results(paths: list[Path]) -> dict:
    if len(paths) < 2:
        raise ValueError("report merge needs at least two results files")
    loaded = [(p, load_results(p)) for p in paths]
    machines, merged, duplicates, conflicts = [], {}, [], []
    for i, (path, res) in enumerate(loaded):
        label = f"{i + 1}:{path.parent.name or path.name}"
        machines.append({"label": label, "source": str(path), "environment": res.get("environment", {}),
                         "backends": res.get("backends", {}), "seed": res.get("seed"), "created": res.get("created"),
                         "status": res["status"]})
        for rec in res["records"]:
            rec = {**rec, "machine": label}
            key = _key(rec)
            if key in merged:
                prev = merged[key]
                same = prev["outcome"] == rec["outcome"] and prev.get("pvalue") == rec.get("pvalue")
                entry = {"id": rec["id"], "backend": rec["backend"], "dtype": rec["dtype"],
                         "machines": [prev["machine"], label], "outcomes": [prev["outcome"], rec["outcome"]]}
                (duplicates if same else conflicts).append(entry)
                rec["merge_flag"] = "duplicate" if same else "conflict"
            merged[key] = rec
    records = sorted(merged.values(), key=lambda r: (r["id"], r["backend"], r["dtype"] or ""))
    counts = {k: sum(r["outcome"] == k for r in records) for k in OUTCOMES}
    n_stat = sum(1 for r in records for v in r["verdicts"] if v.get("alpha") is not None)
    backends: dict = {}
    for m in machines:
        for spec, info in m["backends"].items():
            if spec not in backends or info.get("available"):
                backends[spec] = {**info, "machine": m["label"]}
    seeds = _seeds(machines)
    first = loaded[0][1]
    status, interrupted = merged_status([res for _, res in loaded], [m["label"] for m in machines])
    return {
        "schema": SCHEMA, "status": status, "interrupted": interrupted,
        **({"strict": strict} if (strict := merged_strict([res for _, res in loaded])) is not None else {}),
        "suite_version": first.get("suite_version"), "seed": seeds[0] if len(seeds) == 1 else seeds,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "duration": 0,
        "environment": {f"machine {m['label']}": ", ".join(f"{k} {v}" for k, v in m["environment"].items())
                        for m in machines},
        "design": first.get("design", design.summary()), "backends": backends,
        "tier": tiers.pop() if len(tiers := {res.get("tier", "default") for _, res in loaded}) == 1 else "mixed",
        "summary": {**counts, "total": len(records), "statistical_tests": n_stat,
                    "fwer_bound": n_stat * design.ALPHA,
                    "defects": sum(r.get("severity") == "defect" for r in records),
                    "deviations": sum(r.get("severity") == "deviation" for r in records)},
        "stale_known_failures": [s for _, res in loaded for s in res.get("stale_known_failures", [])],
        "machines": machines, "merge": {"duplicates": duplicates, "conflicts": conflicts,
                                        "seeds_differ": len(seeds) > 1},
        "records": records,
    }


def merge_cmd(args) -> int:
    """``conformance report merge A B ... -o DIR [--mutation-score FILE]``."""
    from .html import render_html

    results = merge_results([Path(p) for p in args.results])
    mutation = load_mutation_score(Path(args.mutation_score)) if getattr(args, "mutation_score", None) else None
    out = Path(args.output)
    atomic_write(out / "results.json", json.dumps(results, indent=1, allow_nan=False))
    atomic_write(out / "index.html", render_html(results, mutation_score=mutation, resume=load_resume_audits(out)))
    m = results["merge"]
    print(f"merged {len(args.results)} files: {results['summary']['total']} records, "
          f"{len(m['duplicates'])} duplicates, {len(m['conflicts'])} conflicts -> {out / 'index.html'}")
    for c in m["conflicts"]:
        print(f"CONFLICT {c['id']} [{c['backend']} {c['dtype'] or ''}]: " +
              ", ".join(f"{mm} {o}" for mm, o in zip(c["machines"], c["outcomes"], strict=True)))
    return 0
