"""Seeds across ranks of a backend's distributed runtime: the launch (cached per backend and world size) and the
verdicts of the rank checks (``conformance/suite/test_distributed.py``).

Every scenario of :meth:`conformance.backends.base.Backend.rank_params` runs in one launch per world size; the
verdicts compare the parameter hashes the ranks gathered through the framework's own collective with the hashes
recomputed here from the returned arrays, and single out ranks that differ from the majority.
"""

from __future__ import annotations

import numpy as np

from conformance.areas.init_schemes import expect
from conformance.areas.module_defaults.spec import expected_module
from conformance.backends.base import SubprocessFailed, params_digest
from conformance.harness.children import default_timeout
from conformance.seeding import derive_seed
from conformance.stats import Verdict
from conformance.stats import independence as I

_RUNS: dict[tuple, object] = {}


def launch(backend, conformance, world_size: int):
    """The cached launch for (backend, world size): ``(seed, result dict)``; a launch that raised
    :class:`SubprocessFailed` becomes a failed ``ranks_ran`` verdict (the check fails there)."""
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


def odd_ranks(hashes: list[str]) -> list[int]:
    """Ranks whose parameter hash differs from the most common one (ties: from rank 0's)."""
    values = list(hashes)
    majority = max(values, key=lambda h: (values.count(h), h == values[0]))
    return [r for r, h in enumerate(values) if h != majority]


def gather_consistent(result: dict, scenario: str) -> Verdict:
    """The hashes the ranks gathered equal the hashes of the arrays they returned."""
    local = [params_digest(p) for p in result["scenarios"][scenario]]
    gathered = result["gathered"][scenario]
    ok = local == gathered
    return Verdict("gather_consistent", ok,
                   f"{scenario}: hashes gathered by {result['backend']} all_gather_object "
                   f"{'match' if ok else 'DO NOT match'} the hashes of the returned arrays",
                   n=len(local), observed={"gathered": _short(gathered), "local": _short(local)})


def same_seed(result: dict, seed: int, world_size: int) -> list[Verdict]:
    """Every rank seeded ``seed``: bitwise identical parameters on every rank."""
    hashes = result["gathered"]["same_seed"]
    odd = odd_ranks(hashes)
    return [
        gather_consistent(result, "same_seed"),
        Verdict("ranks_identical", not odd,
                f"seed {seed}, world size {world_size} ({result['backend']}): "
                + ("every rank built bitwise identical parameters" if not odd else
                   f"ranks {odd} built different parameters than the others"),
                n=world_size, observed={"hashes": _short(hashes)}, expected={"distinct_hashes": 1}),
    ]


def rank_offset(result: dict, seed: int, world_size: int) -> list[Verdict]:
    """Rank r seeded ``seed + r``: every rank's parameters differ from every other rank's."""
    hashes = result["gathered"]["rank_offset"]
    verdicts = [gather_consistent(result, "rank_offset"),
                Verdict("ranks_distinct", len(set(hashes)) == world_size,
                        f"seeds {seed}+rank: {len(set(hashes))} distinct parameter hashes over {world_size} ranks",
                        n=world_size, observed={"hashes": _short(hashes)}, expected={"distinct_hashes": world_size})]
    ranks = result["scenarios"]["rank_offset"]
    for r in range(1, world_size):
        verdicts.append(I.distinct(ranks[0]["0.weight"], ranks[r]["0.weight"], f"0.weight of rank 0 vs rank {r}"))
    return verdicts


def meta_init(result: dict, seed: int, world_size: int, alpha: float) -> list[Verdict]:
    """Meta build, materialize, seed, re-init on every rank: identical on every rank and distributed as the
    documented ``Linear`` default."""
    hashes = result["gathered"]["meta_init"]
    odd = odd_ranks(hashes)
    verdicts = [gather_consistent(result, "meta_init"),
                Verdict("ranks_identical", not odd,
                        f"meta build + to_empty + seed {seed} + reset_parameters: "
                        + ("identical on every rank" if not odd else f"ranks {odd} differ from the others"),
                        n=world_size, observed={"hashes": _short(hashes)}, expected={"distinct_hashes": 1})]
    params = result["scenarios"]["meta_init"][0]
    weights = np.concatenate([params["0.weight"].ravel(), params["1.weight"].ravel()])
    in_features = params["0.weight"].shape[1]
    want = expected_module("Linear", in_features=in_features, out_features=params["0.weight"].shape[0])["weight"]
    verdicts += expect.distribution(weights, want, "float32", alpha)
    return verdicts


def unseeded_rank(result: dict, seed: int, world_size: int) -> list[Verdict]:
    """The last rank never seeded: the hash comparison singles it out, and only it."""
    hashes = result["gathered"]["skip_seed"]
    odd = odd_ranks(hashes)
    want = [world_size - 1]
    return [
        gather_consistent(result, "skip_seed"),
        Verdict("unseeded_rank_detected", odd == want,
                f"ranks 0..{world_size - 2} seeded {seed}, rank {world_size - 1} did not: the comparison flagged "
                f"ranks {odd} (expected {want})", n=world_size, observed={"hashes": _short(hashes), "flagged": odd},
                expected={"flagged": want}),
    ]
