"""Faulty initializers: the numpy reference with one defect each, at the size the design targets.

Each class is a mutant the init checks must catch (see tests/test_init_mutants.py for which check).
"""

from __future__ import annotations

import numpy as np
from conformance.backends import dtypes as D
from conformance.backends.numpy_adapter import NumpyBackend

from .common import providers


class StdTooLarge(NumpyBackend):
    """Normal draws with std x 1.01 (a 1% scale error)."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        return super()._normal(shape, dtype, mean, std * 1.01)


class MeanShifted(NumpyBackend):
    """Normal draws shifted by +0.01 std."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        return super()._normal(shape, dtype, mean + 0.01 * std, std)


class StdSlightlyLarge(NumpyBackend):
    """Normal draws with std x 1.002 (0.2%: below what n = 1e6 detects, caught at n = 2^26)."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        return super()._normal(shape, dtype, mean, std * 1.002)


class MeanSlightlyShifted(NumpyBackend):
    """Normal draws shifted by +0.002 std (below what n = 1e6 detects, caught at n = 2^26)."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        return super()._normal(shape, dtype, mean + 0.002 * std, std)


class NormalWithNaN(NumpyBackend):
    """Normal draws whose first value is NaN (a sampler that returns a non-finite value)."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        x = np.array(super()._normal(shape, dtype, mean, std))
        x.flat[0] = np.nan
        return x


class BoundTooWide(NumpyBackend):
    """Uniform draws on a range 1% wider than asked (about its centre)."""

    def _uniform(self, shape, dtype, low=0.0, high=1.0):
        c, h = (low + high) / 2, (high - low) / 2 * 1.01
        x = c - h + 2 * h * self._rng.random(shape)
        return D.round_to(x, dtype)


class FanSwapped(NumpyBackend):
    """kaiming_*: uses fan_out when fan_in is asked and vice versa."""

    def init(self, scheme, shape, dtype, **params):
        if scheme.startswith("kaiming"):
            params["fan_mode"] = "fan_out" if params.get("fan_mode", "fan_in") == "fan_in" else "fan_in"
        return super().init(scheme, shape, dtype, **params)


class GainMissing(NumpyBackend):
    """kaiming_*: forgets the nonlinearity's gain (always gain 1)."""

    def init(self, scheme, shape, dtype, **params):
        if scheme.startswith("kaiming"):
            params["nonlinearity"] = "linear"
        return super().init(scheme, shape, dtype, **params)


class TailsClipped(NumpyBackend):
    """Normal draws clipped at +-3 std (what a careless truncation does)."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        x = mean + std * np.clip(self._rng.standard_normal(shape), -3.0, 3.0)
        return D.round_to(x, dtype)


class ConstantTensor(NumpyBackend):
    """Every random initializer returns a tensor filled with one random value."""

    def init(self, scheme, shape, dtype, **params):
        x = super().init(scheme, shape, dtype, **params)
        return np.full_like(x, x.flat[0]) if x.size else x


class BiasedBfloat16Rounding(NumpyBackend):
    """bfloat16 normal rounded toward zero (mantissa truncated) instead of to nearest."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        if dtype != "bfloat16":
            return super()._normal(shape, dtype, mean, std)
        x = (mean + std * self._rng.standard_normal(shape)).astype(np.float32)
        bits = x.view(np.uint32) & np.uint32(0xFFFF0000)
        return bits.view(np.float32).astype(D.numpy_dtype("bfloat16"))


class GainParamIgnored(NumpyBackend):
    """calculate_gain('leaky_relu', a) ignores a (always the default slope 0.01)."""

    def calculate_gain(self, nonlinearity, param=None):
        return super().calculate_gain(nonlinearity, None if nonlinearity == "leaky_relu" else param)


class EyeOffDiagonal(NumpyBackend):
    """eye_ puts its ones one diagonal above the main one."""

    def _init_eye(self, shape, dtype):
        return np.eye(*shape, k=1).astype(D.numpy_dtype(dtype))


class DiracGroupsIgnored(NumpyBackend):
    """dirac_(groups=g) ignores groups (identity only for the first group)."""

    def _init_dirac(self, shape, dtype, groups=1):
        return super()._init_dirac(shape, dtype, 1)


class OrthogonalFromUniform(NumpyBackend):
    """orthogonal_ from the QR of a U(0, 1) matrix: orthogonal, but not Haar (first column all positive)."""

    def _init_orthogonal(self, shape, dtype, gain=1.0):
        rows = shape[0]
        cols = int(np.prod(shape)) // rows
        flat = self._rng.random((max(rows, cols), min(rows, cols)))
        q, _ = np.linalg.qr(flat)
        q = q if rows >= cols else q.T
        return D.round_to(gain * q.reshape(shape), dtype)


class OrthogonalGainIgnored(NumpyBackend):
    """orthogonal_(gain=g) ignores the gain."""

    def _init_orthogonal(self, shape, dtype, gain=1.0):
        return super()._init_orthogonal(shape, dtype, 1.0)


class SparseOneZeroShort(NumpyBackend):
    """sparse_ zeroes one entry fewer per column than ceil(sparsity * rows)."""

    def _init_sparse(self, shape, dtype, sparsity, std=0.01):
        rows, cols = shape
        x = std * self._rng.standard_normal(shape)
        for c in range(cols):
            x[self._rng.permutation(rows)[:int(np.ceil(sparsity * rows)) - 1], c] = 0.0
        return D.round_to(x, dtype)


class ZeroElementRaises(NumpyBackend):
    """kaiming_* divide by a zero fan on a zero-element tensor instead of returning it."""

    def init(self, scheme, shape, dtype, **params):
        if scheme.startswith("kaiming") and 0 in tuple(shape):
            raise ZeroDivisionError("float division by zero")
        return super().init(scheme, shape, dtype, **params)


class LayerNormWeightZero(NumpyBackend):
    """LayerNorm.weight initialized to zeros instead of ones."""

    def module_params(self, module, dtype, **config):
        params = super().module_params(module, dtype, **config)
        if module == "LayerNorm" and "weight" in params:
            params["weight"] = np.zeros_like(params["weight"])
        return params


PROVIDERS = providers(faulty_std=StdTooLarge, faulty_shift=MeanShifted, faulty_std2permille=StdSlightlyLarge,
                      faulty_shift2permille=MeanSlightlyShifted, faulty_nan=NormalWithNaN, faulty_bound=BoundTooWide,
                      faulty_fanswap=FanSwapped, faulty_nogain=GainMissing, faulty_clipped=TailsClipped,
                      faulty_constant=ConstantTensor, faulty_bf16round=BiasedBfloat16Rounding,
                      faulty_gainparam=GainParamIgnored, faulty_eye=EyeOffDiagonal, faulty_dirac=DiracGroupsIgnored,
                      faulty_orthouniform=OrthogonalFromUniform, faulty_orthogain=OrthogonalGainIgnored,
                      faulty_sparse=SparseOneZeroShort, faulty_emptyraise=ZeroElementRaises,
                      faulty_layernorm=LayerNormWeightZero)
