"""Figures for the HTML report, drawn with matplotlib from the typed attachments in results.json
(:mod:`conformance.report.attachments`) and returned as inline ``data:`` URIs (the report stays one
self-contained file)."""

from __future__ import annotations

import base64
import io

import matplotlib

from .attachments import DistributionPlot

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def distribution_figure(plot: DistributionPlot, title: str) -> str:
    """ECDF against the expected CDF, a QQ plot and a histogram with the expected counts."""
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(11, 3.1))
    a.plot(plot.cdf_x, plot.cdf_y, color="#444", label="expected CDF")
    a.step(plot.sample_q, plot.probs, where="post", color="#c0392b", label="observed ECDF")
    a.set_title("ECDF vs expected CDF", fontsize=9)
    a.legend(fontsize=7)
    lo = min(plot.ref_q + plot.sample_q)
    hi = max(plot.ref_q + plot.sample_q)
    b.plot([lo, hi], [lo, hi], color="#999", lw=1)
    b.plot(plot.ref_q, plot.sample_q, ".", color="#c0392b", ms=4)
    b.set_xlabel("expected quantile", fontsize=8)
    b.set_ylabel("observed quantile", fontsize=8)
    b.set_title("QQ plot", fontsize=9)
    edges = plot.edges
    mids = [(x + y) / 2 for x, y in zip(edges[:-1], edges[1:], strict=True)]
    width = edges[1] - edges[0]
    c.bar(mids, plot.observed, width=width, color="#e6b0aa", label="observed")
    c.step(edges, plot.expected + plot.expected[-1:], where="post", color="#444", label="expected")
    c.set_title("histogram vs expected counts", fontsize=9)
    c.legend(fontsize=7)
    for ax in (a, b, c):
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    return _data_uri(fig)


def error_map_figure(x: list[float], err: list[float], nan_x: list[float], title: str) -> str:
    """Activation accuracy: error (ULPs) over the input range, NaN inputs marked."""
    fig, ax = plt.subplots(figsize=(8, 2.8))
    ax.plot(x, err, ".", ms=2, color="#2c3e50", label="|error| (ulp)")
    if nan_x:
        ax.plot(nan_x, [0] * len(nan_x), "x", color="#c0392b", label="NaN/inf")
    ax.set_xscale("symlog")
    ax.set_yscale("symlog")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _data_uri(fig)


def depth_figure(fits: list[dict], title: str) -> str:
    """Observed std per layer (with standard errors) against the expected curve, one series per rule."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for i, f in enumerate(fits):
        color = f"C{i % 10}"
        ax.errorbar(f["layers"], f["observed_std"], yerr=f.get("stderr") or None, fmt="o", ms=4, color=color,
                    label=f"{f['rule']} observed")
        ax.plot(f["layers"], f["expected_std"], "-", color=color, alpha=0.6, label=f"{f['rule']} expected")
    ax.set_xlabel("layer_id", fontsize=8)
    ax.set_ylabel("std", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    ax.set_title(title, fontsize=9)
    return _data_uri(fig)
