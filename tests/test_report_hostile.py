"""The report on hostile and unusual input: the run's status in its first line, strict violations near the top,
malformed results files refused in one line (exit 4), check ids that matplotlib or HTML would misread, links
between the matrix and the failure sections, and residual panels that show a 1% std error."""

from __future__ import annotations

import base64
import copy
import html as htmllib
import io
import json
import re

import numpy as np
import pytest

from conformance.cli import main as cli_main
from conformance.report import attachments as A
from conformance.report import plots
from conformance.report.html import linkify, render_html
from conformance.report.load import MalformedResults, load_results, normalise
from conformance.report.merge import merge_results, merged_status, merged_strict
from conformance.stats import compare_distribution, design, normal
from conformance.stats.summary import plot_summary
from conformance.stats.verdict import Verdict

N = 1_000_000


def _plot(std: float = 1.0, seed: int = 11, n: int = N) -> A.DistributionPlot:
    x = np.random.default_rng(seed).normal(0.0, std, n)
    return A.DistributionPlot(**plot_summary(x, normal(0.0, 1.0)), test="ks")


@pytest.fixture(scope="module")
def plot_1pct() -> A.DistributionPlot:
    return _plot(1.01)


def _record(cid: str, outcome: str = "passed", backend: str = "numpy:cpu", dtype: str | None = "float32",
            attachments: dict | None = None, known: str = "", message: str = "") -> dict:
    failed = outcome in ("failed", "xfailed")
    verdicts = [Verdict("support", True, "all finite", n=N).to_dict(),
                Verdict("ks", not failed, message or "KS distance 0.003 vs N(0, 1^2)", n=N, statistic=0.003,
                        pvalue=1e-9 if failed else 0.5, alpha=1e-7, effect={"ks_distance": 0.003}).to_dict()]
    return {"id": cid, "backend": backend, "dtype": dtype, "tier": "hard", "outcome": outcome,
            "pvalue": verdicts[1]["pvalue"], "statistic": 0.003, "effect": {}, "n": N, "seed": 1,
            "repro": f"conformance run -k {cid!r}", "message": message or f"message of {cid}", "nodeid": cid,
            "duration": 0.1, "verdicts": verdicts, "detail": "", "known_failure": known,
            "attachments": attachments or {}}


def _results(records: list[dict], **top) -> dict:
    counts = {k: sum(r["outcome"] == k for r in records) for k in ("passed", "failed", "skipped", "xfailed",
                                                                    "xpassed", "error")}
    doc = {"schema": 1, "suite_version": "0.1.0", "seed": 7, "created": "2025-01-01T00:00:00Z", "duration": 1.0,
           "environment": {"python": "3.11"}, "design": design.summary(),
           "backends": {"numpy:cpu": {"available": True, "versions": {"numpy": "2"}, "dtypes": ["float32"],
                                      "capabilities": ["seed"], "contracts": {}}},
           "summary": {**counts, "total": len(records), "statistical_tests": len(records),
                       "fwer_bound": len(records) * design.ALPHA},
           "stale_known_failures": [], "records": records}
    doc.update(top)
    return doc


def _six_passed() -> list[dict]:
    return [_record(f"gain/test_gain[{i}]") for i in range(6)]


def _first_line(html: str) -> tuple[str, str]:
    """The <title> and the first <h1> of a page, as text."""
    title = htmllib.unescape(re.search(r"<title>(.*?)</title>", html, re.S).group(1))
    h1 = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    return title, htmllib.unescape(re.sub(r"<[^>]+>", "", h1.group(1)))


# -- status and strict violations ------------------------------------------------------------------------------------
def test_missing_status_reads_as_complete():
    doc = _results(_six_passed())
    assert "status" not in doc and normalise(doc)["status"] == "complete"
    html = render_html(doc)
    title, h1 = _first_line(html)
    assert title == h1 == "Conformance report: 6 passed, 0 failed"
    assert '<h1 class="banner complete"' in html and 'id="interrupted"' not in html and 'id="strict"' not in html


def test_interrupted_run_says_so_in_its_first_line():
    html = render_html(_results(_six_passed(), status="interrupted", interrupted="Ctrl-C"))
    title, h1 = _first_line(html)
    assert title == h1 == "INTERRUPTED run — partial results: 6 passed, 0 failed"
    assert html.index("<title>") < html.index("<style>")  # the title is the head's first text
    assert re.search(r"<body>\s*<h1 class=\"banner interrupted\"", html)  # the body's first element, a red banner
    assert "h1.banner.interrupted,h1.banner.strict{background:#c0392b" in html
    assert "The run stopped early</b> (Ctrl-C)" in html


