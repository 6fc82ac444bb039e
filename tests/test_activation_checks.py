"""Power self-test of the activation checks: each faulty adapter is caught by the named check, and the numpy
reference passes the same selection (one conformance run in a fresh interpreter)."""

from __future__ import annotations

import pytest

from .helpers import records, run_cli

# (faulty backend, check id, dtype, verdict that must fail)
CAUGHT = [
    ("faulty-silu-div:cpu", "activations/test_silu_grad_at_signed_zero", "float32", "grad_at_zero"),
    ("faulty-silu-div:cpu", "activations/test_silu_grad_at_signed_zero", "bfloat16", "grad_at_zero"),
    ("faulty-silu-div:cpu", "activations/test_finite[silu]", "float16", "finite"),
    ("faulty-sigmoid-exp:cpu", "activations/test_finite[sigmoid]", "float32", "finite"),
    ("faulty-sigmoid-exp:cpu", "activations/test_finite[sigmoid]", "float16", "finite"),
    ("faulty-sigmoid-flush:cpu", "activations/test_accuracy[sigmoid]", "float16", "ulp"),
]
SELECTION = "(test_silu_grad_at_signed_zero or test_finite or test_accuracy) and (silu or sigmoid) " \
            "and not swiglu and not hypothesis"


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("activations")
    args = ["run", "--adapters", "tests.faulty.activation_adapters", "-k", SELECTION, "-q"]
    for b in sorted({c[0] for c in CAUGHT}) + ["numpy:cpu"]:
        args += ["--backend", b]
    proc, results = run_cli(*args, report_dir=out)
    assert results is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results


@pytest.mark.parametrize(("backend", "check", "dtype", "test"), CAUGHT,
                         ids=[f"{c[0].split(':')[0]}-{c[1].split('/')[1]}-{c[2]}" for c in CAUGHT])
def test_faulty_adapter_is_caught_by_named_check(faulty_run, backend, check, dtype, test):
    (rec,) = records(faulty_run, check, backend, dtype)
    assert rec["outcome"] == "failed", rec
    assert test in {v["test"] for v in rec["verdicts"] if not v["passed"]}, rec["message"]


def test_sigmoid_exp_caught_at_minus_548(faulty_run):
    """-548 (candle #1722's input) is a sweep point, the faulty gradient is NaN there, so test_finite flags it."""
    import numpy as np

    from conformance.areas.activations.inputs import sweep_points

    from .faulty.activation_adapters import SigmoidExpRecip

    assert -548.0 in sweep_points("float32").astype(np.float64)
    _, grad = SigmoidExpRecip().activation("sigmoid", np.array([-548.0], np.float32), "float32")
    assert np.isnan(grad[0])
    (rec,) = records(faulty_run, "activations/test_finite[sigmoid]", "faulty-sigmoid-exp:cpu", "float32")
    assert rec["outcome"] == "failed"


def test_flush_is_finite_so_only_accuracy_catches_it(faulty_run):
    (rec,) = records(faulty_run, "activations/test_finite[sigmoid]", "faulty-sigmoid-flush:cpu", "float16")
    assert rec["outcome"] == "passed"


def test_reference_passes_the_same_selection(faulty_run):
    ref = records(faulty_run, backend="numpy:cpu")
    assert len(ref) == 4 * 5  # 4 dtypes x (finite, accuracy for silu and sigmoid + grad at zero)
    assert all(r["outcome"] == "passed" for r in ref), [(r["id"], r["dtype"], r["message"]) for r in ref
                                                         if r["outcome"] != "passed"]
