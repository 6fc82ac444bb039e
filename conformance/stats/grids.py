"""The representable values of each floating dtype, as float64 arrays.

Used to build the exact discrete distribution of a reference rounded to nearest
in a 16-bit dtype. Pure numpy/ml_dtypes; no framework.
"""

from __future__ import annotations

from functools import cache

import ml_dtypes
import numpy as np

_SIXTEEN_BIT = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
_NUMPY = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}


def numpy_dtype(dtype: str):
    """numpy dtype object for a dtype name (bfloat16 via ml_dtypes)."""
    try:
        return np.dtype(_NUMPY[dtype])
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(_NUMPY)}") from None


def is_sixteen_bit(dtype: str) -> bool:
    return dtype in _SIXTEEN_BIT


def machine_eps(dtype: str) -> float:
    """Distance from 1.0 to the next representable value."""
    return float(ml_dtypes.finfo(numpy_dtype(dtype)).eps)


@cache
def finite_grid(dtype: str) -> np.ndarray:
    """Every finite value of a 16-bit dtype, sorted ascending, as float64 (one zero)."""
    if dtype not in _SIXTEEN_BIT:
        raise ValueError(f"finite_grid is only defined for 16-bit dtypes, not {dtype!r}")
    bits = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    with np.errstate(invalid="ignore"):
        values = bits.view(_SIXTEEN_BIT[dtype]).astype(np.float64)
    values = values[np.isfinite(values)]
    grid = np.unique(values)  # merges -0.0 and +0.0
    grid.setflags(write=False)
    return grid
