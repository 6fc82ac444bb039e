"""The seed and RNG-state checks catch each faulty adapter (tests/faulty/seed_adapters.py) by name, the
correct backends (numpy reference, torch:cpu) pass the same selection, and crashing or hanging child
processes become failed verdicts with their stderr while the run goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conformance.stats import independence as I

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = "tests.faulty.seed_adapters"
REFERENCE = ("numpy:cpu", "torch:cpu")


def _run(tmp_path: Path, backends, keyword: str, env: dict | None = None, timeout: float = 600):
    cmd = [sys.executable, "-m", "conformance", "run", "--adapters", ADAPTERS, "-k", keyword,
           "--report-dir", str(tmp_path), "-q"]
    for spec in backends:
        cmd += ["--backend", spec]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    path = tmp_path / "results.json"
    assert path.exists(), f"no results.json; exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc, json.loads(path.read_text())


def _by_backend(results: dict, spec: str) -> list[dict]:
    return [r for r in results["records"] if r["backend"] == spec]


# faulty adapter -> (-k selection, checks that must fail on it)
CASES = {
    "faulty-shared-state": ("test_layers_independent or test_every_index_varies or test_unseeded_processes",
                            ["seeds/test_layers_independent", "seeds/test_every_index_varies[sample-uniform]",
                             "seeds/test_every_index_varies[module-Linear]", "processes/test_unseeded_processes"]),
    "faulty-stuck-middle": ("test_every_index_varies",
                            ["seeds/test_every_index_varies[sample-uniform]",
                             "seeds/test_every_index_varies[sample-normal]"]),
    "faulty-identical-draws": ("test_successive_draws_differ",
                               ["seeds/test_successive_draws_differ[sample-uniform]",
                                "seeds/test_successive_draws_differ[sample-normal]"]),
    "faulty-equal-slices": ("test_slices_differ",
                            ["seeds/test_slices_differ[rank5-normal]", "seeds/test_slices_differ[rank6-uniform]"]),
    "faulty-lost-offset": ("test_restore_resumes_stream or test_restore_into_new_generator",
                           ["rng_state/test_restore_resumes_stream[uniform]",
                            "rng_state/test_restore_into_new_generator[normal]"]),
}


_CACHE: dict[str, tuple] = {}


def _case_run(tmp_path_factory, faulty: str):
    """One CLI run per faulty adapter (with the reference backends), shared by the tests below."""
    if faulty not in _CACHE:
        keyword, _ = CASES[faulty]
        _CACHE[faulty] = _run(tmp_path_factory.mktemp(faulty), [*REFERENCE, f"{faulty}:cpu"], keyword)
    return _CACHE[faulty]


@pytest.mark.parametrize("faulty", sorted(CASES))
def test_named_check_catches_faulty_adapter(tmp_path_factory, faulty):
    keyword, must_fail = CASES[faulty]
    proc, results = _case_run(tmp_path_factory, faulty)
    assert proc.returncode == 1, proc.stdout[-3000:]
    faulty_records = _by_backend(results, f"{faulty}:cpu")
    for check in must_fail:
        hits = [r for r in faulty_records if r["id"] == check]
        assert hits, f"{check} did not run on {faulty}"
        assert all(r["outcome"] == "failed" for r in hits), [(r["dtype"], r["outcome"], r["message"]) for r in hits]
        assert all(r["repro"] for r in hits)
    for spec in REFERENCE:
        recs = _by_backend(results, spec)
        assert recs, f"nothing ran on {spec}"
        bad = [(r["id"], r["dtype"], r["outcome"], r["message"]) for r in recs
               if r["outcome"] not in ("passed", "skipped")]
        assert not bad, f"{spec} must pass the selection {keyword!r}: {bad}"


def test_equal_slices_only_flags_high_rank(tmp_path_factory):
    """The pytorch #147624 mutant is caught at rank 5 and 6 only: ranks 1-4 pass on it."""
    _, results = _case_run(tmp_path_factory, "faulty-equal-slices")
    for r in _by_backend(results, "faulty-equal-slices:cpu"):
        high = "rank5" in r["id"] or "rank6" in r["id"]
        assert r["outcome"] == ("failed" if high else "passed"), (r["id"], r["dtype"], r["message"])


