"""The ``hf-trainer`` harness: transformers' ``Trainer`` resumed the documented way.

A 1-layer GPT-2 built from its config (dropout 0.1 everywhere, eager attention) learns 64 synthetic token
sequences drawn from ``run.seed``; ``TrainingArguments(seed=run.seed, max_steps=run.steps, save_strategy="steps",
save_steps=run.stop_at, optim="adamw_torch", lr_scheduler_type="linear", use_cpu=True, ...)``. The interrupted run
stops (a :class:`~transformers.TrainerCallback` sets ``control.should_training_stop`` in ``on_save``, i.e. right
after ``Trainer._save_checkpoint`` wrote ``checkpoint-<stop_at>``) and the resumed run calls
``trainer.train(resume_from_checkpoint=<output_dir>/checkpoint-<stop_at>)``; everything else (model, optimizer,
scheduler, RNG states, data skipping) is the Trainer's own code.

``--dataset-randomness``: ``__getitem__`` masks each token with probability 0.15 using the global torch RNG (as a
masking augmentation does). ``--stateful-loader``: transformers 5.x has no stateful-dataloader switch (its
``AcceleratorConfig`` has no ``use_stateful_dataloader`` field), so the harness raises
:class:`~conformance.resume.protocol.Unsupported` unless the installed version grows one.

The straight run saves at the same steps as the interrupted one (same code path), into its own
``run.checkpoint_dir`` (the audit gives each run its own).

What the audit finds (transformers 5.24.0, accelerate 1.15.0): bit-exact with plain data (workers 0 and 2), and
with dataset randomness at an epoch boundary (``--stop-at 16``). With dataset randomness mid-epoch it diverges at
the resumed step: ``Trainer._run_epoch`` builds the resumed epoch's iterator (``skip_first_batches``) and fetches
the first batches *before* ``_load_rng_state`` (the ``rng_to_sync`` path), so in the main process (workers 0)
those batches draw from the freshly seeded RNG and the restored stream then lags the straight run by one batch of
draws (accelerate's ``DataLoaderShard`` iterates one batch ahead, so the checkpoint's RNG state was taken after
the next batch had already been drawn); with workers the resumed epoch's worker seeds come from a base seed drawn
before the restore (A's epoch-0 seeds), so the rest of that epoch repeats epoch 0's augmentation.
"""

from __future__ import annotations

from ..protocol import HarnessError, Unsupported

#: Model and data sizes (batch 8 over 64 samples: 8 optimizer steps per epoch).
VOCAB, SEQ, EMBD, SAMPLES, BATCH = 64, 16, 32, 64, 8
MASK_P = 0.15
LR = 1e-3


def _stateful_field() -> bool:
    """Whether this transformers' ``AcceleratorConfig`` accepts ``use_stateful_dataloader``."""
    from transformers.trainer_pt_utils import AcceleratorConfig

    return "use_stateful_dataloader" in getattr(AcceleratorConfig, "__dataclass_fields__", {})


def _find_sampler(loader, depth: int = 0):
    """The random sampler under an accelerate-prepared DataLoader (DataLoaderShard -> batch sampler -> sampler)."""
    import torch

    if loader is None or depth > 4:
        return None
    if isinstance(loader, torch.utils.data.RandomSampler):
        return loader
    for attr in ("sampler", "batch_sampler", "base_dataloader"):
        found = _find_sampler(getattr(loader, attr, None), depth + 1)
        if found is not None:
            return found
    return None


