"""The ``torch`` harness: the suite's own deterministic loop
(:class:`conformance.backends.torch.resume.ResumeHarness`) driven through the resume protocol. Faulty copies of
that loop (``tests/faulty/training.py``) swap :attr:`TorchLoop.loop`.
"""

from __future__ import annotations

from ..protocol import Unsupported


class TorchLoop:
    """Plain torch: ``torch.save`` of model, optimizer, scheduler, every RNG state and the loader position."""

    #: The loop class (``module:Class`` of a ResumeHarness subclass, imported in the run's process).
    loop = "conformance.backends.torch.resume:ResumeHarness"

    def versions(self) -> dict[str, str]:
        import torch

        out = {"torch": torch.__version__.split("+")[0]}
        from . import version_of

        if version_of("torchdata"):
            out["torchdata"] = version_of("torchdata")
        return out

    def train(self, run) -> None:
        from conformance.backends.torch.resume import ResumeConfig, _harness_class

        opts = run.options
        if opts.stateful_loader and self.__class__.versions(self).get("torchdata") is None:
            raise Unsupported("--stateful-loader needs torchdata (pip install torchdata)")
        cfg = ResumeConfig(seed=run.seed, steps=run.steps, save_at=run.stop_at, workers=opts.workers,
                           dataset_randomness=opts.dataset_randomness, stateful_loader=opts.stateful_loader)
        loop = _harness_class(self.loop)(cfg)
        run.track(loop.model)
        run.track_generator("sampler", loop.generator)
        start = loop.restore(run.checkpoint_dir) if run.mode == "resume" else 0
        for step in range(start, run.steps):
            run.begin_step(step, lr=loop.optimizer.param_groups[0]["lr"])
            loop.step(step)
            run.end_step(loss=float(loop.trace["loss"][-1]))
            if run.stop_now(step + 1):
                loop.save(run.checkpoint_dir, step + 1)
                return
        run.finish(loop.model, loop.optimizer)