def test_child_crash_and_hang_are_reported(tmp_path):
    """A crashing and a hanging child: failed verdicts with stderr, within the timeout; the run continues."""
    start = time.monotonic()
    proc, results = _run(tmp_path, ["faulty-child-crash:cpu", "faulty-child-hang:cpu", "numpy:cpu"],
                         "test_processes", env={"CONFORMANCE_CHILD_TIMEOUT": "20"}, timeout=180)
    elapsed = time.monotonic() - start
    assert proc.returncode == 1
    assert elapsed < 100, f"the hang was not cut at its timeout: {elapsed:.0f} s"
    crash = _by_backend(results, "faulty-child-crash:cpu")
    hang = _by_backend(results, "faulty-child-hang:cpu")
    assert {r["id"] for r in crash} == {r["id"] for r in hang} == {"processes/test_same_seed_across_processes",
                                                                   "processes/test_unseeded_processes"}
    for r in crash:
        assert r["outcome"] == "failed"
        assert "exited with status 3" in r["message"]
        assert "simulated crash in the RNG kernel" in r["message"]
    for r in hang:
        assert r["outcome"] == "failed"
        assert "did not finish within its 20 s timeout" in r["message"]
        assert "waiting forever" in r["message"]
    assert all(r["outcome"] == "passed" for r in _by_backend(results, "numpy:cpu"))


def test_report_states_seed_contracts(tmp_path_factory):
    """Per backend, the unseeded-process verdict carries the declared contract and what was observed."""
    _, results = _case_run(tmp_path_factory, "faulty-shared-state")
    by = {r["backend"]: r for r in results["records"] if r["id"] == "processes/test_unseeded_processes"}
    numpy_v = by["numpy:cpu"]["verdicts"][0]
    assert numpy_v["test"] == "contract" and numpy_v["message"].startswith("contract: deterministic default seed 0")
    assert numpy_v["observed"]["distinct_digests"] == 1 and numpy_v["expected"]["value"] == "deterministic"
    contract = by["numpy:cpu"]["attachments"]["seed_contract"]  # what the report's contract table shows
    assert contract["kind"] == "seed_contract" and contract["value"] == "deterministic" and contract["consistent"]
    torch_v = by["torch:cpu"]["verdicts"][0]
    assert torch_v["test"] == "processes_differ" and torch_v["passed"]
    assert torch_v["expected"]["value"] == "fresh" and "67280421310721" in torch_v["expected"]["contract"]
    assert torch_v["observed"]["distinct_digests"] == torch_v["observed"]["processes"]
    assert not by["faulty-shared-state:cpu"]["verdicts"][0]["passed"]
    assert results["backends"]["torch:cpu"]["contracts"]["unseeded"]["value"] == "fresh"


# -- the statistics on their own -------------------------------------------------------------------------------------
def test_correlation_detects_dependence_and_passes_independence():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(65536), rng.standard_normal(65536)
    assert I.correlation(x, y, "independent", 1e-7).passed
    assert not I.correlation(x, 0.05 * x + y, "r=0.05", 1e-7).passed  # 12.8 null sd
    assert not I.correlation(x, x, "same", 1e-7).passed


def test_stuck_positions_and_shifted_copy():
    rng = np.random.default_rng(2)
    draws = rng.random((8, 1000)).astype(np.float32)
    assert I.stuck_positions(draws, "ok").passed
    draws[:, 500] = 0
    v = I.stuck_positions(draws, "middle")
    assert not v.passed and v.observed["stuck"] == [500]
    x = rng.random(4096).astype(np.float32)
    assert I.shifted_copy(x, rng.random(4096).astype(np.float32), "fresh").passed
    v = I.shifted_copy(x, np.roll(x, -100), "shifted")
    assert not v.passed and v.observed["offset"] == 100


def test_bitwise_and_distinct_on_bfloat16():
    import ml_dtypes

    a = np.arange(64, dtype=np.float32).astype(ml_dtypes.bfloat16)
    assert I.bitwise_equal(a, a.copy(), "same").passed
    b = a.copy()
    b[3] = 100
    assert not I.bitwise_equal(a, b, "one off").passed
    assert not I.distinct(a, b, "copies").passed
    assert I.distinct(a, a[::-1].copy(), "reversed").passed
    assert not I.bitwise_equal(np.zeros(3, np.float32), np.zeros(3, np.float64), "dtype").passed
