"""The built-in resume harnesses (real training stacks) and how a harness name resolves.

Importing this package imports no framework and no stack: :data:`BUILTIN` is plain data, and each harness module
imports its stack inside its functions. A name is a built-in (``torch``, ``hf-trainer``, ``lightning``,
``accelerate``, ``litgpt``, ``torchtitan``) or a user's ``package.module:Class`` (see
:mod:`conformance.resume.protocol`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass

from ..protocol import HarnessError


@dataclass(frozen=True)
class BuiltinHarness:
    """A training stack the suite knows how to drive: the harness class, the distributions it needs."""

    name: str
    target: str  # "conformance.resume.harnesses.hf_trainer:HFTrainerHarness"
    libraries: tuple[str, ...]  # distributions that must be installed; the first is the stack
    summary: str
    upstream: str = ""  # https://github.com/owner/repo of the stack
    stateful_loader: str = ""  # why the stack cannot use a stateful loader ("" when it can)

    @property
    def stack(self) -> str:
        return self.libraries[0]


BUILTIN: tuple[BuiltinHarness, ...] = (
    BuiltinHarness("torch", "conformance.resume.harnesses.torch_loop:TorchLoop", ("torch",),
                   "a plain loop: MLP with dropout, AdamW, cosine LR, shuffling DataLoader; torch.save of model, "
                   "optimizer, scheduler, every RNG and the loader position", "https://github.com/pytorch/pytorch"),
    BuiltinHarness("hf-trainer", "conformance.resume.harnesses.hf_trainer:HFTrainerHarness",
                   ("transformers", "accelerate"),
                   "transformers Trainer (1-layer GPT-2, dropout, AdamW, linear LR) with save_steps and "
                   "train(resume_from_checkpoint=...)", "https://github.com/huggingface/transformers",
                   stateful_loader="the Trainer has no stateful-loader switch: its AcceleratorConfig has no "
                                   "use_stateful_dataloader field (transformers #31441, PR #34205 open)"),
    BuiltinHarness("lightning", "conformance.resume.harnesses.lightning_fit:LightningHarness", ("lightning",),
                   "Lightning Trainer with ModelCheckpoint(every_n_train_steps) and fit(ckpt_path=...)",
                   "https://github.com/Lightning-AI/pytorch-lightning"),
    BuiltinHarness("accelerate", "conformance.resume.harnesses.accelerate_loop:AccelerateHarness", ("accelerate",),
                   "accelerate loop: save_state, load_state and skip_first_batches as its checkpointing guide shows",
                   "https://github.com/huggingface/accelerate"),
    BuiltinHarness("litgpt", "conformance.resume.harnesses.litgpt_pretrain:LitGPTPretrainHarness",
                   ("litgpt", "lightning"),
                   "LitGPT pretrain (litgpt.pretrain.setup: 1-layer GPT, AdamW, warmup + cosine LR) with "
                   "train.save_interval and setup(resume=<step-N/lit_model.pth>); torch.compile off on CPU",
                   "https://github.com/Lightning-AI/litgpt"),
    BuiltinHarness("torchtitan", "conformance.resume.harnesses.torchtitan_train:TorchtitanHarness",
                   ("torchtitan", "torchdata", "datasets"),
                   "torchtitan.train.main (1-layer llama3, AdamW, warmup + linear decay) with checkpoint.enable/"
                   "interval/folder, resumed from the latest step-N; on CPU: device lookup, memory monitor and "
                   "pg-timeout patched, SDPA instead of FlexAttention (its loader is always a StatefulDataLoader)",
                   "https://github.com/pytorch/torchtitan"),
)
_BY_NAME = {h.name: h for h in BUILTIN}


def builtin(name: str) -> BuiltinHarness | None:
    return _BY_NAME.get(name)


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing(entry: BuiltinHarness) -> str | None:
    """Why ``entry`` cannot run here (a distribution not installed), or None."""
    absent = [lib for lib in entry.libraries if version_of(lib) is None]
    if absent:
        return (f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed "
                f"(pip install {' '.join(absent)}; pinned versions: ci/resume/pinned.txt)")
    return None


def resolve(name: str) -> str:
    """A built-in name or ``package.module:Class`` -> ``package.module:Class`` (not imported yet)."""
    entry = builtin(name)
    if entry is not None:
        return entry.target
    module, sep, attr = name.partition(":")
    if not sep or not module or not attr.isidentifier():
        known = ", ".join(_BY_NAME)
        raise HarnessError(f"unknown resume harness {name!r}: use a built-in name ({known}; see "
                           "`conformance resume --list`) or package.module:Class of your own harness")
    return name


def load_harness(target: str):
    """Import ``package.module:Class``; a clear :class:`HarnessError` when it does not resolve or is no harness."""
    module, _, attr = resolve(target).partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise HarnessError(f"resume harness {target!r}: cannot import {module!r} ({exc}); is it installed or on "
                           "PYTHONPATH?") from exc
    cls = getattr(mod, attr, None)
    if cls is None:
        raise HarnessError(f"resume harness {target!r}: module {module!r} has no attribute {attr!r}")
    if not callable(getattr(cls, "train", None)):
        raise HarnessError(f"resume harness {target!r} has no train(run) method (see conformance.resume.protocol)")
    return cls


def versions_of(harness) -> dict[str, str]:
    fn = getattr(harness, "versions", None)
    return dict(fn()) if callable(fn) else {}
