"""PyTorch checkpoints: reference models, save/load in ``torch.save`` and safetensors formats, a resume harness.

Contract
--------
* **Models** (:data:`MODELS`): ``tiny_tied``, a small language model with everything that breaks checkpoints: an
  embedding tied to the output head (one Parameter under two names), a dropout, a parameter stored transposed
  (non-contiguous strides), a persistent buffer and a non-persistent buffer (RoPE-style ``inv_freq``, rebuilt by
  the constructor and never saved). Its init spec is :data:`TINY_TIED_INIT`.
* **Save** (:func:`save_model`): atomic (:func:`conformance.backends.checkpointing.atomic_write`). ``torch`` format: one
  ``torch.save`` of ``{"format", "provenance" (JSON string), "state_dict"}``; ``safetensors``: the state dict with
  tied duplicates dropped (kept as ``aliases`` in the provenance) and the provenance in the header metadata.
  Provenance: :data:`conformance.backends.checkpointing.PROVENANCE_FIELDS` plus the sha256 of every tensor's bytes.
* **Load** (:func:`read_checkpoint`, :func:`load_into`): ``torch.load(weights_only=True)`` only (a pickle that
  names anything else is :class:`~.checkpointing.UnsafeCheckpoint`); truncated or malformed files and
  bytes that do not match the saved digests are :class:`~.checkpointing.CheckpointCorrupt`; keys are checked
  before anything is copied (missing, unexpected, shape, dtype: no silent casts), then ``load_state_dict(strict=True)``
  copies into the existing tensors, so ties, strides and non-persistent buffers of the fresh model survive.
* **Resume** (:class:`ResumeHarness`, :func:`run_resume`): a deterministic training loop (MLP with dropout, AdamW,
  cosine LR schedule, a shuffling DataLoader with a seeded generator and 2 workers whose numpy RNG is seeded per
  worker, ``torch.use_deterministic_algorithms(True)``) run in fresh interpreters: straight for N steps (on Linux a
  fork of it at step k is the interrupted run: it saves the checkpoint and exits; elsewhere a third interpreter
  runs k steps and saves), and resumed from the checkpoint for N - k steps. Each writes a trace (losses, LRs,
  batch indices, dropout masks, final parameters and optimizer state) as ``.npz`` (read with
  ``allow_pickle=False``). Faulty loops subclass the harness (``tests/faulty/training.py``).

This module talks to torch only; comparing states and traces is the checks' business.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
import traceback
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import SubprocessFailed, UnsupportedOperation
from .checkpointing import (
    FORMAT_TAG,
    CheckpointCorrupt,
    CheckpointError,
    ModelState,
    TensorRecord,
    UnsafeCheckpoint,
    atomic_write,
    check_entries,
    dumps_provenance,
    tensor_digest,
)

FORMATS: tuple[str, ...] = ("torch", "safetensors")
TINY_TIED_INIT = ("tiny_tied-v1: embedding (tied to head) N(0, 0.02^2); proj N(0, 0.02^2); Linear torch default "
                  "(kaiming_uniform a=sqrt(5), bias U(+-1/sqrt(fan_in))); LayerNorm ones/zeros; scale buffer ones")


def dtype_name(t) -> str:
    return str(t.dtype).removeprefix("torch.")


def _to_numpy(t) -> np.ndarray:
    from .torch_adapter import to_numpy

    return to_numpy(t)


def safetensors_available() -> str | None:
    """``None`` when safetensors can be imported, else the reason it cannot."""
    try:
        import safetensors.torch  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means unavailable
        return f"safetensors is not installed (pip install 'dl-conformance[checkpoint]'): {exc!r}"
    return None


def require_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown checkpoint format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "safetensors" and (reason := safetensors_available()):
        raise UnsupportedOperation(reason)


def format_of(path: str | os.PathLike) -> str:
    """``safetensors`` for ``*.safetensors``, else ``torch``."""
    return "safetensors" if str(path).endswith(".safetensors") else "torch"


# -- reference models ----------------------------------------------------------------------------------------------
def _tiny_tied_class():
    nn = torch.nn

    class TinyTiedLM(nn.Module):
        """Embedding tied to the head, dropout, a transposed parameter, persistent and non-persistent buffers."""

        def __init__(self, vocab: int = 64, dim: int = 32, hidden: int = 48, p: float = 0.1):
            super().__init__()
            self.embed = nn.Embedding(vocab, dim)
            self.norm = nn.LayerNorm(dim)
            self.up = nn.Linear(dim, hidden)
            self.drop = nn.Dropout(p)
            self.down = nn.Linear(hidden, dim)
            self.head = nn.Linear(dim, vocab, bias=False)
            self.tie_weights()
            self.proj = nn.Parameter(torch.empty(dim, dim // 2).t())  # shape (16, 32), strides (1, 16)
            self.register_buffer("scale", torch.ones(dim))
            inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
            self.register_buffer("inv_freq", inv_freq, persistent=False)
            nn.init.normal_(self.embed.weight, std=0.02)
            nn.init.normal_(self.proj, std=0.02)

        def tie_weights(self):
            """The head shares the embedding's Parameter (re-run after ``to_empty``, which unties)."""
            self.head.weight = self.embed.weight

        def forward(self, tokens):
            h = self.norm(self.embed(tokens)) * self.scale
            h = h + self.down(self.drop(torch.nn.functional.gelu(self.up(h))))
            return self.head(h)

    return TinyTiedLM


