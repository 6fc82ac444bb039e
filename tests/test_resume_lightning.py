"""``conformance resume lightning``: the Lightning Trainer harness, run through the CLI (workers 0).

What the audit found with lightning 2.6.6 / torch 2.13 / torchdata 0.11 (see
conformance/resume/harnesses/lightning_fit.py): the loop state resumes exactly (steps 12..23, the LR schedule),
but a Lightning checkpoint holds no RNG state, so the resumed process continues from the RNG state that
``seed_everything`` and the model's construction left, the one step 0 saw:

* plain ``DataLoader``: diverges at step 12 in batch, RNG, dropout and loss. ``FitLoop.setup_data`` makes a fresh
  iterator whose ``RandomSampler`` draws epoch 0's permutation, so C step 12 trains on A step 0's batch; Lightning
  warns ("You're resuming from a checkpoint that ended before the epoch ended and your dataloader is not
  resumable ...");
* ``--stateful-loader`` (torchdata ``StatefulDataLoader``, saved under ``loops/fit_loop/state_dict/combined_loader``):
  the batches are A's, but the global torch RNG is still A's before step 0, so the dropout masks differ from step 12.

Each audit starts three interpreters that import lightning (about a minute on two cores, more when loaded).
"""

from __future__ import annotations

import pytest

from .resume_cli import run_resume

pytest.importorskip("torch")
pytest.importorskip("lightning")


MID_EPOCH_WARNING = "You're resuming from a checkpoint that ended before the epoch ended and your dataloader is not"


def _resume(*args: str, timeout: float = 500) -> tuple[int, dict | None, str]:
    return run_resume("lightning", *args, timeout=timeout)


def test_lightning_mid_epoch_resume_restarts_the_data_order_and_the_rng():
    code, doc, err = _resume("--json")
    assert code == 1 and doc is not None, err[-2000:]
    assert doc["deterministic"] and not doc["bit_exact"], doc.get("details")
    assert doc["first_divergent_step"] == 12, doc["details"]
    assert doc["diverged"] == ["batch", "rng", "dropout", "loss", "params", "optimizer"], doc["details"]
    assert "lr" not in doc["first_step_by_field"] and "steps" not in doc["first_step_by_field"]
    assert "C step 12's batch = A step 0's (the data order restarted)" in doc["origin"], doc["origin"]
    assert "C step 12's torch_cpu RNG state = A's before step 0" in doc["origin"], doc["origin"]
    assert any(MID_EPOCH_WARNING in w["warning"] for w in doc["warnings"]), doc["warnings"]
    assert "epoch=1-step=12.ckpt" in doc["checkpoint"]


@pytest.mark.slow  # nox -s resume runs it; CI's smoke keeps the plain-loader case
def test_lightning_with_a_stateful_loader_keeps_the_batches_but_not_the_rng():
    pytest.importorskip("torchdata.stateful_dataloader")
    code, doc, err = _resume("--stateful-loader", "--json")
    assert code == 1 and doc is not None, err[-2000:]
    assert doc["deterministic"] and not doc["bit_exact"], doc.get("details")
    assert doc["first_divergent_step"] == 12, doc["details"]
    assert doc["diverged"] == ["rng", "dropout", "loss", "params", "optimizer"], doc["details"]
    assert "batch" not in doc["first_step_by_field"], doc["details"]  # every resumed batch is A's
    assert "C step 12's torch_cpu RNG state = A's before step 0" in doc["origin"], doc["origin"]
    assert not any(MID_EPOCH_WARNING in w["warning"] for w in doc["warnings"]), doc["warnings"]
