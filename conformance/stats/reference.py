"""Expected distributions as objects: cdf, exact moments, support, and rounding to a dtype.

A :class:`ContinuousReference` wraps a frozen ``scipy.stats`` distribution plus the
documented support (with open or closed ends). :meth:`ContinuousReference.rounded`
turns it into the exact :class:`DiscreteReference` a correct backend produces in a
16-bit dtype: the reference rounded to nearest, where mass that would round out of the
documented support goes to the nearest representable value inside it.

References are written from each scheme's *definition* (see ``conformance.specs``),
never from a framework's code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import stats

from .grids import finite_grid


@dataclass(frozen=True)
class Support:
    """Documented support ``[lower, upper]``; an open end is never attained."""

    lower: float = -math.inf
    upper: float = math.inf
    lower_open: bool = False
    upper_open: bool = False

    def contains(self, x: np.ndarray) -> np.ndarray:
        lo = x > self.lower if self.lower_open else x >= self.lower
        hi = x < self.upper if self.upper_open else x <= self.upper
        return lo & hi

    def describe(self) -> str:
        left = "(" if self.lower_open or math.isinf(self.lower) else "["
        right = ")" if self.upper_open or math.isinf(self.upper) else "]"
        return f"{left}{self.lower:g}, {self.upper:g}{right}"


class Reference:
    """Common interface of expected distributions (all numbers in float64)."""

    name: str
    support: Support
    discrete: bool = False

    @property
    def mean(self) -> float:
        raise NotImplementedError

    @property
    def var(self) -> float:
        raise NotImplementedError

    @property
    def std(self) -> float:
        return math.sqrt(self.var)

    @property
    def mu4(self) -> float:
        """Fourth central moment, needed for the exact standard error of the sample variance."""
        raise NotImplementedError

    def cdf(self, x):
        raise NotImplementedError

    def lower_tail(self, target: float) -> tuple[float, float]:
        """A threshold ``t`` with ``P(X <= t) = p`` close to ``target``: returns ``(t, p)``."""
        raise NotImplementedError

    def upper_tail(self, target: float) -> tuple[float, float]:
        """A threshold ``t`` with ``P(X >= t) = p`` close to ``target``: returns ``(t, p)``."""
        raise NotImplementedError


@dataclass(frozen=True)
class ContinuousReference(Reference):
    """A continuous distribution from ``scipy.stats`` with its documented support."""

    name: str
    dist: object = field(repr=False)  # frozen scipy.stats distribution
    support: Support = Support()
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def mean(self) -> float:
        return float(self.dist.mean())

    @property
    def var(self) -> float:
        return float(self.dist.var())

    @property
    def mu4(self) -> float:
        kurt = float(self.dist.stats(moments="k"))
        return (kurt + 3.0) * self.var**2

    def cdf(self, x):
        return self.dist.cdf(x)

    def lower_tail(self, target: float) -> tuple[float, float]:
        return float(self.dist.ppf(target)), target

    def upper_tail(self, target: float) -> tuple[float, float]:
        return float(self.dist.isf(target)), target

    def rounded(self, dtype: str) -> DiscreteReference:
        """The exact distribution of this reference rounded to nearest in a 16-bit ``dtype`` (cached)."""
        if dtype not in self._cache:
            self._cache[dtype] = self._rounded(dtype)
        return self._cache[dtype]

    def _rounded(self, dtype: str) -> DiscreteReference:
        grid = finite_grid(dtype)
        grid = grid[self.support.contains(grid)]
        if grid.size == 0:
            raise ValueError(f"no {dtype} value lies in the support {self.support.describe()} of {self.name}")
        mids = (grid[:-1] + grid[1:]) / 2.0
        # P(X <= mid) computed from the side where it is accurate: cdf below the median, 1 - sf above.
        median = float(self.dist.median())
        below = mids <= median
        cum = np.empty_like(mids)
        cum[below] = self.dist.cdf(mids[below])
        sf_above = self.dist.sf(mids[~below])
        edges_cdf = np.concatenate(([0.0], cum[below]))
        edges_sf = np.concatenate((sf_above, [0.0]))
        # probability of each cell: left cells by cdf differences, right cells by sf differences,
        # and the cell straddling the median from both sides.
        n_left = int(below.sum())
        probs = np.empty(grid.size)
        probs[:n_left] = np.diff(edges_cdf)
        probs[n_left + 1:] = -np.diff(edges_sf)
        left_edge = edges_cdf[-1]
        right_edge = edges_sf[0]
        probs[n_left] = max(0.0, 1.0 - left_edge - right_edge)
        # Narrow cells (tiny values near zero, the fine end of the grid): a cdf difference loses
        # everything to cancellation, so use density x width, accurate to O(width^2) there.
        widths = np.diff(np.concatenate(([-np.inf], mids, [np.inf])))
        with np.errstate(invalid="ignore"):
            approx = self.dist.pdf(grid) * widths
        narrow = np.isfinite(widths) & (approx < 1e-7)
        probs[narrow] = approx[narrow]
        probs = np.clip(probs, 0.0, None)
        keep = probs > 0
        toward_zero = self._toward_zero_probs(grid)[keep]
        return DiscreteReference(f"{self.name} rounded to {dtype}", grid[keep], probs[keep] / probs.sum(), self.support,
                                 toward_zero=toward_zero / toward_zero.sum())

    def _toward_zero_probs(self, grid: np.ndarray) -> np.ndarray:
        """P(this reference rounded TOWARD ZERO lands on each grid value): the alternative the chi-square's
        rounding-bias effect is measured against (:func:`conformance.stats.procedures.chi2_test`). The cell of c > 0
        is [c, next), of c < 0 (prev, c], of 0 (prev, next); the outermost cells run to the support's ends."""
        lo = np.concatenate(([-np.inf], grid[:-1]))
        hi = np.concatenate((grid[1:], [np.inf]))
        left = np.where(grid > 0, grid, lo)
        right = np.where(grid < 0, grid, hi)
        median = float(self.dist.median())
        with np.errstate(invalid="ignore"):
            by_cdf = self.dist.cdf(right) - self.dist.cdf(left)
            by_sf = self.dist.sf(left) - self.dist.sf(right)
            mass = np.where(left >= median, by_sf, by_cdf)
            width = right - left
            approx = self.dist.pdf((left + right) / 2) * width
        narrow = np.isfinite(width) & (approx < 1e-7)
        mass = np.where(narrow, approx, mass)
        return np.clip(np.nan_to_num(mass, nan=0.0), 0.0, None)


