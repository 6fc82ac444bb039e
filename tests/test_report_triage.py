"""Severity in the HTML report (issue 20): "What to fix first" under the status line (defects ranked: exact first,
then by magnitude; deviations counted by kind), matrix cells coloured by severity (defect, deviation, pass; by outcome
in files written before severity), unavailable backends listed once with no matrix column. Built from synthetic
results documents, no run."""

from __future__ import annotations

import html as htmllib
import re

import pytest

from conformance.report import triage
from conformance.report.html import FIX_FIRST_SHOWN, cell_class, render_html, severity_of
from conformance.stats import design

OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")


def _rec(cid: str, outcome: str = "passed", backend: str = "numpy:cpu", dtype: str | None = "float32", *,
         severity: object = ..., kind: str | None = None, magnitude: object = ..., explanation: str | None = None,
         known: str = "") -> dict:
    """A record; ``severity`` left out (``...``) gives a record of a file written before severity existed."""
    failed = outcome in ("failed", "xfailed", "error") or severity == "deviation"
    r = {"id": cid, "backend": backend, "dtype": dtype, "tier": "hard", "outcome": outcome, "pvalue": 0.5,
         "statistic": 0.1, "effect": {}, "n": 10, "seed": 1, "repro": f"conformance run --backend {backend} -k '{cid}'",
         "message": f"message of {cid}", "nodeid": cid, "duration": 0.1, "detail": "", "known_failure": known,
         "attachments": {},
         "verdicts": [{"test": "ks", "passed": not failed, "message": "ks", "n": 10, "pvalue": 0.5, "alpha": 1e-7}]}
    if severity is not ...:
        r.update(severity=severity, kind=kind, explanation=explanation,
                 magnitude=None if magnitude is ... else magnitude)
    return r


def _defect(cid: str, magnitude: object, backend: str = "numpy:cpu", outcome: str = "failed", kind: str = "scale",
            dtype: str = "float32") -> dict:
    return _rec(cid, outcome, backend, dtype, severity="defect", kind=kind, magnitude=magnitude,
                explanation=f"explanation of {cid}", known="entry" if outcome == "xfailed" else "")


def _deviation(cid: str, kind: str, backend: str = "numpy:cpu", outcome: str = "passed") -> dict:
    return _rec(cid, outcome, backend, severity="deviation", kind=kind, magnitude=0.4, explanation="small")


def _ok(cid: str, backend: str = "numpy:cpu", outcome: str = "passed") -> dict:
    return _rec(cid, outcome, backend, severity=None)


def _backend(available: bool = True, reason: str = "") -> dict:
    if not available:
        return {"available": False, "reason": reason}
    return {"available": True, "versions": {"x": "1"}, "dtypes": ["float32"], "capabilities": ["seed"]}


def _results(records: list[dict], backends: dict | None = None, **top) -> dict:
    counts = {k: sum(r["outcome"] == k for r in records) for k in OUTCOMES}
    specs = sorted({r["backend"] for r in records})
    doc = {"schema": 1, "suite_version": "0.1.0", "seed": 7, "created": "2025-01-01T00:00:00Z", "duration": 1.0,
           "environment": {"python": "3.11"}, "design": design.summary(),
           "backends": backends if backends is not None else {s: _backend() for s in specs},
           "summary": {**counts, "total": len(records), "statistical_tests": len(records),
                       "fwer_bound": len(records) * design.ALPHA},
           "stale_known_failures": [], "records": records}
    doc.update(top)
    return doc


def _fix_first(html: str) -> str:
    return html.split('<section id="fix-first">', 1)[1].split("</section>", 1)[0]


def _backend_block(html: str, backend: str) -> str:
    return _fix_first(html).split(f'data-backend="{backend}">', 1)[1].split('<div class="fix-backend"', 1)[0]


def _ranked_ids(block: str) -> list[str]:
    """The check ids of the defect lines of a backend's block, in the order shown."""
    return [htmllib.unescape(m) for m in re.findall(r'<a class="fix" href="#[^"]+">([^ <]+) \[', block)]


def _columns(html: str) -> list[str]:
    head = html.split('<table id="matrix">', 1)[1].split("</thead>", 1)[0]
    return [htmllib.unescape(c) for c in re.findall(r'<th class="col">([^<]*)</th>', head)]


