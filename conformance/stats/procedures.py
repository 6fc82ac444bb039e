"""Individual test procedures: each takes float64 samples and a reference and returns a Verdict.

* :func:`ks_test` - one-sample Kolmogorov-Smirnov against a continuous reference (shape).
* :func:`chi2_test` - Pearson chi-square against a discrete (rounded) reference; cells are
  merged until each expects at least :data:`MIN_EXPECTED` samples.
* :func:`mean_test`, :func:`variance_test` - z-tests with the reference's exact moments
  (the variance test uses the known mean and the exact fourth central moment); :func:`mean_verdict` and
  :func:`variance_verdict` are the same tests on a summary (count and moment), for streamed samples.
* :func:`tail_test` - exact binomial test of the count beyond a reference quantile (catches
  clipped tails and bounds that are too narrow).
* :func:`outlier_test` - one-sided binomial test far out in an unbounded tail (1000-sigma
  outliers of a truncated-normal bug).
* :func:`support_test`, :func:`constant_test` - exact checks (finiteness, bounds, open bounds
  never attained; a random tensor is not constant).

Every procedure that needs the samples in order also takes them pre-sorted, as the keyword ``ordered``
(a :class:`~conformance.stats.sorted_sample.SortedSample` of the finite values of ``x``, sorted once by
:func:`conformance.stats.compare.compare_distribution` for the whole battery); the verdict is the same with or
without it. Moments (mean, variance) are always summed over ``x`` in its own order.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .moments import Moments
from .reference import DiscreteReference, Reference
from .sorted_sample import SortedSample, ks_distance
from .verdict import Verdict

#: Smallest expected count of a chi-square cell.
MIN_EXPECTED = 10.0
#: Expected count in each tail region of :func:`tail_test`.
TAIL_EXPECTED = 30.0
#: Expected count far out in :func:`outlier_test`: one value there is already evidence.
OUTLIER_EXPECTED = 1e-9


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def ks_test(x: np.ndarray, ref: Reference, alpha: float, *, ordered: SortedSample | None = None) -> Verdict:
    """Two-sided KS test with the asymptotic p-value: the statistic and p-value of
    ``scipy.stats.kstest(x, ref.cdf, method="asymp")`` (same distance, ``kstwobign.sf(D * sqrt(n))`` clipped to
    [0, 1]), computed from the sorted sample (``ordered``: the values of ``x``, all finite, sorted)."""
    if ordered is None:
        if not np.isfinite(x).all():  # NaN propagation and the rest: scipy's own rules
            res = stats.kstest(x, ref.cdf, method="asymp")
            d, p = float(res.statistic), float(res.pvalue)
            return _ks_verdict(x.size, d, p, ref, alpha)
        ordered = SortedSample.of_array(x)
    n = ordered.n
    d = ks_distance(ordered.array(), ref.cdf)
    p = float(np.clip(stats.kstwobign.sf(d * math.sqrt(n)), 0.0, 1.0))
    return _ks_verdict(n, d, p, ref, alpha)


def _ks_verdict(n: int, d: float, p: float, ref: Reference, alpha: float) -> Verdict:
    return Verdict("ks", p > alpha, f"KS distance {_fmt(d)} vs {ref.name}, p={p:.3g} (alpha {alpha:g})",
                   n=n, statistic=d, pvalue=p, alpha=alpha, effect={"ks_distance": d})


def chi2_test(x: np.ndarray, ref: DiscreteReference, alpha: float, *, ordered: SortedSample | None = None) -> Verdict:
    """Pearson chi-square of the counts on the reference's grid (``ordered``: the values of ``x``, sorted or counted,
    gives the same counts; each distinct value is then located on the grid once)."""
    values, weights = ordered.unique_counts() if ordered is not None else (x, None)
    n = x.size if ordered is None else ordered.n
    idx = np.searchsorted(ref.values, values)
    idx = np.clip(idx, 0, ref.values.size - 1)
    on_grid = ref.values[idx] == values
    if weights is None:
        counts = np.bincount(idx[on_grid], minlength=ref.values.size).astype(np.float64)
        off_grid = int((~on_grid).sum())
    else:  # integer counts summed in float64: exact
        counts = np.bincount(idx[on_grid], weights=weights[on_grid], minlength=ref.values.size).astype(np.float64)
        off_grid = int(weights[~on_grid].sum())
    x_size = n
    starts = ref.cells(x_size, MIN_EXPECTED)
    obs = np.add.reduceat(counts, starts)
    exp = np.add.reduceat(ref.probs * x_size, starts)
    if off_grid:  # values the reference gives probability 0: their own cell, expected ~0
        obs = np.append(obs, float(off_grid))
        exp = np.append(exp, 1e-12 * x_size)
    if obs.size < 2:
        return Verdict("chi2", True, "chi-square skipped: fewer than 2 cells with enough expected count",
                       n=x_size, alpha=alpha)
    exp = exp * (obs.sum() / exp.sum())
    stat = float(np.sum((obs - exp) ** 2 / exp))
    dof = obs.size - 1
    p = float(stats.chi2.sf(stat, dof))
    per_dof = stat / dof
    effect = {"chi2_per_dof": per_dof, **_rounding_bias(obs, exp, ref, starts, bool(off_grid)), **_atom(obs, exp)}
    msg = (f"chi-square {stat:.1f} on {dof} df (x{per_dof:.3g} of expected) vs {ref.name}, p={p:.3g} "
           f"(alpha {alpha:g})")
    if off_grid:
        msg += f"; {off_grid} values the reference never produces"
    if p <= alpha and "rounding_bias_cells" in effect:
        msg += f"; rounding bias {effect['rounding_bias_cells']:+.2f} cells toward zero"
    return Verdict("chi2", p > alpha, msg, n=x_size, statistic=stat, pvalue=p, alpha=alpha,
                   effect=effect, observed={"cells": int(obs.size)})


def _rounding_bias(obs: np.ndarray, exp: np.ndarray, ref: DiscreteReference, starts: np.ndarray,
                   off_grid: bool) -> dict[str, float]:
    """How far the sample's law has moved from rounding to nearest toward rounding toward zero, in cells.

    The law is modelled as the mixture (1 - lam) * nearest + lam * toward_zero on the chi-square's cells; lam is
    estimated by weighted least squares (the score direction of the mixture), so a law rounded toward zero gives
    lam = 1, i.e. a bias of lam / 2 = +0.5 cells, rounding away from zero -0.5, and a law that differs from the
    rounded reference without moving mass systematically toward or away from zero gives about 0. Its standard error
    is 1 / sqrt(sum((h - p)^2 / p)) with h, p the two laws' expected counts. Empty when the reference has no
    toward-zero law (not a rounded continuous reference)."""
    if ref.toward_zero is None:
        return {}
    alt = np.add.reduceat(ref.toward_zero * obs.sum(), starts)
    if off_grid:
        alt = np.append(alt, 1e-12 * obs.sum())
    d = alt - exp
    info = float(np.sum(d * d / exp))
    if info <= 0:
        return {}
    lam = float(np.sum((obs - exp) * d / exp)) / info
    fitted = exp + lam * d
    residual = float(np.sum((obs - fitted) ** 2 / np.maximum(fitted, 1e-300)))
    return {"rounding_bias_cells": lam / 2, "rounding_bias_se": 0.5 / math.sqrt(info),
            "residual_pvalue": float(stats.chi2.sf(residual, max(obs.size - 2, 1)))}


def _atom(obs: np.ndarray, exp: np.ndarray) -> dict[str, float]:
    """The cell with the most significant excess (largest (obs - exp) / sqrt(exp)): its ratio obs / exp, its
    share of the sample beyond expectation (``atom_mass``) and the excess's z."""
    z = (obs - exp) / np.sqrt(exp)
    i = int(np.argmax(z))
    return {"atom_ratio": float(obs[i] / exp[i]), "atom_mass": float((obs[i] - exp[i]) / obs.sum()),
            "atom_z": float(z[i])}


