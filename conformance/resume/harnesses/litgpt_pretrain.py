"""The ``litgpt`` harness: LitGPT's own pretraining script, ``litgpt.pretrain.setup`` (what ``litgpt pretrain``
runs), on a 1-layer GPT (n_embd 32, vocab 64, block_size 16) and a synthetic token DataModule built from the seed.

What LitGPT does, and what the harness wires:

* ``setup(..., seed=run.seed)`` -> ``main``: ``fabric.seed_everything(seed)``, builds the model (GPT-NeoX init),
  ``torch.compile``, AdamW (``instantiate_torch_optimizer``) and the DataModule's loaders, then ``fit``: cosine LR
  with linear warmup (``get_lr``, from ``train.max_tokens``), gradient clipping, and every ``train.save_interval``
  optimizer steps ``save_checkpoint``: ``fabric.save(out_dir/step-XXXXXXXX/lit_model.pth, state)`` with
  ``state = {model, optimizer, train_dataloader, iter_num, step_count}``.
* The interrupted run is configured exactly like the straight one (``max_tokens`` for ``run.steps`` steps,
  ``save_interval = run.stop_at``); it stops (an exception, like a preemption) right after ``save_checkpoint`` has
  written ``step-<stop_at>/lit_model.pth`` under ``run.checkpoint_dir``.
* The resumed run calls ``setup(..., resume=<that lit_model.pth>)``, the documented ``--resume`` argument: ``main``
  does ``fabric.load(resume, state)`` and ``fit`` continues from ``state["iter_num"]``.
* The data: a ``litgpt.data.DataModule`` subclass with LitGPT's own DataLoader conventions (``shuffle=True`` with
  ``generator=torch.Generator().manual_seed(seed)``, as ``litgpt/data/alpaca.py`` does), or, with
  ``--stateful-loader``, torchdata's ``StatefulDataLoader`` (LitGPT's pretraining DataModules use litdata's
  ``StreamingDataLoader``, which needs optimized files on disk; both expose ``state_dict``/``load_state_dict``, which
  is what ``fabric.save``/``fabric.load`` of ``state["train_dataloader"]`` relies on).

Recording (the only patches; each calls LitGPT's real function): ``litgpt.pretrain.fit`` is wrapped to hook the
model it receives in ``state`` (``run.begin_step`` with ``state["iter_num"] - 1`` and the LR ``fit`` has just set,
then ``run.track``), ``litgpt.pretrain.chunked_cross_entropy`` to hand the training loss to ``run.end_step``, and
``litgpt.pretrain.save_checkpoint`` to stop the interrupted run after it saved. ``sys.argv`` is set to a plain
``litgpt pretrain`` command line while ``setup`` runs, because ``save_checkpoint`` re-parses ``sys.argv`` with
jsonargparse (``save_hyperparameters``) to write ``hyperparameters.yaml``.

LitGPT's ``Config`` has no dropout (attention calls SDPA with ``dropout_p=0.0``), so no dropout masks are recorded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..protocol import Unsupported

SAMPLES, VAL_SAMPLES, BATCH, BLOCK, VOCAB = 64, 16, 8, 16, 64
#: Set to 1 to keep LitGPT's torch.compile (the harness disables dynamo by default: see train).
COMPILE_ENV = "CONFORMANCE_LITGPT_COMPILE"
MASK_P = 0.15  # --dataset-randomness: each token is replaced by a random one with this probability


class Tokens:
    """A map-style dataset: ``block_size + 1`` token ids per sample; with ``randomness``, random-token masking drawn
    in ``__getitem__`` from the global torch RNG (the worker's in a DataLoader worker), as augmentation does."""

    def __init__(self, data, randomness: bool):
        self.data, self.randomness = data, randomness

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        import torch

        x = self.data[i].clone()
        if self.randomness:
            mask = torch.rand(x.shape) < MASK_P
            x[mask] = torch.randint(0, VOCAB, (int(mask.sum()),))
        return x


def _datamodule(seed: int, workers: int, stateful: bool, randomness: bool):
    """A ``litgpt.data.DataModule`` of synthetic tokens (no files, no tokenizer)."""
    from dataclasses import dataclass, field

    import torch
    from litgpt.data import DataModule
    from torch.utils.data import DataLoader

    @dataclass
    class SyntheticTokens(DataModule):
        seed: int = 42
        num_workers: int = 0
        stateful: bool = False
        randomness: bool = False
        batch_size: int = field(default=1, init=False, repr=False)
        seq_length: int = field(default=-1, init=False, repr=False)

        def __post_init__(self) -> None:
            super().__init__()

        def connect(self, tokenizer=None, batch_size: int = 1, max_seq_length: int | None = None) -> None:
            self.batch_size = batch_size
            self.seq_length = max_seq_length + 1  # the next token as well, as litgpt/data/tinyllama.py does

        def setup(self, stage: str = "") -> None:
            g = torch.Generator().manual_seed(self.seed)
            self.train_data = torch.randint(0, VOCAB, (SAMPLES, self.seq_length), generator=g)
            self.val_data = torch.randint(0, VOCAB, (VAL_SAMPLES, self.seq_length), generator=g)

        def train_dataloader(self):
            cls = DataLoader
            if self.stateful:
                from torchdata.stateful_dataloader import StatefulDataLoader as cls
            self.generator = torch.Generator().manual_seed(self.seed)
            return cls(Tokens(self.train_data, self.randomness), batch_size=self.batch_size, shuffle=True,
                       generator=self.generator, num_workers=self.num_workers, drop_last=True)

        def val_dataloader(self):
            return DataLoader(Tokens(self.val_data, False), batch_size=self.batch_size, shuffle=False,
                              num_workers=0)

    return SyntheticTokens(seed=seed, num_workers=workers, stateful=stateful, randomness=randomness)


class _Stop(Exception):
    """Raised right after the interrupted run's checkpoint is written (a preemption)."""


class LitGPTPretrainHarness:
    """LitGPT pretrain: ``litgpt.pretrain.setup`` with ``train.save_interval`` and ``resume=<lit_model.pth>``."""

    def versions(self) -> dict[str, str]:
        from . import version_of

        out = {name: version_of(name) for name in ("litgpt", "lightning", "torch")}
        if version_of("torchdata"):
            out["torchdata"] = version_of("torchdata")
        return {k: v.split("+")[0] for k, v in out.items() if v}

    def describe(self) -> str:
        return ("litgpt.pretrain.setup (1-layer GPT, AdamW, cosine LR with warmup) with train.save_interval and "
                "resume=<step-N/lit_model.pth>")

    def train(self, run) -> None:
        from . import version_of

        opts = run.options
        if opts.stateful_loader and version_of("torchdata") is None:
            raise Unsupported("--stateful-loader needs torchdata (pip install torchdata)")

        import litgpt.pretrain as pretrain
        import torch
        from litgpt.args import EvalArgs, TrainArgs
        from litgpt.config import Config

        config = Config(name="tiny-resume", block_size=BLOCK, vocab_size=VOCAB, padded_vocab_size=VOCAB,
                        n_layer=1, n_head=2, n_embd=32, rotary_percentage=1.0, parallel_residual=False,
                        bias=False, norm_class_name="RMSNorm", mlp_class_name="LLaMAMLP", intermediate_size=64)
        train_args = TrainArgs(save_interval=run.stop_at, log_interval=1, global_batch_size=BATCH,
                               micro_batch_size=BATCH, max_tokens=run.steps * BATCH * BLOCK, max_norm=1.0,
                               min_lr=1e-4, lr_warmup_steps=2, tie_embeddings=False)
        eval_args = EvalArgs(interval=1000, max_iters=2)
        optimizer = {"class_path": "torch.optim.AdamW",
                     "init_args": {"lr": 1e-3, "weight_decay": 0.1, "betas": (0.9, 0.95)}}

        base = run.checkpoint_dir.parent
        if run.mode == "interrupt":
            out_dir = run.checkpoint_dir
        else:
            out_dir = run.work_dir
        resume: bool | Path = False
        if run.mode == "resume":
            resume = run.checkpoint_dir / f"step-{run.stop_at:08d}" / "lit_model.pth"
            run.note(f"resumed with setup(resume={resume.relative_to(base)})")

        if os.environ.get(COMPILE_ENV, "") not in ("1", "true", "yes"):
            # main() wraps the model in torch.compile; on a CPU an inductor build of the forward and backward costs
            # about two minutes per process (cold cache). Eager mode does not touch what is saved or restored.
            torch._dynamo.config.disable = True
            run.note(f"torch.compile disabled (torch._dynamo.config.disable; {COMPILE_ENV}=1 keeps it)")

        captured: dict = {}
        real_fit, real_ce, real_save = pretrain.fit, pretrain.chunked_cross_entropy, pretrain.save_checkpoint
        pending = [False]

        def fit(*args, **kwargs):
            state = kwargs["state"]
            model, optim = state["model"], state["optimizer"]
            captured["state"] = state
            loader = kwargs["train_dataloader"]
            gen = getattr(getattr(loader, "_dataloader", loader), "generator", None)
            if gen is not None:
                run.track_generator("sampler", gen)

            def begin(module, args, kwargs):
                if module.training:
                    run.begin_step(state["iter_num"] - 1, lr=optim.param_groups[0]["lr"])
                    pending[0] = True

            model.register_forward_pre_hook(begin, with_kwargs=True)
            run.track(model)
            return real_fit(*args, **kwargs)

        def chunked_cross_entropy(*args, **kwargs):
            loss = real_ce(*args, **kwargs)
            if pending[0]:
                pending[0] = False
                run.end_step(loss=loss)
            return loss

        def save_checkpoint(fabric, state, tokenizer_dir, checkpoint_file):
            real_save(fabric, state, tokenizer_dir, checkpoint_file)
            if checkpoint_file.parent.name.startswith("step-") and run.stop_now(state["step_count"]):
                raise _Stop

        pretrain.fit, pretrain.chunked_cross_entropy, pretrain.save_checkpoint = fit, chunked_cross_entropy, \
            save_checkpoint
        argv = sys.argv
        sys.argv = ["litgpt", "pretrain", config.name]
        try:
            pretrain.setup(config.name, model_config=config, out_dir=out_dir, precision="32-true", resume=resume,
                           data=_datamodule(run.seed, opts.workers, opts.stateful_loader, opts.dataset_randomness),
                           train=train_args, eval=eval_args, optimizer=optimizer, devices=1,
                           logger_name="csv", seed=run.seed)
        except _Stop:
            run.note(f"interrupted after save_checkpoint wrote step-{run.stop_at:08d}/lit_model.pth")
            return
        finally:
            sys.argv = argv
            pretrain.fit, pretrain.chunked_cross_entropy, pretrain.save_checkpoint = real_fit, real_ce, real_save
        state = captured["state"]
        run.finish(state["model"], state["optimizer"])
