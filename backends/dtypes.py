"""Dtype names and exact rounding onto a dtype's grid (pure numpy and ml_dtypes).

Contract
--------
* :func:`numpy_dtype` maps a suite dtype name (``base.FLOAT_DTYPES``) to a numpy
  dtype; ``bfloat16`` is ``ml_dtypes.bfloat16``.
* :func:`round_to` rounds float64 values to the nearest representable value of
  the dtype, ties to even, in **one** rounding step. (Casting float64 to
  ``ml_dtypes.bfloat16`` directly rounds twice, through float32, and is wrong
  for values just above a tie; this module avoids that with round-to-odd.)
* :func:`next_up` / :func:`next_down` step one value along the grid;
  :func:`smallest_at_least`, :func:`largest_below`, :func:`largest_at_most`
  find grid points next to a real bound; :func:`round_into` rounds and then
  moves values that fell outside a documented support to the nearest grid
  value inside it (``hi_open=True`` for half-open supports ``[lo, hi)``).

Nothing here knows about frameworks or statistics.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

#: Suite dtype name -> numpy dtype.
NUMPY_DTYPES: dict[str, np.dtype] = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}

_UINT_OF_SIZE = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def numpy_dtype(dtype: str | np.dtype | type) -> np.dtype:
    """The numpy dtype for a suite dtype name (or a dtype, returned normalized)."""
    if isinstance(dtype, str):
        try:
            return NUMPY_DTYPES[dtype]
        except KeyError:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(NUMPY_DTYPES)}") from None
    return np.dtype(dtype)


def dtype_name(dtype: str | np.dtype | type) -> str:
    """The suite name of a numpy dtype (inverse of :func:`numpy_dtype`)."""
    dt = numpy_dtype(dtype)
    for name, candidate in NUMPY_DTYPES.items():
        if candidate == dt:
            return name
    raise ValueError(f"dtype {dt} is not one of {', '.join(NUMPY_DTYPES)}")


def _round_to_odd_float32(x: np.ndarray) -> np.ndarray:
    """float64 -> float32 with round-to-odd: truncate toward zero, set the last bit if inexact.

    Rounding the result to any format with at least two fewer significand bits
    (bfloat16 has 8 vs 24) then gives the correctly rounded value.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        f = x.astype(np.float32)
        too_big = np.isfinite(x) & (np.abs(f.astype(np.float64)) > np.abs(x))
        f = np.where(too_big, np.nextafter(f, np.float32(0)), f)
        inexact = np.isfinite(x) & (f.astype(np.float64) != x)
    bits = f.view(np.uint32).copy()
    bits[inexact] |= np.uint32(1)
    return bits.view(np.float32)


def round_to(x, dtype) -> np.ndarray:
    """Round float64 ``x`` to nearest (ties to even) in ``dtype``; float64 is returned as is.

    Overflow gives +-inf like IEEE rounding; NaN stays NaN. Always returns an
    ndarray (0-d for scalars) of ``dtype``.
    """
    dt = numpy_dtype(dtype)
    x = np.asarray(x, dtype=np.float64)
    if dt == np.float64:
        return x.copy()
    if dt == NUMPY_DTYPES["bfloat16"]:
        return _round_to_odd_float32(x).astype(dt)
    with np.errstate(over="ignore"):
        return x.astype(dt)  # numpy's float64 -> float16/float32 casts round once, to nearest even


def _step(values: np.ndarray, up: bool) -> np.ndarray:
    """One grid step up or down from each (finite or infinite) value, via its bit pattern."""
    dt = values.dtype
    uint = _UINT_OF_SIZE[dt.itemsize]
    sign_bit = uint(1) << uint(8 * dt.itemsize - 1)
    v = np.array(values, dtype=dt, copy=True)
    bits = v.view(uint)
    is_zero = v.astype(np.float64) == 0.0
    positive = ~is_zero & ((bits & sign_bit) == 0)
    away = positive if up else (~positive & ~is_zero)  # moving away from zero: magnitude grows
    out = bits.copy()
    out[away] += uint(1)
    toward = ~away & ~is_zero
    out[toward] -= uint(1)
    smallest = uint(1) if up else (sign_bit | uint(1))
    out[is_zero] = smallest
    result = out.view(dt)
    # past the largest finite value the bits already give inf; inf stepped outward stays inf, NaN stays NaN
    f = v.astype(np.float64)
    keep = np.isnan(f) | (np.isinf(f) & ((f > 0) == up))
    result[keep] = v[keep]
    return result


def next_up(x, dtype) -> np.ndarray:
    """The next representable value above each element of ``x`` (already on the grid of ``dtype``)."""
    return _step(np.asarray(x, dtype=numpy_dtype(dtype)), up=True)


def next_down(x, dtype) -> np.ndarray:
    """The next representable value below each element of ``x`` (already on the grid of ``dtype``)."""
    return _step(np.asarray(x, dtype=numpy_dtype(dtype)), up=False)


def largest_at_most(b: float, dtype) -> np.ndarray:
    """The largest value of ``dtype`` that is <= ``b`` (a 0-d array)."""
    r = round_to(b, dtype)
    return r if float(r) <= b else next_down(r, dtype)


def largest_below(b: float, dtype) -> np.ndarray:
    """The largest value of ``dtype`` that is strictly < ``b`` (a 0-d array)."""
    r = round_to(b, dtype)
    return r if float(r) < b else next_down(r, dtype)


def smallest_at_least(a: float, dtype) -> np.ndarray:
    """The smallest value of ``dtype`` that is >= ``a`` (a 0-d array)."""
    r = round_to(a, dtype)
    return r if float(r) >= a else next_up(r, dtype)


def round_into(x, lo: float, hi: float, dtype, hi_open: bool = False) -> np.ndarray:
    """Round ``x`` to ``dtype``, then move values outside the support onto its nearest grid value inside.

    The support is ``[lo, hi]``, or ``[lo, hi)`` when ``hi_open``. A value that
    rounds below ``lo`` becomes the smallest representable value >= ``lo``; one
    that rounds above ``hi`` (or to ``hi`` itself when the bound is open) becomes
    the largest representable value <= ``hi`` (< ``hi``).
    """
    dt = numpy_dtype(dtype)
    r = round_to(x, dt)
    lo_g = smallest_at_least(lo, dt)
    hi_g = largest_below(hi, dt) if hi_open else largest_at_most(hi, dt)
    if float(lo_g) > float(hi_g):
        raise ValueError(f"no {dtype_name(dt)} value lies in the support [{lo}, {hi}{')' if hi_open else ']'}")
    return np.clip(r.astype(np.float64), float(lo_g), float(hi_g)).astype(dt)  # exact: all on the grid


def nearest_inside(x, lo: float, hi: float, dtype) -> np.ndarray:
    """Round ``x`` to ``dtype`` and clamp onto the closed support ``[lo, hi]`` (see :func:`round_into`)."""
    return round_into(x, lo, hi, dtype, hi_open=False)


def on_grid(x, dtype) -> np.ndarray:
    """Elementwise: is each float64 value exactly representable in ``dtype``?"""
    x = np.asarray(x, dtype=np.float64)
    return round_to(x, dtype).astype(np.float64) == x
