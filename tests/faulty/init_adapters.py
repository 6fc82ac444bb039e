"""Faulty initializers: the numpy reference with one defect each, at the size the design targets.

Each class is a mutant the init checks must catch (see tests/test_init_mutants.py for which check).
"""

from __future__ import annotations

import numpy as np

from backends import dtypes as D
from backends.numpy_adapter import NumpyBackend

from .common import providers


class StdTooLarge(NumpyBackend):
    """Normal draws with std x 1.01 (a 1% scale error)."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        return super()._normal(shape, dtype, mean, std * 1.01)


class MeanShifted(NumpyBackend):
    """Normal draws shifted by +0.01 std."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        return super()._normal(shape, dtype, mean + 0.01 * std, std)


class BoundTooWide(NumpyBackend):
    """Uniform draws on a range 1% wider than asked (about its centre)."""

    def _uniform(self, shape, dtype, a=0.0, b=1.0):
        c, h = (a + b) / 2, (b - a) / 2 * 1.01
        x = c - h + 2 * h * self._rng.random(shape)
        return D.round_to(x, dtype)


class FanSwapped(NumpyBackend):
    """kaiming_*: uses fan_out when fan_in is asked and vice versa."""

    def init(self, scheme, shape, dtype, **params):
        if scheme.startswith("kaiming"):
            params["mode"] = "fan_out" if params.get("mode", "fan_in") == "fan_in" else "fan_in"
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


PROVIDERS = providers(faulty_std=StdTooLarge, faulty_shift=MeanShifted, faulty_bound=BoundTooWide,
                      faulty_fanswap=FanSwapped, faulty_nogain=GainMissing, faulty_clipped=TailsClipped,
                      faulty_constant=ConstantTensor, faulty_bf16round=BiasedBfloat16Rounding)
