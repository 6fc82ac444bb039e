"""More faulty activations: the numpy reference with one upstream defect each (BUGS.md, "Activations").

The catalogue (:mod:`tests.faulty.catalogue`) names the check, dtype and verdict that catch each:

* ``faulty-sigmoid-zero-inf`` (tinygrad #1113): sigmoid backward as exp(-x) * sigmoid(x)^2 in the working
  precision: for large negative x that is inf * 0 = NaN;
* ``faulty-gelu-tanh-fast`` (pytorch #186278): bfloat16 gelu(tanh) with a fast tanh (e^{2u} - 1) / (e^{2u} + 1)
  in float32, which is inf / inf = NaN once e^{2u} overflows (x >= about 10.1);
* ``faulty-strides-ignored`` (pytorch #139006, #98212, #131736): silu, gelu and softplus read a transposed input
  in storage order, ignoring its strides;
* ``faulty-gelu-half-crash`` (pytorch #86218, #101946): gelu raises in float16 ("not implemented for 'Half'");
  the suite must report a failure, never a skip;
* ``faulty-silu-inf-nan`` (pytorch #160876): silu(x) = x * sigmoid(x) evaluated at -inf: -inf * 0 = NaN (value and
  gradient), only visible to the strict tier's limits check;
* ``faulty-silu-tanh-f64`` (JAX #39798): float64 silu with sigmoid = (1 + tanh(x/2)) / 2, which is exactly 0 below
  x = -38: grad silu(-709) = 0 instead of -8.6e-306 (finite, so only the accuracy check catches it).
"""

from __future__ import annotations

import math

import numpy as np
from conformance.backends import dtypes as D
from conformance.backends.numpy_adapter import NumpyBackend

from .common import providers


def _working(dtype: str):
    """The precision a kernel computes in: the dtype itself, float32 for the 16-bit dtypes."""
    return np.float64 if dtype == "float64" else np.float32


class SigmoidZeroTimesInf(NumpyBackend):
    """tinygrad #1113: sigmoid backward exp(-x) * s^2 in the working precision: inf * 0 = NaN for x << 0."""

    def activation(self, name, x, dtype, **params):
        value, grad = super().activation(name, x, dtype, **params)
        if name == "sigmoid":
            w = _working(dtype)
            xw = np.asarray(x).astype(w)
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                s = value.astype(w)
                grad = D.round_to((np.exp(-xw) * (s * s)).astype(np.float64), dtype)
        return value, grad


class GeluTanhFastTanh(NumpyBackend):
    """pytorch #186278: bfloat16 gelu(tanh) through a fast tanh that overflows: NaN for x >= about 10.1."""

    def activation(self, name, x, dtype, **params):
        value, grad = super().activation(name, x, dtype, **params)
        if name == "gelu_tanh" and dtype == "bfloat16":
            x32 = np.asarray(x).astype(np.float32)
            with np.errstate(over="ignore", invalid="ignore"):
                u = np.float32(math.sqrt(2.0 / math.pi)) * (x32 + np.float32(0.044715) * x32 * x32 * x32)
                e = np.exp(np.float32(2.0) * u)
                t = (e - np.float32(1.0)) / (e + np.float32(1.0))
            bad = np.isnan(t) & np.isfinite(x32)
            nan = np.asarray(np.nan, dtype=value.dtype)
            value, grad = np.where(bad, nan, value), np.where(bad, nan, grad)
        return value, grad


class StridesIgnored(NumpyBackend):
    """pytorch #139006: silu/gelu/softplus on a transposed view read the storage in order (strides ignored)."""

    AFFECTED = ("silu", "gelu", "softplus")

    def activation(self, name, x, dtype, **params):
        layout = params.pop("layout", "contiguous")  # this mutant has strides (the reference declares none)
        value, grad = super().activation(name, x, dtype, **params)
        if name in self.AFFECTED and layout == "transposed":
            # the transposed view's storage is x.T in row-major order; an elementwise kernel that walks the
            # storage linearly writes f(storage) into a contiguous output of x's shape
            value, grad = (np.ascontiguousarray(o.T).reshape(o.shape) for o in (value, grad))
        return value, grad


class GeluHalfCrash(NumpyBackend):
    """pytorch #86218: gelu raises in float16 (kernel not implemented for Half)."""

    def activation(self, name, x, dtype, **params):
        if name == "gelu" and dtype == "float16":
            raise RuntimeError("\"GeluKernelImpl\" not implemented for 'Half'")
        return super().activation(name, x, dtype, **params)


class SiluInfNaN(NumpyBackend):
    """pytorch #160876: silu = x * sigmoid(x) at -inf is -inf * 0 = NaN (value and gradient)."""

    def activation(self, name, x, dtype, **params):
        value, grad = super().activation(name, x, dtype, **params)
        if name == "silu":
            neg_inf = np.isneginf(np.asarray(x).astype(np.float64))
            nan = np.asarray(np.nan, dtype=value.dtype)
            value, grad = np.where(neg_inf, nan, value), np.where(neg_inf, nan, grad)
        return value, grad


class SiluTanhSigmoidF64(NumpyBackend):
    """JAX #39798: float64 silu via sigmoid = (1 + tanh(x/2)) / 2, exactly 0 below -38: grad silu(-709) = 0."""

    def activation(self, name, x, dtype, **params):
        if name != "silu" or dtype != "float64":
            return super().activation(name, x, dtype, **params)
        params.pop("layout", None)
        x64 = np.asarray(x).astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            s = 0.5 * (1.0 + np.tanh(0.5 * x64))
            value, grad = x64 * s, s * (1.0 + x64 * (1.0 - s))
        return value, grad


PROVIDERS = providers(faulty_sigmoid_zero_inf=SigmoidZeroTimesInf, faulty_gelu_tanh_fast=GeluTanhFastTanh,
                      faulty_strides_ignored=StridesIgnored, faulty_gelu_half_crash=GeluHalfCrash,
                      faulty_silu_inf_nan=SiluInfNaN, faulty_silu_tanh_f64=SiluTanhSigmoidF64)
