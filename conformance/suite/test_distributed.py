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

import numpy as np
import pytest

from conformance import expect
from conformance.backends.base import SubprocessFailed, params_digest
from conformance.seeding import derive_seed
from conformance.specs.module_defaults import expected_module
from conformance.stats import Verdict
from conformance.stats import independence as I
from conformance.subprocess_runner import default_timeout

pytestmark = [pytest.mark.requires("distributed")]

WORLD_SIZES = [pytest.param(2, id="world2"), pytest.param(4, id="world4")]
_RUNS: dict[tuple, object] = {}


def _run(backend, conformance, world_size: int):
    """The cached launch for (backend, world size): its result dict, or the SubprocessFailed it raised."""
    seed = derive_seed(conformance.master_seed, "distributed", backend.spec)
    key = (backend.spec, world_size, seed)
    if key not in _RUNS:
        try:
            _RUNS[key] = backend.rank_params(world_size, seed, default_timeout())
        except SubprocessFailed as exc:
            _RUNS[key] = exc
    result = _RUNS[key]
    if isinstance(result, SubprocessFailed):
        conformance.expect(Verdict("ranks_ran", False, str(result), n=world_size), "distributed run")
    return seed, result


def _short(hashes) -> list[str]:
    return [h[:12] for h in hashes]


def _odd_ranks(hashes: list[str]) -> list[int]:
    """Ranks whose parameter hash differs from the most common one (ties: from rank 0's)."""
    values = list(hashes)
    majority = max(values, key=lambda h: (values.count(h), h == values[0]))
    return [r for r, h in enumerate(values) if h != majority]


def _gather_consistent(result: dict, scenario: str) -> Verdict:
    local = [params_digest(p) for p in result["scenarios"][scenario]]
    gathered = result["gathered"][scenario]
    ok = local == gathered
    return Verdict("gather_consistent", ok,
                   f"{scenario}: hashes gathered by {result['backend']} all_gather_object "
                   f"{'match' if ok else 'DO NOT match'} the hashes of the returned arrays",
                   n=len(local), observed={"gathered": _short(gathered), "local": _short(local)})


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_same_seed_identical_on_every_rank(backend, conformance, world_size):
    """Every rank seeds the same seed and builds the model: parameter hashes equal on every rank."""
    seed, result = _run(backend, conformance, world_size)
    hashes = result["gathered"]["same_seed"]
    odd = _odd_ranks(hashes)
    conformance.expect([
        _gather_consistent(result, "same_seed"),
        Verdict("ranks_identical", not odd,
                f"seed {seed}, world size {world_size} ({result['backend']}): "
                + ("every rank built bitwise identical parameters" if not odd else
                   f"ranks {odd} built different parameters than the others"),
                n=world_size, observed={"hashes": _short(hashes)}, expected={"distinct_hashes": 1}),
    ], "same seed, same model on every rank")


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_rank_offset_seeds_distinct(backend, conformance, world_size):
    """Rank r seeds seed + r: every rank's parameters differ from every other rank's."""
    seed, result = _run(backend, conformance, world_size)
    hashes = result["gathered"]["rank_offset"]
    verdicts = [_gather_consistent(result, "rank_offset"),
                Verdict("ranks_distinct", len(set(hashes)) == world_size,
                        f"seeds {seed}+rank: {len(set(hashes))} distinct parameter hashes over {world_size} ranks",
                        n=world_size, observed={"hashes": _short(hashes)}, expected={"distinct_hashes": world_size})]
    ranks = result["scenarios"]["rank_offset"]
    for r in range(1, world_size):
        verdicts.append(I.distinct(ranks[0]["0.weight"], ranks[r]["0.weight"], f"0.weight of rank 0 vs rank {r}"))
    conformance.expect(verdicts, "rank-offset seeds give distinct values")


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_meta_init_distribution_and_consistency(backend, conformance, world_size):
    """Meta-device build, materialize, seed, re-init on every rank: default-init distribution, equal on every rank."""
    seed, result = _run(backend, conformance, world_size)
    hashes = result["gathered"]["meta_init"]
    odd = _odd_ranks(hashes)
    verdicts = [_gather_consistent(result, "meta_init"),
                Verdict("ranks_identical", not odd,
                        f"meta build + to_empty + seed {seed} + reset_parameters: "
                        + ("identical on every rank" if not odd else f"ranks {odd} differ from the others"),
                        n=world_size, observed={"hashes": _short(hashes)}, expected={"distinct_hashes": 1})]
    params = result["scenarios"]["meta_init"][0]
    weights = np.concatenate([params["0.weight"].ravel(), params["1.weight"].ravel()])
    in_features = params["0.weight"].shape[1]
    want = expected_module("Linear", in_features=in_features, out_features=params["0.weight"].shape[0])["weight"]
    verdicts += expect.distribution(weights, want, "float32", conformance.alpha)
    conformance.expect(verdicts, "meta-device init on every rank")


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_unseeded_rank_detected(backend, conformance, world_size):
    """The last rank never seeds: the hash comparison must single it out (and only it)."""
    seed, result = _run(backend, conformance, world_size)
    hashes = result["gathered"]["skip_seed"]
    odd = _odd_ranks(hashes)
    want = [world_size - 1]
    conformance.expect([
        _gather_consistent(result, "skip_seed"),
        Verdict("unseeded_rank_detected", odd == want,
                f"ranks 0..{world_size - 2} seeded {seed}, rank {world_size - 1} did not: the comparison flagged "
                f"ranks {odd} (expected {want})", n=world_size, observed={"hashes": _short(hashes), "flagged": odd},
                expected={"flagged": want}),
    ], "a rank that skipped seeding is detected")
