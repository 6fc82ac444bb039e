"""``conformance resume accelerate``: the accelerate harness (save_state / load_state / skip_first_batches as the
checkpointing guide shows) against accelerate's real code.

Findings pinned here (accelerate 1.15.0, torch 2.13, single CPU process):

* the guide's loop diverges at the resumed step (12, mid-epoch 1): the shuffled DataLoader's sampler has no
  generator in a single process, so each epoch's permutation is seeded from the global torch RNG when the loader is
  iterated; ``load_state`` restores that RNG to its mid-epoch value, and ``skip_first_batches`` then draws a new
  permutation from it (two int64 draws: DataLoader ``_base_seed`` and RandomSampler's seed), so the batch, the RNG
  stream, the dropout masks and everything after differ;
* with a seeded ``DataLoader(generator=...)`` and a checkpoint inside epoch 0 the resume is bit-exact (the model,
  optimizer, scheduler and RNG round trip is exact), unless the dataset draws random numbers in the main process:
  ``DataLoaderShard`` fetches one batch ahead, so the saved RNG state already contains the next batch's draws and
  the resumed run draws that batch's augmentation again from the restored state (same labels, other inputs).
"""

from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("accelerate")
pytest.importorskip("torch")

from conformance.resume.harnesses.accelerate_loop import AccelerateHarness  # noqa: E402


class SeededLoader(AccelerateHarness):
    """The guide's loop with ``DataLoader(generator=torch.Generator().manual_seed(seed))`` (a control)."""

    loader_generator = True


def _audit(capsys, *args: str) -> tuple[int, dict]:
    from conformance.resume import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    ns = parser.parse_args(["resume", *args, "--workers", "0", "--json", "--timeout", "300"])
    code = ns.func(ns)
    return code, json.loads(capsys.readouterr().out)


def test_guide_loop_diverges_at_the_resumed_step(capsys):
    code, doc = _audit(capsys, "accelerate")
    assert code == 1, doc
    assert doc["deterministic"] is True
    assert doc["first_divergent_step"] == 12
    assert doc["diverged"] == ["batch", "rng", "dropout", "loss", "params", "optimizer"]
    assert any("no step of A" in line for line in doc["origin"]), doc["origin"]
    assert any("step_12/random_states_0.pkl" == f for f in doc["checkpoint"]), doc["checkpoint"]


@pytest.mark.slow  # nox -s resume runs it; CI's smoke keeps the guide's loop
def test_seeded_loader_resumes_bit_exactly_inside_the_first_epoch(capsys):
    code, doc = _audit(capsys, f"{__name__}:SeededLoader", "--stop-at", "4")
    assert code == 0, doc
    assert doc["bit_exact"] is True


@pytest.mark.slow
def test_batch_lookahead_redraws_main_process_augmentation(capsys):
    code, doc = _audit(capsys, f"{__name__}:SeededLoader", "--stop-at", "4", "--dataset-randomness")
    assert code == 1, doc
    assert doc["first_divergent_step"] == 4
    assert doc["diverged"][:2] == ["batch", "rng"]
    # the same samples (labels "1" equal), other noise on the inputs ("0")
    assert any(line.endswith("batch differs in 0") for line in doc["details"]), doc["details"]