def test_empty_run_says_so():
    title, h1 = _first_line(render_html(_results([], status="empty", interrupted="no check was selected")))
    assert title == h1 and title.startswith("EMPTY run")


def test_strict_violations_are_shown_near_the_top():
    violations = ["known-failure entry X now passes", "backend torch:cuda requested but unavailable: "
                  "see https://pytorch.org/get-started/ <b>now</b>"]
    html = render_html(_results(_six_passed(), strict={"enabled": True, "violations": violations}))
    title, _ = _first_line(html)
    assert title == "Conformance report: 6 passed, 0 failed — STRICT: 2 violations"
    box = html.split('<div class="alert" id="strict">', 1)[1].split("</div>")[0]
    assert html.index('id="strict"') < html.index("<h2>Backends</h2>")
    assert "Strict mode: 2 violations" in box and "known-failure entry X now passes" in box
    assert '<a class="ext" href="https://pytorch.org/get-started/"' in box and "&lt;b&gt;now&lt;/b&gt;" in box
    # recorded but not enforced (no --strict): shown, worded as what --strict would fail for; not in the title
    html = render_html(_results(_six_passed(), strict={"enabled": False, "violations": violations[:1]}))
    assert "1 issue that <code>--strict</code> would fail this run for" in html
    assert _first_line(html)[0] == "Conformance report: 6 passed, 0 failed"
    assert 'id="strict"' not in render_html(_results(_six_passed(), strict={"enabled": True, "violations": []}))


def _write(tmp_path, name: str, doc) -> str:
    path = tmp_path / name / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


@pytest.mark.parametrize(("statuses", "merged"), [
    (["complete", "interrupted"], "interrupted"), (["empty", "interrupted"], "interrupted"),
    (["empty", "empty"], "empty"), (["empty", "complete"], "complete"), ([None, None], "complete"),
])
def test_merged_status(tmp_path, statuses, merged):
    paths = []
    for i, status in enumerate(statuses):
        top = {} if status is None else {"status": status, "interrupted": "SIGTERM" if status == "interrupted" else ""}
        paths.append(_write(tmp_path, f"m{i}", _results([_record(f"gain/test_{i}")], **top)))
    from pathlib import Path

    result = merge_results([Path(p) for p in paths])
    assert result["status"] == merged
    assert [m["status"] for m in result["machines"]] == [s or "complete" for s in statuses]
    if merged == "interrupted":
        assert "SIGTERM" in result["interrupted"]
        assert _first_line(render_html(result))[0].startswith("INTERRUPTED run — partial results")
    assert "strict" not in result


def test_merged_strict_violations_concatenate():
    a = {"strict": {"enabled": False, "violations": ["a1", "a2"]}}
    b = {}
    c = {"strict": {"enabled": True, "violations": ["c1"]}}
    assert merged_strict([a, b, c]) == {"enabled": True, "violations": ["a1", "a2", "c1"]}
    assert merged_strict([b, b]) is None
    assert merged_status([{"status": "interrupted", "interrupted": "x"}, {}], ["1:a", "2:b"]) == \
        ("interrupted", "1:a: x")


def test_merge_command_carries_status_and_violations(tmp_path, capsys):
    a = _write(tmp_path, "a", _results(_six_passed(), status="interrupted", interrupted="--maxfail",
                                       strict={"enabled": True, "violations": ["A violated"]}))
    b = _write(tmp_path, "b", _results(_six_passed(), strict={"enabled": False, "violations": ["B violated"]}))
    out = tmp_path / "merged"
    assert cli_main(["report", "merge", a, b, "-o", str(out)]) == 0
    merged = json.loads((out / "results.json").read_text())
    assert merged["status"] == "interrupted" and merged["strict"]["violations"] == ["A violated", "B violated"]
    html = (out / "index.html").read_text()
    assert _first_line(html)[0] == "INTERRUPTED run — partial results: 6 passed, 0 failed — STRICT: 2 violations"
    assert load_results(out / "results.json")["status"] == "interrupted"  # the merged file reads back


