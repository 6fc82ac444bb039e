"""Benchmarks (run by ``nox -s bench``; skipped in ordinary test runs by --benchmark-disable):

* one 1e6-sample distribution check (float32 normal, KS + moments + tails) and its bfloat16
  counterpart (chi-square against the exact rounded reference);
* the whole init conformance area on torch:cpu (wall time of one ``conformance run``).
"""

from __future__ import annotations

import numpy as np
import pytest

from conformance.stats import compare_distribution, design, normal, uniform
from conformance.stats.grids import numpy_dtype

from ..helpers import run_cli


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("family", ["normal", "uniform"])
def test_bench_one_million_sample_check(benchmark, dtype, family):
    ref = normal(0.0, 0.02) if family == "normal" else uniform(-0.1, 0.1)
    rng = np.random.default_rng(0)
    if dtype == "bfloat16":  # exact reference samples: draw from the rounded distribution (also warms its cache)
        rounded = ref.rounded(dtype)
        x = rng.choice(rounded.values, size=design.DEFAULT_N, p=rounded.probs).astype(numpy_dtype(dtype))
    else:
        x = ref.dist.ppf(rng.random(design.DEFAULT_N)).astype(numpy_dtype(dtype))
    verdicts = benchmark(compare_distribution, x, ref, dtype, design.ALPHA)
    assert all(v.passed for v in verdicts)


def test_bench_init_conformance_torch_cpu(benchmark, tmp_path):
    pytest.importorskip("torch")

    def run():
        proc, results = run_cli("run", "--backend", "torch:cpu", "-q", "-k", "init_schemes or module_defaults or gain",
                                report_dir=tmp_path, timeout=3600)
        return results

    results = benchmark.pedantic(run, rounds=1, iterations=1)
    assert results["summary"]["failed"] == 0
    benchmark.extra_info["checks"] = results["summary"]["total"]
