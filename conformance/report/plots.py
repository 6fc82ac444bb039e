"""Figures for the HTML report, drawn with matplotlib from the typed attachments in results.json
(:mod:`conformance.report.attachments`) and returned as inline ``data:`` URIs (the report stays one
self-contained file).

A distribution plot has two rows. The top row is the familiar picture (ECDF against the expected CDF, QQ plot,
histogram against the expected counts); at n = 10^6 a 1% error in the std is invisible there. The bottom row is
the same three views as differences from the reference, computed by :func:`residuals` (pure, tested):

* ECDF − CDF at the 49 sample quantiles in standard errors, ``(p − F(q̂_p)) / sqrt(p(1−p)/n)``, with the band
  that holds all 49 points at the check's alpha (Bonferroni) and the KS (DKW) band at that alpha;
* the QQ deviation ``q̂_p − q_p`` in data units, with the same pointwise band mapped through the reference
  quantile function (a 1% std error is a straight line of slope 0.01);
* histogram residuals ``(observed − expected) / sqrt(expected)`` with the band for all bins at alpha.

Every text that comes from results.json (check ids, references, rule names) goes through :func:`plain`, so
matplotlib never reads it as mathtext (``$\\cmd{$`` in a check id is shown as written).
"""

from __future__ import annotations

import base64
import functools
import io
import math
import re
import textwrap
import warnings
from dataclasses import dataclass

import matplotlib
import numpy as np
from scipy.special import ndtr, ndtri

from .attachments import DistributionPlot

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.ticker import LogFormatterSciNotation  # noqa: E402

#: Resolution of the inline PNGs; with the figure widths below, text of 9 pt stays readable at page width.
DPI = 120
#: The design's per-test alpha, used when the verdict a plot illustrates carries none.
DEFAULT_ALPHA = 1e-7
FONT = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 9, "ytick.labelsize": 9,
        "legend.fontsize": 8.5, "figure.titlesize": 10.5, "text.usetex": False}
OBSERVED, EXPECTED, BAND, KS_BAND = "#c0392b", "#444444", "#d5e8d4", "#7f8c8d"
_P_EDGE = 1e-15  # probabilities are clipped to [_P_EDGE, 1 - _P_EDGE] before the probit


def plain(text: object, width: int | None = None, max_lines: int = 4) -> str:
    """``text`` as matplotlib shows it literally: every ``$`` escaped (no mathtext), control characters as spaces,
    a label that starts with ``_`` (which a legend would hide) guarded; with ``width``, lines wrapped at ``width``
    characters and at most ``max_lines`` of them (the last one ending in … when text was left out)."""
    s = "".join(c if c == "\n" or c.isprintable() else " " for c in str(text))
    if width:
        lines = [w for line in s.splitlines() or [""]
                 for w in textwrap.wrap(line, width, break_long_words=True, break_on_hyphens=False) or [""]]
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            lines[-1] = lines[-1][:width - 1] + "…"
        s = "\n".join(lines)
    s = s.replace("$", r"\$")
    return " " + s if s.startswith("_") else s


def _floats(values, name: str) -> np.ndarray:
    try:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"distribution_plot field {name!r} is not a list of numbers ({exc})") from None


def _z(tail: float) -> float:
    """The standard normal quantile that leaves ``tail`` above it."""
    return float(-ndtri(min(max(tail, 1e-300), 0.5)))


