"""More faulty seed/RNG adapters: the numpy reference with one upstream defect each (BUGS.md, "Seeds and RNG
streams"), beside :mod:`tests.faulty.seed_adapters`. The catalogue names the check that catches each:

* ``faulty-seed-ignored`` (pytorch #84288, #84516): ``seed()`` does not reach the generator, so seed, draw,
  reseed, draw gives different values;
* ``faulty-fork-first-draw`` (pytorch #124833): inside ``fork_rng`` the first draw does not advance the state
  (it is drawn from a copy), so the state is unchanged and the next draw repeats it;
* ``faulty-realized-together`` (tinygrad #16520, #9108): the counter advances once per realization, and two
  draws realized back to back come from the same counter: every second draw repeats the previous one.
"""

from __future__ import annotations

import contextlib

from conformance.backends.numpy_adapter import NumpyBackend

from .common import providers


class SeedIgnored(NumpyBackend):
    """pytorch #84288: seed() after construction is ignored (it seeds another device's generator)."""

    def seed(self, seed: int) -> None:
        if not hasattr(self, "_rng"):
            super().seed(seed)


class ForkRngFirstDrawLost(NumpyBackend):
    """pytorch #124833: the first draw inside fork_rng does not advance the state."""

    _first_in_fork = False

    @contextlib.contextmanager
    def fork_rng(self):
        self._first_in_fork = True
        try:
            with super().fork_rng():
                yield
        finally:
            self._first_in_fork = False

    def sample(self, dist, shape, dtype, **params):
        if self._first_in_fork and params.get("generator") is None:
            self._first_in_fork = False
            saved = self.rng_state()
            x = super().sample(dist, shape, dtype, **params)
            self.set_rng_state(saved)
            return x
        return super().sample(dist, shape, dtype, **params)


class RealizedTogether(NumpyBackend):
    """tinygrad #16520/#9108: every second draw reuses the previous draw's counter (identical values)."""

    def seed(self, seed: int) -> None:
        self._held = None
        super().seed(seed)

    def sample(self, dist, shape, dtype, **params):
        if params.get("generator") is not None:
            return super().sample(dist, shape, dtype, **params)
        if self._held is None:
            self._held = self.rng_state()
        else:
            self.set_rng_state(self._held)
            self._held = None
        return super().sample(dist, shape, dtype, **params)


PROVIDERS = providers(faulty_seed_ignored=SeedIgnored, faulty_fork_first_draw=ForkRngFirstDrawLost,
                      faulty_realized_together=RealizedTogether)