def _cell(html: str, cid: str, column: str = "numpy:cpu:float32") -> tuple[str, str]:
    """(the class attribute, the content) of the matrix cell of check ``cid`` in ``column``."""
    row = re.search(r'<tr class="check" id="[^"]+"[^>]*data-id="' + re.escape(cid) + r'"[^>]*>(.*?)</tr>', html, re.S)
    assert row, cid
    cells = re.findall(r"<td( class=\"[^\"]*\")?[^>]*>(.*?)</td>", row.group(1), re.S)
    assert len(cells) == len(_columns(html)) + 1
    return cells[1 + _columns(html).index(column)]


def _css_rule(html: str, selector: str) -> str:
    css = html.split("<style>", 1)[1].split("</style>", 1)[0]
    m = re.search(r"(?:^|[}\n,])" + re.escape(selector) + r"[,{][^{]*\{([^}]*)\}", css)
    assert m, selector
    return m.group(1)


# -- ranking ---------------------------------------------------------------------------------------------------------
RANKED = [_defect("area/test_small", 1.5), _defect("area/test_exact_b", None, kind="non-finite output"),
          _defect("area/test_big", 40.0), _defect("area/test_exact_a", None, outcome="error", kind="crash"),
          _defect("area/test_mid", 7.25, outcome="xfailed"), _deviation("area/test_dev", "shift"),
          _ok("area/test_fine")]
ORDER = ["area/test_exact_a", "area/test_exact_b", "area/test_big", "area/test_mid", "area/test_small"]


def test_triage_ranks_exact_defects_first_then_by_magnitude():
    ranked = triage.defects(RANKED)
    assert [r["id"] for r in ranked["numpy:cpu"]] == ORDER
    assert triage.effect_text(ranked["numpy:cpu"][0]) == "exact" and triage.effect_text(RANKED[2]) == "40x threshold"
    # non-finite magnitudes travel as strings: 'inf' is the largest finite-ranked effect, 'nan' and junk read as exact
    odd = [_defect("a/test_inf", "inf"), _defect("a/test_two", 2.0), _defect("a/test_junk", "big"),
           _defect("a/test_nan", float("nan")), _defect("a/test_bool", True)]
    assert [r["id"] for r in triage.defects(odd)["numpy:cpu"]] == ["a/test_bool", "a/test_junk", "a/test_nan",
                                                                     "a/test_inf", "a/test_two"]
    assert triage.effect_text(odd[0]) == "infx threshold" and triage.effect_text(odd[2]) == "exact"


def test_fix_first_lists_defects_ranked_with_repro_link_and_known_tag():
    html = render_html(_results(RANKED, tier="default"))
    block = _backend_block(html, "numpy:cpu")
    assert _ranked_ids(block) == ORDER
    assert "5 defects (1 known failure), worst first" in block
    lines = re.findall(r'<li class="fix-defect[^"]*">(.*?)</li>', block, re.S)
    assert len(lines) == 5
    first, mid = lines[0], lines[3]
    assert '<span class="kind">crash</span> <span class="effect">(exact)</span>' in first
    assert "explanation of area/test_exact_a" in first and "(known failure)" not in first
    assert '<span class="kind">scale</span> <span class="effect">(7.25x threshold)</span>' in mid
    assert '<span class="fix-known">(known failure)</span>' in mid
    assert "<code class=\"repro\">conformance run --backend numpy:cpu -k &#39;area/test_mid&#39;</code>" in mid
    # each line links to the record's failure section, which exists
    targets = re.findall(r'<a class="fix" href="#([^"]+)">', block)
    sections = re.findall(r'<section class="problem [^"]*" id="([^"]+)"', html)
    assert len(targets) == 5 and set(targets) <= set(sections)
    # neither the deviation nor the clean pass is a defect line
    assert "area/test_dev" not in "".join(lines) and "area/test_fine" not in block


def test_fix_first_is_under_the_status_line_before_design_backends_and_matrix():
    html = render_html(_results(RANKED))
    positions = [html.index(marker) for marker in ('<h1 class="banner', '<p class="summary">', 'id="fix-first"',
                                                     "Master seed", "<h2>Backends</h2>", '<table id="matrix">')]
    assert positions == sorted(positions)


