"""Seeds across ranks of the backend's distributed runtime (torch.distributed: gloo on CPU, NCCL with
one GPU per rank), at world sizes 2 and 4, loopback only, with timeouts.

One launch per world size runs every scenario of :meth:`conformance.backends.base.Backend.rank_params`; the
checks read it:

* a model built after the same seed is bitwise identical on every rank (parameter hashes gathered
  by the framework's own collective, and recomputed here from the arrays);
* rank-offset seeds give distinct values on every rank;
* built on the meta device, materialized and initialized per rank: the weights follow the
  documented default init and agree across ranks;
* a rank that skipped seeding is detected by the same hash comparison (torchtitan #166, OLMo-core #307).
"""

from __future__ import annotations

import pytest

from conformance.areas.seeds import ranks

pytestmark = [pytest.mark.requires("distributed")]

WORLD_SIZES = [pytest.param(2, id="world2"), pytest.param(4, id="world4")]


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_same_seed_identical_on_every_rank(backend, conformance, world_size):
    """Every rank seeds the same seed and builds the model: parameter hashes equal on every rank."""
    seed, result = ranks.launch(backend, conformance, world_size)
    conformance.expect(ranks.same_seed(result, seed, world_size), "same seed, same model on every rank")


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_rank_offset_seeds_distinct(backend, conformance, world_size):
    """Rank r seeds seed + r: every rank's parameters differ from every other rank's."""
    seed, result = ranks.launch(backend, conformance, world_size)
    conformance.expect(ranks.rank_offset(result, seed, world_size), "rank-offset seeds give distinct values")


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_meta_init_distribution_and_consistency(backend, conformance, world_size):
    """Meta-device build, materialize, seed, re-init on every rank: default-init distribution, equal on every rank."""
    seed, result = ranks.launch(backend, conformance, world_size)
    conformance.expect(ranks.meta_init(result, seed, world_size, conformance.alpha), "meta-device init on every rank")


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_unseeded_rank_detected(backend, conformance, world_size):
    """The last rank never seeds: the hash comparison must single it out (and only it)."""
    seed, result = ranks.launch(backend, conformance, world_size)
    conformance.expect(ranks.unseeded_rank(result, seed, world_size), "a rank that skipped seeding is detected")
