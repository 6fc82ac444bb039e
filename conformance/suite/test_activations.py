"""Activations: value and derivative(s) of silu, sigmoid, gelu, gelu_tanh, softplus, tanh, mish, relu,
leaky_relu and swiglu against mpmath references correctly rounded to each dtype.

Inputs: float16 and bfloat16 exhaustively (all 65,536 bit patterns; the finite ones are checked);
float32 and float64 on a dense deterministic sweep of the hard regions (subnormals, signed zeros, exp
overflow/underflow thresholds, largest magnitudes, derivative roots; :mod:`conformance.activation_inputs`)
plus hypothesis examples weighted toward the same regions (profiles in :mod:`conformance.hypothesis_profiles`).

Checks (hard tier unless noted):

* ``test_finite``: finite input -> finite value and gradient, wherever the exact result is finite;
* ``test_accuracy``: error <= ``B_out + B_in * kappa * u_work/u`` ulp(ref) with B_out = 1 ulp (float16,
  bfloat16) or 8 ulp (float32, float64) and B_in = 4 (see
  :func:`conformance.expect_activations.tolerance_ulps` for the justification);
  kappa = |x g'/g| of output g (mpmath, stored in the sweep files; estimated from neighbouring grid points for
  the 16-bit tables), u_work = 2^-24 for 16-bit dtypes (float32 evaluation) and u_work = u otherwise;
* ``test_hypothesis``: both of the above on hypothesis examples (float32, float64), reference on the fly;
* ``test_silu_grad_at_signed_zero``: d silu/dx at +0 and -0 is exactly 0.5 (candle #2082);
* ``test_nan_propagates``: NaN in -> NaN value and NaN gradient(s);
* ``test_limits_at_inf`` (strict tier): value and derivative at +-inf equal the limits;
* ``test_non_contiguous``: transposed and strided inputs give bitwise the contiguous results.
"""

from __future__ import annotations

import functools
import shlex

import numpy as np
import pytest

from conformance import activation_inputs as inputs
from conformance import expect_activations as E
from conformance import golden_activations as golden
from conformance import hypothesis_profiles
from conformance.specs import activations as spec
from conformance.stats.verdict import Verdict

pytestmark = [pytest.mark.requires("activations")]
NAMES = list(spec.ALL)


# -- calling the backend ---------------------------------------------------------------------------------------------
def evaluate(backend, name: str, x: np.ndarray, dtype: str, y: np.ndarray | None = None, **params) -> dict:
    """{output: array} of one activation (swiglu through ``activation2``)."""
    if name == "swiglu":
        if y is None:
            y = inputs.swiglu_y(x.size, dtype).reshape(x.shape)
        outs = backend.activation2(name, x, y, dtype, **params)
    else:
        outs = backend.activation(name, x, dtype, **{**spec.DEFAULT_PARAMS.get(name, {}), **params})
    return dict(zip(spec.OUTPUTS[name], (np.asarray(o) for o in outs), strict=True))


@functools.lru_cache(maxsize=256)
def _table_run(backend, name: str, dtype: str):
    """The backend on the whole golden input set of ``dtype`` (cached: finite and accuracy checks share it)."""
    g = golden.load(dtype)
    x, y = g.x[g.finite], g.y[g.finite]
    return g, x, y, evaluate(backend, name, x, dtype, y=y if name == "swiglu" else None)


def python_repro(spec_: str, name: str, x: float, dtype: str, y: float | None = None) -> str:
    """A one-line shell command that prints the backend's outputs at ``x``."""
    call = (f"b.activation2('swiglu', np.array([float.fromhex('{float(x).hex()}')]), "
            f"np.array([float.fromhex('{float(y).hex()}')]), '{dtype}')" if name == "swiglu"
            else f"b.activation('{name}', np.array([float.fromhex('{float(x).hex()}')]), '{dtype}')")
    code = (f"import numpy as np; from conformance.backends.registry import resolve; b = resolve('{spec_}'); "
            f"print({call})")
    return f"python -c {shlex.quote(code)}"


def _worst_x(verdicts) -> float | None:
    for v in verdicts:
        if not v.passed:
            return v.observed.get("worst_x", v.observed.get("first_x"))
    return None