def mean_test(x: np.ndarray, ref: Reference, alpha: float) -> Verdict:
    return mean_verdict(x.size, float(np.mean(x)), ref, alpha)


def mean_verdict(n: int, mean: float, ref: Reference, alpha: float, test: str = "mean") -> Verdict:
    """Two-sided z-test of a sample mean of ``n`` values against the reference's exact mean and std."""
    sd = ref.std
    z = (mean - ref.mean) / (sd / math.sqrt(n))
    p = float(2 * stats.norm.sf(abs(z)))
    shift = (mean - ref.mean) / sd
    return Verdict(test, p > alpha,
                   f"mean {_fmt(mean)} vs expected {_fmt(ref.mean)} (shift {shift:+.3g} std, z={z:+.2f}), p={p:.3g}"
                   + (f" (n={n})" if test != "mean" else ""),
                   n=n, statistic=z, pvalue=p, alpha=alpha, effect={"shift_in_std": shift},
                   observed={"mean": mean}, expected={"mean": ref.mean})


def variance_test(x: np.ndarray, ref: Reference, alpha: float) -> Verdict:
    return variance_verdict(x.size, float(np.mean((x - ref.mean) ** 2)), ref, alpha)


def variance_verdict(n: int, s2: float, ref: Reference, alpha: float, test: str = "variance") -> Verdict:
    """Two-sided z-test of ``s2`` = mean of (x - reference mean)^2 over ``n`` values against the exact variance.

    The standard error uses the exact fourth central moment (sqrt((mu4 - var^2) / n)).
    """
    var = ref.var
    se = math.sqrt(max(ref.mu4 - var**2, 0.0) / n)
    z = (s2 - var) / se if se > 0 else (0.0 if s2 == var else math.inf)
    p = float(2 * stats.norm.sf(abs(z)))
    ratio = math.sqrt(s2 / var)
    pct = f"{(ratio - 1) * 100:+.2f}" if test == "variance" else f"{(ratio - 1) * 100:+.3g}"
    return Verdict(test, p > alpha,
                   f"std {_fmt(math.sqrt(s2))} vs expected {_fmt(math.sqrt(var))} ({pct}%, "
                   f"z={z:+.2f}), p={p:.3g}" + (f" (n={n})" if test != "variance" else ""),
                   n=n, statistic=z, pvalue=p, alpha=alpha, effect={"std_ratio": ratio},
                   observed={"std": math.sqrt(s2)}, expected={"std": math.sqrt(var), "kurtosis": ref.mu4 / var**2})


