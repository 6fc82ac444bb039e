"""Faulty samplers and default inits: the numpy reference with one upstream defect each (BUGS.md, "Distributions").

Each class is a mutant a named check must catch; the catalogue (:mod:`tests.faulty.catalogue`) names the check,
the dtype and the verdict:

* ``faulty-range-ignored`` (candle #578): ``rand(lo, up)`` / ``uniform_(a, b)`` ignore the range, always U(0, 1);
* ``faulty-logistic-normal`` (pytorch #115325): randn draws from a distribution with mean 0 and std 1 but the
  wrong shape (a logistic approximation of the inverse normal CDF), so only the shape test can see it;
* ``faulty-open-bound`` (pytorch #197079, #96947): float16/bfloat16 uniform rounds to nearest and returns the
  excluded upper bound ``b``;
* ``faulty-trunc-bf16`` (pytorch #145498): bfloat16 trunc_normal by the inverse CDF with the uniform rounded to
  bfloat16 first, so the values are quantized and pile at the bounds;
* ``faulty-groups-ignored`` (MLX #4536): grouped convolutions' default init computes fan_in without dividing by
  groups, so the bound is sqrt(groups) too narrow;
* ``faulty-fp16-inf`` (MLX #642): float16 normal = sqrt(2) erfinv(u) with u rounded to float16 first, so u = -1
  (or 1) happens and gives -inf (+inf).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special
import scipy.stats
from conformance.backends import dtypes as D
from conformance.backends.numpy_adapter import NumpyBackend

from .common import providers


class RangeIgnored(NumpyBackend):
    """candle #578: uniform(low, high) ignores low and high and draws U(0, 1)."""

    def _init_uniform(self, shape, dtype, low=0.0, high=1.0):
        return super()._init_uniform(shape, dtype, 0.0, 1.0)

    def sample(self, dist, shape, dtype, **params):
        if dist == "uniform":
            params = {k: v for k, v in params.items() if k not in ("low", "high")}
        return super().sample(dist, shape, dtype, **params)


class LogisticNormal(NumpyBackend):
    """pytorch #115325: normal draws with mean 0 and std 1 but a logistic shape (wrong distribution)."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        u = self._rng.random(shape)
        with np.errstate(divide="ignore"):
            z = math.sqrt(3.0) / math.pi * np.log(u / (1.0 - u))  # logistic scaled to unit variance
        return D.round_to(mean + std * z, dtype)


class OpenBoundAttained(NumpyBackend):
    """pytorch #197079/#96947: 16-bit uniform rounds to nearest and so returns the excluded upper bound."""

    def _uniform(self, shape, dtype, low=0.0, high=1.0):
        if dtype not in ("float16", "bfloat16"):
            return super()._uniform(shape, dtype, low, high)
        return D.round_to(low + (high - low) * self._rng.random(shape), dtype)


class TruncNormalBf16InverseCdf(NumpyBackend):
    """pytorch #145498: bfloat16 trunc_normal via erfinv of a uniform rounded to bfloat16; mass piles at the bounds."""

    def _trunc_normal(self, shape, dtype, mean=0.0, std=1.0, low=-2.0, high=2.0):
        if dtype != "bfloat16" or math.prod(shape) == 0:
            return super()._trunc_normal(shape, dtype, mean, std, low, high)
        lo, hi = (2 * scipy.stats.norm.cdf((c - mean) / std) - 1 for c in (low, high))
        u = D.round_to(lo + (hi - lo) * self._rng.random(shape), "bfloat16").astype(np.float64)
        x = mean + std * math.sqrt(2.0) * scipy.special.erfinv(u)
        return D.round_to(np.clip(x, low, high), dtype)


class GroupsIgnoredInFanIn(NumpyBackend):
    """MLX #4536: grouped conv default init uses fan_in = in_channels * kernel (groups ignored): bound too narrow."""

    def module_params(self, module, dtype, **config):
        out = super().module_params(module, dtype, **config)
        groups = config.get("groups", 1)
        if module.startswith("Conv") and groups > 1:
            w = out["weight"]
            bound = 1.0 / math.sqrt(math.prod(w.shape[1:]) * groups)
            out["weight"] = self._uniform(w.shape, dtype, -bound, bound)
        return out


class Fp16NormalInf(NumpyBackend):
    """MLX #642: float16 normal = sqrt(2) erfinv(u), u rounded to float16 first: u = -1 gives -inf."""

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        if dtype != "float16":
            return super()._normal(shape, dtype, mean, std)
        lo = float(np.nextafter(np.float32(-1.0), np.float32(0.0)))
        u = (lo + (1.0 - lo) * self._rng.random(shape)).astype(np.float16).astype(np.float64)
        with np.errstate(over="ignore"):
            return D.round_to(mean + std * math.sqrt(2.0) * scipy.special.erfinv(u), dtype)


PROVIDERS = providers(faulty_range_ignored=RangeIgnored, faulty_logistic_normal=LogisticNormal,
                      faulty_open_bound=OpenBoundAttained, faulty_trunc_bf16=TruncNormalBf16InverseCdf,
                      faulty_groups_ignored=GroupsIgnoredInFanIn, faulty_fp16_inf=Fp16NormalInf)
