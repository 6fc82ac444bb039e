"""The HTML report: one self-contained file (inline styles, no network) rendered with jinja2
from ``results.json`` data only. A matrix of checks against backend:dtype, then every failure
with its messages and a copy-paste repro command, then the environment and the design."""

from __future__ import annotations

from collections import defaultdict

import jinja2

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("conformance", "templates"),
                          autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)

SYMBOL = {"passed": "✓", "failed": "✗", "skipped": "–", "xfailed": "K", "xpassed": "K✓", "error": "E"}


def matrix(records: list[dict]) -> tuple[list[str], list[tuple[str, str, dict]]]:
    """Columns (backend:dtype) and rows (area, check id, {column: record})."""
    columns = sorted({f"{r['backend']}:{r['dtype']}" if r["dtype"] else r["backend"] for r in records})
    rows: dict[str, dict] = defaultdict(dict)
    for r in records:
        col = f"{r['backend']}:{r['dtype']}" if r["dtype"] else r["backend"]
        rows[r["id"]][col] = r
    out = [(cid.split("/", 1)[0], cid, cells) for cid, cells in sorted(rows.items())]
    return columns, out


def render_html(results: dict) -> str:
    columns, rows = matrix(results["records"])
    problems = [r for r in results["records"] if r["outcome"] in ("failed", "error", "xfailed", "xpassed")]
    return _ENV.get_template("report.html.j2").render(results=results, columns=columns, rows=rows,
                                                      problems=problems, symbol=SYMBOL)