# -- finite and accurate on the golden inputs ------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_finite(backend, dtype, conformance, name):
    """Finite input -> finite value and derivative(s), on every 16-bit pattern or the float32/float64 sweep."""
    g, x, y, got = _table_run(backend, name, dtype)
    verdicts = [E.finite(name, out, x, got[out], g.refs[name][out][g.finite], dtype,
                         y=y if name == "swiglu" else None) for out in spec.OUTPUTS[name]]
    _add_repro(verdicts, backend, name, x, y, dtype)
    conformance.expect(verdicts, f"{name} finite on {x.size:,} inputs")


@pytest.mark.parametrize("name", NAMES)
def test_accuracy(backend, dtype, conformance, name):
    """Within the stated ULP bound of the correctly rounded mpmath reference (golden file)."""
    g, x, y, got = _table_run(backend, name, dtype)
    verdicts = []
    for out in spec.OUTPUTS[name]:
        ref = g.refs[name][out][g.finite]
        kappa = g.kappa[name][out][g.finite] if g.kappa else E.grid_kappa(x, ref)
        verdicts.append(E.accuracy(name, out, x, got[out], g.refs[name][out][g.finite], dtype, kappa,
                                   y=y if name == "swiglu" else None))
    _add_repro(verdicts, backend, name, x, y, dtype)
    conformance.expect(verdicts, f"{name} accuracy on {x.size:,} inputs")


def _add_repro(verdicts: list[Verdict], backend, name, x, y, dtype) -> None:
    worst = _worst_x(verdicts)
    if worst is None:
        return
    i = int(np.flatnonzero(x.astype(np.float64) == worst)[0]) if np.any(x.astype(np.float64) == worst) else 0
    yv = float(y[i]) if name == "swiglu" else None
    for v in verdicts:
        if not v.passed:
            v.message += f"; one-line repro: {python_repro(backend.spec, name, worst, dtype, yv)}"


# -- hypothesis ------------------------------------------------------------------------------------------------------
def _reference(name: str, xs, dtype: str, ys=None):
    """Correctly rounded outputs and condition numbers at each point (mpmath, on the fly)."""
    refs, kaps = [], []
    for i, x in enumerate(xs):
        y = None if ys is None else float(ys[i])
        refs.append(spec.reference_point(name, float(x), dtype, y=y, **spec.DEFAULT_PARAMS.get(name, {})))
        kaps.append(golden._kappa(name, float(x), y, spec.OUTPUTS[name]))
    dt = inputs.D.numpy_dtype(dtype)
    refs_a, kaps_a = np.array(refs, dtype=np.float64), np.array(kaps, dtype=np.float64)
    with np.errstate(over="ignore"):
        return ({o: refs_a[:, k].astype(dt) for k, o in enumerate(spec.OUTPUTS[name])},
                {o: kaps_a[:, k] for k, o in enumerate(spec.OUTPUTS[name])})


@pytest.mark.dtypes("float32", "float64")
@pytest.mark.parametrize("name", NAMES)
def test_hypothesis(backend, dtype, conformance, name, pytestconfig):
    """Finite and accurate on hypothesis examples weighted to subnormals, signed zeros, exp thresholds and the
    largest magnitudes (profile: dev / ci / thorough, see conformance.hypothesis_profiles)."""
    from hypothesis import given, seed
    from hypothesis import strategies as st

    dt = inputs.D.numpy_dtype(dtype)
    xs_strategy = st.lists(inputs.hard_floats(dtype), min_size=1, max_size=16)
    ys_strategy = st.lists(st.sampled_from(inputs.Y_CYCLE), min_size=16, max_size=16)
    state: dict = {"examples": 0, "failure": None}
    PROFILE = hypothesis_profiles.load(pytestconfig)  # noqa: N806 - the profile in effect for this check

    def verdicts_for(xs, ys):
        x = np.array(xs, dtype=dt)
        y = np.array(ys[: x.size], dtype=dt) if name == "swiglu" else None
        got = evaluate(backend, name, x, dtype, y=y)
        refs, kaps = _reference(name, x, dtype, y)
        out = []
        for o in spec.OUTPUTS[name]:
            out.append(E.finite(name, o, x, got[o], refs[o], dtype, y=y))
            out.append(E.accuracy(name, o, x, got[o], refs[o], dtype, kaps[o], y=y))
        return out, x, y

    @given(xs_strategy, ys_strategy)
    def property_(xs, ys):
        state["examples"] += 1
        vs, x, y = verdicts_for(xs, ys)
        failed = [v for v in vs if not v.passed]
        if failed:
            worst = _worst_x(failed)
            i = int(np.flatnonzero(x.astype(np.float64) == worst)[0])
            yv = float(y[i]) if y is not None else None
            line = python_repro(backend.spec, name, worst, dtype, yv)
            msg = "; ".join(v.message for v in failed) + f"; minimal input {inputs.describe(worst, dtype)}" \
                  f"; one-line repro: {line}"
            state["failure"] = (failed, msg)  # the last failure hypothesis replays is the minimal one
            raise AssertionError(msg)

    if PROFILE != "ci":
        property_ = seed(conformance.seed)(property_)
    try:
        property_()
    except AssertionError:
        if state["failure"] is None:
            raise
        failed, msg = state["failure"]
        for v in failed:
            v.message = msg
        conformance.expect(failed, f"{name} hypothesis ({PROFILE})")
        raise
    conformance.expect(Verdict("hypothesis", True, f"{name}: {state['examples']} hypothesis examples "
                               f"(profile {PROFILE}) finite and accurate", n=state["examples"]),
                       f"{name} hypothesis ({PROFILE})")


