"""The memoized on-the-fly references of the activation hypothesis checks equal the uncached ones bit for bit, and
switching off hypothesis's failure tracing changes neither the examples nor the shrinking.

Contract under test: :func:`conformance.areas.activations.spec.cached_reference_point` and
:func:`conformance.areas.activations.golden.cached_kappa` return exactly (same bits, same sign of zero) what
:func:`~conformance.areas.activations.spec.reference_point` and :func:`~conformance.areas.activations.golden.kappa`
return, on hard inputs of every activation in float32 and float64, on a cold and a warm cache;
:func:`conformance.areas.activations.calls.reference` is built from them; and
``calls._no_failure_tracing`` only drops hypothesis's observation, not a single example.
"""

from __future__ import annotations

import math
import struct
import sys

import numpy as np
import pytest

from conformance.areas.activations import calls, golden, inputs, spec

DTYPES = ("float32", "float64")


def _bits(values) -> tuple[int, ...]:
    """The float64 bit patterns (sign of zero, NaN and inf included) of a sequence of floats."""
    return tuple(struct.unpack("<Q", struct.pack("<d", float(v)))[0] for v in values)


def hard_points(dtype: str) -> list[float]:
    """Signed zeros, subnormals, the smallest normal, every exp/erf/cube threshold, the largest magnitudes, the
    derivative roots and the regression points: each on ``dtype``'s grid, with both signs."""
    fi = inputs.finfo(dtype)
    dt = inputs.D.numpy_dtype(dtype)
    sub, tiny, big = float(fi.smallest_subnormal), float(fi.tiny), float(fi.max)
    mags = [sub, 3 * sub, tiny - sub, tiny, big, big / 2, 1e-3, 0.5, 1.25, 21.0, 37.0, 89.0, 710.0]
    mags += list(inputs.thresholds(dtype).values())
    mags += [-r for r in inputs.DERIVATIVE_ROOTS] + [abs(r) for r in inputs.REGRESSION_POINTS]
    grid = np.clip(np.asarray(mags, dtype=np.float64), 0, big).astype(dt).astype(np.float64)
    grid = sorted({float(v) for v in grid if math.isfinite(v) and v != 0})
    return [0.0, -0.0] + grid + [-v for v in grid]


@pytest.fixture(autouse=True)
def cold_caches():
    """Each test starts (and leaves) with empty memo caches, so the first lookup is a computation."""
    spec._cached_reference_point.cache_clear()
    golden._cached_kappa.cache_clear()
    yield
    spec._cached_reference_point.cache_clear()
    golden._cached_kappa.cache_clear()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", spec.ALL)
def test_cached_reference_and_kappa_equal_uncached_bit_for_bit(name, dtype):
    params = spec.DEFAULT_PARAMS.get(name, {})
    xs = hard_points(dtype)
    ys = [inputs.Y_CYCLE[i % len(inputs.Y_CYCLE)] for i in range(len(xs))] if name == "swiglu" else [None] * len(xs)
    for x, y in zip(xs, ys, strict=True):
        ref = spec.reference_point(name, x, dtype, y=y, **params)
        kap = golden.kappa(name, x, y, spec.OUTPUTS[name])
        for attempt in ("cold", "warm"):
            got = spec.cached_reference_point(name, x, dtype, y=y, **params)
            assert _bits(got) == _bits(ref), (name, dtype, x.hex(), y, attempt, got, ref)
            got_k = golden.cached_kappa(name, x, y, spec.OUTPUTS[name])
            assert isinstance(got_k, list)
            assert _bits(got_k) == _bits(kap), (name, dtype, x.hex(), y, attempt, got_k, kap)
    info = spec._cached_reference_point.cache_info()
    assert info.hits == info.misses == len(xs)  # every warm lookup came from the cache, every cold one did not


