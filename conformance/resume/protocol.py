"""The contract between the resume audit and a harness (framework-free).

A harness is a class named ``package.module:Class`` whose instances have one method, ``train(run)``. The audit
constructs it with no arguments in a fresh interpreter and calls ``train`` once with a
:class:`~conformance.resume.record.Run`, which says what to do and records what happens:

* ``run.mode``: ``"straight"`` (train ``run.steps`` steps), ``"interrupt"`` (train ``run.stop_at`` steps, save a
  checkpoint the stack's documented way under ``run.checkpoint_dir``, return) or ``"resume"`` (resume from what
  the interrupted run saved in ``run.checkpoint_dir``, the stack's documented way, and train to ``run.steps``).
  The harness must produce the same schedule in every mode: the interrupted run is configured for ``run.steps``
  steps (so its LR schedule is the straight run's) and stops early; ``run.stop_now(completed)`` says when.
* ``run.work_dir``: a scratch folder of this run alone (not created), for a stack that wants an output folder of
  its own besides the checkpoint.
* ``run.options``: :class:`Options` (seed, steps, stop_at, DataLoader workers, stateful loader, dataset
  randomness). A harness that cannot honour an option raises :class:`Unsupported` with the reason.
* Everything it builds comes from ``run.seed``: model, data, shuffling, dropout. Nothing is downloaded.
* Recording (see :class:`~conformance.resume.record.Run`): ``run.track(model)`` once (hooks: the batch and every
  RNG state before each training forward, the dropout masks, the loss when the model returns it);
  ``run.track_generator(name, generator)`` for each generator it owns (the sampler's, a dataset's);
  ``run.begin_step(step, lr=...)`` before each optimizer step's forward, with the 0-based global step and the LR
  the step applies; ``run.record_batch(batch)`` when the loss is computed outside the model (the tracked forward
  sees only the model's arguments: labels would go unrecorded); ``run.end_step(loss=...)`` after it (the loss,
  when the model does not return it);
  ``run.finish(model, optimizer)`` once training ends (straight and resumed runs).

The stack's own code does the saving and restoring; the harness only wires the stack's documented calls and the
recording hooks. A harness may also define ``versions() -> dict[str, str]`` (the libraries it exercises, shown by
``conformance resume --list`` and written in the result) and ``describe() -> str`` (one line).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: What a verdict can name as diverged, in the order they are checked at a step.
STEP_FIELDS = ("steps", "batch", "rng", "dropout", "loss", "lr")
FINAL_FIELDS = ("params", "optimizer")


class Unsupported(RuntimeError):
    """The stack cannot honour an option (for example ``--stateful-loader`` where it has no stateful loader)."""


class HarnessError(ValueError):
    """A harness name that does not resolve, or a harness that breaks the protocol (the message says what)."""


@dataclass(frozen=True)
class Options:
    """One audit's settings: the same for the straight, interrupted and resumed runs."""

    seed: int = 1234
    steps: int = 24
    stop_at: int = 12
    workers: int = 0
    stateful_loader: bool = False
    dataset_randomness: bool = False

    def validate(self) -> Options:
        if self.steps < 2:
            raise ValueError(f"--steps must be at least 2 (got {self.steps})")
        if not 0 < self.stop_at < self.steps:
            raise ValueError(f"--stop-at must lie strictly between 0 and --steps {self.steps} (got {self.stop_at})")
        if self.workers < 0:
            raise ValueError(f"--workers must be 0 or more (got {self.workers})")
        return self

    def label(self) -> str:
        """``workers=2, stateful-loader, dataset-randomness, stop-at=12/24`` (what the table shows)."""
        parts = [f"workers={self.workers}"]
        if self.stateful_loader:
            parts.append("stateful-loader")
        if self.dataset_randomness:
            parts.append("dataset-randomness")
        parts.append(f"stop-at={self.stop_at}/{self.steps}")
        return ", ".join(parts)

    def as_dict(self) -> dict:
        return asdict(self)
