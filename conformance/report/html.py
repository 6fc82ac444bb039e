"""The HTML report: one self-contained file (inline styles, script and plots; no network) rendered
with jinja2 from ``results.json`` data and the files named on the command line only.

Sections: summary and design; backends; the matrix of checks (grouped by area) against
backend:dtype with counts and a filter; every failure and known failure with its plots
(ECDF vs expected CDF, QQ, histogram), moments, p-values, effect sizes, seed and repro;
sections fed by the records' typed attachments (:mod:`conformance.report.attachments`:
distribution plots, activation error maps, seed contracts, the cross-framework initializer
table, model-init audits), with attachments it cannot read listed and explained; the mutation
score when one is given; the environment.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import jinja2

from .attachments import ActivationErrorMap, DistributionPlot, ModelInitAudit, SeedContract, Unreadable, of_record

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("conformance.report", "templates"),
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


def _figure(record: dict, atts: list) -> str | None:
    """The distribution plots (ECDF, QQ, histogram) of the record's first ``distribution_plot`` attachment."""
    for _, att in atts:
        if isinstance(att, DistributionPlot):
            from .plots import distribution_figure

            return distribution_figure(att, f"{record['id']} on {record['backend']} {record['dtype'] or ''}")
    return None


def _error_maps(record: dict, atts: list) -> list[str]:
    """One figure per ``activation_error_map`` attachment."""
    out = []
    for _, att in atts:
        if isinstance(att, ActivationErrorMap):
            from .plots import error_map_figure

            out.append(error_map_figure(att.x, att.err, att.nan_x,
                                        f"{record['id']} on {record['backend']} {record['dtype'] or ''}: {att.test}"))
    return out


def _moments(record: dict) -> list[dict]:
    rows = []
    for v in record["verdicts"]:
        for key in ("mean", "std"):
            if key in v.get("observed", {}) and key in v.get("expected", {}):
                rows.append({"what": key, "observed": v["observed"][key], "expected": v["expected"][key],
                             "test": v["test"], "pvalue": v.get("pvalue")})
    return rows


def _contracts(records: list[dict], decoded: list[list]) -> list[dict]:
    """Per backend: the seed contracts it declared and what the checks observed (``seed_contract`` attachments)."""
    return [{"backend": r["backend"], "check": r["id"], "contract": att.statement, "value": att.value,
             "source": att.source, "observed": att.behaviour, "outcome": r["outcome"]}
            for r, atts in zip(records, decoded, strict=True) for _, att in atts if isinstance(att, SeedContract)]


def _audits(records: list[dict], decoded: list[list]) -> list[dict]:
    """Model-init audits attached by the model_init checks: per-tensor rows and a depth figure."""
    out = []
    for r, atts in zip(records, decoded, strict=True):
        for _, audit in atts:
            if not isinstance(audit, ModelInitAudit):
                continue
            figure = None
            if audit.depth:
                from .plots import depth_figure

                figure = depth_figure(audit.depth, f"{audit.spec} ({audit.device_init}) on {r['backend']}")
            out.append({"record": r, "audit": audit, "figure": figure})
    return out


def _unreadable(records: list[dict], decoded: list[list]) -> list[dict]:
    """Attachments of an unknown kind or version, or malformed: listed with the reason, never dropped silently."""
    return [{"record": r, "name": att.name, "kind": att.kind, "version": att.version, "reason": att.reason}
            for r, atts in zip(records, decoded, strict=True) for _, att in atts if isinstance(att, Unreadable)]


def _without_capability(results: dict, capability: str) -> list[str]:
    """Available backends that do not declare ``capability`` (their checks of it were not run)."""
    return [spec for spec, b in results.get("backends", {}).items()
            if b.get("available") and capability not in (b.get("capabilities") or [])]


def render_html(results: dict, named_table: list[dict] | None = None, mutation_score: dict | None = None) -> str:
    """The report of ``results`` (a loaded ``results.json``). ``named_table`` replaces the named-initializer
    rows built from the attachments; ``mutation_score`` (a loaded ``mutation_score.json``) adds its section.
    Reads no file: everything shown comes from the arguments."""
    records = results["records"]
    decoded = [of_record(r) for r in records]
    columns, areas, counts = matrix(records)
    problems = []
    for i, (r, atts) in enumerate((rp, a) for rp, a in zip(records, decoded, strict=True)
                                  if rp["outcome"] in PROBLEMS):
        problems.append({"record": r, "figure": _figure(r, atts) if i < MAX_PLOTS else None,
                         "error_maps": _error_maps(r, atts) if i < MAX_PLOTS else [], "moments": _moments(r)})
    if named_table is None:
        from .named_table import display, rows

        named_table = display(rows(records))
    return _ENV.get_template("report.html.j2").render(
        results=results, columns=columns, areas=areas, counts=counts, problems=problems, symbol=SYMBOL,
        contracts=_contracts(records, decoded), named_table=named_table or [],
        named_not_run=_without_capability(results, "named_init"), audits=_audits(records, decoded),
        unreadable=_unreadable(records, decoded), mutation=mutation_score)