def test_long_defect_lists_show_ten_then_expand():
    records = [_defect(f"area/test_{i:02d}", float(100 - i)) for i in range(FIX_FIRST_SHOWN + 3)]
    block = _backend_block(render_html(_results(records)), "numpy:cpu")
    visible, more = block.split('<details class="more">', 1)
    assert len(re.findall(r'<li class="fix-defect', visible)) == FIX_FIRST_SHOWN == 10
    assert "<summary>3 more</summary>" in more and f'<ol class="defects" start="{FIX_FIRST_SHOWN + 1}">' in more
    assert _ranked_ids(more) == [f"area/test_{i:02d}" for i in range(10, 13)]
    assert '<details class="more">' not in render_html(_results(records[:FIX_FIRST_SHOWN]))


def test_deviations_grouped_by_kind_and_tier_note():
    records = [_deviation("a/test_1", "scale"), _deviation("a/test_2", "shift"), _deviation("a/test_3", "scale"),
               _deviation("a/test_4", "scale"), _ok("a/test_5"),
               _defect("a/test_6", 2.0, backend="torch:cpu"), _deviation("a/test_7", "atom", backend="torch:cpu")]
    assert triage.deviations(records) == {"numpy:cpu": [("scale", 3), ("shift", 1)], "torch:cpu": [("atom", 1)]}
    html = render_html(_results(records, tier="default"))
    numpy = _backend_block(html, "numpy:cpu")
    assert "no defect; 4 deviations (3 scale, 1 shift): deviations fail only with <code>--strict-tier</code>" in numpy
    torch = _backend_block(html, "torch:cpu")
    assert "and 1 deviation (1 atom): deviations fail only with <code>--strict-tier</code>" in torch
    # backends with defects come first (before the alphabet)
    assert _fix_first(html).index('data-backend="torch:cpu"') < _fix_first(html).index('data-backend="numpy:cpu"')
    # a file without tier reads as the default tier; in the strict tier the deviations fail the run
    assert "fail only with <code>--strict-tier</code>" in _backend_block(render_html(_results(records)), "numpy:cpu")
    strict = [_deviation("a/test_1", "scale", outcome="failed"), _deviation("a/test_2", "shift", outcome="failed")]
    block = _backend_block(render_html(_results(strict, tier="strict")), "numpy:cpu")
    assert "2 deviations (1 scale, 1 shift): they fail this strict-tier run" in block and "--strict-tier" not in block


def test_backends_with_new_defects_come_first():
    records = [_defect("a/test_1", 9.0, backend="a:cpu", outcome="xfailed"), _deviation("a/test_1", "x", "b:cpu"),
               _ok("a/test_1", backend="c:cpu"), _defect("a/test_1", 1.1, backend="d:cpu"),
               _defect("a/test_2", 5.0, backend="d:cpu", outcome="xfailed")]
    order = re.findall(r'data-backend="([^"]+)"', _fix_first(render_html(_results(records))))
    assert order == ["d:cpu", "a:cpu", "b:cpu", "c:cpu"]


def test_clean_and_idle_backends_are_one_line():
    records = [_ok("a/test_1"), _ok("a/test_2", backend="jax:cpu", outcome="skipped")]
    html = render_html(_results(records))
    assert re.search(r'data-backend="numpy:cpu"><b>numpy:cpu</b>:\s*<span class="clean">no defect, no deviation</span>',
                     html)
    assert re.search(r'data-backend="jax:cpu"><b>jax:cpu</b>:\s*<span class="clean">no check ran</span>', html)
    assert '<li class="fix-defect' not in _fix_first(html)


def test_severity_counts_in_the_summary_line():
    records = [_defect("a/test_1", 2.0), _defect("a/test_2", None, outcome="xfailed"), _deviation("a/test_3", "x")]
    html = render_html(_results(records))  # counted from the records
    assert '<span class="bad" id="n-defects">2 defects</span><span id="n-deviations">1 deviations</span>' in html
    doc = _results(records)
    doc["summary"].update(defects=5, deviations=9)  # the file's own counts win
    html = render_html(doc)
    assert 'id="n-defects">5 defects<' in html and 'id="n-deviations">9 deviations<' in html


