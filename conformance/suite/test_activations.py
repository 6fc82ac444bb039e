"""Activations: value and derivative(s) of silu, sigmoid, gelu, gelu_tanh, softplus, tanh, mish, relu,
leaky_relu and swiglu against mpmath references correctly rounded to each dtype.

Inputs: float16 and bfloat16 exhaustively (all 65,536 bit patterns; the finite ones are checked);
float32 and float64 on a dense deterministic sweep of the hard regions (subnormals, signed zeros, exp
overflow/underflow thresholds, largest magnitudes, derivative roots; :mod:`conformance.areas.activations.inputs`)
plus hypothesis examples weighted toward the same regions (profiles in
:mod:`conformance.areas.activations.hypothesis_profiles`).

Checks (hard tier unless noted):

* ``test_finite``: finite input -> finite value and gradient, wherever the exact result is finite;
* ``test_accuracy``: in the default tier, error <= max(the bound below, torch.testing's rtol per dtype * |ref| +
  the working precision's smallest normal) (:func:`conformance.stats.severity.default_tolerance`); a miss of the
  bound below alone is a deviation, failing only with ``--strict-tier``. The bound:
  error <= ``B_out + B_in * kappa * u_work/u`` ulp(ref) with B_out = 1 ulp (float16,
  bfloat16) or 8 ulp (float32, float64) and B_in = 4 (see
  :func:`conformance.areas.activations.expect.tolerance_ulps` for the justification);
  kappa = |x g'/g| of output g (mpmath, stored in the sweep files; estimated from neighbouring grid points for
  the 16-bit tables), u_work = 2^-24 for 16-bit dtypes (float32 evaluation) and u_work = u otherwise;
* ``test_hypothesis``: both of the above on hypothesis examples (float32, float64), reference on the fly;
* ``test_silu_grad_at_signed_zero``: d silu/dx at +0 and -0 is exactly 0.5 (candle #2082);
* ``test_nan_propagates``: NaN in -> NaN value and NaN gradient(s);
* ``test_limits_at_inf`` (strict tier): value and derivative at +-inf equal the limits;
* ``test_non_contiguous``: transposed and strided inputs give bitwise the contiguous results.
"""

from __future__ import annotations

import numpy as np
import pytest

from conformance.areas.activations import calls as C
from conformance.areas.activations import expect as E
from conformance.areas.activations import hypothesis_profiles, inputs, spec
from conformance.stats.verdict import Verdict

pytestmark = [pytest.mark.requires("activations")]
NAMES = list(spec.ALL)


# -- finite and accurate on the golden inputs ------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_finite(backend, dtype, conformance, name):
    """Finite input -> finite value and derivative(s), on every 16-bit pattern or the float32/float64 sweep."""
    g, x, y, got = C.table_run(backend, name, dtype)
    verdicts = [E.finite(name, out, x, got[out], g.refs[name][out][g.finite], dtype,
                         y=y if name == "swiglu" else None) for out in spec.OUTPUTS[name]]
    C.add_repro(verdicts, backend, name, x, y, dtype)
    conformance.expect(verdicts, f"{name} finite on {x.size:,} inputs")


@pytest.mark.parametrize("name", NAMES)
def test_accuracy(backend, dtype, conformance, name):
    """Within the stated ULP bound of the correctly rounded mpmath reference (golden file)."""
    g, x, y, got = C.table_run(backend, name, dtype)
    verdicts = []
    for out in spec.OUTPUTS[name]:
        ref = g.refs[name][out][g.finite]
        kappa = g.kappa[name][out][g.finite] if g.kappa else E.grid_kappa(x, ref)
        verdicts.append(E.accuracy(name, out, x, got[out], g.refs[name][out][g.finite], dtype, kappa,
                                   y=y if name == "swiglu" else None))
    C.add_repro(verdicts, backend, name, x, y, dtype)
    conformance.expect(verdicts, f"{name} accuracy on {x.size:,} inputs")


# -- hypothesis ------------------------------------------------------------------------------------------------------
@pytest.mark.dtypes("float32", "float64")
@pytest.mark.parametrize("name", NAMES)
def test_hypothesis(backend, dtype, conformance, name, pytestconfig):
    """Finite and accurate on hypothesis examples weighted to subnormals, signed zeros, exp thresholds and the
    largest magnitudes (profile: dev / ci / thorough, see conformance.areas.activations.hypothesis_profiles)."""
    profile = hypothesis_profiles.load(pytestconfig)
    try:
        verdict = C.hypothesis_search(backend, name, dtype, conformance.seed, profile, conformance.strict_tier)
    except C.HypothesisFailure as failure:
        conformance.expect(failure.verdicts, f"{name} hypothesis ({profile})")
        raise
    conformance.expect(verdict, f"{name} hypothesis ({profile})")


