"""Calling a backend on the activation area's inputs, and the hypothesis search, for the suite's activation checks.

Contract
--------
* :func:`evaluate` returns ``{output: array}`` of one activation (``value``, ``grad``; swiglu ``value``, ``grad_x``,
  ``grad_y`` through ``activation2``) with the spec's default parameters.
* :func:`table_run` evaluates a backend once per (activation, dtype) on the whole golden input set (cached, so the
  finiteness and accuracy checks share one call).
* :func:`add_repro` appends a one-line shell repro at the worst input to every failing verdict.
* :func:`hypothesis_search` runs the finiteness and accuracy verdicts on hypothesis examples and returns the
  verdicts to record (a passing summary, or the minimal failing example's verdicts).

Nothing here decides a verdict: :mod:`.expect` does.
"""

from __future__ import annotations

import contextlib
import functools
import shlex

import numpy as np

from conformance.stats.severity import DEFECT, judge
from conformance.stats.verdict import Verdict

from . import expect as E
from . import golden, inputs, spec


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
def table_run(backend, name: str, dtype: str):
    """The backend on the whole golden input set of ``dtype`` (cached: finite and accuracy checks share it).

    Returns ``(golden, x, y, outputs)`` with ``x`` and ``y`` the finite inputs."""
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


def worst_x(verdicts) -> float | None:
    """The worst (or first) offending input of the first failing verdict."""
    for v in verdicts:
        if not v.passed:
            return v.observed.get("worst_x", v.observed.get("first_x"))
    return None


def add_repro(verdicts: list[Verdict], backend, name, x, y, dtype) -> None:
    """Append a one-line repro at the worst input to each failing verdict's message."""
    worst = worst_x(verdicts)
    if worst is None:
        return
    i = int(np.flatnonzero(x.astype(np.float64) == worst)[0]) if np.any(x.astype(np.float64) == worst) else 0
    yv = float(y[i]) if name == "swiglu" else None
    for v in verdicts:
        if not v.passed:
            v.message += f"; one-line repro: {python_repro(backend.spec, name, worst, dtype, yv)}"


def reference(name: str, xs, dtype: str, ys=None):
    """Correctly rounded outputs and condition numbers at each point (mpmath, on the fly, memoized per exact input:
    :func:`.spec.cached_reference_point` and :func:`.golden.cached_kappa` return bit for bit the uncached values)."""
    refs, kaps = [], []
    for i, x in enumerate(xs):
        y = None if ys is None else float(ys[i])
        refs.append(spec.cached_reference_point(name, float(x), dtype, y=y, **spec.DEFAULT_PARAMS.get(name, {})))
        kaps.append(golden.cached_kappa(name, float(x), y, spec.OUTPUTS[name]))
    dt = inputs.D.numpy_dtype(dtype)
    refs_a, kaps_a = np.array(refs, dtype=np.float64), np.array(kaps, dtype=np.float64)
    with np.errstate(over="ignore"):
        return ({o: refs_a[:, k].astype(dt) for k, o in enumerate(spec.OUTPUTS[name])},
                {o: kaps_a[:, k] for k, o in enumerate(spec.OUTPUTS[name])})


#: The same function under the name the property below has always used: under the derandomized ``ci`` profile
#: hypothesis derives its examples from the property's source text, so that text is kept as it was when the property
#: lived in the suite module (the same examples, the same verdicts, in every run since).
_worst_x = worst_x


