"""Faulty training loops and checkpoint loaders (BUGS.md, "Resume and checkpoints"), each a torch:cpu adapter.

Resume loops (subclasses of :class:`conformance.backends.torch.resume.ResumeHarness`, run in fresh processes);
the check ``checkpoints/test_resume_bit_exact`` must fail on each of the first three, and ``conformance resume``
must report each of the resume harnesses below (:class:`conformance.resume.harnesses.torch_loop.TorchLoop` with
the faulty loop swapped in) as diverged at the right first step (``tests/test_resume_audit.py``):

* ``faulty-resume-reseed`` (ms-swift PR #9935): restores every RNG state, then calls ``seed_everything`` again, so
  the resumed run redraws the dropout masks of step 0 onwards;
* ``faulty-resume-no-rng`` (ms-swift PR #9935, safetensors-only checkpoints): the checkpoint holds weights,
  optimizer, scheduler and loader position but no RNG state; the resumed process keeps its fresh seed;
* ``faulty-resume-epoch0`` (ms-swift #10050): the loader position is restored but the shuffling generator is not,
  so the resumed epoch replays epoch 0's order;
* ``LoadGarbageHarness`` (transformers #28122): the restore skips the head's keys (renamed by a legacy-name shim,
  ``strict=False``), which keep the uninitialized memory they were allocated with: the first resumed step diverges;
* ``SchedulerRestartHarness``: the scheduler is left out of the restore and built afresh, so the LR schedule
  restarts: the first resumed step still applies the LR the optimizer state carried, the next one diverges in LR;
* ``UntiedLoadHarness`` (accelerate #1197): the model has two tied layers; the restore copies each entry on its
  own and assigns it, so the tie is broken and the second layer's weight is no longer the parameter the optimizer
  updates: the first resumed step still matches, the second diverges.

Loaders (``load_checkpoint`` overrides); ``checkpoints/test_round_trip`` must fail on each:

* ``faulty-load-garbage`` (transformers #28122): keys renamed by a legacy-name shim (``norm``/``ln_`` entries) are
  skipped with ``strict=False``, and their tensors keep the uninitialized memory they were allocated with
  (filled here with a large value, as the ~1e37 seen upstream);
* ``faulty-load-untied`` (accelerate #1197): every entry is copied to its device on its own and assigned
  (``assign=True``), so tied parameters become two tensors;
* ``faulty-load-meta-buffers`` (torchtitan #3775): the fresh model is built on the meta device and materialized
  with ``to_empty``; the state dict fills what it holds, the non-persistent buffers keep garbage.
"""

from __future__ import annotations

import torch
from conformance.backends.torch import checkpoint_io as cio
from conformance.backends.torch import checkpoint_models as cm
from conformance.backends.torch.resume import ResumeHarness
from conformance.backends.torch_adapter import TorchBackend

from conformance.harness.checkpoints import verify_provenance
from conformance.resume.harnesses.torch_loop import TorchLoop

from .common import providers


# -- resume loops ----------------------------------------------------------------------------------------------------
class ResetSeedAfterRestore(ResumeHarness):
    """ms-swift PR #9935: ``seed_everything`` after the RNG states were restored."""

    def restore(self, directory):
        step = super().restore(directory)
        self.seed_everything()
        return step


class DropRngState(ResumeHarness):
    """ms-swift PR #9935: a safetensors-only checkpoint; no RNG state saved, none restored."""

    def capture_rng(self) -> dict:
        return {}


class ReplayEpochZero(ResumeHarness):
    """ms-swift #10050: the epoch and position are restored, the shuffling generator starts from its seed."""

    def restore_loader(self, state) -> None:
        self.epoch = state["epoch"]
        self._start_epoch()  # the generator is still at its initial seed: epoch 0's permutation
        for _ in range(state["position"]):
            next(self.iterator)
        self.position = state["position"]


class LoadGarbageLoop(ResumeHarness):
    """transformers #28122: entries the loader skipped keep the memory ``torch.empty`` handed out."""

    def restore(self, directory):
        step = super().restore(directory)
        for p in self.model[3].parameters():  # the head: its keys were renamed, strict=False skipped them
            _garbage(p)
        return step


class SchedulerRestartLoop(ResumeHarness):
    """A scheduler left out of the restore: the resumed run builds a fresh one, so the LR schedule restarts."""

    def restore(self, directory):
        step = super().restore(directory)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.cfg.steps,
                                                                    eta_min=1e-4)
        return step


class TiedLoop(ResumeHarness):
    """The loop with two tied square layers (weight sharing): the model the accelerate #1197 load breaks."""

    def build_model(self):
        cfg, nn = self.cfg, torch.nn
        model = nn.Sequential(nn.Linear(cfg.features, cfg.hidden), nn.Dropout(cfg.dropout), nn.GELU(),
                              nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.hidden),
                              nn.GELU(), nn.Linear(cfg.hidden, cfg.classes))
        model[5].weight = model[3].weight
        return model


class UntieOnLoadLoop(TiedLoop):
    """accelerate #1197: each entry copied to its device on its own and assigned: the tie becomes two tensors."""

    def restore(self, directory):
        step = super().restore(directory)
        self.model[5].weight = torch.nn.Parameter(self.model[5].weight.detach().clone())
        return step