@dataclass(frozen=True)
class Residuals:
    """The bottom row of a distribution plot as arrays (see the module docstring); ``n`` and ``alpha`` are those the
    bands use (``n_estimated`` when ``n`` was not given and the histogram's total stands in for it)."""

    n: int
    alpha: float
    n_estimated: bool
    p: np.ndarray  # the quantile levels
    ecdf_z: np.ndarray  # (p − F(sample quantile)) / sqrt(p(1−p)/n)
    ecdf_band: float  # |ecdf_z| above this at any point: significant at alpha (Bonferroni over the points)
    ks_band: np.ndarray  # the KS (DKW) band at alpha, in the same standard-error units, per point
    qq_x: np.ndarray  # reference quantiles
    qq_dev: np.ndarray  # sample quantile − reference quantile
    qq_lo: np.ndarray  # the pointwise band of qq_dev (same alpha as ecdf_band), lower and upper edge
    qq_hi: np.ndarray
    hist_x: np.ndarray  # bin centres
    hist_z: np.ndarray  # (observed − expected) / sqrt(expected); nan where nothing is expected
    hist_band: float  # Bonferroni over the bins at alpha

    @property
    def ecdf_outside(self) -> bool:
        return bool(np.nanmax(np.abs(self.ecdf_z), initial=0.0) > self.ecdf_band)

    @property
    def qq_outside(self) -> bool:
        return bool(np.any((self.qq_dev < self.qq_lo) | (self.qq_dev > self.qq_hi)))

    @property
    def hist_outside(self) -> bool:
        return bool(np.nanmax(np.abs(self.hist_z), initial=0.0) > self.hist_band)


def _cdf_table(plot: DistributionPlot) -> tuple[np.ndarray, np.ndarray]:
    """The reference CDF as a monotone table ``(x, probit(F(x)))``: the quantile pairs and the CDF grid of the
    attachment together. Interpolating linearly on the probit scale is exact for a normal reference and keeps the
    tails of bell-shaped ones accurate (linear interpolation of F itself is off by several standard errors there)."""
    x = np.concatenate([_floats(plot.ref_q, "ref_q"), _floats(plot.cdf_x, "cdf_x")])
    y = np.concatenate([_floats(plot.probs, "probs"), _floats(plot.cdf_y, "cdf_y")])
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2:
        raise ValueError("distribution_plot has fewer than two finite reference points")
    order = np.lexsort((y, x))
    y = np.maximum.accumulate(np.clip(y[order], _P_EDGE, 1 - _P_EDGE))
    return x[order], ndtri(y)


def residuals(plot: DistributionPlot, n: int | None = None, alpha: float | None = None) -> Residuals:
    """The differences from the reference of ``plot`` (a ``distribution_plot`` attachment) for a sample of size
    ``n`` tested at ``alpha`` (the verdict's; defaults: the histogram's total and :data:`DEFAULT_ALPHA`)."""
    p = _floats(plot.probs, "probs")
    sample_q = _floats(plot.sample_q, "sample_q")
    ref_q = _floats(plot.ref_q, "ref_q")
    edges = _floats(plot.edges, "edges")
    observed = _floats(plot.observed, "observed")
    expected = _floats(plot.expected, "expected")
    if not (p.size == sample_q.size == ref_q.size) or p.size == 0:
        raise ValueError(f"distribution_plot: probs, sample_q and ref_q differ in length "
                         f"({p.size}, {sample_q.size}, {ref_q.size})")
    if not (edges.size == observed.size + 1 == expected.size + 1) or edges.size < 2:
        raise ValueError(f"distribution_plot: {edges.size} edges for {observed.size} observed and "
                         f"{expected.size} expected counts")
    if np.any((p <= 0) | (p >= 1)):
        raise ValueError("distribution_plot: probs outside (0, 1)")
    estimated = not n or n <= 0
    n = int(round(np.nansum(observed))) if estimated else int(n)
    n = max(n, 1)
    alpha = float(alpha) if alpha and 0 < alpha < 1 else DEFAULT_ALPHA
    xs, zs = _cdf_table(plot)

    def cdf(q: np.ndarray) -> np.ndarray:
        return ndtr(np.interp(q, xs, zs))

    def quantile(prob: np.ndarray) -> np.ndarray:
        return np.interp(ndtri(np.clip(prob, _P_EDGE, 1 - _P_EDGE)), zs, xs)

    se = np.sqrt(p * (1 - p) / n)
    ecdf_z = (p - cdf(sample_q)) / se
    ecdf_band = _z(alpha / (2 * p.size))
    ks_band = math.sqrt(math.log(2 / alpha) / (2 * n)) / se
    # the pointwise band in data units: reference quantiles at p -+ band standard errors, minus the quantile at p
    at_p = quantile(p)
    qq_lo = quantile(p - ecdf_band * se) - at_p
    qq_hi = quantile(p + ecdf_band * se) - at_p
    with np.errstate(divide="ignore", invalid="ignore"):
        hist_z = np.where(expected > 0, (observed - expected) / np.sqrt(np.where(expected > 0, expected, 1)), np.nan)
    return Residuals(n=n, alpha=alpha, n_estimated=estimated, p=p, ecdf_z=ecdf_z, ecdf_band=ecdf_band,
                     ks_band=ks_band, qq_x=ref_q, qq_dev=sample_q - ref_q, qq_lo=qq_lo, qq_hi=qq_hi,
                     hist_x=(edges[:-1] + edges[1:]) / 2, hist_z=hist_z,
                     hist_band=_z(alpha / (2 * max(int(np.sum(expected > 0)), 1))))


