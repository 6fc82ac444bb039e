"""Inputs of the activation checks: exhaustive 16-bit grids, dense deterministic sweeps of the hard regions of
float32/float64, and hypothesis strategies weighted toward the same regions.

Hard regions (each dtype's own numbers, both signs):

* signed zeros, subnormals (smallest, largest, log-spaced between), the smallest normals;
* the thresholds where ``exp`` of something overflows or underflows (``log(max)``, ``log(tiny)``,
  ``log(smallest subnormal)``), also for ``exp(2x)`` (tanh) and ``exp(x^2/2)`` (gelu), and where
  ``x^3`` overflows (gelu_tanh);
* the largest finite magnitudes (the top 16 values);
* the roots of the derivatives (silu, gelu, gelu_tanh, mish), where ``f'`` cancels;
* regression points of known bugs: -548 (candle #1722), -709 (JAX #39798), 10.5 (pytorch #186278), 20
  (torch softplus threshold).

Nothing here knows about frameworks; values are numpy arrays of the dtype.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from conformance.backends import dtypes as D

#: swiglu's second input is a deterministic cycle of values exact in every dtype: y[i] = Y_CYCLE[i % 8].
Y_CYCLE: tuple[float, ...] = (1.0, -1.0, 0.5, 3.0, -0.75, 1.25, 0.0625, -6.5)
#: Approximate roots of f' (where f' cancels); the sweep takes the 16 grid points around each.
DERIVATIVE_ROOTS: tuple[float, ...] = (-1.2784645427610738, -0.7517915241935509, -0.7528, -1.1915977217311155)
REGRESSION_POINTS: tuple[float, ...] = (-548.0, -709.0, 10.5, 20.0, -20.0, 88.0, -88.0, 1.0, -1.0, 0.5, 2.0)
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def swiglu_y(n: int, dtype: str) -> np.ndarray:
    """The second input of swiglu paired with ``n`` first inputs."""
    return np.resize(np.array(Y_CYCLE), n).astype(D.numpy_dtype(dtype))


def all_bit_patterns(dtype: str) -> np.ndarray:
    """All 65,536 values of a 16-bit dtype, in bit-pattern order (NaN and inf included)."""
    dt = D.numpy_dtype(dtype)
    if dt.itemsize != 2:
        raise ValueError(f"{dtype} is not a 16-bit dtype")
    return np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(dt)


def finfo(dtype: str):
    return ml_dtypes.finfo(D.numpy_dtype(dtype))


def thresholds(dtype: str) -> dict[str, float]:
    """The overflow/underflow thresholds of ``dtype`` for exp(x), exp(2x), exp(x^2/2) and x^3."""
    fi = finfo(dtype)
    big, tiny, sub = float(fi.max), float(fi.tiny), float(fi.smallest_subnormal)
    out = {"log_max": math.log(big), "log_tiny": math.log(tiny), "log_sub": math.log(sub)}
    out.update({f"half_{k}": v / 2 for k, v in list(out.items())})
    out.update({"gauss_max": math.sqrt(2 * math.log(big)), "gauss_tiny": math.sqrt(-2 * math.log(tiny)),
                "gauss_sub": math.sqrt(-2 * math.log(sub)), "cube_max": big ** (1 / 3) / 0.044715 ** (1 / 3),
                "sqrt_max": math.sqrt(big)})
    return out


def _neighbours(center: float, dtype: str, k: int) -> list[float]:
    """``k`` consecutive grid values each side of the grid value nearest ``center``."""
    c = D.round_to(center, dtype)
    out, up, down = [float(c)], c, c
    for _ in range(k):
        up, down = D.next_up(up, dtype), D.next_down(down, dtype)
        out += [float(up), float(down)]
    return out


def _exp2(exponents: np.ndarray) -> list[float]:
    """2**e, correctly rounded to float64 (mpmath): numpy's ``exp2`` differs in the last bit between SIMD kernels
    (AVX2 and AVX-512 builds disagree on some subnormal powers), which made the float64 sweep machine-dependent."""
    import mpmath

    with mpmath.workprec(128):
        return [float(mpmath.power(2, mpmath.mpf(float(e)))) for e in np.asarray(exponents, dtype=np.float64)]


def sweep_points(dtype: str) -> np.ndarray:
    """The dense deterministic sweep of ``dtype`` (float32 or float64): -0.0 and +0.0, then every other point
    ascending (unique, finite, symmetric in sign)."""
    fi = finfo(dtype)
    big, tiny, sub = float(fi.max), float(fi.tiny), float(fi.smallest_subnormal)
    pts: list[float] = [0.0, sub, 2 * sub, 3 * sub, tiny - sub, tiny, tiny + sub, 2 * tiny]
    pts += _exp2(np.linspace(math.log2(sub), math.log2(tiny), 24))  # subnormals
    pts += _exp2(np.linspace(math.log2(sub), math.log2(big) - 1e-9, 400))  # every binade, roughly
    pts += list(np.linspace(0, 30, 301))  # the curved part of every activation
    pts += list(REGRESSION_POINTS)
    for t in thresholds(dtype).values():
        pts += _neighbours(t, dtype, 8)
        pts += list(np.linspace(t * 0.98, min(t * 1.02, big), 17))
    for r in DERIVATIVE_ROOTS:
        pts += _neighbours(r, dtype, 8)  # both signs are added below
    top = np.asarray(big, D.numpy_dtype(dtype))
    for _ in range(16):
        pts.append(float(top))
        top = D.next_down(top, dtype)
    mags = D.round_to(np.abs(np.array(pts, dtype=np.float64)), dtype).astype(np.float64)
    mags = mags[np.isfinite(mags)]
    values = np.unique(np.concatenate([mags, -mags]))
    values = values[values != 0]
    values = np.concatenate([[-0.0, 0.0], values])
    return values.astype(D.numpy_dtype(dtype))


def bits_of(x: np.ndarray) -> np.ndarray:
    """The bit patterns (unsigned ints) of a float array."""
    x = np.asarray(x)
    return x.view(_UINT[x.dtype.itemsize])


def from_bits(bits: np.ndarray, dtype: str) -> np.ndarray:
    """The float array of ``dtype`` with these bit patterns."""
    return np.asarray(bits).view(D.numpy_dtype(dtype))


def describe(x: float, dtype: str) -> str:
    """``-548 (hex -0x1.12p+9, bits 0xc4090000)``: decimal, C99 hex and the dtype's bit pattern."""
    arr = np.asarray(x, D.numpy_dtype(dtype))
    f = float(arr.astype(np.float64))
    hexs = f.hex() if math.isfinite(f) else repr(f)
    width = arr.dtype.itemsize * 2
    return f"{f!r} (hex {hexs}, bits 0x{int(bits_of(arr.reshape(1))[0]):0{width}x})"


