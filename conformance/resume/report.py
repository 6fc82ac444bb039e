"""Resume audits in a report directory: ``DIR/resume/<run>.json`` per audit and ``DIR/resume/index.html``.

The main report (``reports/index.html``, :func:`conformance.report.html.render_html`) shows the same audits as its
"Resume audits" section, read by :func:`conformance.report.load.load_resume_audits`; when ``DIR/results.json``
exists, ``DIR/index.html`` is re-rendered with that section at once. Writes are atomic; a results file that cannot
be read leaves ``index.html`` as it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conformance.harness.files import atomic_write


def run_id(doc: dict) -> str:
    """``<harness>-<8 hex of the options>``: a rerun with the same options replaces its file."""
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in doc["harness"])[:60]
    digest = hashlib.sha256(json.dumps(doc["options"], sort_keys=True).encode()).hexdigest()[:8]
    return f"{name}-{digest}"


def write(doc: dict, report_dir: Path) -> list[Path]:
    from conformance.report.html import render_resume_page
    from conformance.report.load import load_resume_audits

    folder = Path(report_dir) / "resume"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id(doc)}.json"
    atomic_write(path, lambda f: f.write(json.dumps(doc, indent=1).encode()))
    page = folder / "index.html"
    audits = load_resume_audits(Path(report_dir))
    html = render_resume_page(audits)
    atomic_write(page, lambda f: f.write(html.encode()))
    written = [path, page]
    results = Path(report_dir) / "results.json"
    if results.exists():  # the suite's report lives here: show the audits as its section too
        from conformance.report.html import render_html
        from conformance.report.load import MalformedResults, load_mutation_score, load_results

        try:
            loaded = load_results(results)
        except (MalformedResults, ValueError):
            return written  # a report that cannot be read is left as it is
        score = Path(report_dir) / "mutation_score.json"
        mutation = load_mutation_score(score) if score.exists() else None
        index = Path(report_dir) / "index.html"
        atomic_write(index, render_html(loaded, mutation_score=mutation, resume=audits))
        written.append(index)
    return written
