"""Benchmark (``nox -s bench``; run once, untimed, under --benchmark-disable): wall time of one decision of
PyTorch's ``test/nn/test_init.py`` rule (one scipy KS per tensor, p > 1e-4, shapes drawn like theirs, ``.tolist()``
included) and of our checks (the full battery on n = 1e6 float32 values; the streamed scale-and-shift check on
n = 2^26 float32 values, 2^22 at a time; both at alpha 1e-7), drawing included.
Power curves and the comparison table come from ``tools/power.py`` (``nox -s power``)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tools import power as P


@pytest.mark.parametrize("baseline", list(P.BASELINES), ids=["peer-normal_", "peer-xavier"])
def test_bench_peer_decision(benchmark, baseline):
    rng, prng = np.random.default_rng(0), random.Random(123)
    caught = benchmark.pedantic(P.peer_decision_exact, args=("std", 0.0, P.BASELINES[baseline], rng, prng),
                                rounds=3, iterations=1)
    assert caught in (True, False)  # timing is reported by pytest-benchmark, never asserted


def test_bench_our_check(benchmark):
    rng = np.random.default_rng(0)
    caught = benchmark.pedantic(P.ours_rejects, args=("std", 0.0, rng), rounds=3, iterations=1)
    assert caught in (True, False)


def test_bench_our_large_n_check(benchmark):
    rng = np.random.default_rng(0)
    caught = benchmark.pedantic(P.ours_large_n_rejects, args=("std", 0.0, rng), rounds=3, iterations=1)
    assert caught in (True, False)


def test_both_rules_catch_a_3pct_std_error():
    """Sanity of the two decision rules used by tools/power.py (one draw each, fixed seeds)."""
    rng, prng = np.random.default_rng(1), random.Random(1)
    assert P.peer_decision_exact("std", 0.03, P.BASELINES[list(P.BASELINES)[0]], rng, prng)
    assert P.ours_rejects("std", 0.03, rng)
    assert not P.ours_rejects("std", 0.0, rng)
