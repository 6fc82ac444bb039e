"""Faulty seed/RNG adapters: the numpy reference with one upstream defect each (BUGS.md, "Seeds and RNG streams").

Each is a mutant a named check must catch (see tests/test_seed_checks.py):

* ``faulty-shared-state`` (candle #1931): every draw restarts from one fixed state (the seed buffer's
  address instead of its value), so every layer and every run get the same values, and element N/2 of
  even-length tensors is always 0;
* ``faulty-stuck-middle``: only the N/2 part of candle #1931;
* ``faulty-identical-draws`` (pytorch #78009): the first draw of a shape is cached and returned on every
  later call until the next seed;
* ``faulty-equal-slices`` (pytorch #147624): random tensors of rank > 4 have x[1] == x[0];
* ``faulty-lost-offset`` (pytorch #130613): restoring a state rewinds to the seed, losing the offset;
* ``faulty-child-crash`` / ``faulty-child-hang``: correct in this process, but crash (exit status 3,
  with a message on stderr) or hang in a fresh child process (``CONFORMANCE_CHILD=1``).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from conformance.backends.numpy_adapter import DEFAULT_SEED, NumpyBackend

from .common import providers

CHILD_ENV = "CONFORMANCE_CHILD"


def _zero_middle(x: np.ndarray) -> np.ndarray:
    flat = np.array(x, copy=True).ravel()
    if flat.size and flat.size % 2 == 0:
        flat[flat.size // 2] = 0
    return flat.reshape(np.shape(x))


class SharedState(NumpyBackend):
    """candle #1931: one fixed state for every draw (seed ignored); element N/2 always 0."""

    contracts = {}
    FIXED_STATE = 0xC0FFEE

    def _restart(self) -> None:
        self._rng = np.random.Generator(np.random.PCG64(self.FIXED_STATE))

    def _uniform(self, shape, dtype, low=0.0, high=1.0):
        self._restart()
        return _zero_middle(super()._uniform(shape, dtype, low, high))

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        self._restart()
        return _zero_middle(super()._normal(shape, dtype, mean, std))


class StuckMiddle(NumpyBackend):
    """candle #1931, the index part alone: element N/2 of even-length draws is always 0; otherwise correct."""

    def _uniform(self, shape, dtype, low=0.0, high=1.0):
        return _zero_middle(super()._uniform(shape, dtype, low, high))

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        return _zero_middle(super()._normal(shape, dtype, mean, std))


class IdenticalDraws(NumpyBackend):
    """pytorch #78009: the same tensor on every call for a given shape (cached until the next seed)."""

    def seed(self, seed: int) -> None:
        self._cache = {}
        super().seed(seed)

    def sample(self, dist, shape, dtype, **params):
        if params.get("generator") is not None:
            return super().sample(dist, shape, dtype, **params)
        key = (dist, tuple(shape), dtype, tuple(sorted(params.items())))
        if key not in self._cache:
            self._cache[key] = super().sample(dist, shape, dtype, **params)
        return self._cache[key].copy()


class EqualSlices(NumpyBackend):
    """pytorch #147624: random tensors of rank > 4 come back with x[1] == x[0]."""

    def sample(self, dist, shape, dtype, **params):
        x = super().sample(dist, shape, dtype, **params)
        if x.ndim > 4 and x.shape[0] >= 2:
            x = x.copy()
            x[1] = x[0]
        return x


class LostOffset(NumpyBackend):
    """pytorch #130613: set_rng_state restores the seed but loses the offset (rewinds to the stream's start)."""

    def seed(self, seed: int) -> None:
        self._seed_value = seed
        super().seed(seed)

    def generator(self, seed=None):
        gen = super().generator(seed)
        gen.seed_value = DEFAULT_SEED if seed is None else seed
        return gen

    def rng_state(self, generator=None) -> bytes:
        seed = self._seed_value if generator is None else generator.seed_value
        return json.dumps({"seed": seed, "state": json.loads(super().rng_state(generator))}).encode()

    def set_rng_state(self, state, generator=None) -> None:
        seed = json.loads(bytes(state).decode())["seed"]
        rng = self._rng if generator is None else generator.rng
        rng.bit_generator.state = np.random.PCG64(seed).state


class CrashInChild(NumpyBackend):
    """Draws crash a fresh child process (exit status 3, a message on stderr); fine in the parent."""

    def sample(self, dist, shape, dtype, **params):
        if os.environ.get(CHILD_ENV) == "1":
            sys.stderr.write("faulty-child-crash: simulated crash in the RNG kernel of a child process\n")
            sys.stderr.flush()
            os._exit(3)
        return super().sample(dist, shape, dtype, **params)


class HangInChild(NumpyBackend):
    """Draws hang forever in a fresh child process; fine in the parent."""

    def sample(self, dist, shape, dtype, **params):
        if os.environ.get(CHILD_ENV) == "1":
            sys.stderr.write("faulty-child-hang: waiting forever on a lock in a child process\n")
            sys.stderr.flush()
            time.sleep(3600)
        return super().sample(dist, shape, dtype, **params)


PROVIDERS = providers(
    faulty_shared_state=SharedState,
    faulty_stuck_middle=StuckMiddle,
    faulty_identical_draws=IdenticalDraws,
    faulty_equal_slices=EqualSlices,
    faulty_lost_offset=LostOffset,
    faulty_child_crash=CrashInChild,
    faulty_child_hang=HangInChild,
)