def _tiny_tied():
    return _tiny_tied_class()()


def _gpt2():
    from . import torch_models

    return torch_models.gpt2(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)


def _llama():
    from . import torch_models

    return torch_models.llama(vocab_size=64, dim=32, n_layers=2, n_heads=2, max_seq_len=16)


#: name -> (factory, init spec). ``gpt2`` (lm_head tied to wte) and ``llama`` (non-persistent complex RoPE table)
#: are the built-in reference models of :mod:`.torch_models`, shrunk; their ``init_weights`` runs after
#: construction.
MODELS: dict[str, tuple[Any, str]] = {
    "tiny_tied": (_tiny_tied, TINY_TIED_INIT),
    "gpt2": (_gpt2, "nanoGPT GPT-2 init (conformance.backends.torch_models.gpt2, n_layer 2, n_embd 32)"),
    "llama": (_llama, "torchtitan llama3 depth_init (conformance.backends.torch_models.llama, n_layers 2, dim 32)"),
}


def model_names() -> tuple[str, ...]:
    return tuple(MODELS)


def build_model(name: str, dtype: str, device: str, seed: int | None):
    """Seed (when given), build ``name`` on the CPU in float32, move it to ``device`` and ``dtype``."""
    if name not in MODELS:
        raise UnsupportedOperation(f"torch has no checkpoint reference model {name!r}; known: {', '.join(MODELS)}")
    if seed is not None:
        torch.manual_seed(seed)
    model = MODELS[name][0]()
    if callable(getattr(model, "init_weights", None)):
        model.init_weights()
    target = getattr(torch, dtype)
    # floating tensors only: a complex buffer (RoPE table) keeps its dtype; ties survive (_apply works in place)
    model._apply(lambda t: t.to(device=device, dtype=target) if t.is_floating_point() else t.to(device))
    return model


def alias_groups(named: Mapping[str, Any]) -> list[list[str]]:
    """Groups (two or more names) of tensors that share storage, sorted."""
    by_storage: dict[tuple, list[str]] = {}
    for name, t in named.items():
        if t.numel() == 0:
            continue
        by_storage.setdefault((t.device.type, t.untyped_storage().data_ptr()), []).append(name)
    return sorted(sorted(g) for g in by_storage.values() if len(g) > 1)


def model_state(model, name: str) -> ModelState:
    """What a model holds now: every state-dict entry plus the non-persistent buffers, with layout and ties."""
    sd = model.state_dict(keep_vars=True)
    tensors: dict[str, TensorRecord] = {}
    named = dict(sd)
    for key, t in sd.items():
        kind = "parameter" if isinstance(t, torch.nn.Parameter) else "buffer"
        tensors[key] = _record(t, kind)
    for key, t in model.named_buffers(remove_duplicate=False):
        if key not in sd:
            tensors[key] = _record(t, "nonpersistent")
            named[key] = t
    return ModelState(name, tensors, alias_groups(named))


