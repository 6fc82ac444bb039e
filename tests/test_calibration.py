"""Calibration self-test: under the null (samples drawn from the exact reference), each test
procedure's false-alarm rate over 2000 repetitions matches its design.

* At the design alpha (1e-7) no repetition may alarm (expected 2e-4 alarms in 2000).
* At measurable levels (0.01, 0.05) the rate of the asymptotically exact procedures (KS,
  chi-square, mean and variance z-tests) lies inside the two-sided binomial acceptance region
  (probability 0.999) of that level; the exact binomial procedures (tail and outlier tests) are
  conservative by construction, so their rate must not exceed the region's upper end.

Samples are float32 (continuous reference, KS) and bfloat16 (exact rounded reference,
chi-square); n = 2000 per repetition keeps this under a minute while exercising every
procedure (tail regions: 30 expected values, as at n = 1e6).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from conformance.stats import compare_distribution, design, normal, trunc_normal, uniform
from conformance.stats.grids import numpy_dtype

REPS = 2000
N = 2000
EXACT_PROCEDURES = {"ks", "chi2", "mean", "variance"}
CONSERVATIVE = {"tail_lower", "tail_upper", "outliers_lower", "outliers_upper"}


def _draw(rng, ref, dtype: str, n: int) -> np.ndarray:
    """Exact reference samples: inverse-CDF in float64; 16-bit dtypes draw from the rounded pmf."""
    if dtype in ("float16", "bfloat16"):
        rounded = ref.rounded(dtype)
        return rng.choice(rounded.values, size=n, p=rounded.probs).astype(numpy_dtype(dtype))
    x = ref.dist.ppf(rng.random(n))
    return x.astype(numpy_dtype(dtype))


def _pvalues(ref, dtype: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {}
    for _ in range(REPS):
        for v in compare_distribution(_draw(rng, ref, dtype, N), ref, dtype, design.ALPHA):
            if v.pvalue is not None:
                out.setdefault(v.test, []).append(v.pvalue)
            else:
                assert v.passed, v.message  # exact checks never fail on exact samples
    return {k: np.asarray(v) for k, v in out.items()}


CASES = [
    ("normal-float32", normal(0.0, 0.02), "float32"),
    ("uniform-float32", uniform(-0.1, 0.1), "float32"),
    ("trunc_normal-float32", trunc_normal(0.0, 1.0, -2.0, 2.0), "float32"),
    ("normal-bfloat16", normal(0.0, 0.02), "bfloat16"),
    ("uniform-bfloat16", uniform(-0.1, 0.1), "bfloat16"),
]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def null_pvalues(request):
    name, ref, dtype = request.param
    return name, _pvalues(ref, dtype, seed=sum(map(ord, name)))


def _region(level: float) -> tuple[int, int]:
    """Two-sided 0.999 acceptance region of Binomial(REPS, level)."""
    return int(stats.binom.ppf(0.0005, REPS, level)), int(stats.binom.isf(0.0005, REPS, level))


def test_no_alarm_at_design_alpha(null_pvalues):
    name, pv = null_pvalues
    for test, p in pv.items():
        assert len(p) == REPS, (test, len(p))
        assert int(np.sum(p <= design.ALPHA)) == 0, f"{name}: {test} alarmed under the null at alpha {design.ALPHA}"


@pytest.mark.parametrize("level", [0.01, 0.05])
def test_rate_matches_level(null_pvalues, level):
    name, pv = null_pvalues
    lo, hi = _region(level)
    report = []
    for test, p in pv.items():
        k = int(np.sum(p <= level))
        report.append(f"{test}: {k}/{REPS} (region {lo}-{hi})")
        if test in EXACT_PROCEDURES:
            assert lo <= k <= hi, f"{name}: {test} false-alarm count {k} outside [{lo}, {hi}] at level {level}"
        else:
            assert test in CONSERVATIVE, test
            assert k <= hi, f"{name}: {test} false-alarm count {k} above {hi} at level {level}"
    print(f"{name} level {level}: " + "; ".join(report))


def _seed_results(root, seed: int, records: list[dict]) -> None:
    import json

    d = root / str(seed)
    d.mkdir(parents=True)
    summary = {"total": len(records), "passed": sum(r["outcome"] == "passed" for r in records), "skipped": 0,
               "xfailed": 0, "xpassed": 0, "statistical_tests": 100, "fwer_bound": 1e-5}
    (d / "results.json").write_text(json.dumps({"seed": seed, "summary": summary, "records": records}))


def test_calibration_summary_separates_false_alarms_from_recorded_deviations(tmp_path):
    """An alarm the known-failures file explains (same check, only its named tests failed) is a recorded deviation;
    any other failure, or one with another verdict failing, stays a false alarm."""
    from conformance import known_failures as kf
    from tools import calibration as C

    def rec(id_, tests, outcome="failed"):
        return {"id": id_, "backend": "torch:cpu", "dtype": "bfloat16", "outcome": outcome, "message": "m",
                "verdicts": [{"test": t, "passed": False} for t in tests]}

    sparse = "init_schemes/test_sparse[300x1000-s0.5]"
    _seed_results(tmp_path, 1, [rec(sparse, ["extra_zeros"]), rec("x/test_other", [], "passed")])
    _seed_results(tmp_path, 2, [rec(sparse, ["extra_zeros", "sparsity"])])
    doc = C.summarize(tmp_path, kf.load(kf.DEFAULT_PATH))
    assert [p["false_alarms"] for p in doc["per_seed"]] == [0, 1]
    assert [p["known_since"] for p in doc["per_seed"]] == [1, 0]
    assert doc["runs_with_false_alarm"] == 1
    assert "recorded since" in C.markdown(doc)
    raw = C.summarize(tmp_path, None)
    assert raw["false_alarms_total"] == 2 and raw["known_since_total"] == 0