# -- matrix colours --------------------------------------------------------------------------------------------------
def test_matrix_cells_coloured_by_severity():
    records = [_defect("a/test_defect", 3.0), _defect("a/test_known", None, outcome="xfailed"),
               _deviation("a/test_deviation", "shift"), _deviation("a/test_strict_dev", "shift", outcome="failed"),
               _ok("a/test_pass"), _ok("a/test_skip", outcome="skipped"), _ok("a/test_xpass", outcome="xpassed")]
    html = render_html(_results(records))
    cls = {r["id"]: _cell(html, r["id"]) for r in records}
    assert cls["a/test_defect"][0] == ' class="failed sev-defect"' and "✗" in cls["a/test_defect"][1]
    assert cls["a/test_known"][0] == ' class="xfailed sev-defect known"' and ">K<" in cls["a/test_known"][1]
    assert cls["a/test_deviation"][0] == ' class="passed sev-deviation"' and cls["a/test_deviation"][1] == "≈"
    assert cls["a/test_strict_dev"][0] == ' class="failed sev-deviation"'
    assert cls["a/test_pass"][0] == ' class="passed sev-pass"' and cls["a/test_pass"][1] == "✓"
    assert cls["a/test_skip"][0] == ' class="skipped"' and cls["a/test_xpass"][0] == ' class="xpassed"'
    # three visibly different colours, the severity rules after (so over) the outcome ones; known defects striped
    colours = {s: re.search(r"background:([^;]+)", _css_rule(html, f"td.sev-{s}")).group(1)
               for s in ("defect", "deviation", "pass")}
    assert len(set(colours.values())) == 3, colours
    css = html.split("<style>", 1)[1]
    assert css.index("td.xfailed{") < css.index("td.sev-defect,")
    assert css.index("td.passed{") < css.index("td.sev-pass,")
    known = _css_rule(html, "td.sev-defect.known")
    assert colours["defect"] in known and "gradient" in known
    legend = html.split('<p class="legend" id="legend">', 1)[1].split("</p>", 1)[0]
    for swatch in ("sev-defect", "sev-defect known", "sev-deviation", "sev-pass", "xpassed", "skipped"):
        assert f'<span class="swatch {swatch}">' in legend
    assert "fails only with --strict-tier" in legend
    # the filter can select by severity: rows and failure sections carry it
    assert re.search(r'data-severity="deviation " data-outcomes="failed ">', html)
    assert '<option value="defect">defect</option>' in html and '<option value="deviation">deviation</option>' in html


def test_severity_of_and_cell_class_fall_back_to_the_outcome():
    assert severity_of({"outcome": "failed"}) == "defect" and severity_of({"outcome": "xfailed"}) == "defect"
    assert severity_of({"outcome": "error"}) == "defect" and severity_of({"outcome": "passed"}) is None
    assert severity_of({"outcome": "failed", "severity": None}) is None  # the file says: nothing failed
    assert severity_of({"outcome": "passed", "severity": "deviation"}) == "deviation"
    assert severity_of({"outcome": "failed", "severity": "weird"}) == "defect"  # unknown value: from the outcome
    assert cell_class({"outcome": "passed", "merge_flag": "conflict"}) == "passed sev-pass conflict"