def _record(t, kind: str) -> TensorRecord:
    return TensorRecord(_to_numpy(t), dtype_name(t), tuple(t.shape), tuple(t.stride()),
                        t.numel() * t.element_size(), kind, str(t.device))


def provenance_of(model_name: str, seed: int | None, dtype: str, device: str, versions: Mapping[str, str]) -> dict:
    return {"format": FORMAT_TAG, "model": model_name, "seed": seed, "init": MODELS[model_name][1],
            "framework": "torch", "versions": dict(versions), "device": device, "dtype": dtype}


# -- save ----------------------------------------------------------------------------------------------------------
def save_state_dict(sd: Mapping[str, Any], path, fmt: str, provenance: Mapping[str, Any]) -> dict:
    """Write ``sd`` atomically in ``fmt`` with ``provenance`` (digests and aliases added); return the provenance."""
    require_format(fmt)
    cpu = {k: v.detach().cpu() for k, v in sd.items()}
    aliases = alias_groups(dict(sd))
    prov = dict(provenance)
    prov["aliases"] = aliases
    prov["tensors"] = {k: tensor_digest(_to_numpy(v)) for k, v in cpu.items()}
    text = dumps_provenance(prov)
    if fmt == "torch":
        obj = {"format": FORMAT_TAG, "provenance": text, "state_dict": dict(sd)}
        atomic_write(path, lambda f: torch.save(obj, f))
    else:
        import safetensors.torch

        dropped = {n for group in aliases for n in group[1:]}
        flat = {k: v.contiguous() for k, v in cpu.items() if k not in dropped}
        data = safetensors.torch.save(flat, metadata={"format": FORMAT_TAG, "provenance": text})
        atomic_write(path, lambda f: f.write(data))
    return prov


def save_model(model, path, fmt: str, provenance: Mapping[str, Any]) -> dict:
    return save_state_dict(model.state_dict(), path, fmt, provenance)


# -- load ----------------------------------------------------------------------------------------------------------
_UNSAFE = re.compile(r"WeightsUnpickler error:\s*(.+?)(?:\.\s|\n|$)", re.S)