def moment_verdicts(acc: Moments, ref: Reference, alpha: float) -> list[Verdict]:
    """The streamed check: ``finite_large`` (exact), then ``variance_large`` and ``mean_large`` on the finite values."""
    total = acc.n + acc.nonfinite
    verdicts = [Verdict("finite_large", acc.nonfinite == 0,
                        f"{acc.nonfinite} non-finite values in {total}" if acc.nonfinite
                        else f"all {total} values finite", n=total, observed={"nonfinite": acc.nonfinite})]
    if acc.nonfinite == 0 and acc.n >= 2:
        verdicts += [variance_verdict(acc.n, acc.second_moment, ref, alpha, test="variance_large"),
                     mean_verdict(acc.n, acc.mean, ref, alpha, test="mean_large")]
    return verdicts


def _binom_two_sided(k: int, n: int, p: float) -> float:
    return float(stats.binomtest(k, n, p).pvalue)


def tail_test(x: np.ndarray, ref: Reference, alpha: float, side: str, *,
              ordered: SortedSample | None = None) -> Verdict | None:
    """Binomial test of the count in the lower or upper tail of mass ~ TAIL_EXPECTED / n (``ordered``: the values
    of ``x`` sorted, for the count)."""
    target = TAIL_EXPECTED / x.size
    if target >= 0.05:
        return None
    t, p_tail = ref.lower_tail(target) if side == "lower" else ref.upper_tail(target)
    if not 0 < p_tail < 0.5:
        return None
    if ordered is not None:
        k = ordered.count_below(t, inclusive=True) if side == "lower" else ordered.count_above(t, inclusive=True)
    else:
        k = int(np.sum(x <= t)) if side == "lower" else int(np.sum(x >= t))
    p = _binom_two_sided(k, x.size, p_tail)
    rel = "<=" if side == "lower" else ">="
    return Verdict(f"tail_{side}", p > alpha,
                   f"{k} values {rel} {_fmt(t)} where {p_tail * x.size:.1f} expected, p={p:.3g}",
                   n=x.size, statistic=float(k), pvalue=p, alpha=alpha,
                   effect={"tail_ratio": k / (p_tail * x.size)},
                   observed={"count": k}, expected={"count": p_tail * x.size, "threshold": t})