def _closing(draw):
    """``draw``, closing the figures it opened when it raises (a bad attachment must not leak figures)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        before = set(plt.get_fignums())
        try:
            return draw(*args, **kwargs)
        except BaseException:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
            raise

    return wrapper


def _new_figure(**kwargs) -> Figure:
    """A figure on an Agg canvas, outside pyplot (whose figure manager costs time and is of no use here)."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _data_uri(fig) -> str:
    buf = io.BytesIO()
    with warnings.catch_warnings():  # a check id in a script the font lacks is drawn as boxes, not warned about
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _verdict_note(ax, outside: bool, text: str) -> None:
    ax.text(0.02, 0.97, text, transform=ax.transAxes, va="top", ha="left", fontsize=8.5,
            color=OBSERVED if outside else "#1e8449",
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})


@_closing
def distribution_figure(plot: DistributionPlot, title: str, n: int | None = None, alpha: float | None = None) -> str:
    """ECDF against the expected CDF, a QQ plot and a histogram with the expected counts; below each, its
    difference from the reference with the band at ``alpha`` for a sample of ``n`` (:func:`residuals`)."""
    res = residuals(plot, n, alpha)
    cdf_x, cdf_y = _floats(plot.cdf_x, "cdf_x"), _floats(plot.cdf_y, "cdf_y")
    edges, expected = _floats(plot.edges, "edges"), _floats(plot.expected, "expected")
    heading = plain(title, width=130, max_lines=3)
    lines = heading.count("\n") + 2
    # a fixed layout (constrained layout costs as much again as drawing): the heading's lines, two rows of panels
    # with their titles and axis labels, the bottom row's legends under it
    height = 6.4 + 0.18 * lines
    with plt.rc_context(FONT):
        fig = _new_figure(figsize=(12, height))
        axes = fig.subplots(2, 3, gridspec_kw={"height_ratios": [1, 1.1]})
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.95 / height, top=1 - (0.45 + 0.18 * lines) / height,
                            wspace=0.3, hspace=0.4)
        (a, b, c), (ra, rb, rc) = axes
        a.plot(cdf_x, cdf_y, color=EXPECTED, label="expected CDF")
        a.plot(res.qq_x + res.qq_dev, res.p, "o", color=OBSERVED, ms=3, label="observed ECDF (quantiles)")
        a.set_title("ECDF vs expected CDF", y=1.0)
        a.legend(loc="upper left")
        lo = float(np.nanmin(np.concatenate([res.qq_x, res.qq_x + res.qq_dev])))
        hi = float(np.nanmax(np.concatenate([res.qq_x, res.qq_x + res.qq_dev])))
        b.plot([lo, hi], [lo, hi], color="#999", lw=1)
        b.plot(res.qq_x, res.qq_x + res.qq_dev, ".", color=OBSERVED, ms=4)
        b.set_xlabel("expected quantile")
        b.set_ylabel("observed quantile")
        b.set_title("QQ plot", y=1.0)
        width = float(edges[1] - edges[0])
        c.bar(res.hist_x, _floats(plot.observed, "observed"), width=width, color="#e6b0aa", label="observed")
        c.step(edges, np.append(expected, expected[-1:]), where="post", color=EXPECTED, label="expected")
        c.set_title("Histogram vs expected counts", y=1.0)
        c.legend(loc="upper right")

        ra.fill_between(res.p, -res.ecdf_band, res.ecdf_band, color=BAND, label=f"band at α={res.alpha:.2g}")
        ra.plot(res.p, res.ks_band, "--", color=KS_BAND, lw=1, label="KS band")
        ra.plot(res.p, -res.ks_band, "--", color=KS_BAND, lw=1)
        ra.axhline(0, color=EXPECTED, lw=0.8)
        ra.plot(res.p, res.ecdf_z, "o-", color=OBSERVED, ms=3, lw=1.2, label="ECDF − CDF")
        ra.set_ylim(*_limits(res.ecdf_z, res.ecdf_band))
        ra.set_xlabel("quantile level p")
        ra.set_ylabel("standard errors")
        ra.set_title("ECDF − expected CDF", y=1.0)
        ra.legend(loc="upper center", bbox_to_anchor=(0.5, -0.19), ncols=3, fontsize=8, frameon=False)
        zmax = float(np.nanmax(np.abs(res.ecdf_z), initial=0.0))
        _verdict_note(ra, res.ecdf_outside, f"max |z| {zmax:.1f}, band {res.ecdf_band:.1f}"
                                            + (": outside" if res.ecdf_outside else ""))

        rb.fill_between(res.qq_x, res.qq_lo, res.qq_hi, color=BAND, label="band")
        rb.axhline(0, color=EXPECTED, lw=0.8)
        rb.plot(res.qq_x, res.qq_dev, "o-", color=OBSERVED, ms=3, lw=1.2, label="observed − expected")
        rb.set_ylim(*_limits(res.qq_dev, float(np.nanmax(np.abs(np.concatenate([res.qq_lo, res.qq_hi])),
                                                         initial=0.0))))
        rb.set_xlabel("expected quantile")
        rb.set_ylabel("quantile difference")
        rb.set_title("QQ deviation", y=1.0)
        rb.legend(loc="upper center", bbox_to_anchor=(0.5, -0.19), ncols=2, fontsize=8, frameon=False)
        _verdict_note(rb, res.qq_outside, "outside the band" if res.qq_outside else "inside the band")

        rc.fill_between(edges, -res.hist_band, res.hist_band, color=BAND, label="band")
        rc.axhline(0, color=EXPECTED, lw=0.8)
        rc.bar(res.hist_x, np.nan_to_num(res.hist_z), width=width * 0.9,
               color=[OBSERVED if abs(z) > res.hist_band else "#e6b0aa" for z in np.nan_to_num(res.hist_z)])
        rc.set_ylim(*_limits(res.hist_z, res.hist_band))
        rc.set_xlabel("value")
        rc.set_ylabel("(obs − exp) / √exp")
        rc.set_title("Histogram residuals", y=1.0)
        hmax = float(np.nanmax(np.abs(res.hist_z), initial=0.0))
        _verdict_note(rc, res.hist_outside, f"max |z| {hmax:.1f}, band {res.hist_band:.1f}"
                                            + (": outside" if res.hist_outside else ""))
        n_text = f"n ≈ {res.n:,} (histogram total)" if res.n_estimated else f"n = {res.n:,}"
        sub = f"{plot.reference} · {plot.test or 'gof'} · {n_text} · bands at α = {res.alpha:.2g}"
        fig.suptitle(heading + "\n" + plain(sub, width=130, max_lines=1), y=1 - 0.1 / height, va="top")
        return _data_uri(fig)