# -- malformed results files: one line naming the file and the field, exit 4 -----------------------------------------
def _drop(key):
    return lambda d: d.pop(key)


def _rec(fn):
    return lambda d: fn(d["records"][1])


MALFORMED = [
    ("no-records", _drop("records"), "records: missing field"),
    ("records-not-list", lambda d: d.update(records={"a": 1}), "records: expected a list"),
    ("record-not-object", lambda d: d["records"].append("oops"), "records[6]: expected a record object"),
    ("no-outcome", _rec(lambda r: r.pop("outcome")), "records[1].outcome: missing field (record 'gain/test_gain[1]'"),
    ("bad-outcome", _rec(lambda r: r.update(outcome="meh")), "records[1].outcome: 'meh' is not one of passed"),
    ("no-id", _rec(lambda r: r.pop("id")), "records[1].id: missing field"),
    ("empty-id", _rec(lambda r: r.update(id="")), "records[1].id: empty check id"),
    ("id-number", _rec(lambda r: r.update(id=5)), "records[1].id: expected a string, got 5"),
    ("no-backend", _rec(lambda r: r.pop("backend")), "records[1].backend: missing field"),
    ("dtype-list", _rec(lambda r: r.update(dtype=["f"])), "records[1].dtype: expected a string or null"),
    ("verdicts-dict", _rec(lambda r: r.update(verdicts={})), "records[1].verdicts: expected a list"),
    ("verdict-no-passed", _rec(lambda r: r["verdicts"][1].pop("passed")), "records[1].verdicts[1].passed: missing"),
    ("verdict-passed-str", _rec(lambda r: r["verdicts"][0].update(passed="yes")),
     "records[1].verdicts[0].passed: expected true or false, got 'yes'"),
    ("pvalue-str", _rec(lambda r: r["verdicts"][1].update(pvalue="small")), "records[1].verdicts[1].pvalue"),
    ("effect-list", _rec(lambda r: r["verdicts"][1].update(effect=[1])), "records[1].verdicts[1].effect"),
    ("attachments-list", _rec(lambda r: r.update(attachments=[1])), "records[1].attachments: expected an object"),
    ("message-number", _rec(lambda r: r.update(message=3)), "records[1].message: expected a string"),
    ("status", lambda d: d.update(status="partial"), "status: 'partial' is not one of complete, interrupted, empty"),
    ("strict-list", lambda d: d.update(strict=["x"]), "strict: expected an object"),
    ("strict-violations", lambda d: d.update(strict={"enabled": True, "violations": "x"}), "strict.violations"),
    ("strict-violation-dict", lambda d: d.update(strict={"violations": [{"a": 1}]}), "strict.violations"),
    ("summary-count", lambda d: d["summary"].update(passed="6"), "summary.passed: expected an integer"),
    ("backend-entry", lambda d: d["backends"].update({"x:cpu": "yes"}), "backends['x:cpu']: expected an object"),
    ("design-list", lambda d: d.update(design=[1]), "design: expected an object"),
    ("schema", lambda d: d.update(schema=99), "results schema 99"),
    ("no-schema", _drop("schema"), "schema: missing field"),
]


