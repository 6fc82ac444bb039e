"""Benchmark (``nox -s bench``; in a zoo environment ``pytest tests/bench/test_bench_zoo.py --benchmark-only``): one
zoo factory built and audited in every mode its library supports, code and intent spec. Target: a few seconds per
factory on a 2-core CPU (measured with the libraries imported: 0.5-3 s; the first import of a library costs 10-20 s
and is not part of a round). Factories whose library is not installed are skipped with the reason."""

from __future__ import annotations

import pytest

from conformance.audit import zoo
from conformance.audit.zoo.runner import run_entry

#: Our own GPT-2 as a zoo factory: always available, so the runner's own cost is measured on every machine.
OURS = zoo.ZooFactory("ours-gpt2", "torch", "tests.test_zoo_realworld:ours_gpt2", "gpt2", "our GPT-2",
                      config={"n_embd": 64, "vocab_size": 256, "block_size": 32}, device_init=("eager", "meta"),
                      init="init_weights")


@pytest.mark.parametrize("entry", [OURS, *zoo.catalogue()], ids=lambda e: e.name)
def test_bench_zoo_factory(benchmark, entry):
    pytest.importorskip("torch")
    avail = zoo.availability(entry, probe=True)
    if not avail.available:
        pytest.skip(avail.reason)
    run_entry(entry)  # warm: imports the library and its model classes
    run = benchmark.pedantic(run_entry, args=(entry,), rounds=2, iterations=1)
    assert run.status in ("pass", "finding"), [m for r in run.reports for m in r.failures()]
