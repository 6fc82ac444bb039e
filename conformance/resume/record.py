"""The recorder a harness drives (torch side): what happened at each training step of one run.

Contract
--------
:class:`Run` is handed to ``harness.train(run)`` (see :mod:`conformance.resume.protocol`). It records, per
training step (an *entry*: the same step number may appear twice when a stack repeats a step):

* ``batch``: every tensor/array in the batch (nested dicts, lists and tuples are flattened to ``a/b/0`` paths),
  recorded by the first training-mode forward of the step (``track``) or by ``record_batch``;
* ``rng``: the global RNG states (torch CPU, each CUDA device, numpy's legacy global, Python ``random``) and every
  generator passed to ``track_generator``, captured at ``begin_step`` and again just before the step's first
  training forward;
* ``dropout``: for every ``torch.nn`` dropout module that runs in training mode, the positions it zeroed among
  its non-zero inputs (packed bits), in call order;
* ``loss`` and ``lr`` as Python floats (compared bit for bit: ``float.hex``; a NaN loss is a value, a loss
  nobody recorded is flagged as missing).

``finish(model, optimizer)`` adds the final ``state_dict`` tensors and the optimizer's state (per-parameter
tensors and the numeric entries of its param groups). :meth:`Run.write` saves everything as one ``.npz`` (read
with ``allow_pickle=False`` by :func:`conformance.resume.compare.load_trace`) and a JSON sidecar (mode, versions,
the warnings the stack emitted). This module talks to torch and numpy only; judging is :mod:`.compare`'s business.
"""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from conformance.harness.files import atomic_write

from .protocol import HarnessError, Options


def _numpy(t: Any) -> np.ndarray | None:
    if isinstance(t, torch.Tensor):
        if hasattr(t, "full_tensor"):  # a DTensor (torchtitan, FSDP2): the whole tensor, gathered
            t = t.full_tensor()
        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy().copy()
    if isinstance(t, np.ndarray):
        return t.copy()
    if isinstance(t, (bool, int, float)) and not isinstance(t, bool):
        return np.asarray(t)
    return None


