"""Finite samples sorted once, shared by every test of the battery.

:class:`SortedSample` holds the finite float64 values of one sample in ascending order, either as the sorted array
(:meth:`SortedSample.of_array`) or, for a 16-bit sample, as its distinct values with their counts
(:meth:`SortedSample.of_sixteen_bit`: a histogram of the bit patterns, no float64 sort at all). Both forms answer
the same questions - order statistics, counts below or above a threshold, distinct values, quantiles, histograms -
and every answer equals what the straightforward computation on the unsorted values gives (``np.quantile``'s
default ``'linear'`` method, ``np.histogram`` with explicit edges, ``np.unique``, ``x <= t`` counts), exactly.

:func:`ks_distance` is the two-sided Kolmogorov-Smirnov distance of a sorted sample against a cdf, the same number
``scipy.stats.kstest`` computes, with the cdf evaluated at a fraction of the points (see its docstring).
"""

from __future__ import annotations

import numpy as np

#: The cdf is evaluated exactly at every BLOCK-th order statistic first; see :func:`ks_distance`.
BLOCK = 16
#: Slack for float rounding when the cdf at the block ends bounds the cdf inside a block: far above any rounding
#: (values are in [0, 1], so 1e-15 at most) and far below a block's width in probability (BLOCK / n).
BRACKET_SLACK = 1e-9


