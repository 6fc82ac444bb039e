"""The reference models of the checkpoint checks (torch), how they are built and reloaded.

Contract
--------
* :data:`MODELS`: ``tiny_tied``, a small language model with everything that breaks checkpoints: an embedding tied
  to the output head (one Parameter under two names), a dropout, a parameter stored transposed (non-contiguous
  strides), a persistent buffer and a non-persistent buffer (RoPE-style ``inv_freq``, rebuilt by the constructor and
  never saved); its init spec is :data:`TINY_TIED_INIT`. ``gpt2`` and ``llama``: the audit's reference models
  (:mod:`.models`), shrunk.
* :func:`build_model`: seeded (when a seed is given), built on the CPU in float32, then moved to the device and
  dtype (floating tensors only; ties survive).
* :func:`load_model`: a fresh model (seeded differently) with a checkpoint file loaded into it
  (:mod:`.checkpoint_io`); :func:`provenance_of`: the provenance saved with a reference model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from conformance.harness.checkpoints import FORMAT_TAG, ModelState

from ..base import UnsupportedOperation
from . import models
from .checkpoint_io import file_entries, load_into, model_state, read_checkpoint

TINY_TIED_INIT = ("tiny_tied-v1: embedding (tied to head) N(0, 0.02^2); proj N(0, 0.02^2); Linear torch default "
                  "(kaiming_uniform a=sqrt(5), bias U(+-1/sqrt(fan_in))); LayerNorm ones/zeros; scale buffer ones")


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
    return models.gpt2(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)


def _llama():
    return models.llama(vocab_size=64, dim=32, n_layers=2, n_heads=2, max_seq_len=16)


#: name -> (factory, init spec). ``gpt2`` (lm_head tied to wte) and ``llama`` (non-persistent complex RoPE table)
#: are the built-in reference models of :mod:`.models`, shrunk; their ``init_weights`` runs after
#: construction.
MODELS: dict[str, tuple[Any, str]] = {
    "tiny_tied": (_tiny_tied, TINY_TIED_INIT),
    "gpt2": (_gpt2, "nanoGPT GPT-2 init (conformance.backends.torch.models.gpt2, n_layer 2, n_embd 32)"),
    "llama": (_llama, "torchtitan llama3 depth_init (conformance.backends.torch.models.llama, n_layers 2, dim 32)"),
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


def provenance_of(model_name: str, seed: int | None, dtype: str, device: str, versions: Mapping[str, str]) -> dict:
    return {"format": FORMAT_TAG, "model": model_name, "seed": seed, "init": MODELS[model_name][1],
            "framework": "torch", "versions": dict(versions), "device": device, "dtype": dtype}


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