def flatten(obj: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Every tensor, array and number in a nested batch, by path (``input_ids``, ``0``, ``x/1``)."""
    out: dict[str, np.ndarray] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}/"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}{i}/"))
    else:
        a = _numpy(obj)
        if a is not None:
            out[prefix.rstrip("/") or "value"] = a
    return out


def global_rng_states() -> dict[str, np.ndarray]:
    """torch CPU, each CUDA device, numpy's legacy global RNG and Python ``random``, as integer arrays."""
    states = {"torch_cpu": torch.get_rng_state().numpy().copy()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            states[f"cuda:{i}"] = s.numpy().copy()
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    states["numpy"] = np.concatenate([keys.astype(np.int64), [pos, has_gauss],
                                      np.frombuffer(np.float64(gauss).tobytes(), np.int64)])
    version, internal, gauss_next = random.getstate()
    gauss_bits = -1 if gauss_next is None else int(np.float64(gauss_next).view(np.int64))
    states["python"] = np.asarray([version, *internal, gauss_bits], np.int64)
    return states


def _loss_of(output: Any) -> Any:
    if isinstance(output, torch.Tensor) and output.ndim == 0:
        return output
    if isinstance(output, Mapping) and "loss" in output:
        return output["loss"]
    return getattr(output, "loss", None)


class Run:
    """One run of a harness: what to do (``mode``, ``options``, ``checkpoint_dir``) and what happened."""

    def __init__(self, mode: str, options: Options, checkpoint_dir: Path | str):
        if mode not in ("straight", "interrupt", "resume"):
            raise HarnessError(f"unknown run mode {mode!r}")
        self.mode = mode
        self.options = options
        self.checkpoint_dir = Path(checkpoint_dir)
        #: A scratch folder of this run alone (for a stack that needs an output folder besides its checkpoints).
        self.work_dir = self.checkpoint_dir.parent / f"work-{mode}"
        self.entries: list[dict[str, Any]] = []
        self.final: dict[str, np.ndarray] = {}
        self.generators: dict[str, torch.Generator] = {}
        self.notes: list[str] = []
        self._hooked = False

    # -- what to do ---------------------------------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return self.options.seed

    @property
    def steps(self) -> int:
        return self.options.steps

    @property
    def stop_at(self) -> int:
        return self.options.stop_at

    def stop_now(self, completed: int) -> bool:
        """Whether the interrupted run must stop (and have saved) after ``completed`` optimizer steps."""
        return self.mode == "interrupt" and completed >= self.stop_at

    def note(self, text: str) -> None:
        """A line the harness wants in the result (how it saved, what the stack printed)."""
        self.notes.append(text)

    # -- recording ----------------------------------------------------------------------------------------------
    @property
    def current(self) -> dict[str, Any] | None:
        return self.entries[-1] if self.entries and not self.entries[-1]["closed"] else None

    def _rng(self) -> dict[str, np.ndarray]:
        states = global_rng_states()
        for name, g in self.generators.items():
            states[f"generator:{name}"] = g.get_state().numpy().copy()
        return states

    def track_generator(self, name: str, generator: torch.Generator) -> None:
        """Record ``generator``'s state with the global ones (the sampler's, a dataset's)."""
        self.generators[name] = generator

    def begin_step(self, step: int, lr: float | None = None) -> None:
        """A training step begins: ``step`` is the 0-based global step, ``lr`` the LR this step applies."""
        if self.current is not None:
            self.end_step()
        self.entries.append({"step": int(step), "lr": lr, "loss": None,
                             "batch": {}, "rng": self._rng(), "dropout": [], "forwarded": False, "closed": False})

    def record_batch(self, batch: Any) -> None:
        """The step's batch (when no tracked forward sees it, or to record it as the loader yields it)."""
        entry = self._require("record_batch")
        if not entry["batch"]:
            entry["batch"] = flatten(batch)

    def end_step(self, loss: Any = None, lr: float | None = None) -> None:
        """The step ended; ``loss`` (a tensor or float) when the tracked forward did not return one."""
        entry = self._require("end_step")
        if loss is not None:
            entry["loss"] = float(loss.detach().float().item() if isinstance(loss, torch.Tensor) else loss)
        if lr is not None:
            entry["lr"] = float(lr)
        entry["closed"] = True

    def _require(self, what: str) -> dict[str, Any]:
        entry = self.current
        if entry is None:
            raise HarnessError(f"harness called run.{what}() outside a step: call run.begin_step(step) first")
        return entry

    def track(self, model: torch.nn.Module) -> None:
        """Hooks on ``model``: before its first training forward in a step, the batch and RNG states; its loss;
        every dropout module's mask."""
        if self._hooked:
            return
        self._hooked = True

        def pre(module, args, kwargs):
            entry = self.current
            if entry is not None and module.training and not entry["forwarded"]:
                entry["forwarded"] = True
                entry["rng"] = self._rng()
                if not entry["batch"]:
                    entry["batch"] = flatten({"args": list(args), "kwargs": kwargs})

        def post(module, args, kwargs, output):
            entry = self.current
            if entry is not None and module.training and entry["loss"] is None:
                loss = _loss_of(output)
                if isinstance(loss, torch.Tensor) and loss.numel() == 1:
                    entry["loss"] = float(loss.detach().float().item())

        model.register_forward_pre_hook(pre, with_kwargs=True)
        model.register_forward_hook(post, with_kwargs=True)
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.modules.dropout._DropoutNd):
                mod.register_forward_hook(self._dropout_hook(name))

    def _dropout_hook(self, name: str):
        def hook(module, inputs, output):
            entry = self.current
            if entry is not None and module.training and module.p > 0:
                x = inputs[0].detach()
                dropped = (output.detach() == 0) & (x != 0)
                entry["dropout"].append(np.packbits(dropped.cpu().numpy().ravel()))
        return hook

    def finish(self, model: torch.nn.Module, optimizer: Any = None) -> None:
        """The final parameters and buffers, and the optimizer state (straight and resumed runs)."""
        if self.current is not None:
            self.end_step()
        for name, t in model.state_dict().items():
            a = _numpy(t)
            if a is not None:
                self.final[f"param/{name}"] = a
        if optimizer is not None:
            sd = optimizer.state_dict()
            for i, st in sd.get("state", {}).items():
                for name, t in st.items():
                    a = _numpy(t)
                    if a is not None:
                        self.final[f"optimizer/state/{i}/{name}"] = a
            for g, group in enumerate(sd.get("param_groups", [])):
                for key, v in group.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        self.final[f"optimizer/group/{g}/{key}"] = np.asarray(v, np.float64)

    # -- output -------------------------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        entries = self.entries
        out = {"step": np.asarray([e["step"] for e in entries], np.int64)}
        for key in ("loss", "lr"):  # a value not recorded is NaN with its flag False (a NaN loss is a loss)
            out[key] = np.asarray([math.nan if e[key] is None else e[key] for e in entries], np.float64)
            out[f"{key}_recorded"] = np.asarray([e[key] is not None for e in entries], bool)
        for i, e in enumerate(entries):
            for key, a in e["batch"].items():
                out[f"e{i}/batch/{key}"] = a
            for key, a in e["rng"].items():
                out[f"e{i}/rng/{key}"] = a
            if e["dropout"]:
                out[f"e{i}/dropout"] = np.concatenate(e["dropout"])
        out.update(self.final)
        return out

    def write(self, directory: Path, name: str, meta: Mapping[str, Any]) -> Path:
        """``trace-<name>.npz`` and ``trace-<name>.json`` in ``directory`` (both atomic)."""
        buf = io.BytesIO()
        np.savez(buf, **self.arrays())
        atomic_write(directory / f"trace-{name}.npz", lambda f: f.write(buf.getvalue()))
        doc = {**meta, "mode": self.mode, "notes": self.notes, "entries": len(self.entries)}
        path = directory / f"trace-{name}.json"
        atomic_write(path, lambda f: f.write(json.dumps(doc, indent=1, default=str).encode()))
        return path