def safe_torch_load(path, map_location: str = "cpu"):
    """``torch.load(path, weights_only=True)`` with its failures turned into one-line :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        raise CheckpointCorrupt(path, f"truncated: the zip archive torch.save writes has no end-of-central-directory "
                                      f"record ({path.stat().st_size} bytes)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = _UNSAFE.search(text)
        reason = " ".join(found.group(1).split()) if found else text.splitlines()[0]
        if "Unsupported global" in text or "allowed global" in text:
            raise UnsafeCheckpoint(path, f"refused to unpickle: {reason} (loaded with weights_only=True; "
                                         "the file would import or call code)") from None
        raise CheckpointCorrupt(path, f"not a weights-only torch checkpoint: {reason}") from None
    except (RuntimeError, EOFError, ValueError, OSError, IndexError, KeyError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointCorrupt(path, f"cannot be read (truncated or corrupted?): {first[:300]}") from None


def read_checkpoint(path, fmt: str | None = None, device: str = "cpu") -> tuple[dict, dict]:
    """The state dict (tensors on ``device``, tied names restored) and the provenance of a checkpoint file.

    Verifies the sha256 of every tensor against the provenance when the file has one.
    """
    fmt = fmt or format_of(path)
    require_format(fmt)
    path = Path(path)
    if fmt == "torch":
        obj = safe_torch_load(path, device)
        if isinstance(obj, dict) and obj.get("format") == FORMAT_TAG:
            sd, prov = obj.get("state_dict"), _parse_provenance(path, obj.get("provenance"))
        else:
            sd, prov = obj, {}
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise CheckpointCorrupt(path, f"holds a {type(sd).__name__}, not a state dict of tensors")
    else:
        sd, prov = _read_safetensors(path, device)
    for group in prov.get("aliases", []):
        present = [n for n in group if n in sd]
        for name in group:
            if name not in sd and present:
                sd[name] = sd[present[0]]
    digests = prov.get("tensors") or {}
    for name in sorted(sd):
        want = digests.get(name)
        if want is not None and tensor_digest(_to_numpy(sd[name])) != want:
            raise CheckpointCorrupt(path, f"bytes of key {name!r} do not match the sha256 saved with the checkpoint "
                                          "(corrupted file)", key=name)
    return sd, prov


def _parse_provenance(path, text) -> dict:
    if text is None:
        return {}
    try:
        prov = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CheckpointCorrupt(path, f"provenance is not valid JSON: {exc}") from None
    if not isinstance(prov, dict):
        raise CheckpointCorrupt(path, "provenance is not a JSON object")
    return prov


def _read_safetensors(path: Path, device: str) -> tuple[dict, dict]:
    import safetensors
    import safetensors.torch

    if not path.is_file():
        raise CheckpointError(path, "no such file")
    data = path.read_bytes()
    try:
        sd = safetensors.torch.load(data)
        with safetensors.safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (safetensors.SafetensorError, ValueError, OSError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointCorrupt(path, f"not a valid safetensors file (truncated or corrupted?): {first[:300]}"
                                ) from None
    if device != "cpu":
        sd = {k: v.to(device) for k, v in sd.items()}
    return sd, _parse_provenance(path, meta.get("provenance"))


def entries_of(sd: Mapping[str, Any]) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {k: (dtype_name(v), tuple(v.shape)) for k, v in sd.items()}


def load_into(model, sd: Mapping[str, Any], path) -> None:
    """Check keys, shapes and dtypes of ``sd`` against ``model`` (naming the key), then copy strictly."""
    check_entries(path, entries_of(sd), entries_of(model.state_dict()))
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:  # pragma: no cover - check_entries catches what load_state_dict would
        raise CheckpointCorrupt(path, str(exc).splitlines()[0]) from None


def load_model(path, model_name: str, fmt: str, dtype: str, device: str, fresh_seed: int | None) -> ModelState:
    """Build ``model_name`` afresh (seeded with ``fresh_seed``), load ``path`` into it; its state and provenance."""
    sd, prov = read_checkpoint(path, fmt, device)
    model = build_model(model_name, dtype, device, fresh_seed)
    load_into(model, sd, path)
    state = model_state(model, model_name)
    state.provenance = prov
    state.file_keys = file_entries(path, fmt)
    state.path = str(path)
    return state


def file_entries(path, fmt: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """What the file itself holds (before tied names are restored): name -> (dtype, shape)."""
    if fmt == "safetensors":
        import safetensors

        with safetensors.safe_open(str(path), framework="pt") as f:
            return {k: (_st_dtype(f.get_slice(k).get_dtype()), tuple(f.get_slice(k).get_shape())) for k in f.keys()}
    obj = safe_torch_load(path)
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else {}
    return entries_of(sd)


_ST_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64", "I64": "int64",
              "I32": "int32", "U8": "uint8", "BOOL": "bool"}


def _st_dtype(code: str) -> str:
    return _ST_DTYPES.get(code, code.lower())


# -- resume harness ------------------------------------------------------------------------------------------------
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


class SyntheticDataset(torch.utils.data.Dataset):
    """Fixed features and labels from their own generator; each item adds noise from the worker's numpy RNG."""

    def __init__(self, n: int, features: int, classes: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, features, generator=g)
        self.y = torch.randint(classes, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
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
        nn = torch.nn
        self.model = nn.Sequential(nn.Linear(cfg.features, cfg.hidden), nn.Dropout(cfg.dropout), nn.GELU(),
                                   nn.Linear(cfg.hidden, cfg.classes)).to(cfg.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.01)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.steps, eta_min=1e-4)
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)
        dataset = SyntheticDataset(cfg.samples, cfg.features, cfg.classes, cfg.seed + 2)
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                                                  generator=self.generator, num_workers=cfg.workers,
                                                  worker_init_fn=seed_worker if cfg.workers else None)
        self.epoch, self.position, self.iterator, self.epoch_start = 0, 0, None, None
        self.masks: list[np.ndarray] = []
        self.model[1].register_forward_hook(lambda mod, inp, out: self.masks.append(_to_numpy(out != 0)))
        self.trace: dict[str, list] = {"step": [], "loss": [], "lr": [], "batch": [], "mask": []}

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
        """Epoch, batches consumed in it, and the shuffling generator's state when the epoch began."""
        return {"epoch": self.epoch, "position": self.position, "generator": self.epoch_start}

    def restore_loader(self, state: Mapping[str, Any]) -> None:
        """Rewind the generator to the epoch's start, rebuild the iterator (same order, same worker seeds), skip."""
        self.epoch = state["epoch"]
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
        self.trace["loss"].append(_to_numpy(loss.detach()).astype(np.float32).reshape(()))
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
        """Load weights, optimizer, scheduler, RNG states and loader position; return the step to continue at."""
        path = directory / "model.safetensors"
        if not path.exists():
            path = directory / "model.pt"
        sd, _ = read_checkpoint(path, format_of(path), self.cfg.device)
        load_into(self.model, sd, path)
        state = safe_torch_load(directory / "trainer_state.pt", self.cfg.device)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if "rng" in state:
            self.restore_rng(state["rng"])
        self.restore_loader(state["loader"])
        return int(state["step"])

    def write_trace(self, path: Path, final: bool) -> None:
        arrays = {"step": np.asarray(self.trace["step"], np.int64),
                  "loss": np.asarray(self.trace["loss"], np.float32).reshape(-1),
                  "lr": np.asarray(self.trace["lr"], np.float64),
                  "batch": np.stack(self.trace["batch"]) if self.trace["batch"] else np.zeros((0, 0), np.int64),
                  "mask": np.stack(self.trace["mask"]) if self.trace["mask"] else np.zeros((0, 0), np.uint8)}
        if final:
            for name, t in self.model.state_dict().items():
                arrays[f"param/{name}"] = _to_numpy(t)
            for i, st in self.optimizer.state_dict()["state"].items():
                for name, t in st.items():
                    arrays[f"optim/{i}/{name}"] = _to_numpy(t) if hasattr(t, "detach") else np.asarray(t)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write(path, lambda f: f.write(buf.getvalue()))


