"""Seeds in one process: reproducible where they must be, different where they must be.

Every random producer (native samplers, initializers, a module's default init, the dropout mask)
in every dtype:

* seed, draw, reseed, draw: bitwise equal (pytorch #84288, #84516: the seed did not reach the device);
* different seeds give different values;
* successive draws differ (pytorch #78009: randn returned the identical tensor on every call);
* two same-shape layers built one after the other differ, are uncorrelated and are not shifted
  copies of each other (candle #1931: two Linear layers got the same bias);
* slices along every dim of random tensors of rank 1 to 6 differ (pytorch #147624: x[0] == x[1]
  for rank > 4);
* every element index varies across repeated draws (candle #1931: element N/2 always 0).
"""

from __future__ import annotations

import numpy as np
import pytest

from conformance.areas.seeds import producers as S
from conformance.stats import Verdict
from conformance.stats import independence as I

SHAPE = (64, 64)


def _params(names=None):
    return [pytest.param(name, id=name, marks=pytest.mark.requires(S.PRODUCERS[name][0]))
            for name in (names or S.PRODUCERS)]


@pytest.mark.parametrize("producer", _params())
def test_reseed_reproduces(backend, dtype, conformance, producer):
    """seed s, draw, (draw again), reseed s, draw: bitwise equal."""
    draw = S.PRODUCERS[producer][1]
    backend.seed(conformance.seed)
    first = draw(backend, dtype, SHAPE)
    draw(backend, dtype, SHAPE)
    backend.seed(conformance.seed)
    again = draw(backend, dtype, SHAPE)
    conformance.expect(I.bitwise_equal(first, again, f"{producer} after seed({conformance.seed}), twice"),
                       "reseeding reproduces the draw")


@pytest.mark.parametrize("producer", _params())
def test_different_seeds_differ(backend, dtype, conformance, producer):
    """seed s and seed s+1 give different values."""
    draw = S.PRODUCERS[producer][1]
    backend.seed(conformance.seed)
    a = draw(backend, dtype, SHAPE)
    backend.seed(S.other_seed(conformance.seed))
    b = draw(backend, dtype, SHAPE)
    other = S.other_seed(conformance.seed)
    conformance.expect(I.distinct(a, b, f"{producer} with seeds {conformance.seed} and {other}",
                                  S.MAX_EQUAL.get(producer, 0.1)), "different seeds differ")


@pytest.mark.parametrize("producer", _params())
def test_successive_draws_differ(backend, dtype, conformance, producer):
    """Two draws after one seed differ (the stream advances)."""
    draw = S.PRODUCERS[producer][1]
    backend.seed(conformance.seed)
    a = draw(backend, dtype, SHAPE)
    b = draw(backend, dtype, SHAPE)
    conformance.expect(I.distinct(a, b, f"{producer}: first and second draw after one seed",
                                  S.MAX_EQUAL.get(producer, 0.1)), "successive draws differ")


@pytest.mark.requires("modules")
def test_layers_independent(backend, dtype, conformance):
    """Two Linear(256, 256) built one after the other: distinct weights and biases, uncorrelated, no shifted copy."""
    backend.seed(conformance.seed)
    first = backend.module_params("Linear", dtype, in_features=256, out_features=256)
    second = backend.module_params("Linear", dtype, in_features=256, out_features=256)
    verdicts = []
    random = set(S.random_params(backend, "Linear", in_features=256, out_features=256))
    for name in sorted(first):
        if name in random:  # a documented deterministic default (Flax's zero bias) repeats by design
            verdicts.append(I.distinct(first[name], second[name], f"Linear.{name} of layer 1 vs layer 2"))
    w1, w2 = first["weight"].ravel(), second["weight"].ravel()
    verdicts.append(I.correlation(w1, w2, "Linear.weight of layer 1 vs layer 2", conformance.alpha))
    verdicts.append(I.shifted_copy(w1, w2, "Linear.weight: layer 2's stream inside layer 1's"))
    verdicts.append(I.shifted_copy(w2, w1, "Linear.weight: layer 1's stream inside layer 2's"))
    conformance.expect(verdicts, "two same-shape layers are independent")


#: One shape per rank; dims of different sizes exercise different strides.
RANK_SHAPES = {1: (64,), 2: (5, 7), 3: (4, 3, 5), 4: (3, 4, 2, 5), 5: (2, 3, 4, 3, 2), 6: (2, 3, 2, 4, 3, 2)}


@pytest.mark.requires("sample")
@pytest.mark.parametrize("dist", ["uniform", "normal"])
@pytest.mark.parametrize("rank", sorted(RANK_SHAPES), ids=[f"rank{r}" for r in sorted(RANK_SHAPES)])
def test_slices_differ(backend, dtype, conformance, rank, dist):
    """Along every dim, neighbouring slices of a random tensor differ (rank 1: the two halves)."""
    shape = RANK_SHAPES[rank]
    x = backend.sample(dist, shape, dtype)
    if x.shape != shape:
        conformance.expect(Verdict("shape", False, f"{dist}{shape} returned shape {x.shape}"), "shape")
    verdicts = []
    if rank == 1:
        verdicts.append(I.distinct(x[: shape[0] // 2], x[shape[0] // 2:], f"{dist}{shape}: first vs second half"))
    for dim in range(rank if rank > 1 else 0):
        for i in range(shape[dim] - 1):
            a, b = np.take(x, i, axis=dim), np.take(x, i + 1, axis=dim)
            # slices of >= 8 elements: chance agreement of independent values stays far below half
            verdicts.append(I.distinct(a, b, f"{dist}{shape}: slices {i} and {i + 1} along dim {dim}", 0.5))
    conformance.expect(verdicts, f"slices of a rank-{rank} random tensor differ")


#: Repeated draws: positions of an even-length tensor (candle #1931 zeroed element N/2).
REPEATS = {"dropout-mask": 40}


@pytest.mark.parametrize("producer", _params(["sample-uniform", "sample-normal", "module-Linear", "dropout-mask"]))
def test_every_index_varies(backend, dtype, conformance, producer):
    """Over repeated draws of 1000 elements (and of 999), no element index holds a constant value."""
    draw = S.PRODUCERS[producer][1]
    k = REPEATS.get(producer, 8)
    verdicts = []
    for shape in ((10, 100), (9, 111)):
        draws = np.stack([np.asarray(draw(backend, dtype, shape)).ravel() for _ in range(k)])
        verdicts.append(I.stuck_positions(draws, f"{producer} {shape}"))
    conformance.expect(verdicts, "every element index varies across draws")
