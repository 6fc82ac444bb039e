"""The resume harness (torch): a deterministic training loop run straight, interrupted and resumed.

Contract
--------
* :class:`ResumeHarness`: a deterministic training loop (MLP with dropout, AdamW, cosine LR schedule, a shuffling
  DataLoader with a seeded generator and 2 workers whose numpy RNG is seeded per worker, items with noise drawn in
  ``__getitem__``, ``torch.use_deterministic_algorithms(True)``; :class:`ResumeConfig` turns the noise off, sets the
  workers or uses torchdata's ``StatefulDataLoader``) that saves and restores everything a resume needs (weights
  through :mod:`.checkpoint_io`, optimizer, scheduler, every RNG, the loader position). It is also the ``torch``
  harness of ``conformance resume`` (:mod:`conformance.resume.harnesses.torch_loop`). Faulty loops subclass it
  (``tests/faulty/training.py``) and are named by ``module:Class`` (:data:`DEFAULT_HARNESS`).
* :func:`run_resume` runs it in fresh interpreters (:func:`conformance.harness.processes.start`, entry
  :func:`child_main`): straight for N steps (on Linux a fork of it at step k is the interrupted run: it saves the
  checkpoint and exits; elsewhere a third interpreter runs k steps and saves), and resumed from the checkpoint for
  N - k steps. Each writes a trace (losses, LRs, batch indices, dropout masks, final parameters and optimizer
  state) as ``.npz`` (read with ``allow_pickle=False``, :func:`load_trace`). A process that fails or outlives the
  deadline is killed (its process group) and reported as :class:`~conformance.backends.base.SubprocessFailed`
  with its stderr tail.

This module talks to torch only; comparing traces is the checks' business.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import random
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from conformance.harness import processes
from conformance.harness.checkpoints import FORMAT_TAG, dumps_provenance
from conformance.harness.files import atomic_write

from ..base import SubprocessFailed
from .checkpoint_io import format_of, load_into, read_checkpoint, safe_torch_load, safetensors_available, save_model
from .tensors import to_numpy

#: Characters of a failed process's stderr kept in the error.
STDERR_TAIL = 1500


@dataclass
class ResumeConfig:
    """The training run: ``steps`` in all, interrupted after ``save_at``; 8 batches of 8 per epoch by default."""

    seed: int
    steps: int = 24
    save_at: int = 12
    samples: int = 64
    batch_size: int = 8
    features: int = 16
    hidden: int = 32
    classes: int = 4
    workers: int = 2
    dropout: float = 0.25
    lr: float = 3e-3
    device: str = "cpu"
    dataset_randomness: bool = True  # each item adds noise drawn in __getitem__ (as augmentation does)
    stateful_loader: bool = False  # torchdata's StatefulDataLoader; its state_dict is the loader position


class SyntheticDataset(torch.utils.data.Dataset):
    """Fixed features and labels from their own generator; each item adds noise from the worker's numpy RNG."""

    def __init__(self, n: int, features: int, classes: int, seed: int, noise: bool = True):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, features, generator=g)
        self.y = torch.randint(classes, (n,), generator=g)
        self.noise = noise

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        if not self.noise:
            return self.x[i], self.y[i], i
        noise = np.random.normal(0.0, 0.1, size=self.x.shape[1]).astype(np.float32)
        return self.x[i] + torch.from_numpy(noise), self.y[i], i


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: numpy and ``random`` seeded from the worker's torch seed (base + id)."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def enable_deterministic() -> None:
    """``torch.use_deterministic_algorithms(True)`` without its side import of ``torch._inductor`` (3+ s per process).

    The public function sets ``torch._inductor.config.deterministic`` (irrelevant here: nothing is compiled) and
    then calls ``torch._C._set_deterministic_algorithms``; when that private call is missing, the public one runs.
    """
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor" in sys.modules:
        torch.use_deterministic_algorithms(True)
    else:
        setter(True)
    if not torch.are_deterministic_algorithms_enabled():  # pragma: no cover - a torch that changed the API
        raise RuntimeError("deterministic algorithms could not be enabled")


