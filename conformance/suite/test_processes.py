"""Seeds across processes: fresh interpreters build the adapter by spec and draw a fixed recipe
(:func:`conformance.subprocess_runner.stream_digest`).

* The same seed gives the same digest in every child and in this process.
* Without a seed, children differ, unless the backend declares a deterministic default seed
  (contract ``unseeded`` with value ``"deterministic"``, e.g. candle's 299792458 on CUDA/Metal): then
  the verdict states the contract and what was observed instead of a pass or fail (candle #1959,
  #2599, #1055). A backend that declares nothing is held to "fresh per process" (candle #1931: the
  same bias -0.83800024 on every run).

A child that crashes or hangs becomes a failed verdict with its stderr, within its timeout
(``CONFORMANCE_CHILD_TIMEOUT``); the run goes on.
"""

from __future__ import annotations

import pytest

from conformance.seeding import derive_seed
from conformance.stats import Verdict
from conformance.subprocess_runner import run_children, stream_digest

pytestmark = [pytest.mark.requires("seed", "processes")]

SEEDED, UNSEEDED = 2, 3
_BATCHES: dict[tuple, list] = {}


def _adapters(request) -> list[str]:
    return list(request.config.getoption("adapters") or [])


def _batch(backend, conformance, request) -> tuple[int, list, list]:
    """One launch per backend serves both checks: SEEDED children with one seed, UNSEEDED without."""
    seed = derive_seed(conformance.master_seed, "processes/batch", backend.spec)
    key = (backend.spec, seed, tuple(_adapters(request)))
    if key not in _BATCHES:
        results = run_children(backend.spec, [seed] * SEEDED + [None] * UNSEEDED, _adapters(request))
        _BATCHES[key] = results
    results = _BATCHES[key]
    return seed, results[:SEEDED], results[SEEDED:]


def _failures(results) -> list[Verdict]:
    return [Verdict("child_process", False, r.message, n=1,
                    observed={"returncode": r.returncode, "timed_out": r.timed_out, "stderr": r.stderr})
            for r in results if not r.ok]


def _observed(results) -> dict:
    ok = [r for r in results if r.ok]
    return {"digests": [r.digest[:16] for r in ok], "heads": [r.payload.get("head") for r in ok],
            "biases": [r.payload.get("bias") for r in ok]}


def test_same_seed_across_processes(backend, conformance, request):
    """Fresh interpreters seeded alike draw the same bits, and the same bits as this process."""
    seed, results, _ = _batch(backend, conformance, request)
    failures = _failures(results)
    if failures:
        conformance.expect(failures, "children seeded alike")
    backend.seed(seed)
    here = stream_digest(backend)
    digests = [r.digest for r in results]
    same = len(set(digests)) == 1 and digests[0] == here["digest"]
    observed = {**_observed(results), "parent_digest": here["digest"][:16]}
    conformance.expect(Verdict(
        "processes_agree", same,
        f"seed {seed}: {len(set(digests + [here['digest']]))} distinct digest(s) over {len(results)} fresh "
        f"processes and this one" + ("" if same else f" (expected 1); first uniform values per process: "
                                     f"{observed['heads']} vs here {here['head']}"),
        n=len(results) + 1, observed=observed, expected={"distinct_digests": 1}), "same seed in every process")


def test_unseeded_processes(backend, conformance, request):
    """Unseeded fresh interpreters differ, unless a deterministic default seed is the declared contract."""
    _, _, results = _batch(backend, conformance, request)
    failures = _failures(results)
    if failures:
        conformance.expect(failures, "unseeded children")
    digests = [r.digest for r in results]
    distinct, count = len(set(digests)), len(results)
    observed = {**_observed(results), "distinct_digests": distinct, "processes": count,
                "behaviour": f"{count} unseeded processes drew {distinct} distinct stream(s)"}
    contract = backend.contracts.get("unseeded")
    seen = (f"observed: {distinct} distinct stream(s) over {count} unseeded processes "
            f"(first uniform values {observed['heads']})")
    if contract is not None and contract.value == "deterministic":
        expected = {"contract": contract.statement, "source": contract.source, "value": contract.value}
        observed["consistent_with_contract"] = distinct == 1
        conformance.expect(Verdict("contract", True, f"contract: {contract.statement}; {seen}", n=count,
                                   observed=observed, expected=expected), "unseeded processes (declared contract)")
        return
    expected = {"distinct_digests": count,
                "contract": contract.statement if contract else "none declared: held to fresh per process",
                "source": contract.source if contract else "", "value": contract.value if contract else "fresh"}
    ok = distinct == count
    conformance.expect(Verdict("processes_differ", ok,
                               f"unseeded processes must differ ({expected['contract']}); {seen}"
                               + ("" if ok else ": separate runs repeat the same random values"),
                               n=count, observed=observed, expected=expected), "unseeded processes differ")
