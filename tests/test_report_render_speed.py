"""The report's figures drawn faster, and still the same report: drawn in worker processes or serially the HTML is the
same bytes; the error map's fixed layout keeps every label on the figure; its symlog tick labels are plain text
(mathtext parsing cost more than drawing). Correctness only: speed is measured outside the tests."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.report import figures_pool as fp
from conformance.report import plots
from conformance.report.html import render_html

from .test_report_contract import AUDIT, ERROR_MAP, PLOT, _record, _results


def _many_figures() -> dict:
    """Results with more figures than :data:`figures_pool.MIN_PARALLEL`, one of them impossible to draw."""
    records = []
    for i in range(4):
        wide = {"x": [-3.4e38, -1.0, 0.0, 2.0, 1.5e38], "err": [0.0, 2.0, 0.0, 7.0, 0.0], "nan_x": []}
        maps = {"activation_error_map": ERROR_MAP.to_dict(), "wide": {**ERROR_MAP.to_dict(), **wide}}
        if i == 2:  # x and err differ in length: this figure cannot be drawn, the others are
            maps["broken"] = {**ERROR_MAP.to_dict(), "x": [1.0, 2.0], "err": [1.0]}
        records.append(_record(f"area/test_many[{i}]", "numpy:cpu", "failed",
                               {"distribution_plot": PLOT.to_dict(), **maps}))
    records.append(_record("model_init/test_reference_model_init[gpt2]", "torch:cpu", "failed",
                           {"model_init_audit": AUDIT.to_dict()}, dtype=None))
    return _results(records)


def test_pool_and_serial_render_the_same_html(monkeypatch):
    doc = _many_figures()
    monkeypatch.setenv(fp.JOBS_ENV, "1")
    serial = render_html(doc)
    monkeypatch.setenv(fp.JOBS_ENV, "2")
    assert fp.workers_for(4 * 4 + 1) == 2
    pooled = render_html(doc)
    assert pooled == serial
    assert serial.count('alt="distribution plots for area/test_many[') == 4
    assert serial.count('alt="error map for area/test_many[') == 8
    assert serial.count('alt="std against depth for gpt2"') == 1
    assert serial.count('class="plotnote"') == 1
    assert "attachment &#39;broken&#39; could not be drawn: ValueError:" in serial


def test_draw_all_keeps_order_and_falls_back_to_serial(monkeypatch):
    jobs = [fp.FigureJob("error_map_figure", ([1.0, float(i + 2)], [0.0, float(i)], [], f"map {i}")) for i in range(8)]
    jobs.insert(3, fp.FigureJob("error_map_figure", ([1.0], [1.0, 2.0], [], "broken")))
    serial = fp.draw_all(jobs, workers=0)
    assert [uri is None for uri, _ in serial] == [i == 3 for i in range(9)]
    assert serial[3][1].startswith("ValueError: ")
    assert fp.draw_all(jobs, workers=2) == serial

    def no_pool():
        raise OSError("no semaphores here")

    monkeypatch.setattr(fp, "_context", no_pool)
    assert fp.draw_all(jobs, workers=2) == serial
    with pytest.raises(ValueError, match="unknown figure kind"):
        fp.draw_all([fp.FigureJob("os.system", ("true",))])


def test_workers_for(monkeypatch):
    assert fp.workers_for(fp.MIN_PARALLEL - 1, cpus=64) == 0  # too few figures to pay for workers
    assert fp.workers_for(100, cpus=1) == 0
    assert fp.workers_for(100, cpus=4) == 4
    assert fp.workers_for(fp.MIN_PARALLEL, cpus=64) == fp.MIN_PARALLEL // fp.JOBS_PER_WORKER
    monkeypatch.setenv(fp.JOBS_ENV, "1")
    assert fp.workers_for(100) == 0
    monkeypatch.setenv(fp.JOBS_ENV, "3")
    assert fp.workers_for(100) == 3
    monkeypatch.setenv(fp.JOBS_ENV, "many")
    with pytest.raises(ValueError, match=fp.JOBS_ENV):
        fp.workers_for(100)


@pytest.mark.parametrize(("label", "plain"), [
    ("$\\mathdefault{-10^{42}}$", "\N{MINUS SIGN}10⁴²"), ("$\\mathdefault{10^{0}}$", "10⁰"),
    ("$\\mathdefault{0}$", "0"), ("$\\mathdefault{2\\times10^{-1}}$", "2×10⁻¹"),
    ("$\\mathdefault{-5.5\\times10^{-2}}$", "\N{MINUS SIGN}5.5×10⁻²"), ("$\\frac{1}{2}$", "$\\frac{1}{2}$"),
    ("$\\mathdefault{\\alpha}$", "$\\mathdefault{\\alpha}$"), ("3", "3"), ("", "")])
def test_plain_tick_label(label, plain):
    assert plots.plain_tick_label(label) == plain


def _drawn_figure(monkeypatch, draw, *args):
    """The figure ``draw(*args)`` makes, drawn, instead of its data URI."""
    figures = []
    monkeypatch.setattr(plots, "_data_uri", lambda fig: figures.append(fig) or "")
    draw(*args)
    (fig,) = figures
    fig.canvas.draw()
    return fig


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(("x", "err", "nan_x"), [
    ([-3.4e38, -1.0, 0.0, 2.0, 1.5e38], [0.0, 2.0, 0.0, 250.0, 0.0], [8.5e37]),  # the float range, 10^k labels
    ([], [], [8.5e37]),  # only a NaN: linear ticks with wide labels (−5.5×10⁻²)
    (list(np.linspace(-8, 8, 50)), list(np.linspace(0, 3e6, 50)), []),
])
def test_error_map_keeps_every_label_on_the_figure(monkeypatch, x, err, nan_x):
    title = "activations/test_accuracy[" + "very-long-parameter-" * 8 + "] on torch:cpu bfloat16: ulp"
    fig = _drawn_figure(monkeypatch, plots.error_map_figure, x, err, nan_x, title)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    assert ax.get_xlabel() == "input x" and ax.get_ylabel() == "|error| (ulp)"
    assert ax.get_title() == plots.plain(title, width=120, max_lines=2)
    assert [h.get_label() for h in ax.get_legend().legend_handles] == ["|error| (ulp)"] + (["NaN/inf"] if nan_x else [])
    # everything drawn (titles, labels, the tick labels in view) lies on the figure
    drawn = fig.get_tightbbox(renderer)
    width, height = fig.get_size_inches()
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01 and drawn.x1 <= width + 0.01 and drawn.y1 <= height + 0.01

    def labels(axis, lo, hi):
        return [t.label1 for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi and t.label1.get_text()]

    xs, ys = labels(ax.xaxis, *sorted(ax.get_xlim())), labels(ax.yaxis, *sorted(ax.get_ylim()))
    assert ys and not any("$" in t.get_text() for t in xs + ys)  # (only a NaN: no x ticks, as before)
    # the y tick labels and the y label do not overlap
    label = ax.yaxis.label.get_window_extent(renderer)
    assert all(t.get_window_extent(renderer).x0 >= label.x1 - 0.5 for t in ys)
