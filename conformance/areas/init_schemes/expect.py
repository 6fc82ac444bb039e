"""Assertion helpers: turn arrays plus an expectation into Verdicts whose messages quote the rule.

These functions do not raise; :class:`conformance.context.CheckContext` records their verdicts
and fails the check if any verdict failed. Exact checks carry no p-value.
"""

from __future__ import annotations

import math

import numpy as np

from conformance.stats import Verdict, as_float64, compare_distribution, for_dtype
from conformance.stats import procedures as P
from conformance.stats.grids import machine_eps, numpy_dtype
from conformance.stats.moments import Moments

from .spec import Exact, Expectation


def distribution(samples, expectation: Expectation, dtype: str, alpha: float) -> list[Verdict]:
    """The full statistical battery; every message is prefixed with the rule."""
    verdicts = compare_distribution(samples, expectation.reference, dtype, alpha)
    for v in verdicts:
        v.expected.setdefault("rule", expectation.rule)
    return verdicts


def reference_mean(expectation: Expectation, dtype: str) -> float:
    """The exact mean of the expected distribution rounded to ``dtype`` (the centre for :func:`moments`)."""
    return float(for_dtype(expectation.reference, dtype).mean)


def moments(acc: Moments, expectation: Expectation, dtype: str, alpha: float) -> list[Verdict]:
    """Scale and shift of a streamed sample against the reference rounded to ``dtype``
    (:func:`conformance.stats.procedures.moment_verdicts`); every message is prefixed with the rule."""
    verdicts = P.moment_verdicts(acc, for_dtype(expectation.reference, dtype), alpha)
    for v in verdicts:
        v.expected.setdefault("rule", expectation.rule)
    return verdicts


def _rounded_constant(value: float, dtype: str) -> float:
    return float(np.asarray(value, dtype=numpy_dtype(dtype)).astype(np.float64))


def exact(array, expectation: Exact, dtype: str) -> Verdict:
    """Deterministic schemes: constant, eye, dirac. Compared bit for bit after rounding to dtype."""
    x = np.asarray(array).astype(np.float64)
    if expectation.kind == "constant":
        want = np.full(x.shape, _rounded_constant(expectation.value, dtype))
    elif expectation.kind == "eye":
        want = np.eye(*x.shape) if x.ndim == 2 else None
    elif expectation.kind == "dirac":
        want = _dirac(x.shape, expectation.groups)
    else:
        raise ValueError(f"unknown exact kind {expectation.kind!r}")
    if want is None:
        return Verdict("exact", False, f"{expectation.rule}: wrong rank {x.ndim}", n=x.size)
    bad = ~((x == want) | (np.isnan(x) & np.isnan(want)))
    if not bad.any():
        return Verdict("exact", True, f"{expectation.rule}: all {x.size} elements as expected", n=x.size)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return Verdict("exact", False,
                   f"{expectation.rule}: {int(bad.sum())} of {x.size} elements differ; first at {first}: "
                   f"got {x[first]!r}, expected {want[first]!r}",
                   n=x.size, observed={"mismatches": int(bad.sum())})


# Kept on purpose as the check's independent oracle: the numpy reference adapter has its own dirac
# (conformance.backends.numpy_adapter NumpyBackend._init_dirac); the check must not reuse the code it judges.
def _dirac(shape: tuple[int, ...], groups: int) -> np.ndarray:
    """Identity convolution kernel (torch.nn.init.dirac_ docs): per group, out channel d of
    the group maps input channel d at the kernel centre, for d < min(out/groups, in)."""
    want = np.zeros(shape)
    out_per_group = shape[0] // groups
    centre = tuple(k // 2 for k in shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, shape[1])):
            want[(g * out_per_group + d, d, *centre)] = 1.0
    return want


def orthogonal(array, gain: float, dtype: str) -> Verdict:
    """Rows (or columns, if more rows than columns) orthonormal times ``gain``.

    Tolerance: gain^2 * (eps(dtype) + 1e-5): rounding each entry moves an inner product by at
    most eps*gain^2 (Cauchy-Schwarz), plus a framework's float32 QR error for these sizes.
    """
    w = as_float64(array).reshape(np.asarray(array).shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    target = gain**2 * np.eye(gram.shape[0])
    err = float(np.max(np.abs(gram - target))) if gram.size else 0.0
    tol = gain**2 * (machine_eps(dtype) + 1e-5)
    which = "W W^T" if rows <= cols else "W^T W"
    return Verdict("orthogonality", err <= tol,
                   f"orthogonal_(gain={gain:g}): max |{which} - gain^2 I| = {err:.3g} (tolerance {tol:.3g})",
                   n=w.size, statistic=err, observed={"max_error": err}, expected={"tolerance": tol})


def sparse_structure(array, zeros_per_column: int, std: float, dtype: str, alpha: float) -> list[Verdict]:
    """``sparse_``: at least ``zeros_per_column`` zeros in every column (exact), and the extra zeros
    no more than the non-zero entries' own chance of rounding to 0 in ``dtype`` explains (binomial)."""
    from scipy import stats as st

    from conformance.stats import normal

    x = as_float64(array).reshape(np.asarray(array).shape)
    zeros = (x == 0).sum(axis=0)
    short = np.flatnonzero(zeros < zeros_per_column)
    if short.size:
        c = int(short[0])
        structure = Verdict("sparsity", False,
                            f"sparse_: {short.size} of {x.shape[1]} columns have fewer than {zeros_per_column} zeros "
                            f"(column {c} has {int(zeros[c])})", n=x.size, observed={"bad_columns": int(short.size)})
    else:
        structure = Verdict("sparsity", True, f"sparse_: every column has at least {zeros_per_column} zeros", n=x.size)
    ref = normal(0.0, std)
    p_zero = float(ref.rounded(dtype).cdf(0.0) - ref.rounded(dtype).cdf(-1e-300)) if dtype in ("float16", "bfloat16") \
        else float(ref.dist.cdf(np.finfo(np.float32).smallest_subnormal / 2) - 0.5) * 2
    slots = x.shape[1] * (x.shape[0] - zeros_per_column)
    extra = int(max(zeros.sum() - zeros_per_column * x.shape[1], 0))
    p = float(st.binom.sf(extra - 1, slots, p_zero)) if extra else 1.0
    excess = Verdict("extra_zeros", p > alpha,
                     f"sparse_: {extra} zeros beyond the {zeros_per_column} per column, {slots * p_zero:.3g} expected "
                     f"from N(0, {std:g}^2) rounding to 0 in {dtype}, p={p:.3g}",
                     n=slots, statistic=float(extra), pvalue=p, alpha=alpha)
    return [structure, excess]


def scalar_equal(got: float, want: float, rule: str, rel: float = 1e-12) -> Verdict:
    ok = math.isclose(got, want, rel_tol=rel, abs_tol=0.0)
    return Verdict("value", ok, f"{rule}: got {got!r}, expected {want!r}" + ("" if ok else f" (rel. error "
                   f"{abs(got - want) / abs(want):.3g})"), n=1, observed={"value": got}, expected={"value": want})