class ResumeHarness:
    """A deterministic training loop that saves and restores everything a resume needs.

    Override points for faulty loops: :meth:`seed_everything`, :meth:`capture_rng`, :meth:`restore_rng`,
    :meth:`restore_loader`, :meth:`restore`.
    """

    def __init__(self, cfg: ResumeConfig):
        self.cfg = cfg
        enable_deterministic()
        torch.set_num_threads(1)
        self.seed_everything()
        self.model = self.build_model().to(cfg.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.01)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.steps, eta_min=1e-4)
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)
        dataset = SyntheticDataset(cfg.samples, cfg.features, cfg.classes, cfg.seed + 2, cfg.dataset_randomness)
        loader_class = torch.utils.data.DataLoader
        if cfg.stateful_loader:
            from torchdata.stateful_dataloader import StatefulDataLoader as loader_class
        self.loader = loader_class(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                                   generator=self.generator, num_workers=cfg.workers,
                                   worker_init_fn=seed_worker if cfg.workers else None)
        self.epoch, self.position, self.iterator, self.epoch_start = 0, 0, None, None
        self.masks: list[np.ndarray] = []
        self.model[1].register_forward_hook(lambda mod, inp, out: self.masks.append(to_numpy(out != 0)))
        self.trace: dict[str, list] = {"step": [], "loss": [], "lr": [], "batch": [], "mask": []}

    def build_model(self) -> torch.nn.Module:
        """Linear, dropout, GELU, linear (override point: a faulty loop with tied weights builds its own)."""
        cfg, nn = self.cfg, torch.nn
        return nn.Sequential(nn.Linear(cfg.features, cfg.hidden), nn.Dropout(cfg.dropout), nn.GELU(),
                             nn.Linear(cfg.hidden, cfg.classes))

    # -- randomness -------------------------------------------------------------------------------------------------
    def seed_everything(self) -> None:
        torch.manual_seed(self.cfg.seed)
        np.random.seed(self.cfg.seed % 2**32)
        random.seed(self.cfg.seed)

    def capture_rng(self) -> dict:
        """Every RNG the loop draws from: torch CPU, every CUDA device, MPS, numpy, Python ``random``."""
        mt, keys, pos, has_gauss, gauss = np.random.get_state()
        out = {"torch_cpu": torch.get_rng_state(),
               "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                         "has_gauss": int(has_gauss), "gauss": float(gauss)},
               "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()]}
        if torch.cuda.is_available():
            out["cuda"] = torch.cuda.get_rng_state_all()
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            out["mps"] = torch.mps.get_rng_state()
        return out

    def restore_rng(self, state: Mapping[str, Any]) -> None:
        torch.set_rng_state(state["torch_cpu"])
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        if "cuda" in state:
            torch.cuda.set_rng_state_all(state["cuda"])
        if "mps" in state:
            torch.mps.set_rng_state(state["mps"])

    # -- data -------------------------------------------------------------------------------------------------------
    def _start_epoch(self) -> None:
        self.epoch_start = self.generator.get_state()
        self.iterator = iter(self.loader)
        self.position = 0

    def next_batch(self):
        if self.iterator is None:
            self._start_epoch()
        try:
            batch = next(self.iterator)
        except StopIteration:
            self.epoch += 1
            self._start_epoch()
            batch = next(self.iterator)
        self.position += 1
        return batch

    def loader_state(self) -> dict:
        """Epoch, batches consumed in it, and the shuffling generator's state when the epoch began (with a
        stateful loader: also its ``state_dict``)."""
        state = {"epoch": self.epoch, "position": self.position, "generator": self.epoch_start}
        if self.cfg.stateful_loader:
            state["loader"] = self.loader.state_dict()
        return state

    def restore_loader(self, state: Mapping[str, Any]) -> None:
        """Rewind the generator to the epoch's start, rebuild the iterator (same order, same worker seeds), skip;
        a stateful loader loads its ``state_dict`` instead and continues where it stopped."""
        self.epoch = state["epoch"]
        if self.cfg.stateful_loader:
            self.loader.load_state_dict(state["loader"])
            self.iterator, self.position, self.epoch_start = iter(self.loader), state["position"], state["generator"]
            return
        self.generator.set_state(state["generator"])
        self._start_epoch()
        for _ in range(state["position"]):
            next(self.iterator)
        self.position = state["position"]

    # -- training ---------------------------------------------------------------------------------------------------
    def step(self, step: int) -> None:
        x, y, idx = self.next_batch()
        self.model.train()
        self.masks.clear()
        out = self.model(x.to(self.cfg.device))
        loss = torch.nn.functional.cross_entropy(out, y.to(self.cfg.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.trace["step"].append(step)
        self.trace["loss"].append(to_numpy(loss.detach()).astype(np.float32).reshape(()))
        self.trace["lr"].append(lr)
        self.trace["batch"].append(idx.numpy().astype(np.int64))
        self.trace["mask"].append(np.packbits(self.masks[0].astype(np.uint8).ravel()))

    def run(self, start: int, stop: int) -> None:
        for step in range(start, stop):
            self.step(step)

    # -- checkpoint -------------------------------------------------------------------------------------------------
    def save(self, directory: Path, step: int) -> None:
        """``model.safetensors`` (or ``model.pt``) with provenance, then ``trainer_state.pt``; both atomic."""
        fmt = "safetensors" if safetensors_available() is None else "torch"
        prov = {"format": FORMAT_TAG, "model": "resume_mlp", "seed": self.cfg.seed, "init": "torch default",
                "framework": "torch", "versions": {"torch": torch.__version__}, "device": self.cfg.device,
                "dtype": "float32", "step": step}
        save_model(self.model, directory / ("model.safetensors" if fmt == "safetensors" else "model.pt"), fmt, prov)
        state = {"step": step, "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "loader": self.loader_state(), "provenance": dumps_provenance(prov)}
        rng = self.capture_rng()
        if rng:
            state["rng"] = rng
        atomic_write(directory / "trainer_state.pt", lambda f: torch.save(state, f))

    def restore(self, directory: Path) -> int:
        """Load weights, optimizer, scheduler, the loader position, then the RNG states (after the skip: fetching the
        skipped batches again draws from the global RNGs when the dataset is random and has no workers); return the
        step to continue at."""
        path = directory / "model.safetensors"
        if not path.exists():
            path = directory / "model.pt"
        sd, _ = read_checkpoint(path, format_of(path), self.cfg.device)
        load_into(self.model, sd, path)
        state = safe_torch_load(directory / "trainer_state.pt", self.cfg.device)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.restore_loader(state["loader"])  # first: skipping consumed batches may draw (dataset randomness)
        if "rng" in state:
            self.restore_rng(state["rng"])
        return int(state["step"])

    def write_trace(self, path: Path, final: bool) -> None:
        arrays = {"step": np.asarray(self.trace["step"], np.int64),
                  "loss": np.asarray(self.trace["loss"], np.float32).reshape(-1),
                  "lr": np.asarray(self.trace["lr"], np.float64),
                  "batch": np.stack(self.trace["batch"]) if self.trace["batch"] else np.zeros((0, 0), np.int64),
                  "mask": np.stack(self.trace["mask"]) if self.trace["mask"] else np.zeros((0, 0), np.uint8)}
        if final:
            for name, t in self.model.state_dict().items():
                arrays[f"param/{name}"] = to_numpy(t)
            for i, st in self.optimizer.state_dict()["state"].items():
                for name, t in st.items():
                    arrays[f"optim/{i}/{name}"] = to_numpy(t) if hasattr(t, "detach") else np.asarray(t)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write(path, lambda f: f.write(buf.getvalue()))


def _harness_class(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "ResumeHarness")


DEFAULT_HARNESS = "conformance.backends.torch.resume:ResumeHarness"
_CHILD_CODE = "import sys; from conformance.backends.torch.resume import child_main; sys.exit(child_main())"


READY = "READY"  # written beside the checkpoint once it is complete; the resumed process waits for it


def _save_in_fork(harness: ResumeHarness, directory: Path, step: int) -> None:
    """The interrupted run: a fork of the straight run at ``step`` saves the checkpoint and exits (``os._exit``);
    the straight run itself never calls ``save``, so a save that disturbs state cannot hide in both runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            harness.save(directory, step)
            code = 0
        except BaseException:  # noqa: BLE001 - report anything, then leave without running finalizers
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"the interrupted run (forked at step {step}) failed to save its checkpoint: exit {code}")


def _wait_ready(directory: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not (directory / READY).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no complete checkpoint appeared in {directory} within {seconds:g} s")
        time.sleep(0.02)


def child_main(argv: list[str] | None = None) -> int:
    """Entry of a fresh process: ``argv[0]`` is JSON ``{mode, dir, harness, config, fork_save, wait_s}``.

    ``straight``: N steps (with ``fork_save``, a fork at step k saves the checkpoint); ``interrupt``: k steps, save,
    exit; ``resume``: wait for the checkpoint, restore, run to N. Each writes ``trace-<run>.npz``.
    """
    args = json.loads((argv or sys.argv[1:])[0])
    cfg = ResumeConfig(**args["config"])
    directory, mode = Path(args["dir"]), args["mode"]
    ckpt = directory / "checkpoint"
    if mode == "resume":  # build nothing before the checkpoint exists: the restore must do all the work
        _wait_ready(ckpt, float(args.get("wait_s", 120)))
    harness = _harness_class(args.get("harness") or DEFAULT_HARNESS)(cfg)
    if mode == "straight":
        if args.get("fork_save"):
            harness.run(0, cfg.save_at)
            _save_in_fork(harness, ckpt, cfg.save_at)
            atomic_write(ckpt / READY, lambda f: f.write(b"forked straight run"))
            harness.run(cfg.save_at, cfg.steps)
        else:
            harness.run(0, cfg.steps)
        harness.write_trace(directory / "trace-straight.npz", final=True)
    elif mode == "interrupt":
        harness.run(0, cfg.save_at)
        harness.save(ckpt, cfg.save_at)
        atomic_write(ckpt / READY, lambda f: f.write(b"interrupted run"))
        harness.write_trace(directory / "trace-interrupted.npz", final=False)
    elif mode == "resume":
        start = harness.restore(ckpt)
        harness.run(start, cfg.steps)
        harness.write_trace(directory / "trace-resumed.npz", final=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return 0


def _launch(mode: str, directory: Path, harness: str, cfg: ResumeConfig, **extra) -> subprocess.Popen:
    args = json.dumps({"mode": mode, "dir": str(directory), "harness": harness, "config": asdict(cfg), **extra})
    return processes.start(["-c", _CHILD_CODE, args],
                           env={"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "OMP_NUM_THREADS": "1"})


def _wait(proc: subprocess.Popen, mode: str, deadline: float, timeout: float) -> float:
    ended = processes.wait(proc, deadline)
    if ended.timed_out or ended.returncode != 0:
        raise SubprocessFailed(f"resume harness ({mode}) {ended.describe(timeout)}; "
                               f"stderr: {processes.tail(ended.stderr, STDERR_TAIL) or '(empty)'}")
    return ended.seconds


def load_trace(path: Path) -> dict[str, Any]:
    """A trace ``.npz`` (``allow_pickle=False``) as ``{step, loss, lr, batch, mask, params, optim}``."""
    with np.load(path, allow_pickle=False) as z:
        out: dict[str, Any] = {"params": {}, "optim": {}}
        for key in z.files:
            if key.startswith("param/"):
                out["params"][key[6:]] = z[key]
            elif key.startswith("optim/"):
                out["optim"][key[6:]] = z[key]
            else:
                out[key] = z[key]
    return out


def fork_available() -> bool:
    """Whether the interrupted run can be a fork of the straight run (Linux; elsewhere fork and torch mix badly)."""
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def run_resume(directory, seed: int, steps: int, save_at: int, timeout: float, device: str = "cpu",
               harness: str = DEFAULT_HARNESS, fork: bool | None = None) -> dict[str, Any]:
    """The straight run and the resumed run, each in a fresh interpreter started at once; their traces.

    The interrupted run is a fork of the straight run at step ``save_at`` that saves and exits (``fork``, default
    on Linux) or, without fork, a third fresh interpreter that runs ``save_at`` steps, saves and exits. The resumed
    interpreter imports torch meanwhile and waits for the complete checkpoint. Returns ``{"straight", "resumed"}``
    traces (see :func:`load_trace`; plus ``"interrupted"`` without fork), ``"seconds"`` per process,
    ``"checkpoint"`` (the files saved) and ``"interrupted_by"`` (``"fork"`` or ``"process"``). Raises
    :class:`SubprocessFailed` when a process fails or the whole run exceeds ``timeout`` seconds.
    """
    if not 0 < save_at < steps:
        raise ValueError(f"save_at must lie strictly between 0 and steps ({save_at}, {steps})")
    fork = fork_available() if fork is None else fork
    directory = Path(directory)
    (directory / "checkpoint").mkdir(parents=True, exist_ok=True)
    cfg = ResumeConfig(seed=seed, steps=steps, save_at=save_at, device=device)
    deadline = time.monotonic() + timeout
    procs = {"straight": _launch("straight", directory, harness, cfg, fork_save=fork)}
    if not fork:
        procs["interrupted"] = _launch("interrupt", directory, harness, cfg)
    procs["resumed"] = _launch("resume", directory, harness, cfg, wait_s=timeout)
    seconds = {}
    try:
        for name in ("interrupted", "straight", "resumed"):
            if name in procs:
                seconds[name] = _wait(procs[name], name, deadline, timeout)
    finally:
        for proc in procs.values():
            processes.stop(proc)
    out: dict[str, Any] = {name: load_trace(directory / f"trace-{name}.npz") for name in procs}
    out["seconds"] = seconds
    out["checkpoint"] = sorted(p.name for p in (directory / "checkpoint").iterdir() if p.name != READY)
    out["interrupted_by"] = "fork" if fork else "process"
    return out
