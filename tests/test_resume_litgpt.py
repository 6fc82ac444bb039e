"""``conformance resume conformance.resume.harnesses.litgpt_pretrain:LitGPTPretrainHarness``: LitGPT's own
pretraining script (``litgpt.pretrain.setup`` with ``train.save_interval`` and ``resume=<lit_model.pth>``), run
through the CLI with workers 0.

What the audit found with litgpt 0.5.13 / lightning 2.6.6 / torch 2.13 / torchdata 0.11.0:

* a plain ``torch.utils.data.DataLoader`` (LitGPT's SFT DataModules' kind): the resumed run crashes in
  ``main``'s ``fabric.load(resume, state)``: ``state["train_dataloader"]`` is not stateful, so ``fabric.save``
  pickled the whole DataLoader object into ``lit_model.pth`` and torch's ``weights_only`` load refuses it
  ("Unsupported global: GLOBAL torch.utils.data.dataloader.DataLoader");
* ``--stateful-loader`` (torchdata ``StatefulDataLoader`` with LitGPT's ``generator=torch.Generator().manual_seed``):
  workers 0: steps 12-15 resume exactly, then the next epoch's order differs (batch from step 16): torchdata's
  single-process ``load_state_dict`` puts the sampler's generator back to its epoch-start snapshot and replays only
  the permutation, not the ``_base_seed`` draw ``torch.utils.data._BaseDataLoaderIter.__init__`` took from the same
  generator after it; workers 2: bit-exact;
* ``--stateful-loader --dataset-randomness``: workers 0 diverge at step 12 (LitGPT's checkpoint holds no RNG state;
  ``main`` re-seeds with ``fabric.seed_everything(seed)``, so the augmentation draws come from the global torch RNG
  as it was before step 0); workers 2 diverge at step 12 in the batch only (the restored workers are re-seeded from
  the saved ``_base_seed``, their RNG streams restart).

Each audit starts three interpreters that import LitGPT (about 40-100 s on two busy cores).
"""

from __future__ import annotations

import importlib.util

import pytest

from .resume_cli import run_resume

pytest.importorskip("torch")
pytest.importorskip("litgpt")

HARNESS = "litgpt"


def _resume(*args: str, timeout: float = 500) -> tuple[int, dict | None, str]:
    return run_resume(HARNESS, "--timeout", "400", *args, timeout=timeout)


def test_litgpt_pretrain_resume_with_a_plain_dataloader_fails_to_load_its_checkpoint():
    code, doc, err = _resume("--json")
    assert code == 1 and doc is not None, err[-2000:]
    assert not doc["bit_exact"] and doc["first_divergent_step"] is None
    assert "run C (resumed)" in doc["error"], doc["error"][-1500:]
    assert "fabric.load(resume, state)" in doc["error"]
    assert "torch.utils.data.dataloader.DataLoader" in doc["error"]


@pytest.mark.skipif(importlib.util.find_spec("torchdata") is None, reason="torchdata is not installed")
def test_litgpt_pretrain_resume_with_a_stateful_loader_diverges_at_the_next_epoch():
    code, doc, err = _resume("--stateful-loader", "--json")
    assert code == 1 and doc is not None, err[-2000:]
    assert doc["deterministic"] and not doc["bit_exact"], doc.get("details")
    assert doc["first_divergent_step"] == 12, doc["details"]
    assert doc["diverged"] == ["rng", "params", "optimizer"], doc["details"]
    assert doc["first_step_by_field"] == {"batch": 16, "rng": 12, "loss": 16}, doc["details"]
    assert "step-00000012/lit_model.pth" in doc["checkpoint"]
