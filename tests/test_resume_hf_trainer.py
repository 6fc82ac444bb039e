"""``conformance resume hf-trainer``: the transformers Trainer harness, run through the CLI (workers 0).

What the audit found with transformers 5.24.0 / accelerate 1.15.0 (see conformance/resume/harnesses/hf_trainer.py):

* plain data: bit-exact;
* ``--dataset-randomness``: diverges at the resumed step 12 in batch, RNG, dropout and loss, because the Trainer
  restores the RNG states only after it fetched the first resumed batch (``_run_epoch``: ``get_batch_samples``
  before ``_load_rng_state``) and accelerate's ``DataLoaderShard`` had already drawn batch 12's augmentation
  (one batch ahead) before the checkpoint was written;
* ``--stateful-loader``: refused (exit 4), the Trainer has no ``use_stateful_dataloader`` switch.

Each audit starts three interpreters that import transformers (about 80 s on two cores).
"""

from __future__ import annotations

import pytest

from .resume_cli import run_resume

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")


def _resume(*args: str, timeout: float = 400) -> tuple[int, dict | None, str]:
    return run_resume("hf-trainer", *args, timeout=timeout)


@pytest.mark.slow  # nox -s resume runs it; CI's smoke keeps the diverging case
def test_hf_trainer_resumes_plain_data_bit_exactly():
    code, doc, err = _resume("--json")
    assert code == 0 and doc is not None, err[-2000:]
    assert doc["bit_exact"] and doc["deterministic"], doc.get("details")
    assert doc["first_divergent_step"] is None and doc["diverged"] == []
    assert "checkpoint-12/rng_state.pth" in doc["checkpoint"]


def test_hf_trainer_with_dataset_randomness_diverges_at_the_resumed_step():
    code, doc, err = _resume("--dataset-randomness", "--json")
    assert code == 1 and doc is not None, err[-2000:]
    assert doc["deterministic"] and not doc["bit_exact"]
    assert doc["first_divergent_step"] == 12, doc["details"]
    assert doc["diverged"] == ["batch", "rng", "dropout", "loss", "params", "optimizer"], doc["details"]


def test_hf_trainer_refuses_the_stateful_loader():
    code, _, err = _resume("--stateful-loader")
    assert code == 4, err[-2000:]
    assert "use_stateful_dataloader" in err and "Traceback" not in err