class HFTrainerHarness:
    """transformers ``Trainer``: ``save_steps`` checkpoints and ``train(resume_from_checkpoint=...)``."""

    def versions(self) -> dict[str, str]:
        from . import version_of

        out = {}
        for lib in ("transformers", "accelerate", "torch"):
            v = version_of(lib)
            if v:
                out[lib] = v.split("+")[0]
        return out

    def describe(self) -> str:
        return ("transformers Trainer: 1-layer GPT-2 (dropout 0.1), AdamW, linear LR, save_steps=stop_at, "
                "train(resume_from_checkpoint=checkpoint-<stop_at>)")

    def train(self, run) -> None:
        import torch
        import transformers
        from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments, set_seed

        opts = run.options
        extra = {}
        if opts.stateful_loader:
            if not _stateful_field():
                raise Unsupported(
                    f"transformers {transformers.__version__} Trainer has no stateful-dataloader path: "
                    "TrainingArguments.accelerator_config (AcceleratorConfig) has no 'use_stateful_dataloader' "
                    "field and Trainer builds accelerate's DataLoaderConfiguration from split_batches, "
                    "dispatch_batches, even_batches and use_seedable_sampler only; resume uses "
                    "accelerate.skip_first_batches instead")
            extra["accelerator_config"] = {"use_stateful_dataloader": True}

        # The documented order (examples/pytorch/*/run_*.py): set_seed(training_args.seed) before the model.
        set_seed(run.seed)
        config = GPT2Config(n_layer=1, n_embd=EMBD, n_head=2, vocab_size=VOCAB, n_positions=SEQ,
                            resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, bos_token_id=0, eos_token_id=0,
                            attn_implementation="eager")
        model = GPT2LMHeadModel(config)
        dataset = _TokenDataset(run.seed, opts.dataset_randomness)

        args = TrainingArguments(
            output_dir=str(run.checkpoint_dir), seed=run.seed, max_steps=run.steps, per_device_train_batch_size=BATCH,
            learning_rate=LR, lr_scheduler_type="linear", warmup_steps=0, optim="adamw_torch", weight_decay=0.01,
            save_strategy="steps", save_steps=run.stop_at, logging_strategy="no", report_to="none",
            disable_tqdm=True, use_cpu=True, dataloader_num_workers=opts.workers, **extra)

        class Record(TrainerCallback):
            def on_step_begin(self, args, state, control, optimizer=None, train_dataloader=None, **kwargs):
                if "sampler" not in run.generators:
                    sampler = _find_sampler(train_dataloader)
                    gen = getattr(sampler, "generator", None)
                    if isinstance(gen, torch.Generator):
                        run.track_generator("sampler", gen)
                run.begin_step(state.global_step, lr=optimizer.param_groups[0]["lr"])

            def on_save(self, args, state, control, **kwargs):
                # After Trainer._save_checkpoint wrote checkpoint-<global_step> (trainer.py
                # _maybe_log_save_evaluate): stop the interrupted run there.
                if run.stop_now(state.global_step):
                    control.should_training_stop = True
                return control

        run.track(model)
        trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=[Record()])
        if run.mode == "resume":
            ckpt = run.checkpoint_dir / f"checkpoint-{run.stop_at}"
            if not ckpt.is_dir():
                raise HarnessError(f"the interrupted run left no {ckpt}")
            run.note(f"resumed with trainer.train(resume_from_checkpoint='checkpoint-{run.stop_at}')")
            trainer.train(resume_from_checkpoint=str(ckpt))
        else:
            trainer.train()
        if run.mode == "interrupt":
            ckpt = run.checkpoint_dir / f"checkpoint-{run.stop_at}"
            if not ckpt.is_dir():
                raise HarnessError(f"Trainer saved no {ckpt} (save_steps={run.stop_at})")
            if trainer.state.global_step != run.stop_at:
                raise HarnessError(f"the interrupted run stopped at global step {trainer.state.global_step}")
            return
        run.finish(trainer.model, trainer.optimizer)


class _TokenDataset:
    """64 random token sequences (from ``seed``); ``randomness`` masks tokens with the global torch RNG."""

    def __init__(self, seed: int, randomness: bool):
        import torch

        g = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(1, VOCAB, (SAMPLES, SEQ), generator=g)
        self.randomness = randomness

    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, i: int) -> dict:
        import torch

        ids = self.tokens[i]
        inputs = ids
        if self.randomness:  # augmentation: random masking with the process's (worker's) global torch RNG
            inputs = torch.where(torch.rand(SEQ) < MASK_P, torch.zeros_like(ids), ids)
        return {"input_ids": inputs.clone(), "labels": ids.clone()}
