"""The ``accelerate`` harness: a plain training loop driven by ``accelerate.Accelerator``, checkpointed and resumed
exactly as accelerate's checkpointing guide and its ``examples/by_feature/checkpointing.py`` show.

What the guide prescribes (accelerate 1.15.0):

* ``set_seed(seed)`` (``accelerate.utils``), build the loaders and the model, ``model.to(accelerator.device)``,
  AdamW, a linear-decay scheduler, and ``accelerator.prepare(model, optimizer, train_dataloader, lr_scheduler)``
  (a prepared scheduler is saved by ``save_state`` without ``register_for_checkpointing``);
* every ``checkpointing_steps`` optimizer steps ``accelerator.save_state(f"{output_dir}/step_{overall_step}")``;
* to resume: ``accelerator.load_state(path)``, then ``resume_step`` is parsed from the folder name ``step_N``,
  ``starting_epoch = resume_step // len(train_dataloader)``, ``resume_step -= starting_epoch * len(...)``, and the
  first resumed epoch iterates ``accelerator.skip_first_batches(train_dataloader, resume_step)`` (the plain
  ``train_dataloader`` afterwards). With ``DataLoaderConfiguration(use_stateful_dataloader=True)`` the example
  skips nothing: ``load_state`` restores the loader's position itself.

The only departure from the example is bookkeeping: the example adds just ``resume_step`` (the batches into the
resumed epoch) to ``overall_step``, which miscounts the global step by ``starting_epoch * len(train_dataloader)``
(it only names later checkpoints). The harness counts the global step from ``starting_epoch`` as well so that it
can record the right step number; what the loop trains on is unchanged.
"""

from __future__ import annotations

import math
import os

from ..protocol import Unsupported

#: 64 samples, batch 8: 8 optimizer steps per epoch.
SAMPLES, BATCH, FEATURES, CLASSES, HIDDEN = 64, 8, 16, 4, 64
LR, WARMUP = 1e-2, 2


class Synthetic:
    """A map-style dataset (``__len__``/``__getitem__``) built from ``seed``; with ``randomness`` each
    ``__getitem__`` adds ``torch.randn`` noise (from the global torch RNG in the main process, from the worker's
    RNG in a DataLoader worker), as augmentation does. Module-level so that DataLoader workers can pickle it."""

    def __init__(self, seed: int, randomness: bool):
        import torch

        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(SAMPLES, FEATURES, generator=g)
        self.y = torch.randint(0, CLASSES, (SAMPLES,), generator=g)
        self.randomness = randomness

    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, i):
        import torch

        x = self.x[i]
        if self.randomness:
            x = x + 0.1 * torch.randn(FEATURES)
        return x, self.y[i]


def _linear_schedule(total: int):
    """``get_linear_schedule_with_warmup``'s multiplier (what the guide's example uses), without transformers."""

    def factor(step: int) -> float:
        if step < WARMUP:
            return float(step + 1) / float(WARMUP + 1)
        return max(0.0, float(total - step) / float(max(1, total - WARMUP)))

    return factor


