"""Writing a run's results: ``results.json`` and ``index.html``, each atomically (kept apart from
:mod:`conformance.results`, which the report package reads for the schema, so that the two do not import each other).
"""

from __future__ import annotations

import json
from pathlib import Path

from .harness.files import atomic_write
from .report.html import render_html
from .report.load import load_resume_audits


def write_results(results: dict, report_dir: Path) -> list[Path]:
    """Write ``results.json`` and ``index.html`` into ``report_dir``; return their paths (the report right after a
    run has no mutation score: ``conformance report --mutation-score FILE`` adds it)."""
    json_path = report_dir / "results.json"
    html_path = report_dir / "index.html"
    atomic_write(json_path, json.dumps(results, indent=1, sort_keys=False, allow_nan=False))
    atomic_write(html_path, render_html(results, resume=load_resume_audits(report_dir)))
    return [json_path, html_path]