def test_signed_zeros_and_params_are_distinct_cache_keys():
    """+0 and -0 compare (and hash) equal as floats; each is its own cache entry, so neither answers for the other."""
    plus = spec.cached_reference_point("silu", 0.0, "float64")
    minus = spec.cached_reference_point("silu", -0.0, "float64")
    assert spec._cached_reference_point.cache_info().misses == 2
    assert _bits(plus) == _bits(spec.reference_point("silu", 0.0, "float64"))
    assert _bits(minus) == _bits(spec.reference_point("silu", -0.0, "float64"))
    golden.cached_kappa("silu", 0.0, None, spec.OUTPUTS["silu"])
    golden.cached_kappa("silu", -0.0, None, spec.OUTPUTS["silu"])
    assert golden._cached_kappa.cache_info().misses == 2
    a = spec.cached_reference_point("leaky_relu", -3.0, "float64", negative_slope=0.01)
    b = spec.cached_reference_point("leaky_relu", -3.0, "float64", negative_slope=0.2)
    assert a != b and _bits(b) == _bits(spec.reference_point("leaky_relu", -3.0, "float64", negative_slope=0.2))


def test_cached_kappa_returns_a_fresh_list():
    first = golden.cached_kappa("tanh", 0.75, None, spec.OUTPUTS["tanh"])
    first.append(-1.0)
    assert golden.cached_kappa("tanh", 0.75, None, spec.OUTPUTS["tanh"]) == golden.kappa(
        "tanh", 0.75, None, spec.OUTPUTS["tanh"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["mish", "swiglu"])
def test_calls_reference_equals_the_uncached_definition(name, dtype):
    """calls.reference (memoized) against the per-point loop it replaced, on an array with repeats."""
    dt = inputs.D.numpy_dtype(dtype)
    x = np.array(hard_points(dtype)[:12] * 2, dtype=dt)
    y = inputs.swiglu_y(x.size, dtype) if name == "swiglu" else None
    refs, kaps = calls.reference(name, x, dtype, y)
    for i, xv in enumerate(x):
        yv = None if y is None else float(y[i])
        want = spec.reference_point(name, float(xv), dtype, y=yv, **spec.DEFAULT_PARAMS.get(name, {}))
        want_k = golden.kappa(name, float(xv), yv, spec.OUTPUTS[name])
        for k, out in enumerate(spec.OUTPUTS[name]):
            assert refs[out].dtype == dt
            assert _bits([refs[out][i]]) == _bits([np.asarray(want[k]).astype(dt)])
            assert _bits([kaps[out][i]]) == _bits([want_k[k]])


def _run_failing_property(traced: bool) -> tuple[list, bool]:
    """A small derandomized hypothesis search that fails and shrinks: the examples it ran, in order, and whether
    any ran under a line tracer (``sys.settrace``, Python < 3.12; 3.12+ traces through ``sys.monitoring``)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    seen: list = []
    tracer_seen = []

    @settings(max_examples=60, derandomize=True, database=None, deadline=None)
    @given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=8))
    def prop(xs):
        seen.append(tuple(_bits(xs)))
        tracer_seen.append(sys.gettrace() is not None)
        assert sum(abs(v) for v in xs) < 1000

    try:
        if traced:
            prop()
        else:
            with calls._no_failure_tracing():
                prop()
    except AssertionError:
        return seen, any(tracer_seen)
    raise AssertionError("the property was meant to fail")


def test_no_failure_tracing_runs_the_same_examples_and_restores_hypothesis():
    from hypothesis.core import StateForActualGivenExecution as State

    before = State.__dict__["_should_trace"]
    traced, was_traced = _run_failing_property(traced=True)
    untraced, was_untraced_traced = _run_failing_property(traced=False)
    assert State.__dict__["_should_trace"] is before
    assert not was_untraced_traced
    if not hasattr(sys, "monitoring") and sys.gettrace() is None:  # hypothesis traces with settrace here
        assert was_traced
    assert len(traced) > 10  # it failed and shrank
    assert untraced == traced  # the same examples in the same order: generation, shrinking, explain phase, replay
