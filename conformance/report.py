"""The HTML report: one self-contained file (inline styles, script and plots; no network) rendered
with jinja2 from ``results.json`` data only.

Sections: summary and design; backends; the matrix of checks (grouped by area) against
backend:dtype with counts and a filter; every failure and known failure with its plots
(ECDF vs expected CDF, QQ, histogram), moments, p-values, effect sizes, seed and repro;
optional sections fed by other areas' verdicts (activation error maps, seed contracts,
cross-framework initializer table); the environment.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import jinja2

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("conformance", "templates"),
                          autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)

SYMBOL = {"passed": "✓", "failed": "✗", "skipped": "–", "xfailed": "K", "xpassed": "K✓", "error": "E"}
PROBLEMS = ("failed", "error", "xfailed", "xpassed")
#: At most this many failure sections get plots (the rest list their numbers only).
MAX_PLOTS = 200


def column_of(record: dict) -> str:
    return f"{record['backend']}:{record['dtype']}" if record["dtype"] else record["backend"]


def matrix(records: list[dict]) -> tuple[list[str], list[tuple[str, list[tuple[str, dict]]]], dict]:
    """Columns, rows grouped by area ``[(area, [(check id, {column: record})])]`` and per-column counts."""
    columns = sorted({column_of(r) for r in records})
    rows: dict[str, dict] = defaultdict(dict)
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        rows[r["id"]][column_of(r)] = r
        counts[column_of(r)][r["outcome"]] += 1
    areas: dict[str, list] = defaultdict(list)
    for cid, cells in sorted(rows.items()):
        areas[cid.split("/", 1)[0]].append((cid, cells))
    return columns, sorted(areas.items()), counts


def _figure(record: dict) -> str | None:
    for v in record["verdicts"]:
        plot = v.get("observed", {}).get("plot")
        if plot:
            from .plots import distribution_figure

            return distribution_figure(plot, f"{record['id']} on {record['backend']} {record['dtype'] or ''}")
    return None


def _error_maps(record: dict) -> list[str]:
    out = []
    for v in record["verdicts"]:
        emap = v.get("observed", {}).get("error_map")
        if emap:
            from .plots import error_map_figure

            out.append(error_map_figure(emap["x"], emap["err"], emap.get("nan_x", []),
                                        f"{record['id']} on {record['backend']} {record['dtype'] or ''}: {v['test']}"))
    return out


def _moments(record: dict) -> list[dict]:
    rows = []
    for v in record["verdicts"]:
        for key in ("mean", "std"):
            if key in v.get("observed", {}) and key in v.get("expected", {}):
                rows.append({"what": key, "observed": v["observed"][key], "expected": v["expected"][key],
                             "test": v["test"], "pvalue": v.get("pvalue")})
    return rows


def _contracts(results: dict) -> list[dict]:
    """Per backend: the seed contracts it declared and what the checks observed."""
    rows = []
    for r in results["records"]:
        for v in r["verdicts"]:
            contract = v.get("expected", {}).get("contract") or v.get("observed", {}).get("contract")
            if contract:
                rows.append({"backend": r["backend"], "check": r["id"], "contract": contract,
                             "observed": v.get("observed", {}).get("behaviour", v["message"]), "outcome": r["outcome"]})
    return rows


def _audits(records: list[dict]) -> list[dict]:
    """Model-init audits attached by the model_init checks: per-tensor rows and a depth figure."""
    out = []
    for r in records:
        audit = (r.get("attachments") or {}).get("audit")
        if not audit:
            continue
        figure = None
        if audit.get("depth"):
            from .plots import depth_figure

            figure = depth_figure(audit["depth"], f"{audit['spec']} ({audit['device_init']}) on {r['backend']}")
        out.append({"record": r, "audit": audit, "figure": figure})
    return out


def render_html(results: dict, named_table: list[dict] | None = None) -> str:
    records = results["records"]
    columns, areas, counts = matrix(records)
    problems = []
    for i, r in enumerate(rp for rp in records if rp["outcome"] in PROBLEMS):
        problems.append({"record": r, "figure": _figure(r) if i < MAX_PLOTS else None,
                         "error_maps": _error_maps(r) if i < MAX_PLOTS else [], "moments": _moments(r)})
    if named_table is None:
        from .named_table import COLUMNS, _fmt, rows

        named_table = [{c.replace("_", " "): _fmt(r.get(c)) for c in COLUMNS} for r in rows(records)]
    return _ENV.get_template("report.html.j2").render(
        results=results, columns=columns, areas=areas, counts=counts, problems=problems, symbol=SYMBOL,
        contracts=_contracts(results), named_table=named_table or [], audits=_audits(records),
        mutation=_mutation_score())


def _mutation_score() -> dict | None:
    """``reports/mutation_score.json`` when it exists (written by tools/mutation_score.py)."""
    import json
    from pathlib import Path

    path = Path("reports/mutation_score.json")
    try:
        return json.loads(path.read_text()) if path.exists() else None
    except (OSError, ValueError):
        return None