@pytest.mark.parametrize(("name", "spoil", "says"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_results_are_one_line_naming_file_and_field(tmp_path, capsys, name, spoil, says):
    doc = _results(_six_passed())
    spoil(doc)
    path = _write(tmp_path, name, doc)
    with pytest.raises(MalformedResults, match=re.escape(says)):
        load_results(path)
    with pytest.raises(MalformedResults, match=re.escape(says)):
        render_html(doc)
    assert cli_main(["report", path, "-o", str(tmp_path / "out")]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("conformance report: error: ")
    assert path in err and says in err
    assert not (tmp_path / "out").exists()
    good = _write(tmp_path, "good", _results(_six_passed()))
    assert cli_main(["report", "merge", good, path, "-o", str(tmp_path / "merged")]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path in err and says in err and not (tmp_path / "merged").exists()


@pytest.mark.parametrize(("text", "says"), [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object"),
                                            ("null", "expected a JSON object"), ("", "not valid JSON")])
def test_unparsable_results_exit_4(tmp_path, capsys, text, says):
    path = _write(tmp_path, "x", text)
    assert cli_main(["report", path]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path in err and says in err


def test_binary_results_exit_4(tmp_path, capsys):
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert cli_main(["report", str(path)]) == 4
    assert "not valid JSON" in capsys.readouterr().err


def test_missing_file_is_not_a_malformed_file(tmp_path, capsys):
    assert cli_main(["report", str(tmp_path / "nope.json")]) == 2
    assert "no such results file" in capsys.readouterr().err


def test_optional_fields_may_be_absent_or_non_finite():
    """Files from older suites lack status, strict, tier, attachments, design...; non-finite numbers are stored as
    'nan'/'inf' strings; all of these render."""
    rec = _record("init/test_x", "failed")
    for key in ("tier", "attachments", "detail", "known_failure", "nodeid", "duration", "effect", "repro", "seed"):
        rec.pop(key)
    rec["verdicts"][1].update(pvalue="nan", statistic="inf")
    rec["verdicts"][1]["observed"] = {"mean": "nan", "std": 1.0}
    rec["verdicts"][1]["expected"] = {"mean": 0.0, "std": 1.0}
    doc = {"schema": 1, "records": [rec]}
    html = render_html(doc)
    assert _first_line(html)[0] == "Conformance report: 0 passed, 1 failed"
    assert "<td>nan</td>" in html
    assert normalise(doc)["records"][0]["verdicts"][1]["pvalue"] == "nan"  # kept as written (JSON stays valid)


# -- hostile check ids and attachments ----------------------------------------------------------------------------
HOSTILE = ["area/test_x[$\\cmd{$]", "area/test_x[$x$ and $$]", "area/test_x[\\]", "_area/test[_x]",
           'area/test_x[<script>alert("x")</script>]', "area/test_x[a\nb\tc]", "area/test_x[" + "long-" * 80 + "]",
           "area/test_x[é, 𝔘, ∑, \\$ ^_{}]", "noslash[$\\frac{1}{0}$]", "area/test_x[%s %d {0} {{x}}]"]


def _err_map() -> dict:
    return A.ActivationErrorMap(function="$\\cmd{$", output="value", dtype="float16", x=[-1.0, 0.5, 2.0],
                                err=[0.0, 3.0, 0.5], nan_x=[65504.0], test="ulp$").to_dict()


def test_hostile_ids_render_plots_and_escape(plot_1pct):
    records = [_record(cid, "failed", attachments={"distribution_plot": {**plot_1pct.to_dict(), "what": cid},
                                                    "activation_error_map": _err_map()})
               for cid in HOSTILE]
    html = render_html(_results(records))
    assert html.count('class="plot" alt="distribution plots for') == len(HOSTILE)
    assert html.count('class="plot" alt="error map for') == len(HOSTILE)
    assert 'class="plotnote"' not in html  # every figure was drawn
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


@pytest.mark.filterwarnings("error")  # no mathtext error, no collapsed layout, no missing-glyph noise
@pytest.mark.parametrize("cid", HOSTILE)
def test_matplotlib_reads_no_mathtext_from_user_text(cid, plot_1pct):
    assert plots.plain(cid).count("$") == plots.plain(cid).count("\\$")
    plots.distribution_figure(plot_1pct, cid)
    plots.error_map_figure([1.0, 2.0], [0.0, 1.0], [], cid)
    plots.depth_figure([{"rule": cid, "layers": [0, 1], "observed_std": [0.02, 0.02], "expected_std": [0.02, 0.02],
                         "stderr": [0.001, 0.001]}], cid)


def test_mistyped_attachments_are_listed_not_fatal():
    """Attachments of a known kind whose fields have the wrong JSON type are unreadable (listed with the reason);
    a well-typed audit with odd tensor rows still renders."""
    audit = {"kind": "model_init_audit", "version": 1, "spec": "$x$", "factory": "f", "device_init": "meta",
             "counts": [], "tensors": {}}
    named = {"kind": "named_scheme_row", "version": 1, "scheme": "he", "weight_kind": "dense", "framework": "jax",
             "backend": "jax:cpu", "fitted": [1, 2]}
    odd = {"kind": "model_init_audit", "version": 1, "spec": "<s>", "factory": "f", "device_init": "meta",
           "counts": {"fail": 1}, "tensors": [1, {"name": "<w>", "expected": [], "status": "fail"}],
           "depth": [{"rule": "$r$"}]}
    html = render_html(_results([_record("a/test_a", "failed", attachments={"audit": audit, "named": named}),
                                 _record("a/test_b", "failed", attachments={"odd": odd})]))
    unreadable = html.split('<table id="unreadable">', 1)[1].split("</table>")[0]
    assert "counts is [], not dict[str, int]" in unreadable and "fitted is [1, 2], not dict[str, float]" in unreadable
    assert "&lt;w&gt;" in html and "the depth figure could not be drawn: KeyError" in html


def test_plain_text_is_shown_as_written():
    import matplotlib.pyplot as plt

    fig = plt.figure()
    for raw in ("$\\cmd{$", "a\\$b", "cost $5 and $6", "_hidden"):
        t = fig.text(0, 0, plots.plain(raw))
        shown, is_math = t._preprocess_math(t.get_text())
        assert not is_math and shown.strip() == raw
    plt.close(fig)


@pytest.mark.parametrize(("spoil", "says"), [
    (lambda d: d.update(sample_q=d["sample_q"][:-3]), "differ in length"),
    (lambda d: d.update(edges=["a", "b"]), "not a list of numbers"),
    (lambda d: d.update(observed=[1]), "edges for 1 observed"),
    (lambda d: d.update(probs=[0.0] * len(d["probs"])), "probs outside (0, 1)"),
    (lambda d: d.update(cdf_x=[None], cdf_y=[None], ref_q=[float("nan")] * len(d["ref_q"])), "is not a list"),
])
def test_broken_plot_attachment_costs_its_plot_not_the_report(spoil, says, plot_1pct):
    att = plot_1pct.to_dict()
    spoil(att)
    html = render_html(_results([_record("init/test_x[1]", "failed", attachments={"distribution_plot": att})]))
    note = html.split('<p class="plotnote">', 1)[1].split("</p>")[0]
    assert "attachment &#39;distribution_plot&#39; could not be drawn" in note and htmllib.escape(says) in note


# -- links: matrix <-> failure sections, upstream links, coloured failing verdicts -------------------------------
def test_matrix_cells_link_to_failure_sections_and_back(plot_1pct):
    known = ("uniform_ rounds b to a. Upstream: https://github.com/pytorch/pytorch/issues/145498 (fix: PR 175046); "
             "see (https://example.org/x_(y)). javascript:alert(1) ftp://x.org/ \"https://q.org/a?b=1&c=<2>\"")
    records = [_record(HOSTILE[0], "failed", attachments={"distribution_plot": plot_1pct.to_dict()}),
               _record(HOSTILE[0], "failed", backend="jax:cpu"),
               _record(HOSTILE[4], "xfailed", known=known),
               _record("gain/test_ok", "passed"),
               _record("gain/test_ok", "error", backend="jax:cpu",
                       message="see https://docs.example.com/err#frag, then retry.")]
    html = render_html(_results(records))
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "HTML ids must be unique"
    cell_links = re.findall(r'<a class="cell" href="#([^"]+)">', html)
    sections = re.findall(r'<section class="problem [^"]*" id="([^"]+)"', html)
    assert len(cell_links) == 4 and sorted(cell_links) == sorted(sections)  # every problem cell, no passed cell
    back = re.findall(r'<a class="back" href="#([^"]+)">', html)
    rows = re.findall(r'<tr class="check" id="([^"]+)"', html)
    assert len(back) == 4 and set(back) <= set(rows)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in cell_links + rows)
    # failing verdict rows are coloured, passing ones not
    assert html.count('<tr class="verdict-failed">') == 3 and '<tr class="verdict-passed">' in html
    # upstream and message URLs are links; only http(s); the rest stays escaped text
    hrefs = re.findall(r'<a class="ext" href="([^"]+)"', html)
    assert "https://github.com/pytorch/pytorch/issues/145498" in hrefs
    assert "https://example.org/x_(y)" in hrefs and "https://docs.example.com/err#frag" in hrefs
    assert "https://q.org/a?b=1&amp;c=" in hrefs
    assert not any(h.startswith(("javascript", "ftp")) for h in hrefs)
    assert 'href="javascript' not in html and "javascript:alert(1)" in html


def test_linkify_escapes_everything_it_does_not_link():
    out = str(linkify('<b>x</b> https://a.org/p?q="1"&r=2). "http://b.org/".'))
    assert out.startswith("&lt;b&gt;x&lt;/b&gt; ")
    assert '<a class="ext" href="https://a.org/p?q=" rel=' in out  # the quote ends the URL
    assert 'href="http://b.org/"' in out and out.endswith("</a>&#34;.")
    assert str(linkify(None)) == "" and str(linkify("no links")) == "no links"


# -- residual panels: a 1% std error is visible ------------------------------------------------------------------
def test_std_one_percent_too_large_leaves_the_residual_band(plot_1pct):
    res = plots.residuals(plot_1pct, n=N, alpha=design.ALPHA)
    assert res.ecdf_band == pytest.approx(5.99, abs=0.05)  # Bonferroni over 49 points at 1e-7
    assert res.ecdf_outside and np.max(np.abs(res.ecdf_z)) > 1.15 * res.ecdf_band
    assert res.qq_outside
    # the deviation has the shape of a scale error: ECDF above the CDF on the left, below on the right
    assert res.ecdf_z[res.p < 0.3].mean() > 3 and res.ecdf_z[res.p > 0.7].mean() < -3
    slope = np.polyfit(res.qq_x, res.qq_dev, 1)[0]
    assert slope == pytest.approx(0.01, abs=0.002)  # QQ deviation: a line of slope std error


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_correct_std_stays_inside_the_bands(seed):
    res = plots.residuals(_plot(1.0, seed=seed), n=N, alpha=design.ALPHA)
    assert not res.ecdf_outside and not res.qq_outside and not res.hist_outside
    assert np.max(np.abs(res.ecdf_z)) < 4.5


def test_residuals_match_the_exact_computation():
    """The stored summary is enough: the standardised ECDF residual equals the one from the raw sample and the exact
    normal CDF to a small fraction of a standard error, tails included."""
    from scipy.special import ndtr

    x = np.random.default_rng(5).normal(0.0, 1.01, N)
    plot = A.DistributionPlot(**plot_summary(x, normal(0.0, 1.0)), test="ks")
    res = plots.residuals(plot, n=N)
    exact = (res.p - ndtr(np.quantile(x, res.p))) / np.sqrt(res.p * (1 - res.p) / N)
    assert np.max(np.abs(res.ecdf_z - exact)) < 0.1
    assert np.allclose(res.hist_z, (np.array(plot.observed) - plot.expected) / np.sqrt(plot.expected))


def test_residuals_without_n_use_the_histogram_total(plot_1pct):
    res = plots.residuals(plot_1pct)
    assert res.n_estimated and 0.99 * N < res.n <= N and res.alpha == plots.DEFAULT_ALPHA and res.ecdf_outside


def test_report_draws_the_residual_panels_at_a_readable_size():
    from PIL import Image

    x = np.random.default_rng(3).normal(0.0, 1.01, N)
    verdicts = compare_distribution(x, normal(0.0, 1.0), "float32", design.ALPHA)
    gof = next(v for v in verdicts if v.test == "ks")
    (att,) = gof.attachments
    rec = _record("init_schemes/test_normal[0_1]", "failed",
                  attachments={"distribution_plot": att.bound_to("ks", "normal_").to_dict()})
    rec["verdicts"] = [v.to_dict() for v in verdicts]
    html = render_html(_results([rec]))
    uri = re.search(r'alt="distribution plots for [^"]*" src="data:image/png;base64,([^"]+)"', html).group(1)
    image = Image.open(io.BytesIO(base64.b64decode(uri)))
    width, height = image.size
    assert width >= 1200 and height >= 600  # 12 in x 6.6 in at 120 dpi: 9 pt text is 15 px
    assert plots.residuals(A.DistributionPlot.from_dict(rec["attachments"]["distribution_plot"]), n=N).ecdf_outside


def test_input_is_not_modified():
    doc = _results([_record("a/b", "failed")], status="interrupted")
    before = copy.deepcopy(doc)
    render_html(doc)
    normalise(doc)
    assert doc == before


def test_correct_bfloat16_sample_stays_inside_the_histogram_band():
    import ml_dtypes

    from conformance.stats import for_dtype

    x = np.random.default_rng(4).normal(0.0, 1.0, N).astype(ml_dtypes.bfloat16).astype(np.float64)
    plot = A.DistributionPlot(**plot_summary(x, for_dtype(normal(0.0, 1.0), "bfloat16")), test="chi2")
    res = plots.residuals(plot, n=N)
    assert not res.ecdf_outside
    assert not res.hist_outside, np.round(res.hist_z, 1)
