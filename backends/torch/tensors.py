"""torch <-> numpy, bit-exact: the framework primitives every torch module of the adapter uses.

Contract
--------
* :func:`to_numpy`: a detached CPU copy as numpy; bfloat16 travels as its int16 bit pattern and is viewed as
  ``ml_dtypes.bfloat16``.
* :func:`from_numpy`: ``array`` converted to ``dtype`` (numpy side), then a torch tensor on ``device`` with those
  bits.
* :func:`dtype_name`: ``"float32"`` for ``torch.float32`` (the suite's dtype names).
* torch is imported when a function runs, so importing this module (and the adapter) never needs torch.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as D


def to_numpy(tensor) -> np.ndarray:
    """A detached CPU copy of ``tensor`` as numpy, bit-exact (bfloat16 -> ml_dtypes.bfloat16)."""
    import torch

    t = tensor.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(D.NUMPY_DTYPES["bfloat16"]).copy()
    return t.numpy().copy()


def from_numpy(array: np.ndarray, dtype: str, device: str):
    """``array`` (converted to ``dtype`` first) as a torch tensor on ``device``, bit-exact."""
    import torch

    a = np.ascontiguousarray(np.asarray(array).astype(D.numpy_dtype(dtype), copy=False))
    if dtype == "bfloat16":
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16).to(device)
    return torch.from_numpy(a.copy()).to(device)


def dtype_name(t) -> str:
    """The suite's name of a tensor's dtype: ``torch.float32`` -> ``"float32"``."""
    return str(t.dtype).removeprefix("torch.")
