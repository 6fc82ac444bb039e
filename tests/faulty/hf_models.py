"""Tiny Hugging Face ``PreTrainedModel`` subclasses, each with one init bug the spec-free scan must flag.

All share :class:`ToyConfig` (vocabulary 128, hidden 64, 2 layers, ``tie_word_embeddings``) and the layout of
:class:`ToyModel` (``embed``, ``layers.N.proj``/``norm``, ``lm_head`` tied to ``embed``), whose ``_init_weights``
is the library's usual one (``normal(0, 0.02)`` for Linear and Embedding weights, zero biases, unit norms). The
faulty ones, and the check of :mod:`conformance.audit.hf_scan` each must trip:

* :class:`MissedModuleModel` (a): a custom module type (``ScaledLinear``, torch's Linear default init in its own
  ``reset_parameters``) that ``_init_weights`` does not know: its weight keeps the torch default. (Its meta path
  leaves it unwritten too, so check b also flags it.)
* :class:`LateModuleModel` (a, the two-sample and the exact branch): an ``nn.Linear`` created after ``post_init()``:
  the model's ``_init_weights`` would give its weight ``normal(0, 0.02)`` and its bias zeros, ``from_config`` leaves
  them at torch's ``kaiming_uniform(a=sqrt 5)`` / ``uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
* :class:`MetaUnwrittenModel` (b): a per-layer scale set in the constructor (``0.5``) that ``_init_weights`` never
  writes: fine eagerly, never written after meta + ``to_empty`` + ``init_weights``.
* :class:`CopiedLayerModel` (c): layer 1 is a copy of layer 0 (``load_state_dict`` after ``post_init``).
* :class:`MetaUntiedModel` (d): ties ``lm_head`` to ``embed`` in the constructor only and overrides ``init_weights``
  without ``tie_weights``: aliased after ``from_config``, two tensors after the meta path.
* :class:`StaleRopeModel` (e): a rotary module whose non-persistent ``inv_freq`` is computed in the constructor and
  never recomputed by ``_init_weights`` (no ``original_inv_freq``), so after meta it is garbage.

Importing this module imports torch and transformers.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init


class ToyConfig(PretrainedConfig):
    model_type = "hf_scan_toy"
    vocab_size: int = 128
    hidden_size: int = 64
    num_hidden_layers: int = 2
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True


class ToyNorm(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class ToyBlock(nn.Module):
    def __init__(self, config: ToyConfig):
        super().__init__()
        self.norm = ToyNorm(config.hidden_size)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x):
        return x + self.proj(self.norm(x))


class ToyPreTrainedModel(PreTrainedModel):
    config_class = ToyConfig
    config: ToyConfig
    base_model_prefix = "toy"

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, ToyNorm):
            init.ones_(module.weight)


class ToyModel(ToyPreTrainedModel):
    """The correct toy: every check passes."""

    _tied_weights_keys = {"lm_head.weight": "embed.weight"}
    block = ToyBlock

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([self.block(config) for _ in range(config.num_hidden_layers)])
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, ids):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(x)


# -- a: a custom module type _init_weights misses ---------------------------------------------------------------

class ScaledLinear(nn.Module):
    """A Linear-like module with torch's own Linear default init (``kaiming_uniform_(a=sqrt(5))``)."""

    def __init__(self, fan_in: int, fan_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(fan_out, fan_in))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):
        return x @ self.weight.t()


class GatedBlock(ToyBlock):
    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.gate = ScaledLinear(config.hidden_size, config.hidden_size)


class MissedModuleModel(ToyModel):
    block = GatedBlock


# -- a: a Linear created after post_init ------------------------------------------------------------------------

class LateModuleModel(ToyModel):
    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.adapter = nn.Linear(config.hidden_size, config.hidden_size)  # after post_init: never initialized


# -- b: a constructor-only value the meta path never writes -----------------------------------------------------

class ScaledBlock(ToyBlock):
    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.scale = nn.Parameter(torch.full((config.hidden_size,), 0.5))


class MetaUnwrittenModel(ToyModel):
    block = ScaledBlock


# -- c: a copied layer ----------------------------------------------------------------------------------------

class CopiedLayerModel(ToyModel):
    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.layers[1].load_state_dict(self.layers[0].state_dict())


# -- d: a tie that only the constructor makes -------------------------------------------------------------------

class MetaUntiedModel(ToyModel):
    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.lm_head.weight = self.embed.weight

    def init_weights(self):
        if self.embed.weight.device.type != "meta":
            self.initialize_weights()  # a remote-code style override that forgets tie_weights()


# -- e: a rotary buffer not recomputed after meta ---------------------------------------------------------------

class ToyRope(nn.Module):
    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)


class StaleRopeModel(ToyModel):
    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.rope = ToyRope(config.hidden_size)


FAULTY = {
    "a": (MissedModuleModel, LateModuleModel),
    "b": (MetaUnwrittenModel,),
    "c": (CopiedLayerModel,),
    "d": (MetaUntiedModel,),
    "e": (StaleRopeModel,),
}
