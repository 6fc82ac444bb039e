"""Verdicts of the activation checks: finiteness, ULP accuracy against a golden reference, exact values,
bitwise equality. Pure numpy; no framework. Messages quote the rule and print inputs in decimal, C99 hex
and bit pattern (:func:`conformance.areas.activations.inputs.describe`).
"""

from __future__ import annotations

import numpy as np

from conformance.report.attachments import ActivationErrorMap
from conformance.stats.severity import default_tolerance
from conformance.stats.verdict import Verdict

from .inputs import describe

_INT = {2: (np.uint16, np.int64), 4: (np.uint32, np.int64), 8: (np.uint64, object)}

#: ULPs allowed on the output (B_out), per dtype; see :func:`tolerance_ulps`.
OUTPUT_ULPS = {"float16": 1.0, "bfloat16": 1.0, "float32": 8.0, "float64": 8.0}
#: Input perturbation allowed, in units of the working precision (B_in); see :func:`tolerance_ulps`.
INPUT_ULPS = 4.0
#: Unit roundoff of the working precision a correct implementation is assumed to compute in.
WORK_UNIT = {"float16": 2.0**-24, "bfloat16": 2.0**-24, "float32": 2.0**-24, "float64": 2.0**-53}
UNIT = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53}

ACCURACY_RULE = ("|got - ref| <= (B_out + B_in * kappa * u_work / u) ulp(ref), ref = mpmath (60 digits) correctly "
                 "rounded, kappa = |x g'(x) / g(x)| the condition number of output g")


def tolerance_ulps(dtype: str, kappa=None) -> np.ndarray | float:
    """ULPs allowed: ``B_out + B_in * kappa * u_work / u``.

    ``B_out`` (1 ulp for 16-bit dtypes, 8 for float32/float64) is the rounding error of the output of a
    correct implementation: a 16-bit activation evaluated in float32 (the working precision of
    torch/JAX/MLX CPU kernels) and rounded once lands on the correctly rounded value or its
    neighbour; a float32/float64 one composed of up to about eight correctly rounded or 1-ulp
    operations (exp, log1p, erf, products, a division; gelu_tanh's derivative has the most) stays
    within 8 ulps. ``B_in * kappa * u_work / u`` (B_in = 4) admits a relative perturbation of
    ``B_in`` units of the working precision on the input (or on an intermediate such as gelu_tanh's
    ``u`` or mish's softplus, rounded before a sensitive outer function), which first-order moves
    output g by ``kappa`` times as much: this is what makes ill-conditioned points (a derivative near
    its root, gelu's far tail) checkable without excusing a wrong answer where the problem is
    well-conditioned. ``kappa=None`` means the output-only bound. For the 16-bit tables kappa comes
    from :func:`grid_kappa`.
    """
    base = OUTPUT_ULPS[dtype]
    if kappa is None:
        return base
    k = np.asarray(kappa, dtype=np.float64)
    k = np.where(np.isfinite(k), k, 0.0)  # an unknown condition number grants nothing
    return base + INPUT_ULPS * k * (WORK_UNIT[dtype] / UNIT[dtype])


def default_tier_ratio(got, ref, dtype: str, tol_ulps) -> np.ndarray:
    """|got - ref| over the default tier's allowed error at each input: the larger of the strict bound
    (``tol_ulps`` ulp(ref)) and :func:`conformance.stats.severity.default_tolerance` (torch.testing's rtol per dtype,
    absolute floor at the working precision's smallest normal). <= 1 passes; inf where one is NaN or infinite and
    the other is not the same."""
    g = np.asarray(got).astype(np.float64).ravel()
    r = np.asarray(ref).astype(np.float64).ravel()
    allowed = np.maximum(np.asarray(tol_ulps) * ulp_of(r, dtype), default_tolerance(np.where(np.isfinite(r), r, 0.0),
                                                                                     dtype))
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = np.abs(g - r) / allowed
    same = (g == r) | (np.isnan(g) & np.isnan(r))
    return np.where(same, 0.0, np.where(np.isnan(ratio), np.inf, ratio))


