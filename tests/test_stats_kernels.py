"""The battery on a once-sorted sample gives the verdicts of the straightforward computation, exactly.

:func:`conformance.stats.compare_distribution` sorts the finite values once (or counts a 16-bit sample by bit
pattern) and derives the KS distance, chi-square counts, quantiles, histogram, tail counts and distinct count from
that. The reference implementation kept here is the plain one: ``scipy.stats.kstest``, ``np.searchsorted`` onto the
grid, ``np.quantile``, ``np.histogram``, ``np.unique``, boolean masks. Every verdict (name, pass flag, message,
statistic, p-value, effect, observed, expected) and every plot number must be equal, not merely close.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

from conformance.stats import beta, compare_distribution, for_dtype, normal, trunc_normal, uniform
from conformance.stats import procedures as P
from conformance.stats.reference import DiscreteReference
from conformance.stats.sorted_sample import SortedSample, ks_distance
from conformance.stats.summary import BINS, CDF_POINTS, PROBS, _ref_quantiles, _round
from conformance.stats.verdict import Verdict

N = 100_000
ALPHA = 1e-7
BF16 = ml_dtypes.bfloat16


# -- the straightforward battery ---------------------------------------------------------------------------------

def _plain_ks(x, ref, alpha):
    res = stats.kstest(x, ref.cdf, method="asymp")
    d, p = float(res.statistic), float(res.pvalue)
    return Verdict("ks", p > alpha, f"KS distance {P._fmt(d)} vs {ref.name}, p={p:.3g} (alpha {alpha:g})",
                   n=x.size, statistic=d, pvalue=p, alpha=alpha, effect={"ks_distance": d})


def _plain_chi2(x, ref, alpha):
    idx = np.clip(np.searchsorted(ref.values, x), 0, ref.values.size - 1)
    on_grid = ref.values[idx] == x
    counts = np.bincount(idx[on_grid], minlength=ref.values.size).astype(np.float64)
    starts = ref.cells(x.size, P.MIN_EXPECTED)
    obs = np.add.reduceat(counts, starts)
    exp = np.add.reduceat(ref.probs * x.size, starts)
    off_grid = int((~on_grid).sum())
    if off_grid:
        obs = np.append(obs, float(off_grid))
        exp = np.append(exp, 1e-12 * x.size)
    if obs.size < 2:
        return Verdict("chi2", True, "chi-square skipped: fewer than 2 cells with enough expected count",
                       n=x.size, alpha=alpha)
    exp = exp * (obs.sum() / exp.sum())
    stat = float(np.sum((obs - exp) ** 2 / exp))
    dof = obs.size - 1
    p = float(stats.chi2.sf(stat, dof))
    per_dof = stat / dof
    msg = (f"chi-square {stat:.1f} on {dof} df (x{per_dof:.3g} of expected) vs {ref.name}, p={p:.3g} "
           f"(alpha {alpha:g})")
    if off_grid:
        msg += f"; {off_grid} values the reference never produces"
    return Verdict("chi2", p > alpha, msg, n=x.size, statistic=stat, pvalue=p, alpha=alpha,
                   effect={"chi2_per_dof": per_dof}, observed={"cells": int(obs.size)})


def _plain_plot(x, ref):
    lo, hi = np.quantile(x, [0.001, 0.999])
    rlo, rhi = _ref_quantiles(ref, np.array([0.001, 0.999]))
    lo, hi = float(min(lo, rlo)), float(max(hi, rhi))
    if not hi > lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, BINS + 1)
    observed, _ = np.histogram(x, edges)
    if isinstance(ref, DiscreteReference):
        cum = np.asarray(ref.cdf(np.nextafter(edges, -np.inf)), dtype=np.float64)
        cum[-1] = ref.cdf(edges[-1])
    else:
        cum = np.asarray(ref.cdf(edges), dtype=np.float64)
    grid = np.linspace(lo, hi, CDF_POINTS)
    return {
        "probs": _round(PROBS), "sample_q": _round(np.quantile(x, PROBS)), "ref_q": _round(_ref_quantiles(ref, PROBS)),
        "edges": _round(edges), "observed": [int(c) for c in observed], "expected": _round(np.diff(cum) * x.size),
        "cdf_x": _round(grid), "cdf_y": _round(ref.cdf(grid)), "reference": ref.name,
    }


def _plain_battery(samples, reference, dtype, alpha):
    """compare_distribution as it was: every procedure on the unsorted float64 values (masks, np.unique...)."""
    x = np.asarray(samples).astype(np.float64).ravel()
    ref = for_dtype(reference, dtype)
    nonfinite = ~np.isfinite(x)
    outside = ~ref.support.contains(x) & ~nonfinite
    support_ok = not nonfinite.any() and not outside.any()
    distinct = int(np.unique(x).size)
    verdicts = [P.support_test(x, ref), P.constant_test(x, ref)]  # without ``ordered``: the mask/np.unique code
    assert verdicts[0].passed == support_ok and verdicts[0].observed["outside"] == int(outside.sum())
    assert verdicts[1].observed["distinct"] == distinct
    finite = x[np.isfinite(x)]
    if finite.size < x.size or finite.size < 2:
        return verdicts, None
    gof = _plain_chi2(finite, ref, alpha) if isinstance(ref, DiscreteReference) else _plain_ks(finite, ref, alpha)
    verdicts += [gof, P.mean_test(finite, ref, alpha), P.variance_test(finite, ref, alpha)]
    for side in ("lower", "upper"):
        for proc in (P.tail_test, P.outlier_test):
            v = proc(finite, ref, alpha, side)
            if v is not None:
                verdicts.append(v)
    return verdicts, _plain_plot(finite, ref)


#: Effects chi2_test adds for the severity rules (issue 20); the plain oracle predates them. Their own oracle is
#: tests/test_severity.py (a law rounded toward zero against one rounded to nearest).
_SEVERITY_EFFECTS = {"rounding_bias_cells", "rounding_bias_se", "residual_pvalue", "atom_ratio", "atom_mass", "atom_z"}


def _judged(v) -> dict:
    d = v.to_dict()
    d["effect"] = {k: x for k, x in d["effect"].items() if k not in _SEVERITY_EFFECTS}
    d["message"] = d["message"].split("; rounding bias ")[0]
    return d


def _assert_same_battery(samples, reference, dtype):
    new = compare_distribution(samples, reference, dtype, ALPHA)
    old, old_plot = _plain_battery(samples, reference, dtype, ALPHA)
    assert [v.test for v in new] == [v.test for v in old]
    for a, b in zip(new, old, strict=True):
        assert _judged(a) == _judged(b), a.test
    plots = [att for v in new for att in v.attachments]
    if old_plot is None:
        assert not plots
    else:
        (plot,) = plots
        assert {k: getattr(plot, k) for k in old_plot} == old_plot
    return new


# -- samples -----------------------------------------------------------------------------------------------------

def _rng(seed):
    return np.random.default_rng(seed)


def _trunc(rng, n, a=-2.0, b=2.0):
    x = rng.standard_normal(2 * n)
    return x[(x >= a) & (x <= b)][:n]


SAMPLES = {
    "normal_ok": lambda r: r.standard_normal(N),
    "normal_shifted": lambda r: r.standard_normal(N) + 0.03,
    "normal_scaled": lambda r: r.standard_normal(N) * 1.05,
    "normal_clipped": lambda r: np.clip(r.standard_normal(N), -2.5, 2.5),
    "normal_outlier": lambda r: np.append(r.standard_normal(N - 1), 1000.0),
    "normal_constant": lambda r: np.full(N, 0.25),
    "normal_nan": lambda r: np.append(r.standard_normal(N - 1), np.nan),
    "normal_inf": lambda r: np.append(r.standard_normal(N - 2), [np.inf, -np.inf]),
    "normal_signed_zeros": lambda r: np.concatenate((r.standard_normal(N - 200), np.zeros(100), -np.zeros(100))),
    "uniform_ok": lambda r: r.uniform(-1.0, 1.0, N),
    "uniform_hits_open_bound": lambda r: np.append(r.uniform(-1.0, 1.0, N - 3), [1.0, 1.0, -1.0]),
    "uniform_outside": lambda r: np.append(r.uniform(-1.0, 1.0, N - 2), [1.5, -3.0]),
    "uniform_narrow": lambda r: r.uniform(-0.9, 0.9, N),
    "trunc_ok": lambda r: _trunc(r, N),
    "trunc_untruncated": lambda r: r.standard_normal(N),
    "trunc_scaled": lambda r: _trunc(r, N) * 0.9,
    "beta_ok": lambda r: r.beta(2.0, 3.0, N),
    "beta_wrong": lambda r: r.uniform(0.0, 1.0, N),
    "beta_swapped": lambda r: r.beta(3.0, 2.0, N),
}
REFERENCES = {"normal": normal(0.0, 1.0), "uniform": uniform(-1.0, 1.0), "trunc": trunc_normal(0.0, 1.0, -2.0, 2.0),
              "beta": beta(2.0, 3.0)}
DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": BF16}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("case", list(SAMPLES))
def test_battery_verdicts_identical(case, dtype):
    reference = REFERENCES[case.split("_")[0]]
    seed = sum(map(ord, case + dtype))
    with np.errstate(invalid="ignore", over="ignore"):
        samples = SAMPLES[case](_rng(seed)).astype(DTYPES[dtype])
    verdicts = _assert_same_battery(samples, reference, dtype)
    # the right distribution passes (sanity: the comparison is not vacuous); float64 uniform values rounded to
    # 16 bits land on the open bound 1.0 now and then, which is a fail by design
    if case.endswith("_ok") and not (case == "uniform_ok" and dtype in ("float16", "bfloat16")):
        assert all(v.passed for v in verdicts), [v.message for v in verdicts if not v.passed]
    if case in ("normal_shifted", "normal_constant", "normal_nan", "uniform_outside", "trunc_untruncated",
                "beta_wrong", "normal_outlier"):
        assert not all(v.passed for v in verdicts)


def test_sixteen_bit_sample_with_a_mismatched_dtype_name_takes_the_sorted_path():
    samples = _rng(3).standard_normal(N).astype(np.float16)
    _assert_same_battery(samples, normal(0.0, 1.0), "float32")  # continuous reference, KS on the float16 values
    _assert_same_battery(samples.astype(np.float32), normal(0.0, 1.0), "float16")  # chi2, values sorted


def test_million_float32_samples_match_scipy():
    samples = _rng(5).standard_normal(1_000_000).astype(np.float32)
    _assert_same_battery(samples, normal(0.0, 1.0), "float32")


def test_tiny_samples():
    for x in (np.array([0.5]), np.array([0.1, 0.2]), np.array([], dtype=np.float64), np.array([0.3, 0.3, 0.3])):
        _assert_same_battery(x, normal(0.0, 1.0), "float32")
        _assert_same_battery(x.astype(np.float16), normal(0.0, 1.0), "float16")


# -- the kernels one by one ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 101, 1000, 4097])
def test_quantile_histogram_distinct_match_numpy(n):
    rng = _rng(n)
    x = np.round(rng.standard_normal(n), 1)  # ties, values on histogram edges
    x[: n // 3] = -0.0
    probs = np.concatenate(([0.0, 1.0, 0.5, 0.001, 0.999], PROBS, rng.uniform(size=20)))
    edges = np.linspace(-1.0, 1.0, 11)
    for o in (SortedSample.of_array(x), SortedSample.of_sixteen_bit(x.astype(np.float16))):
        xs = x if o.counts is None else x.astype(np.float16).astype(np.float64)
        q = o.quantile(probs)
        assert np.array_equal(q, np.quantile(xs, probs))
        # (the sign of a zero quantile may differ: -0.0 and 0.0 are equal, and their order after a sort is arbitrary)
        assert np.array_equal(o.histogram(edges), np.histogram(xs, edges)[0])
        assert o.distinct == np.unique(xs).size
        assert o.n == xs.size
        for t in (-1.0, -0.0, 0.0, 0.1, 5.0):
            assert o.count_below(t, True) == np.sum(xs <= t) and o.count_below(t, False) == np.sum(xs < t)
            assert o.count_above(t, True) == np.sum(xs >= t) and o.count_above(t, False) == np.sum(xs > t)
        assert np.array_equal(o.array(), np.sort(xs))
        assert np.array_equal(o.smallest(min(3, n)), np.sort(xs)[: min(3, n)])
        assert np.array_equal(o.largest(min(3, n)), np.sort(xs)[n - min(3, n):])


@pytest.mark.parametrize("dtype", [np.float16, BF16])
def test_bit_pattern_counts_equal_float64_counts(dtype):
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    every = np.concatenate((bits, bits[::7], bits[::13])).view(dtype)  # every pattern: ±0, subnormals, inf, NaN
    counted = SortedSample.of_sixteen_bit(every)
    with np.errstate(invalid="ignore"):
        wide = every.astype(np.float64)
    wide = wide[np.isfinite(wide)]
    values, counts = SortedSample.of_array(wide).unique_counts()
    assert np.array_equal(counted.values, values) and np.array_equal(counted.counts, counts)
    assert counted.n == wide.size and 0.0 in counted.values and np.count_nonzero(counted.values == 0.0) == 1


@pytest.mark.parametrize("reference", list(REFERENCES.values()), ids=list(REFERENCES))
def test_ks_distance_equals_scipy(reference):
    rng = _rng(11)
    for x in (reference.dist.rvs(size=5000, random_state=rng), reference.dist.rvs(size=3000, random_state=rng) * 1.3,
              np.round(reference.dist.rvs(size=20000, random_state=rng), 2), np.full(3000, reference.mean),
              reference.dist.rvs(size=50, random_state=rng)):
        s = np.sort(x)
        assert ks_distance(s, reference.cdf) == stats.kstest(x, reference.cdf, method="asymp").statistic


def test_ks_distance_falls_back_for_a_cdf_that_is_not_monotone():
    x = np.sort(_rng(2).uniform(size=5000))
    def wobbly(t):
        return np.clip(t + 0.01 * np.sin(300 * t), 0.0, 1.0)
    assert ks_distance(x, wobbly) == stats.kstest(x, wobbly, method="asymp").statistic


def test_public_procedures_keep_their_signatures():
    x = _rng(1).standard_normal(2000)
    ref = normal(0.0, 1.0)
    o = SortedSample.of_array(x)
    for side in ("lower", "upper"):
        assert P.tail_test(x, ref, ALPHA, side) == P.tail_test(x, ref, ALPHA, side, ordered=o)
        assert P.outlier_test(x, ref, ALPHA, side) == P.outlier_test(x, ref, ALPHA, side, ordered=o)
    assert P.ks_test(x, ref, ALPHA) == P.ks_test(x, ref, ALPHA, ordered=o) == _plain_ks(x, ref, ALPHA)
    assert P.constant_test(x, ref) == P.constant_test(x, ref, ordered=o)
    assert P.support_test(x, ref) == P.support_test(x, ref, ordered=o)
    r16 = for_dtype(ref, "float16")
    x16 = x.astype(np.float16).astype(np.float64)
    assert P.chi2_test(x16, r16, ALPHA) == P.chi2_test(x16, r16, ALPHA, ordered=SortedSample.of_array(x16))
    assert _judged(P.chi2_test(x16, r16, ALPHA)) == _judged(_plain_chi2(x16, r16, ALPHA))
    nan_ks = P.ks_test(np.append(x, np.nan), ref, ALPHA)  # non-finite: scipy's own rules
    assert not nan_ks.passed and math.isnan(nan_ks.statistic)