# -- special values --------------------------------------------------------------------------------------------------
def test_silu_grad_at_signed_zero(backend, dtype, conformance):
    """d silu/dx at +0 and -0 is exactly 0.5 and silu(+-0) = 0 (candle #2082 computed silu(x)/x = 0/0)."""
    x = np.array([0.0, -0.0], dtype=inputs.D.numpy_dtype(dtype))
    got = C.evaluate(backend, "silu", x, dtype)
    conformance.expect([
        E.exact_values("grad_at_zero", "d silu/dx at +0 and -0 == 0.5 exactly", x, got["grad"], [0.5, 0.5], dtype),
        E.exact_values("value_at_zero", "silu(+-0) == 0", x, got["value"], [0.0, 0.0], dtype),
    ])


@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates(backend, dtype, conformance, name):
    """NaN in -> NaN out, for the value and every derivative."""
    x = np.array([np.nan, 1.0, np.nan], dtype=inputs.D.numpy_dtype(dtype))
    y = np.array([1.0, np.nan, np.nan], dtype=x.dtype) if name == "swiglu" else None
    got = C.evaluate(backend, name, x, dtype, y=y)
    nan_mask = np.isnan(x.astype(np.float64)) if y is None else np.ones(3, bool)
    verdicts = []
    for out, arr in got.items():
        a = arr.astype(np.float64)
        if name == "swiglu" and out == "grad_y":
            mask = np.isnan(x.astype(np.float64))  # d/dy = silu(x): NaN exactly where x is NaN
        elif name == "swiglu" and out == "grad_x":
            mask = np.isnan(x.astype(np.float64)) | np.isnan(y.astype(np.float64))
        else:
            mask = nan_mask
        ok = np.isnan(a[mask]).all()
        verdicts.append(Verdict("nan", bool(ok), f"{name} {out}: NaN input -> NaN; got {a[mask].tolist()} at the "
                                f"NaN inputs", n=int(mask.sum()), expected={"rule": "NaN in gives NaN out"}))
    conformance.expect(verdicts)


@pytest.mark.strict_tier
@pytest.mark.parametrize("name", NAMES)
def test_limits_at_inf(backend, dtype, conformance, name):
    """f(+-inf) and f'(+-inf) equal the limits of the definition (silu'(+inf) = 1, silu'(-inf) = 0,
    silu(-inf) = 0, ...); swiglu with y = 1: its value and d/dx are silu's, d/dy is silu(x)."""
    x = np.array([-np.inf, np.inf], dtype=inputs.D.numpy_dtype(dtype))
    base = "silu" if name == "swiglu" else name
    lim = spec.limits(base, **spec.DEFAULT_PARAMS.get(base, {}))
    want = {"value": [lim.value_neg, lim.value_pos], "grad": [lim.grad_neg, lim.grad_pos]}
    if name == "swiglu":
        want = {"value": want["value"], "grad_x": want["grad"], "grad_y": want["value"]}
    got = C.evaluate(backend, name, x, dtype, y=np.ones(2, x.dtype) if name == "swiglu" else None)
    if base == "leaky_relu":  # the slope as rounded into dtype
        want["grad"][0] = float(np.asarray(lim.grad_neg, x.dtype).astype(np.float64))
    conformance.expect([E.exact_values("limit", f"{name} {out} at (-inf, +inf) == {want[out]}", x, got[out],
                                       want[out], dtype) for out in got])


# -- layouts ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["transposed", "strided"])
@pytest.mark.parametrize("name", NAMES)
def test_non_contiguous(backend, dtype, conformance, name, layout):
    """act(non-contiguous view) == act(contiguous copy), bitwise, forward and backward (pytorch #139006)."""
    x = inputs.layout_input(dtype)
    contiguous = C.evaluate(backend, name, x, dtype)
    view = C.evaluate(backend, name, x, dtype, layout=layout)
    conformance.expect([E.bitwise_equal("layout", f"{name} {out} on a {layout} input equals the contiguous result",
                                        x, view[out], contiguous[out], dtype) for out in contiguous])