def grid_kappa(x, ref) -> np.ndarray:
    """|x g'(x) / g(x)| estimated from a table of references on a whole grid (central differences between the
    neighbouring grid points); 0 where g(x) = 0 or the estimate is not finite."""
    x64 = np.asarray(x).astype(np.float64).ravel()
    g = np.asarray(ref).astype(np.float64).ravel()
    order = np.argsort(x64, kind="stable")
    xs, gs = x64[order], g[order]
    lo, hi = np.maximum(np.arange(xs.size) - 1, 0), np.minimum(np.arange(xs.size) + 1, xs.size - 1)
    with np.errstate(all="ignore"):
        k = np.abs(xs * (gs[hi] - gs[lo]) / ((xs[hi] - xs[lo]) * gs))
    k = np.where(np.isfinite(k) & (gs != 0), k, 0.0)
    out = np.empty_like(k)
    out[order] = k
    return out


def ordered(x: np.ndarray) -> np.ndarray:
    """Integers in the order of the float values: consecutive floats differ by 1, +0 and -0 are both 0."""
    x = np.asarray(x)
    uint, sint = _INT[x.dtype.itemsize]
    bits = x.view(uint)
    sign = uint(1) << uint(8 * x.dtype.itemsize - 1)
    mag = (bits & ~sign).astype(sint)
    neg = (bits & sign) != 0
    return np.where(neg, -mag, mag)


