"""The checkpoint checks catch each faulty training loop and loader (tests/faulty/training.py) by name, through the
CLI, while torch:cpu passes the same selection; plus the verdicts on hand-made traces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from conformance.areas.checkpoints import expect as E  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = "tests.faulty.training"
REFERENCE = "torch:cpu"


def _run(tmp_path: Path, backends, keyword: str, workers: str | None = None, timeout: float = 600):
    cmd = [sys.executable, "-m", "conformance", "run", "--adapters", ADAPTERS, "-k", keyword,
           "--report-dir", str(tmp_path), "-q"]
    if workers:
        cmd += ["-n", workers]
    for spec in backends:
        cmd += ["--backend", spec]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    path = tmp_path / "results.json"
    assert path.exists(), f"no results.json; exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc, json.loads(path.read_text())


def _failed_tests(record: dict) -> set[str]:
    return {v["test"] for v in record["verdicts"] if not v["passed"]}


# faulty adapter -> verdicts of checkpoints/test_resume_bit_exact that must fail
RESUME_CASES = {
    "faulty-resume-reseed": {"dropout_masks", "losses", "parameters"},
    "faulty-resume-no-rng": {"dropout_masks", "losses", "parameters"},
    "faulty-resume-epoch0": {"batch_order", "losses", "parameters"},
}
# faulty adapter -> (models, verdicts of checkpoints/test_round_trip that must fail)
LOADER_CASES = {
    "faulty-load-garbage": ({"tiny_tied", "gpt2", "llama"}, {"bitwise"}),
    "faulty-load-untied": ({"tiny_tied", "gpt2"}, {"aliasing"}),
    "faulty-load-meta-buffers": ({"tiny_tied", "llama"}, {"nonpersistent"}),
}


def _reference_passes(results: dict) -> None:
    recs = [r for r in results["records"] if r["backend"] == REFERENCE]
    assert recs, f"nothing ran on {REFERENCE}"
    bad = [(r["id"], r["dtype"], r["outcome"], r["message"][:300]) for r in recs
           if r["outcome"] not in ("passed", "skipped")]
    assert not bad, bad


def test_resume_check_catches_faulty_loops(tmp_path):
    specs = [REFERENCE, *(f"{name}:cpu" for name in RESUME_CASES)]
    proc, results = _run(tmp_path, specs, "test_resume_bit_exact")
    assert proc.returncode == 1, proc.stdout[-3000:]
    _reference_passes(results)
    for name, must_fail in RESUME_CASES.items():
        recs = [r for r in results["records"] if r["backend"] == f"{name}:cpu"]
        assert len(recs) == 1 and recs[0]["id"] == "checkpoints/test_resume_bit_exact", recs
        rec = recs[0]
        assert rec["outcome"] == "failed", (name, rec["outcome"], rec["message"][:500])
        failed = _failed_tests(rec)
        assert must_fail <= failed, (name, failed)
        assert "steps" not in failed and "harness" not in failed, (name, failed)
        assert rec["repro"]


def test_round_trip_catches_faulty_loaders(tmp_path):
    specs = [REFERENCE, *(f"{name}:cpu" for name in LOADER_CASES)]
    proc, results = _run(tmp_path, specs, "test_round_trip and float32")
    assert proc.returncode == 1, proc.stdout[-3000:]
    _reference_passes(results)
    for name, (models, must_fail) in LOADER_CASES.items():
        recs = [r for r in results["records"] if r["backend"] == f"{name}:cpu"]
        for model in models:
            hits = [r for r in recs if r["id"].startswith(f"checkpoints/test_round_trip[{model}-")
                    and r["outcome"] != "skipped"]  # npz: not a torch format
            assert len(hits) == 2, (name, model, [r["id"] for r in recs])  # torch and safetensors formats
            for rec in hits:
                assert rec["outcome"] == "failed", (name, rec["id"], rec["outcome"])
                assert must_fail <= _failed_tests(rec), (name, rec["id"], _failed_tests(rec))


# -- the verdicts themselves, on hand-made traces ------------------------------------------------------------------
def _trace(steps, start=0, seed=0, final=True):
    rng = np.random.default_rng(seed)
    out = {"step": np.arange(start, start + steps), "loss": rng.random(steps).astype(np.float32),
           "lr": np.linspace(1e-3, 1e-4, steps), "batch": rng.integers(0, 64, (steps, 8)),
           "mask": rng.integers(0, 255, (steps, 32)).astype(np.uint8), "params": {}, "optim": {}}
    if final:
        out["params"] = {"w": rng.random(4)}
        out["optim"] = {"0/exp_avg": rng.random(4)}
    return out


def _split(full, k):
    inter = {key: (v[:k] if isinstance(v, np.ndarray) else {}) for key, v in full.items()}
    res = {key: (v[k:] if isinstance(v, np.ndarray) else dict(v)) for key, v in full.items()}
    return inter, res


def test_resume_verdicts_pass_on_identical_traces():
    full = _trace(24)
    inter, res = _split(full, 12)
    verdicts = E.resume({"straight": full, "interrupted": inter, "resumed": res}, 12)
    assert all(v.passed for v in verdicts), [v.message for v in verdicts if not v.passed]


def test_resume_verdicts_name_the_first_step_and_replayed_batch():
    full = _trace(24)
    inter, res = _split(full, 12)
    res["batch"] = res["batch"].copy()
    res["batch"][0] = full["batch"][4]  # epoch 0's batch replayed
    res["mask"] = res["mask"].copy()
    res["mask"][3, 0] ^= 0xFF
    verdicts = {v.test: v for v in E.resume({"straight": full, "interrupted": inter, "resumed": res}, 12)}
    assert not verdicts["batch_order"].passed
    assert "step 12 (the first step after the resume)" in verdicts["batch_order"].message
    assert "drew at step 4" in verdicts["batch_order"].message
    assert not verdicts["dropout_masks"].passed and "step 15" in verdicts["dropout_masks"].message
    assert "8 of 256 mask elements" in verdicts["dropout_masks"].message
    assert verdicts["losses"].passed and verdicts["determinism"].passed
