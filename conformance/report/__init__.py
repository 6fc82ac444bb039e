"""The HTML report and everything that reads ``results.json``.

* :mod:`.attachments`: the typed data checks hand to the report (``CheckContext.attach``); framework-free, the
  only contract between checks and report besides the verdicts themselves.
* :mod:`.load`: reading a results file (schema check) and the optional files named on the command line.
* :mod:`.html`: :func:`~conformance.report.html.render_html` (jinja2, matplotlib through :mod:`.plots`).
* :mod:`.named_table`: the named-initializer table, from ``named_scheme_row`` attachments.
* :mod:`.merge`: several machines' results files -> one results set.
* :mod:`.cli`: ``conformance report`` and ``conformance report merge``.
* :mod:`.browser`: headless Chromium for the report's own tests and ``nox -s report``.

Importing this package imports nothing heavy (no jinja2, no matplotlib): checks import :mod:`.attachments`.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "render_html":  # ``from conformance.report import render_html``, without importing jinja2 eagerly
        from .html import render_html

        return render_html
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