class SortedSample:
    """The finite float64 values of a sample, ascending: ``values`` with ``counts`` (None: each value once)."""

    def __init__(self, values: np.ndarray, counts: np.ndarray | None = None):
        self.values = values
        self.counts = counts
        self._cum = None if counts is None else np.cumsum(counts)
        self.n = int(values.size if counts is None else self._cum[-1] if counts.size else 0)

    @classmethod
    def of_array(cls, x: np.ndarray) -> SortedSample:
        """Sort finite float64 values ``x`` (a copy; ``x`` is untouched)."""
        return cls(np.sort(np.asarray(x, dtype=np.float64).ravel()))

    @classmethod
    def of_sixteen_bit(cls, samples: np.ndarray) -> SortedSample:
        """The finite values of a float16 or bfloat16 array, counted by bit pattern.

        Non-finite values are left out; -0.0 and +0.0 are one value (0.0), as they are for float64 comparisons.
        """
        samples = np.ascontiguousarray(samples)
        if samples.dtype.itemsize != 2:
            raise ValueError(f"of_sixteen_bit needs a 16-bit float array, not {samples.dtype}")
        bit_counts = np.bincount(samples.view(np.uint16).ravel(), minlength=1 << 16)
        present = np.flatnonzero(bit_counts)
        with np.errstate(invalid="ignore"):
            vals = present.astype(np.uint16).view(samples.dtype).astype(np.float64)
        keep = np.isfinite(vals)
        vals, cnts = vals[keep], bit_counts[present[keep]]
        uniq, inverse = np.unique(vals, return_inverse=True)  # merges -0.0 and +0.0
        return cls(uniq, np.bincount(inverse, weights=cnts, minlength=uniq.size).astype(np.int64))

    # -- the sample as values ------------------------------------------------------------------------------------

    def array(self) -> np.ndarray:
        """Every value, ascending (expands a counted sample)."""
        return self.values if self.counts is None else np.repeat(self.values, self.counts)

    def at(self, k) -> np.ndarray:
        """The order statistics with 0-based ranks ``k`` (negative ranks count from the end, as in indexing)."""
        k = np.asarray(k, dtype=np.intp)
        if self.counts is None:
            return self.values[k]
        k = np.where(k < 0, k + self.n, k)
        return self.values[np.searchsorted(self._cum, k, side="right")]

    def smallest(self, k: int) -> np.ndarray:
        return self.at(np.arange(k))

    def largest(self, k: int) -> np.ndarray:
        return self.at(np.arange(self.n - k, self.n))

    def unique_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct values (ascending; -0.0 equals 0.0) and how often each occurs."""
        if self.counts is not None:
            return self.values, self.counts
        s = self.values
        if s.size == 0:
            return s, np.zeros(0, dtype=np.int64)
        starts = np.concatenate(([0], np.flatnonzero(s[1:] != s[:-1]) + 1))
        return s[starts], np.diff(np.append(starts, s.size))

    @property
    def distinct(self) -> int:
        """Number of distinct values: ``np.unique(x).size``."""
        if self.counts is not None:
            return int(self.values.size)
        s = self.values
        return int(np.count_nonzero(s[1:] != s[:-1]) + 1) if s.size else 0

    # -- counts ----------------------------------------------------------------------------------------------------

    def count_below(self, t: float, inclusive: bool) -> int:
        """Number of values ``<= t`` (inclusive) or ``< t``."""
        i = int(np.searchsorted(self.values, t, side="right" if inclusive else "left"))
        if self.counts is None:
            return i
        return int(self._cum[i - 1]) if i else 0

    def count_above(self, t: float, inclusive: bool) -> int:
        """Number of values ``>= t`` (inclusive) or ``> t``."""
        return self.n - self.count_below(t, not inclusive)

    def _cum_below(self, edges: np.ndarray, side: str) -> np.ndarray:
        i = np.searchsorted(self.values, edges, side=side)
        if self.counts is None:
            return i
        return np.where(i > 0, self._cum[np.maximum(i - 1, 0)], 0)

    def histogram(self, edges: np.ndarray) -> np.ndarray:
        """``np.histogram(x, edges)[0]``: bins ``[a, b)``, the last one ``[a, b]``, values outside dropped."""
        edges = np.asarray(edges, dtype=np.float64)
        cum = np.concatenate((self._cum_below(edges[:-1], "left"), self._cum_below(edges[-1:], "right")))
        return np.diff(cum)

    def quantile(self, probs) -> np.ndarray:
        """``np.quantile(x, probs)`` with its default ``'linear'`` method, bit for bit (numpy's index and lerp)."""
        q = np.asarray(probs, dtype=np.float64)
        n = self.n
        virtual = (n - 1) * q
        prev = np.floor(virtual)
        nxt = prev + 1
        above = virtual >= n - 1
        prev[above] = -1
        nxt[above] = -1
        below = virtual < 0
        prev[below] = 0
        nxt[below] = 0
        prev_i, next_i = prev.astype(np.intp), nxt.astype(np.intp)
        gamma = np.asarray(virtual - prev_i, dtype=np.float64)
        a, b = self.at(prev_i), self.at(next_i)
        diff_b_a = b - a
        out = np.add(a, diff_b_a * gamma)
        np.subtract(b, diff_b_a * (1 - gamma), out=out, where=gamma >= 0.5)
        return out


def ks_distance(s: np.ndarray, cdf) -> float:
    """Two-sided KS distance ``max_i max(i/n - F(s_i), F(s_i) - (i-1)/n)`` of the ascending sample ``s``.

    The value equals ``scipy.stats.kstest(s, cdf).statistic`` exactly: the same float64 expressions at every point.
    It is computed with ``cdf`` evaluated at every :data:`BLOCK`-th point first: since a cdf is non-decreasing,
    the values at a block's ends bound both differences inside the block, and only the blocks whose bound reaches
    the largest difference found so far are evaluated point by point (typically a few dozen blocks). A cdf that is
    not non-decreasing at the block ends, or a small sample, is evaluated at every point.
    """
    n = s.size
    ranks = np.arange(n)
    if n < 64 * BLOCK:
        return _ks_exact(s, ranks, np.asarray(cdf(s), dtype=np.float64), n)
    knots = np.append(np.arange(0, n, BLOCK), n - 1) if (n - 1) % BLOCK else np.arange(0, n, BLOCK)
    fk = np.asarray(cdf(s[knots]), dtype=np.float64)
    if not np.all(np.diff(fk) >= 0):  # NaN included
        return _ks_exact(s, ranks, np.asarray(cdf(s), dtype=np.float64), n)
    best = _ks_exact(s, knots, fk, n)
    # Upper bounds inside block j (ranks knots[j]+1 .. knots[j+1]-1): D+ <= (knots[j+1]) / n - F(knots[j]),
    # D- <= F(knots[j+1]) - (knots[j] + 1) / n, each widened by the slack.
    lo, hi = knots[:-1], knots[1:]
    up = np.maximum(hi / n - fk[:-1], fk[1:] - (lo + 1) / n) + BRACKET_SLACK
    cand = np.flatnonzero((up >= best) & (hi - lo > 1))
    if cand.size:
        inner = lo[cand, None] + np.arange(1, BLOCK)
        inner = inner[inner < hi[cand, None]]
        best = max(best, _ks_exact(s, inner, np.asarray(cdf(s[inner]), dtype=np.float64), n))
    return best


def _ks_exact(s: np.ndarray, ranks: np.ndarray, f: np.ndarray, n: int) -> float:
    """Largest KS difference at 0-based ``ranks`` with cdf values ``f`` (scipy's arithmetic: (r+1)/n - F, F - r/n)."""
    d_plus = ((ranks + 1.0) / n - f).max()
    d_minus = (f - ranks.astype(np.float64) / n).max()
    return float(d_plus if d_plus > d_minus else d_minus)