def _limits(values: np.ndarray, band: float) -> tuple[float, float]:
    """y limits showing the band and every finite value, with room at the top for the panel's note."""
    finite = np.abs(values[np.isfinite(values)])
    top = max(float(finite.max()) if finite.size else 0.0, band, 1e-12)
    return -1.12 * top, 1.45 * top


#: Superscript digits and minus for tick labels written as plain text.
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_MATH_LABEL = re.compile(r"\$\\mathdefault\{(.*)\}\$")
_MATH_POWER = re.compile(r"\^\{(-?\d+)\}")


def plain_tick_label(label: str) -> str:
    """A tick label of matplotlib's log formatters (``$\\mathdefault{-10^{3}}$``, ``$\\mathdefault{2\\times10^{1}}$``)
    as the same text without mathtext (``−10³``, ``2×10¹``): parsing mathtext costs more than drawing the figure.
    A label of any other form is returned as it is."""
    m = _MATH_LABEL.fullmatch(label)
    if not m:
        return label
    body = _MATH_POWER.sub(lambda e: e.group(1).translate(_SUPERSCRIPT), m.group(1).replace("\\times", "×"))
    if any(c in body for c in "\\{}^_$"):
        return label
    return body.replace("-", "\N{MINUS SIGN}")  # mathtext draws a minus sign, not a hyphen