class AccelerateHarness:
    """accelerate: ``save_state`` / ``load_state`` / ``skip_first_batches`` as its checkpointing guide shows.

    The defaults are the guide's. Subclasses may set :attr:`dataloader_config` (more ``DataLoaderConfiguration``
    fields, e.g. ``{"use_seedable_sampler": True}``) or :attr:`loader_generator` (hand the ``DataLoader`` a
    ``torch.Generator`` seeded from ``run.seed``) to audit those variants.
    """

    #: Extra ``DataLoaderConfiguration`` fields (none in the guide).
    dataloader_config: dict = {}
    #: Whether the DataLoader gets its own seeded ``torch.Generator`` (the guide passes none).
    loader_generator: bool = False

    def versions(self) -> dict[str, str]:
        from . import version_of

        out = {"accelerate": version_of("accelerate") or "?", "torch": (version_of("torch") or "?").split("+")[0]}
        if version_of("torchdata"):
            out["torchdata"] = version_of("torchdata").split("+")[0]
        return out

    def describe(self) -> str:
        return "MLP + dropout, AdamW, linear LR; Accelerator.save_state/load_state + skip_first_batches (guide)"

    def train(self, run) -> None:
        opts = run.options
        if opts.stateful_loader:
            from accelerate.utils import is_torchdata_stateful_dataloader_available

            if not is_torchdata_stateful_dataloader_available():
                raise Unsupported("--stateful-loader needs torchdata>=0.8 (accelerate's use_stateful_dataloader)")

        import torch
        import torch.nn.functional as F
        from accelerate import Accelerator, DataLoaderConfiguration
        from accelerate.data_loader import get_sampler
        from accelerate.utils import set_seed

        dataloader_config = DataLoaderConfiguration(use_stateful_dataloader=opts.stateful_loader,
                                                    **self.dataloader_config)
        accelerator = Accelerator(cpu=True, dataloader_config=dataloader_config)
        set_seed(run.seed)

        train_dataloader = torch.utils.data.DataLoader(Synthetic(run.seed, opts.dataset_randomness), batch_size=BATCH,
                                                       shuffle=True, num_workers=opts.workers,
                                                       generator=(torch.Generator().manual_seed(run.seed)
                                                                  if self.loader_generator else None))
        model = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                                    torch.nn.Linear(HIDDEN, CLASSES))
        model = model.to(accelerator.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
        lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(run.steps))
        model, optimizer, train_dataloader, lr_scheduler = accelerator.prepare(
            model, optimizer, train_dataloader, lr_scheduler)

        run.track(model)
        sampler = get_sampler(train_dataloader)
        generator = getattr(sampler, "generator", None)
        if isinstance(generator, torch.Generator):
            run.track_generator("sampler", generator)
        else:
            run.note(f"the sampler ({type(sampler).__name__}) has no generator: it seeds each epoch's shuffle from "
                     "the global torch RNG (single process: prepare_data_loader sets no synchronized generator)")

        per_epoch = len(train_dataloader)
        num_epochs = math.ceil(run.steps / per_epoch)
        overall_step, starting_epoch, resume_step = 0, 0, None
        if run.mode == "resume":
            # The example's "most recent checkpoint" branch: the newest folder in the output directory.
            dirs = [f.path for f in os.scandir(run.checkpoint_dir) if f.is_dir()]
            dirs.sort(key=os.path.getctime)
            path = dirs[-1]
            accelerator.load_state(path)
            training_difference = os.path.splitext(os.path.basename(path))[0]
            resume_step = int(training_difference.replace("step_", ""))
            starting_epoch = resume_step // per_epoch
            resume_step -= starting_epoch * per_epoch
            overall_step = starting_epoch * per_epoch  # the example omits this term (see the module docs)
            run.note(f"resumed with accelerator.load_state({os.path.basename(path)}): starting_epoch "
                     f"{starting_epoch}, resume_step {resume_step}, "
                     + ("no skip (stateful loader)" if opts.stateful_loader else "skip_first_batches"))

        for epoch in range(starting_epoch, num_epochs):
            model.train()
            if run.mode == "resume" and epoch == starting_epoch and resume_step is not None:
                # Skip batches only when the loader is not stateful (the example's rule).
                if not opts.stateful_loader:
                    active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_step)
                else:
                    active_dataloader = train_dataloader
                overall_step += resume_step
            else:
                active_dataloader = train_dataloader
            for batch in active_dataloader:
                if overall_step >= run.steps:
                    break
                run.begin_step(overall_step, lr=optimizer.param_groups[0]["lr"])
                run.record_batch(batch)  # inputs and labels as the loader yields them (paths "0", "1")
                inputs, targets = batch
                outputs = model(inputs)
                loss = F.cross_entropy(outputs, targets)
                accelerator.backward(loss)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
                run.end_step(loss=loss)
                overall_step += 1
                if run.stop_now(overall_step):
                    output_dir = os.path.join(run.checkpoint_dir, f"step_{overall_step}")
                    accelerator.save_state(output_dir)
                    run.note(f"saved with accelerator.save_state(step_{overall_step}): "
                             + ", ".join(sorted(os.listdir(output_dir))))
                    return
        run.finish(accelerator.unwrap_model(model), optimizer.optimizer)
        accelerator.end_training()
