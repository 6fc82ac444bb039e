"""Power self-test: each faulty initializer is caught by the named check; the reference passes.

One conformance run (fresh interpreter) covers every mutant; the assertions name the check id,
the dtype and the verdict that must fail.
"""

from __future__ import annotations

import pytest

from .helpers import failed_tests, records, run_cli

NORMAL = "init_schemes/test_random_scheme[normal-0_1]"
UNIFORM = "init_schemes/test_random_scheme[uniform-m3_5]"
KU_RELU = "init_schemes/test_random_scheme[kaiming_uniform-fan_in-relu]"
KN_RELU = "init_schemes/test_random_scheme[kaiming_normal-fan_in-relu]"

# (mutant backend, check id, dtype, verdict that must fail)
MUTANTS = [
    ("faulty-std:cpu", NORMAL, "float32", "variance"),
    ("faulty-shift:cpu", NORMAL, "float32", "mean"),
    ("faulty-bound:cpu", UNIFORM, "float32", "support"),
    ("faulty-bound:cpu", UNIFORM, "float32", "variance"),
    ("faulty-fanswap:cpu", KU_RELU, "float32", "variance"),
    ("faulty-nogain:cpu", KN_RELU, "float32", "variance"),
    ("faulty-clipped:cpu", NORMAL, "float32", "tail_lower"),
    ("faulty-clipped:cpu", NORMAL, "float32", "tail_upper"),
    ("faulty-constant:cpu", NORMAL, "float32", "not_constant"),
    ("faulty-bf16round:cpu", NORMAL, "bfloat16", "chi2"),
]
SELECTION = "(normal-0_1 or uniform-m3_5 or kaiming_uniform-fan_in-relu or kaiming_normal-fan_in-relu) " \
            "and (float32 or bfloat16) and not moments"


@pytest.fixture(scope="module")
def mutant_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mutants")
    backends = sorted({m[0] for m in MUTANTS}) + ["numpy:cpu"]
    args = ["run", "--adapters", "tests.faulty.init_adapters", "-k", SELECTION, "-q"]
    for b in backends:
        args += ["--backend", b]
    proc, results = run_cli(*args, report_dir=out)
    assert results is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, results


@pytest.mark.parametrize(("backend", "check", "dtype", "test"), MUTANTS,
                         ids=[f"{m[0].split(':')[0]}-{m[3]}" for m in MUTANTS])
def test_mutant_is_caught_by_named_check(mutant_run, backend, check, dtype, test):
    _, results = mutant_run
    (rec,) = records(results, check, backend, dtype)
    assert rec["outcome"] == "failed", rec
    assert test in failed_tests(rec), (test, rec["message"])
    assert rec["repro"].startswith("conformance run --backend=" + backend)


def test_reference_passes_the_same_selection(mutant_run):
    proc, results = mutant_run
    ref = records(results, backend="numpy:cpu")
    assert len(ref) == 8
    assert {r["outcome"] for r in ref} == {"passed"}, [r["message"] for r in ref if r["outcome"] != "passed"]
    assert proc.returncode == 1  # the mutants fail the run


def test_bf16_mutant_is_clean_in_float32(mutant_run):
    """Control: the biased-rounding mutant only differs in bfloat16, and passes in float32."""
    _, results = mutant_run
    (rec,) = records(results, NORMAL, "faulty-bf16round:cpu", "float32")
    assert rec["outcome"] == "passed"


NORMAL_LARGE_N = "init_schemes/test_random_scheme_moments[normal-0_1]"
# Defects five times below what n = 1e6 resolves: only the streamed n = 2^26 scale-and-shift check sees them.
FINE = [("faulty-std2permille:cpu", "variance_large"), ("faulty-shift2permille:cpu", "mean_large")]


@pytest.fixture(scope="module")
def fine_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fine")
    args = ["run", "--adapters", "tests.faulty.init_adapters", "-k", "normal-0_1 and float32", "-q"]
    for b in [m[0] for m in FINE] + ["faulty-nan:cpu", "numpy:cpu"]:
        args += ["--backend", b]
    proc, results = run_cli(*args, report_dir=out)
    assert results is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results