@dataclass(frozen=True)
class DiscreteReference(Reference):
    """A distribution on finitely many values (a dtype's grid), with exact moments."""

    name: str
    values: np.ndarray = field(repr=False)
    probs: np.ndarray = field(repr=False)
    support: Support = Support()
    discrete: bool = True
    _cells: dict = field(default_factory=dict, repr=False, compare=False)
    #: P(the continuous law rounded toward zero lands on each value), when this is a rounded continuous reference.
    toward_zero: np.ndarray | None = field(default=None, repr=False, compare=False)

    @cached_property
    def mean(self) -> float:
        return float(np.sum(self.values * self.probs))

    @cached_property
    def var(self) -> float:
        return float(np.sum((self.values - self.mean) ** 2 * self.probs))

    @cached_property
    def mu4(self) -> float:
        return float(np.sum((self.values - self.mean) ** 4 * self.probs))

    @cached_property
    def cumulative(self) -> np.ndarray:
        return np.cumsum(self.probs)

    def cdf(self, x):
        idx = np.searchsorted(self.values, x, side="right")
        return np.where(idx > 0, self.cumulative[np.maximum(idx - 1, 0)], 0.0)

    def cells(self, n: int, min_expected: float) -> np.ndarray:
        """Start indices of chi-square cells: consecutive values merged until each cell expects at
        least ``min_expected`` of ``n`` samples (the remainder joins the last cell). Cached per n."""
        key = (n, min_expected)
        if key not in self._cells:
            self._cells[key] = self._merge(n, min_expected)
        return self._cells[key]

    def _merge(self, n: int, min_expected: float) -> np.ndarray:
        starts, acc = [0], 0.0
        for i, e in enumerate(self.probs * n):
            acc += e
            if acc >= min_expected and i + 1 < self.probs.size:
                starts.append(i + 1)
                acc = 0.0
        if len(starts) > 1 and acc < min_expected:
            starts.pop()
        return np.asarray(starts)

    def lower_tail(self, target: float) -> tuple[float, float]:
        cum = np.cumsum(self.probs)
        j = max(int(np.searchsorted(cum, target, side="right")) - 1, 0)
        return float(self.values[j]), float(cum[j])

    def upper_tail(self, target: float) -> tuple[float, float]:
        cum = np.cumsum(self.probs[::-1])
        j = max(int(np.searchsorted(cum, target, side="right")) - 1, 0)
        return float(self.values[::-1][j]), float(cum[j])


# -- constructors written from definitions ---------------------------------------------------

def uniform(a: float, b: float, name: str | None = None) -> ContinuousReference:
    """U[a, b): the upper bound is open, as for ``torch.rand`` and ``uniform_``."""
    if not b > a:
        raise ValueError(f"uniform needs a < b, got a={a}, b={b}")
    return ContinuousReference(name or f"U[{a:.6g}, {b:.6g})", stats.uniform(loc=a, scale=b - a),
                               Support(a, b, lower_open=False, upper_open=True))


def normal(mean: float, std: float, name: str | None = None) -> ContinuousReference:
    if not std > 0:
        raise ValueError(f"normal needs std > 0, got {std}")
    return ContinuousReference(name or f"N({mean:.6g}, {std:.6g}^2)", stats.norm(loc=mean, scale=std))


def trunc_normal(mean: float, std: float, a: float, b: float, name: str | None = None) -> ContinuousReference:
    """N(mean, std^2) conditioned on [a, b]; ``a`` and ``b`` are absolute values."""
    if not (std > 0 and b > a):
        raise ValueError(f"trunc_normal needs std > 0 and a < b, got std={std}, a={a}, b={b}")
    dist = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    return ContinuousReference(name or f"TN({mean:.6g}, {std:.6g}^2; [{a:.6g}, {b:.6g}])", dist, Support(a, b))


def beta(a: float, b: float, name: str | None = None) -> ContinuousReference:
    return ContinuousReference(name or f"Beta({a:g}, {b:g})", stats.beta(a, b), Support(0.0, 1.0))


def for_dtype(ref: ContinuousReference, dtype: str) -> Reference:
    """What a correct backend draws in ``dtype``: the continuous reference for float32/float64,
    the exact rounded distribution for float16/bfloat16."""
    return ref.rounded(dtype) if dtype in ("float16", "bfloat16") else ref
