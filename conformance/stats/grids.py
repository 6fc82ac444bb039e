"""The representable values of each floating dtype, as float64 arrays.

Used to build the exact discrete distribution of a reference rounded to nearest
in a 16-bit dtype. Pure numpy/ml_dtypes; no framework.
"""

from __future__ import annotations

from functools import cache

import ml_dtypes
import numpy as np

# The one dtype table is conformance.backends.dtypes.NUMPY_DTYPES (pure numpy/ml_dtypes, no framework);
# numpy_dtype is re-exported from there for the statistics and their callers.
from ..backends.dtypes import NUMPY_DTYPES, numpy_dtype

__all__ = ["finite_grid", "is_sixteen_bit", "machine_eps", "numpy_dtype"]

_SIXTEEN_BIT = {name: NUMPY_DTYPES[name] for name in ("float16", "bfloat16")}


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
