"""The HTML report opened in headless Chromium: no console message, the matrix, the filter and the
plots are there; "What to fix first" is on the first screen (1366x768); screenshots are saved as
reports/report-screenshot.png and reports/report-first-screen.png.

Skipped when Chromium is absent, unless CONFORMANCE_REQUIRE_BROWSER=1 (set by CI, which installs it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conformance.report.browser import find_chromium, open_page

from .helpers import ROOT, run_cli


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if find_chromium() is None:
        if os.environ.get("CONFORMANCE_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here (CONFORMANCE_REQUIRE_BROWSER=1) but was not found")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    out = tmp_path_factory.mktemp("report")
    proc, results = run_cli("run", "--adapters", "tests.faulty.init_adapters", "--backend", "numpy:cpu",
                            "--backend", "faulty-std:cpu", "-k", "normal-0_1 or calculate_gain or eye", "-q",
                            report_dir=out)
    assert results is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out, results


def test_report_renders_without_console_errors(report):
    out, results = report
    shot = ROOT / "reports" / "report-screenshot.png"
    page = open_page(out / "index.html", screenshot=shot)
    assert page.console == [], page.console
    assert '<table id="matrix">' in page.dom
    assert len(re.findall(r'<tr class="check"', page.dom)) >= 3
    assert 'class="plot"' in page.dom and "data:image/png;base64," in page.dom  # failure plots inlined
    assert re.search(r'id="shown">\d+ checks shown<', page.dom), "the filter script did not run"
    assert "faulty-std:cpu:float32" in page.dom and "numpy:cpu:float32" in page.dom
    assert re.search(r"conformance run --backend[= ]faulty-std:cpu", page.dom)  # repro command
    assert page.screenshot is not None and page.screenshot.stat().st_size > 10_000
    assert re.search(r'<h1 class="banner complete"[^>]*>Conformance report: \d+ passed, \d+ failed', page.dom)
    first_failure = re.search(r'<a class="cell" href="#(r-[^"]+)"', page.dom)
    assert first_failure and f'id="{first_failure.group(1)}"' in page.dom  # a matrix cell links to its section


#: Laid out at the width of a 1366x768 screen, the position of "What to fix first", its first defect line and the
#: matrix are written into the DOM (a copy of the report with this script added; the report itself is unchanged).
_MEASURE = """<script>
document.documentElement.style.width = "1366px";
(function () {
  function bottom(el) { return el ? Math.round(el.getBoundingClientRect().bottom + window.scrollY) : -1; }
  function top(el) { return el ? Math.round(el.getBoundingClientRect().top + window.scrollY) : -1; }
  var fix = document.getElementById("fix-first");
  document.body.setAttribute("data-measured", [top(fix), bottom(fix && fix.querySelector("h2")),
    bottom(document.querySelector("#fix-first li.fix-defect")), top(document.getElementById("matrix"))].join(","));
})();
</script></body>"""


def test_what_to_fix_first_is_on_the_first_screen(report, tmp_path):
    out, results = report
    html = (out / "index.html").read_text()
    assert html.count("</body>") == 1
    measured = tmp_path / "measured.html"
    measured.write_text(html.replace("</body>", _MEASURE))
    page = open_page(measured, screenshot=ROOT / "reports" / "report-first-screen.png", width=1366, height=768)
    assert page.console == [], page.console
    dom = page.dom
    assert dom.index('<section id="fix-first">') < dom.index('<h2>Backends</h2>') < dom.index('<table id="matrix">')
    section = dom.split('<section id="fix-first">', 1)[1].split("</section>", 1)[0]
    assert "<h2>What to fix first</h2>" in section
    # every backend that ran has its line: ranked defects, or "no defect" (deviations only, or clean)
    for backend in ("numpy:cpu", "faulty-std:cpu"):
        block = section.split(f'data-backend="{backend}">', 1)[1].split('<div class="fix-backend"', 1)[0]
        assert '<li class="fix-defect' in block or "no defect" in block, block
    faulty = section.split('data-backend="faulty-std:cpu">', 1)[1].split('<div class="fix-backend"', 1)[0]
    if results["summary"]["failed"]:  # faulty-std fails its std checks: its defects lead, each linking its section
        assert '<li class="fix-defect' in faulty
        assert section.index('data-backend="faulty-std:cpu"') < section.index('data-backend="numpy:cpu"')
        targets = re.findall(r'<a class="fix" href="#([^"]+)"', faulty)
        assert targets and all(f'id="{t}"' in dom for t in targets)
        assert re.search(r'<code class="repro">conformance run --backend[= ]faulty-std:cpu', faulty)
    fix_top, heading_bottom, first_defect_bottom, matrix_top = map(int, re.search(
        r'data-measured="(-?\d+),(-?\d+),(-?\d+),(-?\d+)"', dom).groups())
    assert 0 < fix_top < heading_bottom <= 768, (fix_top, heading_bottom)
    assert first_defect_bottom <= 768, first_defect_bottom  # -1: no defect line
    assert matrix_top > heading_bottom
    assert page.screenshot is not None and page.screenshot.stat().st_size > 5_000


def test_report_is_self_contained(report):
    out, _ = report
    html = (out / "index.html").read_text()
    # nothing is loaded from the network; links to upstream reports (<a href>) are only followed when clicked
    assert not re.search(r'src="https?://|<link[^>]+href="https?://|url\(\s*[\'"]?https?://', html), \
        "the report must not load anything from the network"
    assert all(a.startswith('<a class="ext" ') for a in re.findall(r'<a [^>]*href="https?://', html))


def test_report_command_rerenders(report, tmp_path):
    out, _ = report
    proc, _ = run_cli("report", str(out / "results.json"), "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "index.html").read_text().startswith("<!doctype html>")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc, _ = run_cli("report", str(bad))
    assert proc.returncode == 4 and "not valid JSON" in proc.stderr and str(bad) in proc.stderr


def test_screenshot_path_is_under_reports():
    assert Path(ROOT / "reports").is_dir()
