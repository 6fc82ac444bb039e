"""A compact picture of samples against a reference, for the report's plots (ECDF vs CDF, QQ,
histogram vs expected counts). A few hundred numbers per check, so results.json stays small
and the report never needs the samples themselves."""

from __future__ import annotations

import numpy as np

from .reference import DiscreteReference, Reference
from .sorted_sample import SortedSample

PROBS = np.linspace(0.01, 0.99, 49)
BINS = 30
CDF_POINTS = 41


def _round(a) -> list[float]:
    return [float(f"{v:.6g}") for v in np.asarray(a, dtype=np.float64)]


def _ref_quantiles(ref: Reference, probs: np.ndarray) -> np.ndarray:
    if isinstance(ref, DiscreteReference):
        idx = np.clip(np.searchsorted(ref.cumulative, probs), 0, ref.values.size - 1)
        return ref.values[idx]
    return ref.dist.ppf(probs)


def plot_summary(x: np.ndarray, ref: Reference, *, ordered: SortedSample | None = None) -> dict:
    """Quantiles (sample vs reference), a histogram with expected counts and the reference CDF.

    ``ordered`` (the values of ``x`` sorted, all finite) gives the same numbers without sorting again:
    ``np.quantile``'s linear method and ``np.histogram``'s bins, reproduced exactly.
    """
    if ordered is None:
        ordered = SortedSample.of_array(x) if np.isfinite(x).all() else None
    quantile = ordered.quantile if ordered is not None else (lambda q: np.quantile(x, q))
    lo, hi = quantile(np.array([0.001, 0.999]))
    rlo, rhi = _ref_quantiles(ref, np.array([0.001, 0.999]))
    lo, hi = float(min(lo, rlo)), float(max(hi, rhi))
    if not hi > lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, BINS + 1)
    observed = ordered.histogram(edges) if ordered is not None else np.histogram(x, edges)[0]
    if isinstance(ref, DiscreteReference):  # np.histogram counts [a, b) (the last bin [a, b]): a grid value on an
        cum = np.asarray(ref.cdf(np.nextafter(edges, -np.inf)), dtype=np.float64)  # edge belongs to the bin above it
        cum[-1] = ref.cdf(edges[-1])
    else:
        cum = np.asarray(ref.cdf(edges), dtype=np.float64)
    expected = np.diff(cum) * (x.size if ordered is None else ordered.n)
    grid = np.linspace(lo, hi, CDF_POINTS)
    return {
        "probs": _round(PROBS), "sample_q": _round(quantile(PROBS)), "ref_q": _round(_ref_quantiles(ref, PROBS)),
        "edges": _round(edges), "observed": [int(c) for c in observed], "expected": _round(expected),
        "cdf_x": _round(grid), "cdf_y": _round(ref.cdf(grid)), "reference": ref.name,
    }
