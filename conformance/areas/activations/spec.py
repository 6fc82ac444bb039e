"""Activation functions and their derivatives, written from their definitions in mpmath (>= 60 digits).

Nothing here knows about frameworks. Each function is the *mathematical* definition with the
constants of its published form; the references the suite compares against are these values
rounded **once, correctly** (to nearest, ties to even) onto the dtype's grid by :func:`round_all`.

Definitions (x real; sigma(x) = 1 / (1 + e^-x)):

============  ======================================================  ==========================================
name          value                                                   source
============  ======================================================  ==========================================
sigmoid       sigma(x)                                                logistic function
silu          x sigma(x)                                              Hendrycks & Gimpel 2016; Elfwing et al. 2017
gelu          x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2                Hendrycks & Gimpel 2016 (exact form)
gelu_tanh     x (1 + tanh(u)) / 2, u = sqrt(2/pi) (x + 0.044715 x^3)  Hendrycks & Gimpel 2016 (tanh approximation)
softplus      log(1 + e^x)           (beta = 1; no linear threshold)  Dugas et al. 2001
tanh          tanh(x)
mish          x tanh(softplus(x))                                     Misra 2019
relu          max(x, 0)
leaky_relu    x if x > 0 else negative_slope * x (default 1/100)      Maas et al. 2013
swiglu        silu(x) * y            (two inputs)                     Shazeer 2020, "GLU variants"
============  ======================================================  ==========================================

Derivatives are written in forms free of cancellation at high precision (``1 - sigma(x)`` is
``sigma(-x)``; ``sech^2(log(1 + e^x)) = 4 (n + 1) / (n + 2)^2`` with ``n = e^x (e^x + 2)``).

Kinks: relu and leaky_relu are not differentiable at 0. The suite uses the convention of the
PyTorch autograd notes, "Gradients for non-differentiable functions"
(https://pytorch.org/docs/stable/notes/autograd.html#gradients-for-non-differentiable-functions):
*if the function is convex (at least locally), use the sub-gradient of minimum norm*. The
subdifferential of relu at 0 is [0, 1], so relu'(0) = 0; that of leaky_relu (0 <= slope <= 1) is
[slope, 1], so leaky_relu'(0) = negative_slope. Both apply to +0 and -0.

softplus: torch's ``F.softplus`` has ``threshold=20`` ("reverts to the linear function when
input x beta > threshold", torch docs); that is an implementation shortcut, not the definition,
so the reference is log(1 + e^x) everywhere.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import mpmath

#: Working precision (decimal digits) of every reference evaluation; see :func:`round_all` for the Ziv retry.
DPS = 60
#: The unary activations, in the order the suite reports them.
UNARY: tuple[str, ...] = ("silu", "sigmoid", "gelu", "gelu_tanh", "softplus", "tanh", "mish", "relu", "leaky_relu")
#: Activations of two inputs.
BINARY: tuple[str, ...] = ("swiglu",)
ALL: tuple[str, ...] = UNARY + BINARY
#: Default parameters (torch's defaults) of parametrised activations.
DEFAULT_PARAMS: dict[str, dict] = {"leaky_relu": {"negative_slope": 0.01}}
#: Derivative outputs of each activation ("grad" for unary; one per input for binary).
OUTPUTS: dict[str, tuple[str, ...]] = {**{n: ("value", "grad") for n in UNARY}, "swiglu": ("value", "grad_x", "grad_y")}

GELU_TANH_KAPPA = "0.044715"
_BIG = 10_000  # beyond this |x|, Phi uses its asymptotic series (mpmath's erfc overflows an internal float)


# -- the functions ---------------------------------------------------------------------------------------------------
def _sig(x):
    """sigma(x) and sigma(-x), each without cancellation."""
    if x >= 0:
        e = mpmath.exp(-x)
        return 1 / (1 + e), e / (1 + e)
    e = mpmath.exp(x)
    return e / (1 + e), 1 / (1 + e)


def _phi_tail(x):
    """Phi(x) for x <= -_BIG: pdf(x) / |x| * sum_k (-1)^k (2k-1)!! / x^(2k) (asymptotic, 12 terms >> 60 digits)."""
    pdf = mpmath.exp(-x * x / 2) / mpmath.sqrt(2 * mpmath.pi)
    x2 = x * x
    term, total = mpmath.mpf(1), mpmath.mpf(1)
    for k in range(1, 12):
        term = -term * (2 * k - 1) / x2
        total += term
    return pdf / (-x) * total


def _Phi(x):
    """Standard normal cdf Phi(x) and its complement 1 - Phi(x)."""
    if x < -_BIG:
        t = _phi_tail(x)
        return t, 1 - t
    if x > _BIG:
        t = _phi_tail(-x)
        return 1 - t, t
    r2 = mpmath.sqrt(2)
    return mpmath.erfc(-x / r2) / 2, mpmath.erfc(x / r2) / 2


def value_and_grad(name: str, x, **params):
    """(f(x), f'(x)) as mpf at the current mpmath precision, for a unary activation ``name``."""
    x = mpmath.mpf(x)
    if name == "sigmoid":
        s, sn = _sig(x)
        return s, s * sn
    if name == "silu":
        s, sn = _sig(x)
        return x * s, s + x * s * sn
    if name == "gelu":
        cdf, _ = _Phi(x)
        pdf = mpmath.exp(-x * x / 2) / mpmath.sqrt(2 * mpmath.pi)
        return x * cdf, cdf + x * pdf
    if name == "gelu_tanh":
        c = mpmath.sqrt(2 / mpmath.pi)
        kappa = mpmath.mpf(GELU_TANH_KAPPA)
        u = c * (x + kappa * x**3)
        s, sn = _sig(2 * u)  # (1 + tanh u) / 2 = sigma(2u)
        du = c * (1 + 3 * kappa * x * x)
        return x * s, s + 2 * x * s * sn * du
    if name == "softplus":
        s, _ = _sig(x)
        sp = x + mpmath.log1p(mpmath.exp(-x)) if x > 0 else mpmath.log1p(mpmath.exp(x))
        return sp, s
    if name == "tanh":
        m = mpmath.expm1(-2 * abs(x))  # e^-2|x| - 1: no cancellation for tiny |x|
        e = mpmath.exp(-2 * abs(x))  # and e^-2|x| itself: no cancellation for large |x|
        t = -m / (2 + m)
        return (t if x >= 0 else -t), 4 * e / (1 + e) ** 2
    if name == "mish":
        s, _ = _sig(x)
        if x <= 0:
            ex = mpmath.exp(x)
            n = ex * (ex + 2)  # (1 + e^x)^2 - 1
            t = n / (n + 2)
            sech2 = 4 * (n + 1) / (n + 2) ** 2
        else:  # divide through by e^(2x): n / (n + 2) = (1 + 2 e^-x) / (1 + 2 e^-x + 2 e^-2x)
            em = mpmath.exp(-x)
            a = 1 + 2 * em
            d = a + 2 * em * em
            t = a / d
            sech2 = 4 * em * em * (a + em * em) / (d * d)  # 4 (n + 1) / (n + 2)^2 with n = e^2x a
        return x * t, t + x * sech2 * s
    if name == "relu":
        return (x if x > 0 else mpmath.mpf(0)), mpmath.mpf(1 if x > 0 else 0)
    if name == "leaky_relu":
        slope = _slope(params.get("negative_slope", 0.01))
        return (x if x > 0 else slope * x), (mpmath.mpf(1) if x > 0 else slope)
    raise KeyError(f"unknown activation {name!r}; known: {', '.join(ALL)}")


def _slope(value) -> mpmath.mpf:
    """The slope as the *decimal* number the user wrote (0.01 means 1/100, not the nearest double)."""
    frac = Fraction(str(value))
    return mpmath.mpf(frac.numerator) / frac.denominator


def swiglu(x, y):
    """(silu(x) y, d/dx = silu'(x) y, d/dy = silu(x)) as mpf."""
    v, d = value_and_grad("silu", x)
    y = mpmath.mpf(y)
    return v * y, d * y, v


# -- limits at +-inf (the strict tier) -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """lim f and lim f' at -inf and +inf (floats; -0.0 and 0.0 are not distinguished by the checks)."""

    value_neg: float
    value_pos: float
    grad_neg: float
    grad_pos: float


INF = math.inf
LIMITS: dict[str, Limits] = {
    "silu": Limits(0.0, INF, 0.0, 1.0),
    "sigmoid": Limits(0.0, 1.0, 0.0, 0.0),
    "gelu": Limits(0.0, INF, 0.0, 1.0),
    "gelu_tanh": Limits(0.0, INF, 0.0, 1.0),
    "softplus": Limits(0.0, INF, 0.0, 1.0),
    "tanh": Limits(-1.0, 1.0, 0.0, 0.0),
    "mish": Limits(0.0, INF, 0.0, 1.0),
    "relu": Limits(0.0, INF, 0.0, 1.0),
    "leaky_relu": Limits(-INF, INF, 0.01, 1.0),  # grad_neg is negative_slope (default 0.01)
}


def limits(name: str, **params) -> Limits:
    """The limits of ``name`` (leaky_relu's slope taken from ``params``)."""
    lim = LIMITS[name]
    if name == "leaky_relu":
        slope = float(params.get("negative_slope", 0.01))
        return Limits(-INF if slope > 0 else (0.0 if slope == 0 else INF), INF, slope, 1.0)
    return lim


# -- correct rounding onto a dtype's grid ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Format:
    """A binary floating format: ``p`` significand bits (with the hidden one), normal exponents emin..emax."""

    p: int
    emin: int
    emax: int


FORMATS: dict[str, Format] = {
    "float16": Format(11, -14, 15),
    "bfloat16": Format(8, -126, 127),
    "float32": Format(24, -126, 127),
    "float64": Format(53, -1022, 1023),
}


class _Ambiguous(Exception):
    pass


def _round_exact(v, fmt: Format, prec: int) -> float:
    """Round mpf ``v`` (computed at ``prec`` bits) to ``fmt``; raise _Ambiguous if too close to a tie."""
    sign, man, exp, bc = v._mpf_
    if not man:
        if exp:  # inf or nan specials of mpmath
            return float(v)
        return 0.0
    neg = bool(sign)
    top = exp + bc - 1  # v in [2^top, 2^(top+1))
    if top < fmt.emin - fmt.p - 1:  # below a quarter of the smallest subnormal: rounds to a signed zero
        return -0.0 if neg else 0.0
    if top > fmt.emax:
        return -math.inf if neg else math.inf
    q = max(top, fmt.emin) - (fmt.p - 1)  # quantum (ulp) exponent; subnormals share emin's quantum
    if exp >= q:
        r, q_out = man << (exp - q), q
    else:
        shift = q - exp
        r = man >> shift
        rem = man & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        # mpf error: a few ulps of `prec` bits, plus up to 64 bits lost to cancellation in the formula
        if bc >= prec - 8 and abs(rem - half) <= (1 << max(bc - prec + 64, 0)):
            raise _Ambiguous
        if rem > half or (rem == half and r & 1):
            r += 1
        q_out = q
    out = math.inf if r.bit_length() + q_out - 1 > fmt.emax else math.ldexp(r, q_out)
    return -out if neg else out


def round_all(compute, fmt: Format) -> tuple[float, ...]:
    """Evaluate ``compute()`` (a tuple of mpf) at DPS digits and round each once, correctly, to ``fmt``.

    Ziv's strategy: if a value is too close to a rounding tie to decide at the working precision
    (allowing for 64 bits lost to cancellation), recompute at 2x and 4x the digits.
    """
    for dps in (DPS, 2 * DPS, 4 * DPS):
        with mpmath.workdps(dps):
            try:
                return tuple(_round_exact(v, fmt, mpmath.mp.prec) for v in compute())
            except _Ambiguous:
                continue
    with mpmath.workdps(4 * DPS):  # a true tie (an exact value on a midpoint): round it exactly
        return tuple(_round_exact(v, fmt, 10**9) for v in compute())


def reference_point(name: str, x: float, dtype: str, y: float | None = None, **params) -> tuple[float, ...]:
    """The correctly rounded outputs of ``name`` at ``x`` (and ``y`` for swiglu), as floats on ``dtype``'s grid.

    Unary: ``(value, grad)``; swiglu: ``(value, grad_x, grad_y)``. ``x`` must be finite. A zero result
    carries the sign of the exact value (so that -0 is returned for negative underflow).
    """
    fmt = FORMATS[dtype]
    if name == "swiglu":
        return round_all(lambda: swiglu(x, y), fmt)
    return round_all(lambda: value_and_grad(name, x, **params), fmt)


#: Points memoized by :func:`cached_reference_point` (hypothesis repeats zeros, subnormals, thresholds and shrunk
#: values many times within a check; a few thousand distinct points per run).
CACHE_SIZE = 1 << 16


def cached_reference_point(name: str, x: float, dtype: str, y: float | None = None,
                           **params) -> tuple[float, ...]:
    """:func:`reference_point`, memoized on the exact inputs: bit for bit the same floats (the cache key is the
    C99 hex form of ``x`` and ``y``, so -0.0 and +0.0 are distinct keys; ``params`` are part of the key)."""
    return _cached_reference_point(name, float(x).hex(), dtype, None if y is None else float(y).hex(),
                                   tuple(sorted(params.items())))


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cached_reference_point(name: str, x_hex: str, dtype: str, y_hex: str | None, params: tuple) -> tuple[float, ...]:
    y = None if y_hex is None else float.fromhex(y_hex)
    return reference_point(name, float.fromhex(x_hex), dtype, y=y, **dict(params))
