"""Exact and statistical tests of reproducibility and independence between random arrays.

Knows no framework: inputs are numpy arrays (any dtype, bfloat16 included), outputs are
:class:`~conformance.stats.verdict.Verdict` objects.

* :func:`bitwise_equal` (exact): two draws are the same bits, same dtype and shape.
* :func:`distinct` (exact): two draws are not copies: not bitwise equal and at most a given
  fraction of positions agree (chance agreement of independent draws in a coarse dtype is small
  but not zero: about 0.3% for bfloat16 on [0, 1)).
* :func:`correlation` (statistical): Pearson correlation consistent with 0. Under independence
  ``atanh(r) sqrt(n - 3)`` is standard normal (Fisher 1915), i.e. the null sd of ``r`` is
  about ``1/sqrt(n)``; two-sided p-value at the check's alpha.
* :func:`shifted_copy` (exact): the first ``run`` values of ``y`` appear as a contiguous run in
  ``x`` (overlapping streams, a counter reused with an offset).
* :func:`stuck_positions` (exact): over ``k`` repeated draws, no element index holds the same value
  every time (candle #1931: element N/2 of even-length tensors always 0).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from .verdict import Verdict


def _bits(a) -> np.ndarray:
    """The raw bytes of ``a`` in C order."""
    return np.ascontiguousarray(np.asarray(a)).view(np.uint8).ravel()


def _float(a) -> np.ndarray:
    return np.asarray(a).astype(np.float64).ravel()


def _same_elements(a, b) -> np.ndarray:
    """Elementwise bitwise equality of two same-shape arrays (NaN payloads included)."""
    a, b = np.ascontiguousarray(np.asarray(a)), np.ascontiguousarray(np.asarray(b))
    width = a.dtype.itemsize
    view = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(width)
    if view is None:
        return _bits(a).reshape(-1, width).__eq__(_bits(b).reshape(-1, width)).all(axis=1)
    return a.view(view).ravel() == b.view(view).ravel()


def bitwise_equal(a, b, what: str) -> Verdict:
    """Exact: ``a`` and ``b`` are the same bits (and the same dtype and shape)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return Verdict("bitwise_equal", False,
                       f"{what}: shapes/dtypes differ: {a.shape} {a.dtype} vs {b.shape} {b.dtype}", n=int(a.size),
                       observed={"first": [list(a.shape), str(a.dtype)], "second": [list(b.shape), str(b.dtype)]})
    same = _same_elements(a, b)
    if same.all():
        return Verdict("bitwise_equal", True, f"{what}: all {a.size} elements bitwise equal", n=int(a.size))
    bad = np.flatnonzero(~same)
    i = int(bad[0])
    fa, fb = a.ravel()[i], b.ravel()[i]
    return Verdict("bitwise_equal", False,
                   f"{what}: {bad.size} of {a.size} elements differ; first at flat index {i}: {fa!r} vs {fb!r}",
                   n=int(a.size), observed={"mismatches": int(bad.size), "first_index": i})


def distinct(a, b, what: str, max_equal_fraction: float = 0.1) -> Verdict:
    """Exact: ``a`` and ``b`` are not copies (not bitwise equal, few positions agree)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return Verdict("distinct", True, f"{what}: shapes/dtypes differ ({a.shape} {a.dtype} vs {b.shape} {b.dtype})",
                       n=int(a.size))
    if a.size == 0:
        return Verdict("distinct", False, f"{what}: empty arrays cannot be told apart", n=0)
    same = _same_elements(a, b)
    frac = float(same.mean())
    ok = frac <= max_equal_fraction and not same.all()
    head = ", ".join(repr(v) for v in a.ravel()[:3])
    msg = (f"{what}: {int(same.sum())} of {a.size} positions equal ({frac:.2%}; allowed {max_equal_fraction:.0%})"
           + ("" if ok else f"; identical values, e.g. [{head}, ...]"))
    return Verdict("distinct", ok, msg, n=int(a.size), statistic=frac,
                   observed={"equal_fraction": frac}, expected={"max_equal_fraction": max_equal_fraction})


def correlation(x, y, what: str, alpha: float) -> Verdict:
    """Statistical: Pearson r of ``x`` and ``y`` consistent with 0 (Fisher z, two-sided, at ``alpha``)."""
    x, y = _float(x), _float(y)
    n = min(x.size, y.size)
    x, y = x[:n], y[:n]
    if n < 4 or np.std(x) == 0 or np.std(y) == 0:
        return Verdict("correlation", False, f"{what}: correlation undefined (n={n}, a constant input)", n=int(n),
                       alpha=alpha, pvalue=0.0)
    r = float(np.corrcoef(x, y)[0, 1])
    r_c = min(max(r, -1 + 1e-16), 1 - 1e-16)
    z = math.atanh(r_c) * math.sqrt(n - 3)
    p = float(2 * sps.norm.sf(abs(z)))
    ok = p >= alpha
    null_sd = 1 / math.sqrt(n - 3)
    return Verdict("correlation", ok,
                   f"{what}: Pearson r = {r:+.4g} over n = {n} (null sd {null_sd:.2g}, Fisher z = {z:+.3g}, "
                   f"p = {p:.3g}, alpha {alpha:g})" + ("" if ok else ": the two draws are correlated"),
                   n=int(n), statistic=r, pvalue=p, alpha=alpha, effect={"r": r},
                   observed={"r": r}, expected={"r": 0.0, "null_sd": null_sd})


def shifted_copy(x, y, what: str, run: int = 32) -> Verdict:
    """Exact: the first ``run`` values of ``y`` do not reappear contiguously anywhere in ``x``."""
    xs, ys = np.asarray(x).ravel(), np.asarray(y).ravel()
    if ys.size < run or xs.size < run:
        return Verdict("shifted_copy", True, f"{what}: too short to test for a shifted copy", n=int(xs.size))
    xb = np.ascontiguousarray(xs)
    needle = np.ascontiguousarray(ys[:run])
    starts = np.flatnonzero(_same_elements(xb, np.full_like(xb, needle[0])))
    starts = starts[starts + run <= xb.size]
    for s in starts[:10_000]:
        if _same_elements(xb[s:s + run], needle).all():
            return Verdict("shifted_copy", False,
                           f"{what}: the first {run} values of the second draw equal the first draw from index {s} "
                           "on (overlapping random streams)", n=int(xs.size), observed={"offset": int(s)})
    return Verdict("shifted_copy", True, f"{what}: no run of {run} values of the second draw occurs in the first",
                   n=int(xs.size))


def stuck_positions(draws, what: str) -> Verdict:
    """Exact: over repeated draws (axis 0), every element index takes at least two values."""
    d = np.asarray(draws)
    k = d.shape[0]
    flat = d.reshape(k, -1)
    if k < 2:
        raise ValueError("stuck_positions needs at least two draws")
    same = np.ones(flat.shape[1], bool)
    for row in flat[1:]:
        same &= _same_elements(row, flat[0])
    stuck = np.flatnonzero(same)
    if stuck.size == 0:
        return Verdict("stuck_positions", True, f"{what}: every one of {flat.shape[1]} positions varies over {k} draws",
                       n=int(flat.size))
    shown = ", ".join(f"{int(i)} (= {flat[0, i]!r})" for i in stuck[:5])
    return Verdict("stuck_positions", False,
                   f"{what}: {stuck.size} of {flat.shape[1]} positions hold the same value in all {k} draws: "
                   f"{shown}" + (" ..." if stuck.size > 5 else ""),
                   n=int(flat.size), observed={"stuck": [int(i) for i in stuck[:20]], "count": int(stuck.size)})
