"""The ``lightning`` harness: a LightningModule trained by ``lightning.Trainer`` (2.x), checkpointed by
``ModelCheckpoint(every_n_train_steps=...)`` and resumed by ``trainer.fit(model, loader, ckpt_path=...)``.

What it builds (the same in the straight, interrupted and resumed runs): ``L.seed_everything(run.seed,
workers=True)``, a tiny MLP with ``nn.Dropout`` inside a LightningModule whose ``configure_optimizers`` returns
AdamW and a cosine schedule stepped every optimizer step (``"interval": "step"``), a shuffling DataLoader
(``torch.utils.data.DataLoader``, or torchdata's ``StatefulDataLoader`` with ``--stateful-loader``, which Lightning
2.x saves and restores through its ``state_dict``/``load_state_dict``) over 64 synthetic samples, and
``L.Trainer(max_steps=run.steps, accelerator="cpu", devices=1, deterministic=True, ...)`` with a
``ModelCheckpoint(dirpath=..., every_n_train_steps=run.stop_at, save_top_k=-1)``.

The interruption: Lightning calls the callbacks' ``on_train_batch_end`` (ModelCheckpoint last among them) before
the LightningModule's, so the module's ``on_train_batch_end`` at step ``run.stop_at`` finds the checkpoint written,
checks it is on disk and raises :class:`_Interrupted`: the process dies there as a preempted job would (Lightning
runs its ``on_exception`` hooks and tears down; ModelCheckpoint's ``save_on_exception`` is off, so nothing else is
saved). The resumed run builds everything again and calls ``trainer.fit(model, loader, ckpt_path=<that .ckpt>)``.
Each run checkpoints into its own ``run.checkpoint_dir``; the resumed run keeps the interrupted run's folder as its
``dirpath`` (the one its checkpoint names), as a user resuming in place does.
"""

from __future__ import annotations

from pathlib import Path

from ..protocol import Unsupported

SAMPLES, FEATURES, HIDDEN, CLASSES, BATCH = 64, 16, 32, 4, 8
LR, DROPOUT, NOISE = 1e-2, 0.2, 0.1


class _Interrupted(RuntimeError):
    """Raised right after the checkpoint at ``run.stop_at`` is on disk: the interrupted run ends here."""


def _dataset_class():
    import torch

    class SyntheticDataset(torch.utils.data.Dataset):
        """64 (x, y) pairs drawn from their own generator seeded with ``seed``; with ``randomness`` each
        ``__getitem__`` adds ``torch.randn`` noise to x (as an augmentation does), drawn from the process's
        global RNG (the main process's with 0 workers, the worker's otherwise)."""

        def __init__(self, seed: int, randomness: bool):
            g = torch.Generator().manual_seed(seed)
            self.x = torch.randn(SAMPLES, FEATURES, generator=g)
            self.y = torch.randint(0, CLASSES, (SAMPLES,), generator=g)
            self.randomness = randomness

        def __len__(self) -> int:
            return SAMPLES

        def __getitem__(self, i: int):
            x = self.x[i]
            if self.randomness:
                x = x + NOISE * torch.randn(FEATURES)
            return x, self.y[i]

    return SyntheticDataset


def _module_class():
    import lightning as L
    import torch
    from torch import nn

    class MLP(L.LightningModule):
        """Linear-ReLU-Dropout-Linear; the recording hooks ride on Lightning's batch hooks."""

        def __init__(self, run):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Dropout(DROPOUT),
                                     nn.Linear(HIDDEN, CLASSES))
            self.run = run

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.parameters(), lr=LR)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.run.steps)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

        def on_train_batch_start(self, batch, batch_idx):
            self.run.begin_step(self.trainer.global_step, lr=self.trainer.optimizers[0].param_groups[0]["lr"])
            self.run.record_batch(batch)

        def on_train_batch_end(self, outputs, batch, batch_idx):
            # Lightning has run every callback's on_train_batch_end (ModelCheckpoint's save included) by now.
            run, step = self.run, self.trainer.global_step
            run.end_step(loss=outputs["loss"])
            if run.stop_now(step):
                saved = sorted(Path(run.checkpoint_dir).glob(f"*step={step}.ckpt"))
                if not saved:
                    raise RuntimeError(f"ModelCheckpoint wrote no checkpoint for step {step} in {run.checkpoint_dir}")
                run.note(f"interrupted after step {step}: ModelCheckpoint(every_n_train_steps={run.stop_at}) "
                         f"wrote {saved[-1].name}; the run then raised out of trainer.fit")
                raise _Interrupted(str(saved[-1]))

    return MLP


class LightningHarness:
    """``lightning.Trainer.fit`` with ModelCheckpoint(every_n_train_steps) and ``fit(ckpt_path=...)``."""

    def versions(self) -> dict[str, str]:
        from . import version_of

        out = {}
        for lib in ("lightning", "torch", "torchdata"):
            v = version_of(lib)
            if v:
                out[lib] = v.split("+")[0]
        return out

    def describe(self) -> str:
        return ("lightning Trainer: MLP with dropout, AdamW, cosine LR per step; ModelCheckpoint(every_n_train_steps)"
                " and trainer.fit(ckpt_path=...)")

    def _loader(self, run, dataset):
        import torch

        kwargs = {"batch_size": BATCH, "shuffle": True, "num_workers": run.options.workers}
        if not run.options.stateful_loader:
            return torch.utils.data.DataLoader(dataset, **kwargs)
        try:
            from torchdata.stateful_dataloader import StatefulDataLoader
        except ImportError as exc:
            raise Unsupported(f"--stateful-loader needs torchdata's StatefulDataLoader ({exc})") from exc
        loader = StatefulDataLoader(dataset, **kwargs)
        run.track_generator("sampler", loader.sampler.generator)  # torchdata's RandomSampler owns one
        return loader

    def train(self, run) -> None:
        import lightning as L
        from lightning.pytorch.callbacks import ModelCheckpoint

        L.seed_everything(run.seed, workers=True)
        model = _module_class()(run)
        run.track(model)
        loader = self._loader(run, _dataset_class()(run.seed, run.options.dataset_randomness))

        checkpoint = ModelCheckpoint(dirpath=str(run.checkpoint_dir), every_n_train_steps=run.stop_at, save_top_k=-1)
        trainer = L.Trainer(max_steps=run.steps, accelerator="cpu", devices=1, logger=False,
                            enable_progress_bar=False, enable_model_summary=False, deterministic=True,
                            callbacks=[checkpoint])
        ckpt_path = None
        if run.mode == "resume":
            found = sorted(Path(run.checkpoint_dir).glob(f"*step={run.stop_at}.ckpt"))
            if not found:
                raise RuntimeError(f"no *step={run.stop_at}.ckpt in {run.checkpoint_dir}")
            ckpt_path = str(found[-1])
            run.note(f"resumed with trainer.fit(model, loader, ckpt_path={found[-1].name!r})")
        try:
            trainer.fit(model, loader, ckpt_path=ckpt_path)
        except _Interrupted:
            return
        if run.mode == "interrupt":
            raise RuntimeError("the interrupted run trained to the end without stopping at run.stop_at")
        run.finish(model, trainer.optimizers[0])