class PlainLogFormatter(LogFormatterSciNotation):
    """:class:`~matplotlib.ticker.LogFormatterSciNotation` (the symlog axes' default: the same ticks labelled) with
    its labels as plain text (:func:`plain_tick_label`)."""

    def __call__(self, x, pos=None):
        return plain_tick_label(super().__call__(x, pos))


@_closing
def error_map_figure(x: list[float], err: list[float], nan_x: list[float], title: str) -> str:
    """Activation accuracy: error (ULPs) over the input range, NaN inputs marked."""
    heading = plain(title, width=120, max_lines=2)
    lines = heading.count("\n") + 1
    height = 3.4
    with plt.rc_context(FONT), np.errstate(over="ignore"):  # symlog limits near the float range overflow exp
        fig = _new_figure(figsize=(10, height))
        ax = fig.subplots()
        ax.plot(_floats(x, "x"), _floats(err, "err"), ".", ms=3, color="#2c3e50", label="|error| (ulp)")
        if nan_x:
            ax.plot(_floats(nan_x, "nan_x"), [0] * len(nan_x), "x", color=OBSERVED, label="NaN/inf")
        ax.set_xscale("symlog")
        ax.set_yscale("symlog")
        ax.xaxis.set_major_formatter(PlainLogFormatter(10))
        ax.yaxis.set_major_formatter(PlainLogFormatter(10))
        ax.set_xlabel("input x")
        ax.set_ylabel("|error| (ulp)")
        ax.set_title(heading)
        ax.legend()
        # a layout computed from the tick labels' widths (constrained layout costs as much again as drawing)
        left, right = _tick_label_room(fig, ax)
        fig.subplots_adjust(left=(left + 0.4) / 10, right=1 - (right + 0.06) / 10, bottom=0.6 / height,
                            top=1 - (0.12 + 0.19 * lines) / height)
        return _data_uri(fig)


def _tick_label_room(fig, ax) -> tuple[float, float]:
    """The room in inches that ``ax``'s tick labels need left of the axes (the widest y label, or half the first x
    label) and right of it (half the last x label), measured as drawn without laying out the figure."""
    renderer = fig.canvas.get_renderer()

    def widths(axis, size: float) -> list[float]:
        lo, hi = sorted(axis.get_view_interval())
        locs = [v for v in axis.get_majorticklocs() if lo <= v <= hi]
        prop = FontProperties(size=size)
        return [renderer.get_text_width_height_descent(s, prop, ismath=False)[0] / fig.dpi if s else 0.0
                for s in axis.get_major_formatter().format_ticks(locs)]

    ys = widths(ax.yaxis, plt.rcParams["ytick.labelsize"])
    xs = widths(ax.xaxis, plt.rcParams["xtick.labelsize"])
    return max([*ys, xs[0] / 2 - 0.4] if xs else ys or [0.0]), (xs[-1] / 2 if xs else 0.0)


@_closing
def depth_figure(fits: list[dict], title: str) -> str:
    """Observed std per layer (with standard errors) against the expected curve, one series per rule."""
    with plt.rc_context(FONT):
        fig = _new_figure(figsize=(9, 3.8), layout="constrained")
        ax = fig.subplots()
        for i, f in enumerate(fits):
            color = f"C{i % 10}"
            ax.errorbar(f["layers"], f["observed_std"], yerr=f.get("stderr") or None, fmt="o", ms=4, color=color,
                        label=plain(f["rule"], width=50, max_lines=1) + " observed")
            ax.plot(f["layers"], f["expected_std"], "-", color=color, alpha=0.6,
                    label=plain(f["rule"], width=50, max_lines=1) + " expected")
        ax.set_xlabel("layer_id")
        ax.set_ylabel("std")
        ax.legend(fontsize=8)
        ax.set_title(plain(title, width=110, max_lines=2))
        return _data_uri(fig)
