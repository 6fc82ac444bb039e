"""Seeds across processes: fresh interpreters build the adapter by spec and draw a fixed recipe
(:func:`conformance.harness.children.stream_digest`).

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

from conformance.areas.seeds import processes

pytestmark = [pytest.mark.requires("seed", "processes")]


def _adapters(request) -> list[str]:
    return list(request.config.getoption("adapters") or [])


def test_same_seed_across_processes(backend, conformance, request):
    """Fresh interpreters seeded alike draw the same bits, and the same bits as this process."""
    seed, results, _ = processes.batch(backend, conformance, _adapters(request))
    failures = processes.child_failures(results)
    if failures:
        conformance.expect(failures, "children seeded alike")
    conformance.expect(processes.same_seed(backend, seed, results), "same seed in every process")


def test_unseeded_processes(backend, conformance, request):
    """Unseeded fresh interpreters differ, unless a deterministic default seed is the declared contract."""
    _, _, results = processes.batch(backend, conformance, _adapters(request))
    failures = processes.child_failures(results)
    if failures:
        conformance.expect(failures, "unseeded children")
    verdict, contract, label = processes.unseeded(backend, results)
    conformance.attach(contract)
    conformance.expect(verdict, label)