def _harness_class(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "ResumeHarness")


DEFAULT_HARNESS = "conformance.backends.torch_checkpoint:ResumeHarness"
_CHILD_CODE = "import sys; from conformance.backends.torch_checkpoint import child_main; sys.exit(child_main())"


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
    """Entry of a fresh process: ``argv[0]`` is JSON ``{mode, dir, harness, config, sys_path, fork_save, wait_s}``.

    ``straight``: N steps (with ``fork_save``, a fork at step k saves the checkpoint); ``interrupt``: k steps, save,
    exit; ``resume``: wait for the checkpoint, restore, run to N. Each writes ``trace-<run>.npz``.
    """
    args = json.loads((argv or sys.argv[1:])[0])
    for entry in reversed(args.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
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
    args = json.dumps({"mode": mode, "dir": str(directory), "harness": harness, "config": asdict(cfg),
                       "sys_path": [p for p in sys.path if p], **extra})
    env = {**os.environ, "CONFORMANCE_CHILD": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _CHILD_CODE, args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def _wait(proc: subprocess.Popen, mode: str, deadline: float, timeout: float) -> float:
    start = time.monotonic()
    try:
        _, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        _, err = proc.communicate()
        raise SubprocessFailed(f"resume harness ({mode}) did not finish within {timeout:g} s and was killed; "
                               f"stderr: {_tail(err)}") from None
    if proc.returncode != 0:
        raise SubprocessFailed(f"resume harness ({mode}) exited with status {proc.returncode}; "
                               f"stderr: {_tail(err)}")
    return time.monotonic() - start


def _tail(text: str, n: int = 1500) -> str:
    text = (text or "").strip()
    return (text if len(text) <= n else "..." + text[-n:]) or "(empty)"


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
            if proc.poll() is None:
                _kill(proc)
    out: dict[str, Any] = {name: load_trace(directory / f"trace-{name}.npz") for name in procs}
    out["seconds"] = seconds
    out["checkpoint"] = sorted(p.name for p in (directory / "checkpoint").iterdir() if p.name != READY)
    out["interrupted_by"] = "fork" if fork else "process"
    return out


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.communicate()