class ReseedHarness(TorchLoop):
    loop = "tests.faulty.training:ResetSeedAfterRestore"


class NoRngHarness(TorchLoop):
    loop = "tests.faulty.training:DropRngState"


class EpochZeroHarness(TorchLoop):
    loop = "tests.faulty.training:ReplayEpochZero"


class SchedulerRestartHarness(TorchLoop):
    loop = "tests.faulty.training:SchedulerRestartLoop"


class LoadGarbageHarness(TorchLoop):
    loop = "tests.faulty.training:LoadGarbageLoop"


class TiedHarness(TorchLoop):
    """The correct loop on the tied model (the control of :class:`UntiedLoadHarness`); on resume it says so the
    ways stacks do (a logged warning on a stack's logger, a Python warning), which the audit must collect."""

    loop = "tests.faulty.training:TiedLoop"

    def train(self, run) -> None:
        if run.mode == "resume":
            import logging
            import warnings

            logging.getLogger("transformers").warning("resuming from a mid-epoch checkpoint")
            warnings.warn("this loader is not resumable", UserWarning, stacklevel=1)
        super().train(run)


class UntiedLoadHarness(TorchLoop):
    loop = "tests.faulty.training:UntieOnLoadLoop"


class _ResumeBackend(TorchBackend):
    def __init__(self, device: str) -> None:
        super().__init__(device)


class FaultyResumeReseed(_ResumeBackend):
    """ms-swift PR #9935: seed reset after RNG restore."""

    HARNESS = "tests.faulty.training:ResetSeedAfterRestore"


class FaultyResumeNoRng(_ResumeBackend):
    """ms-swift PR #9935: safetensors-only checkpoint, RNG state dropped."""

    HARNESS = "tests.faulty.training:DropRngState"


class FaultyResumeEpoch0(_ResumeBackend):
    """ms-swift #10050: resume replays epoch 0's data order."""

    HARNESS = "tests.faulty.training:ReplayEpochZero"


# -- loaders ---------------------------------------------------------------------------------------------------------
def _garbage(t) -> None:
    with torch.no_grad():
        if t.is_complex():
            t.fill_(complex(1e30, 1e30))
        elif t.is_floating_point():
            t.fill_(float(torch.finfo(t.dtype).max) / 2)


class _LoaderBackend(TorchBackend):
    def load_checkpoint(self, path, model, fmt, dtype, device=None, expect=None):
        self.require_dtype(dtype)
        device = device or self.device
        sd, prov = cio.read_checkpoint(path, fmt, device)
        built = self.faulty_load(sd, model, dtype, device)
        state = cio.model_state(built, model)
        state.provenance, state.file_keys, state.path = prov, cio.file_entries(path, fmt), str(path)
        verify_provenance(path, prov, expect)
        return state

    def faulty_load(self, sd, model, dtype, device):  # pragma: no cover - overridden
        raise NotImplementedError


class FaultyLoadGarbage(_LoaderBackend):
    """transformers #28122: skipped (renamed) keys keep uninitialized memory."""

    def faulty_load(self, sd, model, dtype, device):
        built = cm.build_model(model, dtype, device, 1)
        renamed = {k: v for k, v in sd.items() if "norm" not in k and "ln_" not in k}
        for name, t in built.state_dict().items():
            if name not in renamed:
                _garbage(t)  # what torch.empty handed out for a "mismatched" entry
        built.load_state_dict(renamed, strict=False)
        return built


class FaultyLoadUntied(_LoaderBackend):
    """accelerate #1197: entries copied one by one and assigned; ties broken."""

    def faulty_load(self, sd, model, dtype, device):
        built = cm.build_model(model, dtype, device, 1)
        built.load_state_dict({k: v.to(device).clone() for k, v in sd.items()}, assign=True)
        return built


class FaultyLoadMetaBuffers(_LoaderBackend):
    """torchtitan #3775: meta-device build + to_empty; non-persistent buffers left as garbage."""

    def faulty_load(self, sd, model, dtype, device):
        with torch.device("meta"):
            built = cm.MODELS[model][0]()
        built = built.to_empty(device=device)
        built._apply(lambda t: t.to(dtype=getattr(torch, dtype)) if t.is_floating_point() else t)
        for t in list(built.parameters()) + list(built.buffers()):
            _garbage(t)
        if hasattr(built, "tie_weights"):
            built.tie_weights()
        built.load_state_dict(sd, strict=True)
        return built


PROVIDERS = providers(
    faulty_resume_reseed=FaultyResumeReseed,
    faulty_resume_no_rng=FaultyResumeNoRng,
    faulty_resume_epoch0=FaultyResumeEpoch0,
    faulty_load_garbage=FaultyLoadGarbage,
    faulty_load_untied=FaultyLoadUntied,
    faulty_load_meta_buffers=FaultyLoadMetaBuffers,
)


class SkipsAStepHarness(TorchLoop):
    """Breaks the protocol: records no step 1 (``conformance resume`` must say so and exit 4)."""

    def train(self, run) -> None:
        real_begin = run.begin_step
        run.begin_step = lambda step, lr=None: real_begin(step + (step >= 1), lr)
        super().train(run)