# -- special values --------------------------------------------------------------------------------------------------
def test_silu_grad_at_signed_zero(backend, dtype, conformance):
    """d silu/dx at +0 and -0 is exactly 0.5 and silu(+-0) = 0 (candle #2082 computed silu(x)/x = 0/0)."""
    x = np.array([0.0, -0.0], dtype=inputs.D.numpy_dtype(dtype))
    got = evaluate(backend, "silu", x, dtype)
    conformance.expect([
        E.exact_values("grad_at_zero", "d silu/dx at +0 and -0 == 0.5 exactly", x, got["grad"], [0.5, 0.5], dtype),
        E.exact_values("value_at_zero", "silu(+-0) == 0", x, got["value"], [0.0, 0.0], dtype),
    ])


@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates(backend, dtype, conformance, name):
    """NaN in -> NaN out, for the value and every derivative."""
    x = np.array([np.nan, 1.0, np.nan], dtype=inputs.D.numpy_dtype(dtype))
    y = np.array([1.0, np.nan, np.nan], dtype=x.dtype) if name == "swiglu" else None
    got = evaluate(backend, name, x, dtype, y=y)
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
    got = evaluate(backend, name, x, dtype, y=np.ones(2, x.dtype) if name == "swiglu" else None)
    if base == "leaky_relu":  # the slope as rounded into dtype
        want["grad"][0] = float(np.asarray(lim.grad_neg, x.dtype).astype(np.float64))
    conformance.expect([E.exact_values("limit", f"{name} {out} at (-inf, +inf) == {want[out]}", x, got[out],
                                       want[out], dtype) for out in got])


# -- layouts ---------------------------------------------------------------------------------------------------------
def _layout_input(dtype: str) -> np.ndarray:
    """A 24 x 40 input mixing the curved region, zeros, subnormals and large magnitudes."""
    fi = inputs.finfo(dtype)
    dt = inputs.D.numpy_dtype(dtype)
    vals = np.concatenate([np.linspace(-12, 12, 900), [0.0, -0.0, float(fi.smallest_subnormal), float(fi.tiny),
                                                       -float(fi.max), float(fi.max), -548.0, 10.5]])
    vals = np.resize(vals, 24 * 40)
    return np.random.default_rng(0).permutation(vals).astype(dt).reshape(24, 40)


@pytest.mark.parametrize("layout", ["transposed", "strided"])
@pytest.mark.parametrize("name", NAMES)
def test_non_contiguous(backend, dtype, conformance, name, layout):
    """act(non-contiguous view) == act(contiguous copy), bitwise, forward and backward (pytorch #139006)."""
    x = _layout_input(dtype)
    contiguous = evaluate(backend, name, x, dtype)
    view = evaluate(backend, name, x, dtype, layout=layout)
    conformance.expect([E.bitwise_equal("layout", f"{name} {out} on a {layout} input equals the contiguous result",
                                        x, view[out], contiguous[out], dtype) for out in contiguous])