@pytest.mark.parametrize(("backend", "test"), FINE, ids=[m[1] for m in FINE])
def test_fine_mutant_is_caught_only_at_large_n(fine_run, backend, test):
    (rec,) = records(fine_run, NORMAL_LARGE_N, backend, "float32")
    assert rec["outcome"] == "failed", rec
    assert test in failed_tests(rec), (test, rec["message"])
    # control: at the fixed master seed the n = 1e6 battery does not resolve a defect this small
    (battery,) = records(fine_run, NORMAL, backend, "float32")
    assert battery["outcome"] == "passed", battery["message"]


def test_non_finite_values_fail_the_large_n_check(fine_run):
    (rec,) = records(fine_run, NORMAL_LARGE_N, "faulty-nan:cpu", "float32")
    assert rec["outcome"] == "failed", rec
    assert failed_tests(rec) == {"finite_large"}, rec["message"]


def test_reference_passes_the_large_n_check(fine_run):
    ref = records(fine_run, backend="numpy:cpu")
    assert {r["id"] for r in ref} == {NORMAL, NORMAL_LARGE_N}
    assert {r["outcome"] for r in ref} == {"passed"}, [r["message"] for r in ref if r["outcome"] != "passed"]


# Deterministic and structural init checks: (mutant backend, check id, dtype or None, verdict that must fail).
# A verdict of None means the adapter raises: the check must be *failed*, never skipped or passed.
STRUCTURAL = [
    ("faulty-gainparam:cpu", "gain/test_calculate_gain[leaky_relu-0.2]", None, "value"),
    ("faulty-eye:cpu", "init_schemes/test_deterministic_scheme[eye-5x7]", "float32", "exact"),
    ("faulty-dirac:cpu", "init_schemes/test_deterministic_scheme[dirac-2d-groups2]", "float32", "exact"),
    ("faulty-orthouniform:cpu", "init_schemes/test_orthogonal_is_haar[6x10]", "float32", "ks"),
    ("faulty-orthogain:cpu", "init_schemes/test_orthogonal_is_orthogonal[conv-gain2]", "float32", "orthogonality"),
    ("faulty-sparse:cpu", "init_schemes/test_sparse[1000x200-s0.1]", "float32", "sparsity"),
    ("faulty-emptyraise:cpu", "init_schemes/test_zero_element_is_noop[kaiming_uniform]", "float32", None),
    ("faulty-layernorm:cpu", "module_defaults/test_deterministic_default[LayerNorm-exact-normalized_shape64_]",
     "float32", "exact"),
]
STRUCTURAL_SELECTION = ("test_calculate_gain or ((eye-5x7 or dirac-2d-groups2 or test_orthogonal or 1000x200-s0.1 "
                        "or zero_element_is_noop or LayerNorm) and float32)")


@pytest.fixture(scope="module")
def structural_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("structural")
    args = ["run", "--adapters", "tests.faulty.init_adapters", "-k", STRUCTURAL_SELECTION, "-q"]
    for b in sorted({m[0] for m in STRUCTURAL}) + ["numpy:cpu"]:
        args += ["--backend", b]
    proc, results = run_cli(*args, report_dir=out)
    assert results is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results


@pytest.mark.parametrize(("backend", "check", "dtype", "test"), STRUCTURAL,
                         ids=[m[0].split(":")[0] for m in STRUCTURAL])
def test_structural_mutant_is_caught(structural_run, backend, check, dtype, test):
    (rec,) = records(structural_run, check, backend, dtype)
    assert rec["outcome"] == "failed", rec
    if test is not None:
        assert test in failed_tests(rec), (test, rec["message"])


def test_reference_passes_the_structural_selection(structural_run):
    ref = records(structural_run, backend="numpy:cpu")
    assert len(ref) > 20
    assert {r["outcome"] for r in ref} == {"passed"}, [r["message"] for r in ref if r["outcome"] != "passed"]
