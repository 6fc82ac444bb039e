"""Faulty activations: the numpy reference with one historical defect each (see tests/test_activation_checks.py).

* ``faulty-silu-div``: SiLU backward recovers sigmoid as silu(x) / x (candle #2082): 0/0 = NaN at x = 0.
* ``faulty-sigmoid-exp``: sigmoid gradient autodiffed through exp and reciprocal in the dtype (candle #1722):
  exp(-x) / (1 + exp(-x))^2 is inf/inf = NaN once exp(-x) overflows (x = -548 in float32).
* ``faulty-sigmoid-flush``: float16 sigmoid returns 0 for x < -10 (MLX #2593); finite, so only the accuracy
  check catches it.
"""

from __future__ import annotations

import numpy as np
from conformance.backends import dtypes as D
from conformance.backends.numpy_adapter import NumpyBackend

from .common import providers


class SiluDivBackward(NumpyBackend):
    """SiLU backward via sigmoid = silu(x) / x (candle #2082)."""

    def activation(self, name, x, dtype, **params):
        value, grad = super().activation(name, x, dtype, **params)
        if name == "silu":
            x64 = np.asarray(x).astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                s = value.astype(np.float64) / x64
                grad = D.round_to(s * (1.0 + x64 * (1.0 - s)), dtype)
        return value, grad


class SigmoidExpRecip(NumpyBackend):
    """Sigmoid gradient through exp and reciprocal in the dtype itself (candle #1722)."""

    def activation(self, name, x, dtype, **params):
        value, grad = super().activation(name, x, dtype, **params)
        if name == "sigmoid":
            xd = np.asarray(x).astype(D.numpy_dtype(dtype) if dtype != "bfloat16" else np.float32)
            with np.errstate(over="ignore", invalid="ignore"):
                e = np.exp(-xd)
                grad = D.round_to((e / ((1 + e) * (1 + e))).astype(np.float64), dtype)
        return value, grad


class SigmoidFlushF16(NumpyBackend):
    """float16 sigmoid that returns 0 for x < -10 (MLX #2593)."""

    def activation(self, name, x, dtype, **params):
        value, grad = super().activation(name, x, dtype, **params)
        if name == "sigmoid" and dtype == "float16":
            value = np.where(np.asarray(x).astype(np.float64) < -10, np.float16(0), value).astype(np.float16)
        return value, grad


PROVIDERS = providers(faulty_silu_div=SiluDivBackward, faulty_sigmoid_exp=SigmoidExpRecip,
                      faulty_sigmoid_flush=SigmoidFlushF16)
