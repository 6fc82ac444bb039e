"""Faulty tinygrad adapters: the genuine ``tinygrad:cpu`` adapter with one upstream bug class each, in tinygrad's idiom.

* ``tinygrad-faulty-lazy`` (tinygrad #16520, #9108: draws identical depending on realization order): every draw is
  double-buffered -- the draw asked for *and* the next one are built lazily, and the prefetched (newest) one is
  realized first "to warm it", then the current one. In tinygrad 0.14.0 two lazy draws realized newest-first come out
  identical (the RNG counter's ``assign`` is ordered by realization, not by creation), so each call returns the
  values of the following draw and successive draws repeat. Caught by ``seeds/test_successive_draws_differ``; the
  genuine adapter realizes each draw alone, before the next one exists.
* ``tinygrad-faulty-truncate`` (the bf16 "cast chain that skips rounding" class, pytorch #145498/#155588 family):
  bfloat16 initializer draws are made in float32 and narrowed by dropping the low 16 bits of the float32 pattern
  (a bitcast chain ``float32 -> uint32 >> 16 -> uint16 -> bfloat16``, round toward zero) instead of
  ``.cast(dtypes.bfloat16)`` (round to nearest even), in ``init``. Every value is biased toward zero by half a
  bfloat16 step on average.
"""

from __future__ import annotations

from conformance.backends.tinygrad_adapter import TinygradBackend, to_numpy

from .common import providers


class LazyNewestFirst(TinygradBackend):
    """tinygrad #16520: draws double-buffered and realized newest-first repeat each other."""

    contracts = {k: v for k, v in TinygradBackend.contracts.items() if k != "realization"}

    def __init__(self, device: str) -> None:
        super().__init__(device)
        self._pending: dict = {}
        self._key = None

    def seed(self, seed: int) -> None:
        super().seed(seed)
        self._pending.clear()

    def sample(self, dist, shape, dtype, **params):
        self._key = ("sample", dist, tuple(int(s) for s in shape), dtype, tuple(sorted(params.items())))
        try:
            return super().sample(dist, shape, dtype, **params)
        finally:
            self._key = None

    def _draw(self, make, dtype: str):
        if self._key is None:
            return super()._draw(make, dtype)
        with self._ctx(dtype):
            current = self._pending.pop(self._key, None)
            if current is None:
                current = make()
            prefetch = make()            # the next call's draw, built now (lazy)
            prefetch.realize()           # newest first ...
            current.realize()            # ... then the one asked for: tinygrad #16520 makes them equal
            self._pending[self._key] = prefetch
            return to_numpy(current, dtype)


class TruncatingCast(TinygradBackend):
    """bfloat16 initializers narrowed from float32 by dropping the low 16 bits (round toward zero), not rounding."""

    def init(self, scheme, shape, dtype, **params):
        if dtype != "bfloat16":
            return super().init(scheme, shape, dtype, **params)
        self.require_dtype(dtype)
        import numpy as np
        from tinygrad import Tensor, dtypes

        wide = super().init(scheme, shape, "float32", **params)
        with self._ctx(dtype):
            bits = Tensor(np.ascontiguousarray(wide).view(np.uint32), device=self._dev)
            narrow = (bits >> 16).cast(dtypes.uint16).bitcast(dtypes.bfloat16)
            return to_numpy(narrow.realize(), dtype)


PROVIDERS = providers(tinygrad_faulty_lazy=LazyNewestFirst, tinygrad_faulty_truncate=TruncatingCast)
