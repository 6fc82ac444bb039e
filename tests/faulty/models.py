"""Faulty models the init audit must catch, each reproducing a published bug class.

Factories (``tests.faulty.models:<name>``), all built from the reference models in
:mod:`conformance.backends.torch.models`:

* :func:`litgpt_reset_skipped` - LitGPT #1150 (fixed by PR #1162): the model is built under an empty-init
  context (``torch.nn.init`` a no-op) and ``initialize_weights`` installs the per-module init functions but never
  calls ``reset_parameters``; nothing is ever initialized.
* :func:`init_noop_empty_init` - GPT-2 whose init function runs inside an empty-init context, so every
  ``torch.nn.init`` call is a no-op and the parameters keep the torch constructor defaults.
* :func:`depth_off_by_one` - torchtitan depth init with layers numbered from 1:
  0.02/sqrt(2*(layer_id+2)) instead of 0.02/sqrt(2*(layer_id+1)).
* :func:`residual_scaling_missing` - GPT-2 without the c_proj.weight rescaling (0.02 instead of 0.02/sqrt(2*n_layer)).
* :func:`trunc_bounds_absolute` - torchtitan output layer truncated at absolute -+3 instead of -+3 std.
* :func:`rope_not_recomputed` - torchtitan #3775: init_weights does not recompute the non-persistent RoPE buffer,
  so after meta-device materialization it holds whatever ``to_empty`` left.
* :func:`tie_lost_after_meta` - GPT-2 whose init never re-ties lm_head/wte after ``to_empty``.
* :func:`reseeded_layers` - every layer initialized after reseeding the RNG: identical layers.
"""

from __future__ import annotations

import functools
import math

import torch
from conformance.backends.torch import models as tm
from torch.overrides import TorchFunctionMode


class EmptyInit(TorchFunctionMode):
    """Like an ``empty_init`` context: every ``torch.nn.init`` function returns its tensor untouched."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init":
            return kwargs["tensor"] if "tensor" in kwargs else args[0]
        return func(*args, **kwargs)


def litgpt_reset_skipped(**config):
    """LitGPT #1150: built under empty init; initialize_weights sets reset_parameters but nobody calls it."""
    config.setdefault("naming", "litgpt")
    with EmptyInit():
        model = tm.llama(**config)
    c = model.config

    def init_weights():
        def init(module, std):
            torch.nn.init.normal_(module.weight, mean=0.0, std=std)

        for mod in model.modules():  # pretrain.initialize_weights: install, then (bug) never call
            if isinstance(mod, (torch.nn.Embedding, torch.nn.Linear)):
                mod.reset_parameters = functools.partial(init, mod, std=math.sqrt(2.0 / 5 / c.n_embd))

    model.init_weights = init_weights
    return model


def init_noop_empty_init(**config):
    """GPT-2 whose init runs inside an empty-init context: every nn.init call is a no-op, so the parameters keep
    the torch constructor defaults. (GPT-2 on purpose: in torch 2.13 ``trunc_normal_`` has no torch-function
    hook, so a TorchFunctionMode-based empty init does not stop it; torchtitan-style init would escape.)"""
    model = tm.gpt2(**config)
    real = model.init_weights

    def init_weights():
        with EmptyInit():
            real()

    model.init_weights = init_weights
    return model


@functools.cache
def _classes():
    Llama, GPT2 = tm.llama_class(), tm.gpt2_class()

    class DepthOffByOne(Llama):
        def layer_std(self, layer_id):
            return 0.02 / (2 * (layer_id + 2)) ** 0.5  # layers numbered from 1

    class AbsoluteBounds(Llama):
        def output_bounds(self, std):
            return -3.0, 3.0  # trunc_normal_(a=-3, b=3): absolute, not -+3 std

    class RopeNotRecomputed(Llama):
        def _register_rope(self, table):
            if not hasattr(self, "freqs_cis"):  # only in __init__; init_weights leaves the buffer alone
                super()._register_rope(table)

    class Reseeded(Llama):
        def _init_torchtitan(self):
            for block in self.blocks():
                torch.manual_seed(1234)
                for role in ("q", "k", "v", "gate"):
                    torch.nn.init.trunc_normal_(block.mod(role).weight, mean=0.0, std=0.02)
                for role in ("o", "down", "up"):
                    torch.nn.init.trunc_normal_(block.mod(role).weight, std=self.layer_std(block.layer_id))
            torch.nn.init.normal_(self.mod("embed").weight)
            std = self.config.dim ** -0.5
            torch.nn.init.trunc_normal_(self.mod("head").weight, std=std, a=-3 * std, b=3 * std)

    class NoResidualScaling(GPT2):
        def scale_residual(self, std):
            pass  # c_proj.weight keeps the plain 0.02

    class NoRetie(GPT2):
        def tie_weights(self):
            pass

    return dict(DepthOffByOne=DepthOffByOne, AbsoluteBounds=AbsoluteBounds, RopeNotRecomputed=RopeNotRecomputed,
                Reseeded=Reseeded, NoResidualScaling=NoResidualScaling, NoRetie=NoRetie)


def depth_off_by_one(**config):
    return _classes()["DepthOffByOne"](tm.LlamaConfig(**config))


def trunc_bounds_absolute(**config):
    return _classes()["AbsoluteBounds"](tm.LlamaConfig(**config))


def rope_not_recomputed(**config):
    return _classes()["RopeNotRecomputed"](tm.LlamaConfig(**config))


def reseeded_layers(**config):
    return _classes()["Reseeded"](tm.LlamaConfig(**config))


def residual_scaling_missing(**config):
    return _classes()["NoResidualScaling"](tm.GPT2Config(**config))


def tie_lost_after_meta(**config):
    return _classes()["NoRetie"](tm.GPT2Config(**config))


def raising_factory(**config):
    """A factory that raises (bad input test)."""
    raise RuntimeError(f"cannot build with {config}")