def ulp_distance(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Floats between ``got`` and ``ref`` in their dtype (float64; inf where either is NaN and not both)."""
    got, ref = np.asarray(got), np.asarray(ref)
    if got.dtype != ref.dtype:
        raise TypeError(f"got {got.dtype}, reference {ref.dtype}")
    d = np.abs(ordered(got) - ordered(ref)).astype(np.float64)
    g64, r64 = got.astype(np.float64), ref.astype(np.float64)
    both_nan = np.isnan(g64) & np.isnan(r64)
    d = np.where(np.isnan(g64) | np.isnan(r64), np.inf, d)
    return np.where(both_nan, 0.0, d)


_FORMAT = {"float16": (11, -14), "bfloat16": (8, -126), "float32": (24, -126), "float64": (53, -1022)}


def ulp_of(ref: np.ndarray, dtype: str) -> np.ndarray:
    """ulp(r): the spacing of ``dtype``'s grid at |r| (2^(max(floor(log2|r|), emin) - p + 1); r = 0 gives the
    smallest subnormal)."""
    p, emin = _FORMAT[dtype]
    r = np.abs(np.asarray(ref).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        _, e = np.frexp(np.where(np.isfinite(r), r, 1.0))
    e = np.where(r == 0, emin + 1, e)
    return np.ldexp(1.0, np.maximum(e - 1, emin) - p + 1)


def error_ulps(got: np.ndarray, ref: np.ndarray, dtype: str) -> np.ndarray:
    """|got - ref| / ulp(ref) (the classic error in ulps of the exact result, Muller's ulp); 0 where both are
    the same infinity or both NaN, inf where only one is NaN or infinite."""
    g = np.asarray(got).astype(np.float64)
    r = np.asarray(ref).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(g - r) / ulp_of(r, dtype)
    same = (g == r) | (np.isnan(g) & np.isnan(r))
    return np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))


def error_map(x64: np.ndarray, dist: np.ndarray, scope: np.ndarray, bad: np.ndarray, points: int = 200) -> dict:
    """At most ``2 * points`` (x, error in ulp) pairs for the report's error map: an even subsample of
    every input plus an even subsample of the failing ones; inputs with non-finite results go to ``nan_x``.
    A failing verdict carries them as an :class:`~conformance.report.attachments.ActivationErrorMap`."""
    every = np.flatnonzero(scope)
    pick = np.unique(np.concatenate([every[np.linspace(0, every.size - 1, min(points, every.size)).astype(int)]
                                     if every.size else every,
                                     bad[np.linspace(0, bad.size - 1, min(points, bad.size)).astype(int)]
                                     if bad.size else bad]))
    finite = np.isfinite(dist[pick])
    return {"x": [float(v) for v in x64[pick][finite]], "err": [float(v) for v in dist[pick][finite]],
            "nan_x": [float(v) for v in x64[pick][~finite]]}


def _where(x, i, dtype) -> str:
    return describe(x.ravel()[i], dtype)


def finite(name: str, out: str, x, got, ref, dtype: str, repro: str = "", y=None) -> Verdict:
    """Every finite input whose reference is finite gives a finite ``got``."""
    x64, g64, r64 = (np.asarray(a).astype(np.float64).ravel() for a in (x, got, ref))
    scope = np.isfinite(x64) & np.isfinite(r64)
    if y is not None:
        scope &= np.isfinite(np.asarray(y).astype(np.float64).ravel())
    bad = np.flatnonzero(scope & ~np.isfinite(g64))
    rule = f"{name} {out}: finite input -> finite result (wherever the exact result is finite)"
    if bad.size == 0:
        return Verdict("finite", True, f"{rule}: all {int(scope.sum()):,} inputs ok", n=int(scope.sum()),
                       expected={"rule": rule})
    i = int(bad[0])
    msg = (f"{rule}: {bad.size:,} of {int(scope.sum()):,} inputs give non-finite; first x = {_where(x, i, dtype)}"
           + (f", y = {_where(np.asarray(y), i, dtype)}" if y is not None else "")
           + f": got {g64[i]!r}, expected {r64[i]!r}" + (f"; repro: {repro}" if repro else ""))
    dist = np.where(np.isfinite(g64), 0.0, np.inf)
    return Verdict("finite", False, msg, n=int(scope.sum()), statistic=float(bad.size),
                   observed={"nonfinite": int(bad.size), "first_x": float(np.asarray(x).astype(np.float64).ravel()[i]),
                             "got": float(g64[i])},
                   expected={"rule": rule},
                   attachments=[ActivationErrorMap(name, out, dtype, **error_map(x64, dist, scope, bad))])


def accuracy(name: str, out: str, x, got, ref, dtype: str, kappa=None, repro: str = "", y=None) -> Verdict:
    """ULP distance of ``got`` from the correctly rounded ``ref`` within :func:`tolerance_ulps` (finite x)."""
    x64 = np.asarray(x).astype(np.float64).ravel()
    got, ref = np.asarray(got).ravel(), np.asarray(ref).ravel()
    scope = np.isfinite(x64)
    dist = error_ulps(got, ref, dtype)
    tol = tolerance_ulps(dtype, None if kappa is None else np.asarray(kappa).ravel())
    bad = np.flatnonzero(scope & ~(dist <= tol))
    n = int(scope.sum())
    default_ratio = default_tier_ratio(got, ref, dtype, tol)
    outside_default = int(np.sum(scope & ~(default_ratio <= 1.0)))
    worst_default = float(np.max(np.where(scope & np.isfinite(default_ratio), default_ratio, 0.0))) if n else 0.0
    scale = INPUT_ULPS * WORK_UNIT[dtype] / UNIT[dtype]
    bound = (f"{OUTPUT_ULPS[dtype]:g} ulp" if kappa is None
             else f"{OUTPUT_ULPS[dtype]:g} + {scale:.3g}*kappa ulp")
    rule = f"{name} {out} in {dtype}: within {bound} of the correctly rounded mpmath reference"
    worst_all = float(np.max(np.where(scope, dist, 0.0))) if n else 0.0
    if bad.size == 0:
        return Verdict("ulp", True, f"{rule}: all {n:,} inputs ok (max {worst_all:g} ulp)", n=n,
                       statistic=worst_all, observed={"max_ulp": worst_all},
                       expected={"rule": rule, "bound_ulp": OUTPUT_ULPS[dtype], "formula": ACCURACY_RULE})
    excess = dist[bad] - (tol if np.ndim(tol) == 0 else tol[bad])
    i = int(bad[np.argmax(np.where(np.isinf(excess), np.finfo(float).max, excess))])
    tol_i = float(tol if np.ndim(tol) == 0 else tol[i])
    msg = (f"{rule}: {bad.size:,} of {n:,} inputs outside; worst x = {_where(x, i, dtype)}"
           + (f", y = {_where(np.asarray(y), i, dtype)}" if y is not None else "")
           + f": got {float(got[i].astype(np.float64))!r}, expected {float(ref[i].astype(np.float64))!r} "
           f"({dist[i]:g} ulp, allowed {tol_i:.3g})" + (f"; repro: {repro}" if repro else ""))
    return Verdict("ulp", False, msg, n=n, statistic=float(dist[i]),
                   observed={"outside": int(bad.size), "worst_x": float(x64[i]), "worst_ulp": float(dist[i]),
                             "max_ulp": worst_all, "outside_default": outside_default,
                             "worst_default_ratio": worst_default},
                   expected={"rule": rule, "bound_ulp": OUTPUT_ULPS[dtype], "allowed_at_worst": tol_i,
                             "formula": ACCURACY_RULE},
                   attachments=[ActivationErrorMap(name, out, dtype, **error_map(x64, dist, scope, bad))])


def exact_values(test: str, rule: str, x, got, want, dtype: str) -> Verdict:
    """``got`` equals ``want`` element for element (NaN matches NaN; +0 matches -0)."""
    g64 = np.asarray(got).astype(np.float64).ravel()
    w64 = np.asarray(want, dtype=np.float64).ravel()
    ok = (g64 == w64) | (np.isnan(g64) & np.isnan(w64))
    if ok.all():
        return Verdict(test, True, f"{rule}: all {ok.size} ok", n=ok.size, expected={"rule": rule})
    i = int(np.flatnonzero(~ok)[0])
    xs = np.asarray(x).astype(np.float64).ravel()
    return Verdict(test, False, f"{rule}: at x = {xs[i]!r}: got {g64[i]!r}, expected {w64[i]!r}"
                   f" ({int((~ok).sum())} of {ok.size} differ)", n=ok.size,
                   observed={"x": float(xs[i]), "got": float(g64[i])}, expected={"rule": rule, "value": float(w64[i])})


def bitwise_equal(test: str, rule: str, x, got, want, dtype: str) -> Verdict:
    """``got`` and ``want`` have identical bit patterns."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return Verdict(test, False, f"{rule}: shape {got.shape} != {want.shape}", n=want.size)
    uint = _INT[got.dtype.itemsize][0]
    diff = got.reshape(-1).view(uint) != want.reshape(-1).view(uint)
    if not diff.any():
        return Verdict(test, True, f"{rule}: all {diff.size} elements bitwise equal", n=diff.size,
                       expected={"rule": rule})
    i = int(np.flatnonzero(diff)[0])
    g64, w64 = got.reshape(-1).astype(np.float64), want.reshape(-1).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        allowed = default_tolerance(np.where(np.isfinite(w64), w64, 0.0), dtype)
        close = (np.abs(g64 - w64) <= allowed) | (g64 == w64) | (np.isnan(g64) & np.isnan(w64))
    return Verdict(test, False, f"{rule}: {int(diff.sum())} of {diff.size} elements differ; first at x = "
                   f"{_where(np.asarray(x), i, dtype)}: got {float(got.ravel()[i].astype(np.float64))!r}, "
                   f"contiguous gives {float(want.ravel()[i].astype(np.float64))!r}", n=diff.size,
                   observed={"differ": int(diff.sum()), "within_default": bool(close.all())}, expected={"rule": rule})