def outlier_test(x: np.ndarray, ref: Reference, alpha: float, side: str, *,
                 ordered: SortedSample | None = None) -> Verdict | None:
    """One value beyond the quantile of mass OUTLIER_EXPECTED / n is significant. Unbounded sides only.
    (``ordered``: the values of ``x`` sorted, for the count and the farthest value.)"""
    if side == "upper" and math.isfinite(ref.support.upper) or side == "lower" and math.isfinite(ref.support.lower):
        return None
    target = OUTLIER_EXPECTED / x.size
    t, p_tail = ref.lower_tail(target) if side == "lower" else ref.upper_tail(target)
    if not 0 < p_tail < 1e-6:
        return None
    if ordered is not None:
        k = ordered.count_below(t, inclusive=False) if side == "lower" else ordered.count_above(t, inclusive=False)
        far = (ordered.smallest(k) if side == "lower" else ordered.largest(k)) if k else None
    else:
        beyond = x < t if side == "lower" else x > t
        k = int(beyond.sum())
        far = x[beyond] if k else None
    p = float(stats.binom.sf(k - 1, x.size, p_tail)) if k else 1.0
    sd = ref.std
    worst = float(np.max(np.abs(far - ref.mean)) / sd) if k else 0.0
    msg = (f"{k} values beyond {_fmt(t)} ({abs(t - ref.mean) / sd:.1f} std; expected {p_tail * x.size:.2g})"
           + (f", farthest at {worst:.1f} std" if k else "") + f", p={p:.3g}")
    return Verdict(f"outliers_{side}", p > alpha, msg, n=x.size, statistic=float(k), pvalue=p, alpha=alpha,
                   effect={"farthest_in_std": worst}, observed={"count": k}, expected={"threshold": t})


def support_test(x: np.ndarray, ref: Reference, *, ordered: SortedSample | None = None) -> Verdict:
    """Finiteness and the documented support (``ordered``: the values of ``x`` sorted; used when all are finite)."""
    n = x.size
    if ordered is not None and ordered.n == n:
        return _support_sorted(ordered, ref)
    nonfinite = ~np.isfinite(x)
    outside = ~ref.support.contains(x) & ~nonfinite
    problems = []
    if nonfinite.any():
        problems.append(f"{int(nonfinite.sum())} non-finite values (first at flat index {int(np.argmax(nonfinite))})")
    if outside.any():
        s = ref.support
        at_open = (s.upper_open & (x == s.upper)) | (s.lower_open & (x == s.lower))
        if at_open.any():
            problems.append(f"{int(at_open.sum())} values equal an open bound of {s.describe()}")
        problems.append(f"{int(outside.sum())} values outside {s.describe()} (min {_fmt(np.nanmin(x))}, "
                        f"max {_fmt(np.nanmax(x))})")
    ok = not problems
    msg = f"all {n} values finite and in {ref.support.describe()}" if ok else "; ".join(problems)
    return Verdict("support", ok, msg, n=n, observed={"nonfinite": int(nonfinite.sum()), "outside": int(outside.sum())})


def _support_sorted(o: SortedSample, ref: Reference) -> Verdict:
    """:func:`support_test` on all-finite values, by counts on the sorted values (same verdict, same message)."""
    s = ref.support
    below = o.count_below(s.lower, inclusive=s.lower_open)
    above = o.count_above(s.upper, inclusive=s.upper_open)
    outside = below + above
    problems = []
    if outside:
        at_open = 0
        if s.upper_open:
            at_open += o.count_above(s.upper, inclusive=True) - o.count_above(s.upper, inclusive=False)
        if s.lower_open:
            at_open += o.count_below(s.lower, inclusive=True) - o.count_below(s.lower, inclusive=False)
        if at_open:
            problems.append(f"{at_open} values equal an open bound of {s.describe()}")
        problems.append(f"{outside} values outside {s.describe()} (min {_fmt(o.at(0)[()])}, "
                        f"max {_fmt(o.at(-1)[()])})")
    ok = not problems
    msg = f"all {o.n} values finite and in {s.describe()}" if ok else "; ".join(problems)
    return Verdict("support", ok, msg, n=o.n, observed={"nonfinite": 0, "outside": outside})


def constant_test(x: np.ndarray, ref: Reference, *, ordered: SortedSample | None = None) -> Verdict:
    """Not all values equal (``ordered``: the values of ``x`` sorted, for the distinct count when all are finite)."""
    if x.size > 10_000_000:
        distinct = -1
    elif ordered is not None and ordered.n == x.size:
        distinct = ordered.distinct
    else:
        distinct = int(np.unique(x).size)
    ok = x.size < 2 or ref.var == 0 or distinct != 1
    msg = f"{distinct} distinct values in {x.size}" if ok else f"all {x.size} values equal {_fmt(float(x.flat[0]))}"
    return Verdict("not_constant", ok, msg, n=x.size, observed={"distinct": distinct})
