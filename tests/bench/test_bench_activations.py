"""Benchmark (``nox -s bench`` / ``pytest tests/bench --benchmark-only``; skipped by --benchmark-disable):
the exhaustive 16-bit sweep of every activation on torch:cpu, value and gradient(s), float16 and bfloat16
(2 x 65,536 bit patterns x 10 activations). Target: under 10 s (measured: about 0.2-0.7 s per sweep on a
2-core CPU runner)."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.areas.activations import inputs as inputs
from conformance.areas.activations import spec as spec


def test_bench_exhaustive_16bit_sweep_torch_cpu(benchmark):
    pytest.importorskip("torch")
    from conformance.backends.torch_adapter import TorchBackend

    backend = TorchBackend("cpu")
    xs = {d: inputs.all_bit_patterns(d) for d in ("float16", "bfloat16")}
    ys = {d: inputs.swiglu_y(x.size, d) for d, x in xs.items()}

    def sweep():
        n = 0
        for dtype, x in xs.items():
            for name in spec.ALL:
                if name == "swiglu":
                    outs = backend.activation2(name, x, ys[dtype], dtype)
                else:
                    outs = backend.activation(name, x, dtype, **spec.DEFAULT_PARAMS.get(name, {}))
                n += sum(np.asarray(o).size for o in outs)
        return n

    n = benchmark.pedantic(sweep, rounds=3, iterations=1, warmup_rounds=1)
    assert n == 2 * 65536 * (2 * len(spec.UNARY) + 3)  # timing is reported by pytest-benchmark, never asserted
