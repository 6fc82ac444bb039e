"""Streamed moments (the n = 2^26 scale-and-shift check): same verdicts as in memory, non-finite values counted,
the design's power claim, and the power tool's bookkeeping."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from conformance.stats import design, normal
from conformance.stats import procedures as P
from conformance.stats.moments import Moments
from tools import power as PW


def _stream(x: np.ndarray, centre: float, chunk: int) -> Moments:
    acc = Moments(centre)
    for i in range(0, x.size, chunk):
        acc.add(x[i:i + chunk])
    return acc


@pytest.mark.parametrize("chunk", [1, 7, 1000, 10_000])
def test_streamed_verdicts_equal_the_in_memory_tests(chunk):
    ref = normal(0.5, 2.0)
    x = np.random.default_rng(3).normal(0.5, 2.0 * 1.003, 10_000)
    acc = _stream(x, ref.mean, chunk)
    assert acc.n == x.size and acc.nonfinite == 0
    var_mem, var_str = P.variance_test(x, ref, 0.05), P.variance_verdict(acc.n, acc.second_moment, ref, 0.05)
    mean_mem, mean_str = P.mean_test(x, ref, 0.05), P.mean_verdict(acc.n, acc.mean, ref, 0.05)
    assert var_str.statistic == pytest.approx(var_mem.statistic, rel=1e-9)
    assert mean_str.statistic == pytest.approx(mean_mem.statistic, rel=1e-9)
    assert (var_str.passed, mean_str.passed) == (var_mem.passed, mean_mem.passed)


def test_bfloat16_chunks_and_non_finite_values_are_counted():
    x = np.array([1.0, np.nan, -1.0, np.inf, 0.5], dtype=ml_dtypes.bfloat16)
    acc = Moments(0.0)
    acc.add(x)
    assert (acc.n, acc.nonfinite) == (3, 2)
    assert acc.mean == pytest.approx(0.5 / 3)
    assert acc.second_moment == pytest.approx(2.25 / 3)


def test_large_n_check_fails_a_small_scale_error_and_passes_exact_samples():
    rng = np.random.default_rng(11)
    assert PW.ours_large_n_rejects("std", 0.002, rng, n=2**24)  # z about 11 at 2^24
    assert not PW.ours_large_n_rejects("std", 0.0, rng, n=2**24)
    assert PW.ours_large_n_rejects("shift", 0.003, rng, n=2**24)  # z about 12


def test_large_n_design_is_ten_times_finer_than_the_battery_on_std():
    battery, large = PW.ours_detectable("std"), PW.ours_detectable("std", check="large_n")
    assert design.power_std(design.LARGE_N, 1.0 + large) == pytest.approx(0.99, abs=1e-4)
    assert battery / large == pytest.approx(math.sqrt(design.LARGE_N / design.DEFAULT_N), rel=0.01)
    # the bound error is decided by the battery's exact support test in both
    assert PW.ours_detectable("bound") == PW.ours_detectable("bound", check="large_n")


def test_peer_curves_are_reused_only_from_a_matching_run():
    grid = PW.EFFECTS["std"]["grid"].tolist()
    old = {"reps": 200, "seed": 0, "effects": {"std": {"grid": grid, "curves": {n: [0.0] * len(grid)
                                                                                for n in PW.BASELINES}}}}
    PW.check_reusable(old, 200, 0, ["std"])
    with pytest.raises(SystemExit, match="reps=200 seed=0"):
        PW.check_reusable(old, 100, 0, ["std"])
    with pytest.raises(SystemExit, match="no peer curves for effect 'shift'"):
        PW.check_reusable(old, 200, 0, ["shift"])


def test_power_per_tier_tool_bookkeeping(tmp_path):
    # the default tier calls the design defects defects with power ~0.999 and needs a larger effect for 0.99
    assert PW.ours_analytic_default("shift", design.DESIGN_SHIFT) == pytest.approx(0.999, abs=1e-4)
    assert 0.998 < PW.ours_analytic_default("std", design.DESIGN_STD_RATIO - 1) < 0.999
    assert PW.ours_analytic_default("shift", 0.004) < 0.01 < PW.ours_analytic("shift", 0.006)
    assert PW.ours_analytic_default("bound", 1e-5) == PW.ours_analytic("bound", 1e-5)
    doc = {"reps": 2, "effects": {"std": {"label": "std", "strict": 0.0054, "default": 0.0095,
                                          "power_strict_at_design": 1.0, "power_default_at_design": 0.9988,
                                          "simulated": {"0.01": {"strict": 2, "default": 2}}}}}
    md = PW.tiers_markdown(doc)
    assert "| std | 0.0054 | 0.0095 | 1.0000 / 0.9988 | 0.01: 2 / 2 |" in md
    assert PW._write(doc, tmp_path, "power_tiers", md) == md and (tmp_path / "power_tiers.json").exists()
