"""The severity rules (conformance.stats.severity): each rule classifies the findings it names, on both sides of its
threshold; the default tier fails a check on defects only and --strict-tier on deviations too."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance.areas.activations import expect as E
from conformance.context import CheckContext, CheckFailed
from conformance.stats import design
from conformance.stats import severity as S
from conformance.stats.procedures import chi2_test
from conformance.stats.reference import normal
from conformance.stats.verdict import Verdict


def _v(test, **kw):
    return {"test": test, "passed": False, "message": f"{test} failed", "n": kw.pop("n", 1_000_000),
            "alpha": design.ALPHA, "effect": kw.pop("effect", {}), "observed": kw.pop("observed", {}),
            "expected": kw.pop("expected", {})}


@pytest.mark.parametrize("shift, want", [(-0.0115, "defect"), (0.0101, "defect"), (-0.0068, "deviation"),
                                         (0.0042, "deviation")])
def test_mean_shift_threshold(shift, want):
    # T = 0.01 - 3.09 / sqrt(1e6) = 0.0069: JAX's bfloat16 normal (-0.0115 std) is a defect, a significant -0.0068 not
    assert S.judge(_v("mean", effect={"shift_in_std": shift}), "bfloat16").severity == want
    assert S.shift_threshold(1_000_000) == pytest.approx(0.01 - design.z_power() / 1000)


@pytest.mark.parametrize("ratio, want", [(1.01, "defect"), (0.99, "defect"), (1.0049, "deviation"),
                                         (0.9955, "deviation")])
def test_std_ratio_threshold(ratio, want):
    assert S.judge(_v("variance", effect={"std_ratio": ratio}, expected={"kurtosis": 3.0}), "float32").severity == want


def test_large_checks_and_named_scheme_prefixes():
    assert S.judge(_v("variance_large", n=2**26, effect={"std_ratio": 1.002}), "float32").severity == "defect"
    assert S.judge(_v("mean_large", n=2**26, effect={"shift_in_std": 0.002}), "float32").severity == "defect"
    assert S.judge(_v("docs:mean", effect={"shift_in_std": 0.003}), "float32").severity == "deviation"
    assert S.judge(_v("canonical:support"), "float32").severity == "defect"


def _rounded_sample(rounding: str, n=1_000_000, seed=7):
    import ml_dtypes

    x = np.random.default_rng(seed).standard_normal(n)
    if rounding == "nearest":
        return x.astype(ml_dtypes.bfloat16).astype(np.float64)
    bits = x.astype(np.float32).view(np.uint32) & np.uint32(0xFFFF0000)  # toward zero
    return bits.view(np.float32).astype(np.float64)


def test_chi2_rounding_toward_zero_is_a_defect_and_nearest_passes():
    ref = normal(0.0, 1.0).rounded("bfloat16")
    rtz = chi2_test(_rounded_sample("toward zero"), ref, design.ALPHA)
    assert not rtz.passed and rtz.effect["rounding_bias_cells"] == pytest.approx(0.5, abs=0.08)
    j = S.judge(rtz.to_dict(), "bfloat16")
    assert (j.severity, j.kind) == ("defect", "rounding direction")
    rtn = chi2_test(_rounded_sample("nearest"), ref, design.ALPHA)
    assert rtn.passed and abs(rtn.effect["rounding_bias_cells"]) < 0.1


def test_chi2_other_departures_are_deviations_unless_an_atom():
    uneven = _v("chi2", effect={"chi2_per_dof": 95.0, "rounding_bias_cells": -0.08, "residual_pvalue": 0.0,
                                "atom_ratio": 1.5, "atom_z": 20.1, "atom_mass": 8e-4})
    assert S.judge(uneven, "bfloat16").severity == "deviation"
    biased_but_unexplained = dict(uneven, effect={**uneven["effect"], "rounding_bias_cells": 1.4})
    assert S.judge(biased_but_unexplained, "float16").severity == "deviation"
    piled = _v("chi2", effect={"chi2_per_dof": 196.0, "rounding_bias_cells": 0.28, "residual_pvalue": 0.0,
                               "atom_ratio": 4.36, "atom_z": 74.1, "atom_mass": 0.0016})
    j = S.judge(piled, "bfloat16")
    assert (j.severity, j.kind) == ("defect", "atom") and j.magnitude == pytest.approx(4.36 / 3)
    small_cell = dict(piled, effect={**piled["effect"], "atom_z": 6.0})
    assert S.judge(small_cell, "bfloat16").severity == "deviation"


def test_tails_defect_in_float32_deviation_in_16_bit():
    v = _v("tail_upper", effect={"tail_ratio": 0.0})
    assert S.judge(v, "float32").severity == "defect"
    assert S.judge(v, "bfloat16").severity == "deviation"
    assert S.judge(_v("ks", effect={"ks_distance": 0.004}), "float32").severity == "defect"


def test_exact_checks_and_unknown_tests_are_defects():
    for test in ("finite", "nan", "distinct", "bitwise_equal", "support", "not_constant", "some_new_check"):
        assert S.judge(_v(test), "float32").severity == "defect", test


def test_default_tolerance_keeps_the_flush_mutant_and_the_float64_underflow_as_defects():
    # faulty-sigmoid-flush: float16 sigmoid(-10) = 0 where 4.54e-5 (a float16 subnormal) is the answer
    assert 4.54e-5 > S.default_tolerance(4.54e-5, "float16")
    # faulty-silu-tanh-f64: float64 silu'(-709) = 0 where -8.6e-306 is the answer
    assert 8.6e-306 > S.default_tolerance(-8.6e-306, "float64")
    # a float32 result off by less than float32's smallest normal (a flushed subnormal) is within the default tier
    assert 1e-39 <= S.default_tolerance(1e-39, "float32")
    assert 1e-3 * 2.0 + 2.0**-126 == S.default_tolerance(-2.0, "float16")


def test_accuracy_verdict_carries_the_default_tier_count():
    x = np.array([1.0, 2.0, -90.0], dtype=np.float32)
    ref = np.array([0.5, 0.25, 1e-39], dtype=np.float32)  # a subnormal reference
    within = np.array([0.5, 0.25, 0.0], dtype=np.float32)  # flushes it: misses the ULP bound only
    v = E.accuracy("sigmoid", "value", x, within, ref, "float32")
    assert not v.passed and v.observed["outside_default"] == 0
    assert S.judge(v.to_dict(), "float32").severity == "deviation"
    wrong = np.array([0.5, 0.2500001, 0.0], dtype=np.float32)  # 4 ulp off at a normal value: 7.6e-7 > 1.3e-6 * ...
    wrong[1] = np.nextafter(np.float32(0.25), np.float32(1), dtype=np.float32) * np.float32(1.0001)
    v = E.accuracy("sigmoid", "value", x, wrong, ref, "float32")
    assert v.observed["outside_default"] == 1 and S.judge(v.to_dict(), "float32").severity == "defect"


def test_layout_within_default_is_a_deviation():
    x = np.array([1.0, 2.0], dtype=np.float32)
    a = np.array([0.7310586, 0.8807971], dtype=np.float32)
    last_bit = a.copy()
    last_bit[0] = np.nextafter(a[0], np.float32(1))
    v = E.bitwise_equal("layout", "rule", x, last_bit, a, "float32")
    assert S.judge(v.to_dict(), "float32").severity == "deviation"
    v = E.bitwise_equal("layout", "rule", x, a * 2, a, "float32")
    assert S.judge(v.to_dict(), "float32").severity == "defect"


def test_record_severity_prefers_the_worst_defect_and_crashes_are_defects():
    verdicts = [_v("chi2", effect={"chi2_per_dof": 3.0}),
                _v("variance", effect={"std_ratio": 1.05}, expected={"kurtosis": 3.0}),
                _v("mean", effect={"shift_in_std": 0.02})]
    rec = S.judge_record(verdicts, "failed", "bfloat16")
    assert rec["severity"] == "defect" and rec["kind"] == "scale" and rec["magnitude"] > 1
    assert S.judge_record([verdicts[0]], "passed", "bfloat16")["severity"] == "deviation"
    crash = S.judge_record([], "error", "float16", "RuntimeError: boom")
    assert crash == {"severity": "defect", "kind": "crash", "magnitude": None, "explanation": "RuntimeError: boom"}
    assert S.judge_record([{"test": "mean", "passed": True}], "passed", None)["severity"] is None


def _ctx(strict: bool) -> CheckContext:
    ctx = CheckContext("init_schemes/x", "numpy:cpu", "bfloat16", 1, "repro")
    ctx.strict_tier = strict
    return ctx


def test_default_tier_records_a_deviation_without_failing_and_strict_tier_fails():
    deviation = Verdict("tail_upper", False, "0 values >= 3.9 where 30 expected", n=10, effect={"tail_ratio": 0.0})
    ctx = _ctx(False)
    ctx.expect([deviation])
    assert deviation.severity == "deviation" and ctx.verdicts == [deviation]
    with pytest.raises(CheckFailed):
        _ctx(True).expect([Verdict("tail_upper", False, "x", n=10, effect={"tail_ratio": 0.0})])
    with pytest.raises(CheckFailed):
        _ctx(False).expect([Verdict("support", False, "outside", n=10)])


def test_thresholds_written_in_the_module_doc_hold():
    assert math.isclose(S.variance_threshold(1_000_000, 3.0), 1.01**2 - 1 - design.z_power() * math.sqrt(2e-6))
    assert S.shift_threshold(2**26, 0.00094) < design.z_alpha() / math.sqrt(2**26)  # every large failure: a defect