# -- hypothesis strategies -------------------------------------------------------------------------------------------
def hard_floats(dtype: str):
    """A hypothesis strategy of finite ``dtype`` values weighted toward the hard regions (see the module doc)."""
    from hypothesis import strategies as st

    width = {"float32": 32, "float64": 64}[dtype]
    fi = finfo(dtype)
    big, tiny, sub = float(fi.max), float(fi.tiny), float(fi.smallest_subnormal)
    thr = thresholds(dtype)

    def grid(v: float) -> float:  # hypothesis needs bounds representable in the width
        return float(np.clip(np.asarray(v, D.numpy_dtype(dtype)), -big, big))

    def near(t: float, rel: float = 0.02):
        lo, hi = sorted((grid(t * (1 - rel)), grid(min(t * (1 + rel), big))))
        return st.floats(lo, hi, width=width)

    signed = st.sampled_from([1.0, -1.0])
    magnitude = st.one_of(
        st.sampled_from([0.0, sub, tiny, big]),
        st.floats(0, tiny, width=width, allow_subnormal=True),  # subnormals
        st.floats(0, grid(1e-3), width=width),
        st.floats(0, 40, width=width),  # the curved part
        *[near(t) for t in thr.values()],
        st.floats(grid(big / 4), big, width=width),  # largest finite magnitudes
        st.floats(0, big, width=width),
        st.sampled_from([-r for r in DERIVATIVE_ROOTS]).flatmap(lambda r: near(r, 1e-4)),
    )
    return st.builds(lambda s, m: float(np.asarray(s * m, D.numpy_dtype(dtype))), signed, magnitude).filter(
        math.isfinite)


def layout_input(dtype: str) -> np.ndarray:
    """A 24 x 40 input mixing the curved region, zeros, subnormals and large magnitudes (the layout checks)."""
    fi = finfo(dtype)
    dt = D.numpy_dtype(dtype)
    vals = np.concatenate([np.linspace(-12, 12, 900), [0.0, -0.0, float(fi.smallest_subnormal), float(fi.tiny),
                                                       -float(fi.max), float(fi.max), -548.0, 10.5]])
    vals = np.resize(vals, 24 * 40)
    return np.random.default_rng(0).permutation(vals).astype(dt).reshape(24, 40)
