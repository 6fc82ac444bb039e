"""``conformance resume conformance.resume.harnesses.torchtitan_train:TorchtitanHarness``: torchtitan's own
training entry point (``torchtitan.train.main`` with ``checkpoint.enable``/``interval``/``folder``, resumed by
re-running the same command, which loads the latest ``step-N``), run through the CLI with workers 0 on CPU.

What the audit found with torchtitan 0.3.0 / torch 2.13 / torchdata 0.11.0 (1-layer llama3, no dropout):

* plain: batches, losses, LRs, final parameters and AdamW state are bit-exact; only the global torch RNG differs
  from step 12: the checkpoint holds no RNG state (torchtitan #1194), ``set_determinism`` re-seeds, and the
  resumed run draws one extra ``_base_seed``: ``CheckpointManager`` passes the dataloader to ``dcp.load``, which
  calls ``StatefulDataLoader.state_dict()``, which builds (and ``load_state_dict`` then drops) an iterator. Nothing
  in the training path draws from that RNG, so the training itself is unaffected;
* ``--dataset-randomness``: augmentation draws from the global torch RNG restart from the re-seeded state, so
  the batch (hence loss, params, optimizer) diverges at step 12.

Each audit starts three interpreters that import torchtitan (about 45-60 s on two busy cores).
"""

from __future__ import annotations

import pytest

from .resume_cli import run_resume

pytest.importorskip("torch")
pytest.importorskip("torchtitan")
pytest.importorskip("torchdata")

HARNESS = "torchtitan"


def _resume(*args: str, timeout: float = 500) -> tuple[int, dict | None, str]:
    return run_resume(HARNESS, "--timeout", "400", *args, timeout=timeout)


def test_torchtitan_resume_matches_except_the_unsaved_global_rng():
    code, doc, err = _resume("--json")
    assert code == 1 and doc is not None, err[-2000:]
    assert doc.get("error") is None, doc["error"][-1500:]
    assert doc["deterministic"] and not doc["bit_exact"], doc.get("details")
    assert doc["first_divergent_step"] == 12, doc["details"]
    assert doc["diverged"] == ["rng"], doc["details"]
    assert doc["first_step_by_field"] == {"rng": 12}, doc["details"]
    assert "step-12/.metadata" in doc["checkpoint"]


def test_torchtitan_resume_with_dataset_randomness_diverges_at_the_resumed_step():
    code, doc, err = _resume("--dataset-randomness", "--json")
    assert code == 1 and doc is not None, err[-2000:]
    assert doc.get("error") is None, doc["error"][-1500:]
    assert doc["deterministic"] and not doc["bit_exact"], doc.get("details")
    assert doc["first_divergent_step"] == 12, doc["details"]
    assert doc["diverged"] == ["batch", "rng", "loss", "params", "optimizer"], doc["details"]
    assert doc["first_step_by_field"] == {"batch": 12, "rng": 12, "loss": 12}, doc["details"]