@contextlib.contextmanager
def _no_failure_tracing():
    """Run hypothesis without its after-the-first-failure line tracing (the ``explain`` report's coverage).

    After a first failure hypothesis re-runs every example (shrink and explain phases) under ``sys.settrace`` on
    Python < 3.12 to collect the lines only failing examples reach, for the "Explanation" notes it attaches to the
    exception. :func:`hypothesis_search` discards that exception (it raises :class:`HypothesisFailure` with the
    verdicts' own messages), so the tracing only costs time: about 2/3 of the search on CPython 3.11 (every mpmath
    line of the on-the-fly reference is traced). The tracer only observes: the examples run, their order, the
    shrinking, the explain phase's runs and the verdicts are unchanged (tests/test_activation_reference_cache.py).
    Hypothesis's source marks ``StateForActualGivenExecution._should_trace`` as a supported monkeypatching point
    ("we explicitly support monkeypatching this"); if a future version lacks it, this does nothing (slower, same
    result). Tracing for hypothesis's observability coverage, when enabled, is kept.
    """
    try:
        from hypothesis.core import StateForActualGivenExecution as State
    except ImportError:  # pragma: no cover - another hypothesis layout: trace as it likes
        yield
        return
    original = getattr(State, "_should_trace", None)
    if original is None:  # pragma: no cover
        yield
        return

    def should_trace(self):
        failed = getattr(self, "failed_normally", False)
        try:
            self.failed_normally = False  # the failure-only reason to trace; observability's reason stays
            return original(self)
        finally:
            self.failed_normally = failed

    State._should_trace = should_trace
    try:
        yield
    finally:
        State._should_trace = original


class HypothesisFailure(AssertionError):
    """Hypothesis found a failing example; ``verdicts`` are the minimal example's failing verdicts."""

    def __init__(self, verdicts: list[Verdict], message: str):
        super().__init__(message)
        self.verdicts = verdicts


def hypothesis_search(backend, name: str, dtype: str, seed: int, profile: str, strict_tier: bool = False) -> Verdict:
    """Finite and accurate on hypothesis examples weighted to the hard regions (:func:`.inputs.hard_floats`).

    ``strict_tier``: a failure is any verdict that misses its bound; otherwise only a defect
    (:mod:`conformance.stats.severity`), so the search shrinks toward the defect, not toward a deviation.
    Returns the passing summary verdict, or raises :class:`HypothesisFailure` carrying the minimal failing
    example's verdicts (each message names the minimal input and a one-line repro). ``seed`` seeds hypothesis
    unless the profile is ``ci`` (derandomized).
    """
    from hypothesis import given
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    dt = inputs.D.numpy_dtype(dtype)
    xs_strategy = st.lists(inputs.hard_floats(dtype), min_size=1, max_size=16)
    ys_strategy = st.lists(st.sampled_from(inputs.Y_CYCLE), min_size=16, max_size=16)
    state: dict = {"examples": 0, "failure": None}

    def verdicts_for(xs, ys):
        x = np.array(xs, dtype=dt)
        y = np.array(ys[: x.size], dtype=dt) if name == "swiglu" else None
        got = evaluate(backend, name, x, dtype, y=y)
        refs, kaps = reference(name, x, dtype, y)
        out = []
        for o in spec.OUTPUTS[name]:
            out.append(E.finite(name, o, x, got[o], refs[o], dtype, y=y))
            out.append(E.accuracy(name, o, x, got[o], refs[o], dtype, kaps[o], y=y))
        return out, x, y

    @given(xs_strategy, ys_strategy)
    def property_(xs, ys):
        state["examples"] += 1
        vs, x, y = verdicts_for(xs, ys)
        # the tier's property: the default tier hunts defects, --strict-tier any miss of the ULP bound
        failed = [v for v in vs if not v.passed and (strict_tier or judge(v.to_dict(), dtype).severity == DEFECT)]
        if failed:
            worst = _worst_x(failed)
            i = int(np.flatnonzero(x.astype(np.float64) == worst)[0])
            yv = float(y[i]) if y is not None else None
            line = python_repro(backend.spec, name, worst, dtype, yv)
            msg = "; ".join(v.message for v in failed) + f"; minimal input {inputs.describe(worst, dtype)}" \
                  f"; one-line repro: {line}"
            state["failure"] = (failed, msg)  # the last failure hypothesis replays is the minimal one
            raise AssertionError(msg)

    if profile != "ci":
        property_ = hseed(seed)(property_)
    try:
        with _no_failure_tracing():
            property_()
    except AssertionError:
        if state["failure"] is None:
            raise
        failed, msg = state["failure"]
        for v in failed:
            v.message = msg
        raise HypothesisFailure(failed, msg) from None
    return Verdict("hypothesis", True, f"{name}: {state['examples']} hypothesis examples "
                   f"(profile {profile}) finite and accurate", n=state["examples"])