# -- unavailable backends --------------------------------------------------------------------------------------------
def test_unavailable_backends_listed_once_without_a_column():
    reason = "this candle build cannot use cuda (built without the cuda feature)"
    backends = {"numpy:cpu": _backend(), "idle:cpu": _backend(), "candle:cuda": _backend(False, reason),
                "torch:mps": _backend(False, "no Metal device: see https://example.org/mps")}
    records = [_ok("a/test_1"), _defect("a/test_2", 2.0),
               _ok("a/test_1", backend="candle:cuda", outcome="skipped"),
               _ok("a/test_2", backend="candle:cuda", outcome="skipped"),
               _ok("a/test_1", backend="torch:mps", outcome="skipped"),
               _ok("a/test_1", backend="idle:cpu", outcome="skipped")]  # available, skipped everything: kept
    html = render_html(_results(records, backends))
    assert _columns(html) == ["idle:cpu:float32", "numpy:cpu:float32"]
    assert html.count("candle:cuda") == 1 and html.count("torch:mps") == 1
    not_run = html.split('<p id="not-run">', 1)[1].split("</ul>", 1)[0]
    assert "Not run here</b> (2 backends unavailable on this machine; no matrix column)" in not_run
    assert f"<li><b>candle:cuda</b> — {htmllib.escape(reason)}</li>" in not_run
    assert '<a class="ext" href="https://example.org/mps"' in not_run
    table = html.split('<table id="backends">', 1)[1].split("</table>", 1)[0]
    assert "numpy:cpu" in table and "idle:cpu" in table and "candle" not in table
    assert 'data-backend="candle:cuda"' not in html and 'data-backend="idle:cpu"' in html
    # every column's footer counts belong to an available backend
    foot = html.split("<tfoot>", 1)[1].split("</tfoot>", 1)[0]
    assert foot.count('<th class="col">') == 2
    # nothing available: no empty table, still listed
    only = render_html(_results(records[2:5], {k: v for k, v in backends.items() if not v["available"]}))
    assert '<table id="backends">' not in only and only.count("candle:cuda") == 1 and _columns(only) == []


# -- files written before severity ---------------------------------------------------------------------------------
def test_old_results_without_severity_render():
    records = [_rec("a/test_fail", "failed"), _rec("a/test_known", "xfailed", known="upstream bug"),
               _rec("a/test_err", "error"), _rec("a/test_pass"), _rec("a/test_ok", backend="jax:cpu")]
    doc = _results(records)
    assert "tier" not in doc and all("severity" not in r for r in doc["records"])
    html = render_html(doc)
    fix = _fix_first(html)
    assert "This results file predates severity" in fix
    block = _backend_block(html, "numpy:cpu")
    assert _ranked_ids(block) == ["a/test_err", "a/test_fail", "a/test_known"]  # check order
    assert '<span class="kind">crash</span>: message of a/test_err' in block  # no effect, the message explains
    assert "(known failure)" in block and "threshold" not in block and "exact" not in block
    assert "no defect, no deviation" in _backend_block(html, "jax:cpu")
    assert 'id="n-defects"' not in html  # no severity counts invented for an old file
    assert _cell(html, "a/test_fail")[0] == ' class="failed sev-defect"'
    assert _cell(html, "a/test_known")[0] == ' class="xfailed sev-defect known"'
    assert _cell(html, "a/test_pass")[0] == ' class="passed sev-pass"'
    # the bare minimum of an old file still renders, with its one backend in the ranking
    bare = render_html({"schema": 1, "records": [_rec("a/test_fail", "failed")]})
    assert _ranked_ids(_backend_block(bare, "numpy:cpu")) == ["a/test_fail"]


@pytest.mark.parametrize("hostile", ['<script>alert("x")</script>', "a\nb", "x" * 500])
def test_hostile_kind_and_explanation_are_escaped_and_short(hostile):
    r = _defect("a/test_1", "inf")
    r.update(kind=hostile, explanation=hostile)
    html = render_html(_results([r]))
    line = re.search(r'<li class="fix-defect">(.*?)</li>', _fix_first(html), re.S).group(1)
    assert "<script>" not in line and "\n" not in line.split('<code class="repro">')[0]
    assert len(line) < 900 and "infx threshold" in line


def test_strict_box_names_unavailable_backends_once_unless_strict():
    from conformance.report.html import strict_lines

    violations = ["requested backend torch:cuda is unavailable: no GPU",
                  "requested backend mlx:metal is unavailable: no Metal",
                  "known failure now passes: x on torch:cpu float32; narrow or remove its known-failures entry"]
    info = strict_lines({"enabled": False, "violations": violations})
    assert info[0].startswith("known failure now passes")
    assert len(info) == 2 and "2 requested backends are unavailable here (torch:cuda, mlx:metal)" in info[1]
    assert strict_lines({"enabled": True, "violations": violations}) == violations
    assert strict_lines({"enabled": False, "violations": violations[:1]}) == violations[:1]
