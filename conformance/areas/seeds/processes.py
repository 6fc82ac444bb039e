"""Seeds across processes: one launch of fresh interpreters per backend (cached) and the verdicts of the process
checks (``conformance/suite/test_processes.py``).

Children build the adapter by spec and draw :func:`conformance.harness.children.stream_digest`; ``SEEDED`` of them
with one seed, ``UNSEEDED`` without. A backend that declares a deterministic default seed (contract ``unseeded``,
value ``"deterministic"``) gets its contract stated and checked, not a blind failure; one that declares nothing is
held to "fresh per process".
"""

from __future__ import annotations

from conformance.harness.children import run_children, stream_digest
from conformance.report.attachments import SeedContract
from conformance.seeding import derive_seed
from conformance.stats import Verdict

SEEDED, UNSEEDED = 2, 3
_BATCHES: dict[tuple, list] = {}


def batch(backend, conformance, adapters: list[str]) -> tuple[int, list, list]:
    """One launch per backend serves both checks: ``(seed, seeded children, unseeded children)``."""
    seed = derive_seed(conformance.master_seed, "processes/batch", backend.spec)
    key = (backend.spec, seed, tuple(adapters))
    if key not in _BATCHES:
        _BATCHES[key] = run_children(backend.spec, [seed] * SEEDED + [None] * UNSEEDED, adapters)
    results = _BATCHES[key]
    return seed, results[:SEEDED], results[SEEDED:]


def child_failures(results) -> list[Verdict]:
    """A failed ``child_process`` verdict per child that crashed, hung or answered garbage."""
    return [Verdict("child_process", False, r.message, n=1,
                    observed={"returncode": r.returncode, "timed_out": r.timed_out, "stderr": r.stderr})
            for r in results if not r.ok]


def _observed(results) -> dict:
    ok = [r for r in results if r.ok]
    return {"digests": [r.digest[:16] for r in ok], "heads": [r.payload.get("head") for r in ok],
            "biases": [r.payload.get("bias") for r in ok]}


def same_seed(backend, seed: int, results) -> Verdict:
    """Children seeded ``seed`` drew the same digest as each other and as this process after ``seed(seed)``."""
    backend.seed(seed)
    here = stream_digest(backend)
    digests = [r.digest for r in results]
    same = len(set(digests)) == 1 and digests[0] == here["digest"]
    observed = {**_observed(results), "parent_digest": here["digest"][:16]}
    return Verdict(
        "processes_agree", same,
        f"seed {seed}: {len(set(digests + [here['digest']]))} distinct digest(s) over {len(results)} fresh "
        f"processes and this one" + ("" if same else f" (expected 1); first uniform values per process: "
                                     f"{observed['heads']} vs here {here['head']}"),
        n=len(results) + 1, observed=observed, expected={"distinct_digests": 1})


def unseeded(backend, results) -> tuple[Verdict, SeedContract, str]:
    """The verdict on unseeded children, the contract observation for the report, and the verdict's label."""
    digests = [r.digest for r in results]
    distinct, count = len(set(digests)), len(results)
    observed = {**_observed(results), "distinct_digests": distinct, "processes": count}
    behaviour = f"{count} unseeded processes drew {distinct} distinct stream(s)"
    contract = backend.contracts.get("unseeded")
    seen = (f"observed: {distinct} distinct stream(s) over {count} unseeded processes "
            f"(first uniform values {observed['heads']})")
    if contract is not None and contract.value == "deterministic":
        expected = {"contract": contract.statement, "source": contract.source, "value": contract.value}
        observed["consistent_with_contract"] = distinct == 1
        attachment = SeedContract("unseeded", contract.statement, contract.source, contract.value, behaviour,
                                  consistent=distinct == 1)
        return (Verdict("contract", True, f"contract: {contract.statement}; {seen}", n=count,
                        observed=observed, expected=expected), attachment, "unseeded processes (declared contract)")
    expected = {"distinct_digests": count,
                "contract": contract.statement if contract else "none declared: held to fresh per process",
                "source": contract.source if contract else "", "value": contract.value if contract else "fresh"}
    ok = distinct == count
    attachment = SeedContract("unseeded", expected["contract"], expected["source"], expected["value"], behaviour,
                              consistent=ok)
    return (Verdict("processes_differ", ok, f"unseeded processes must differ ({expected['contract']}); {seen}"
                    + ("" if ok else ": separate runs repeat the same random values"),
                    n=count, observed=observed, expected=expected), attachment, "unseeded processes differ")
