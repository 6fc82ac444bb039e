"""Zoo factories of LitGPT (``litgpt.GPT``): tiny llama-, pythia- and gemma-style models, initialized as
``litgpt/pretrain.py`` initializes a model it pretrains from scratch.

``pretrain.py`` (``fit``/``main``) builds ``GPT(config)`` under ``fabric.init_module(empty_init=True)`` and then
calls ``initialize_weights(fabric, model, n_layer=config.n_layer, n_embd=config.n_embd)``, which installs
``reset_parameters`` overrides (every ``nn.Embedding``/``nn.Linear``: N(0, sqrt(2 / (5 * n_embd))), zero bias; the
``proj`` of every ``LLaMAMLP`` and ``CausalSelfAttention``: N(0, 1 / sqrt(n_embd) / n_layer)) and then runs
``litgpt.utils.reset_parameters(model)`` unless the strategy is FSDP. The builders here do the same: each builds
``GPT(Config.from_name(<real model>, <shrunk sizes>))`` and calls :func:`initialize_weights`; on the meta device
the builder skips the call and the factory's ``init`` (this module's :func:`initialize_weights`) runs it after
``to_empty``, so eager and meta judge the same code path.

Which spec judges which config: ``litgpt_pretrain`` for the ``LLaMAMLP`` family (``LLaMAMLP``, its subclass
``GemmaMLP``, ``LLaMAMoE`` experts), whose ``mlp.proj`` is depth-scaled; ``litgpt_pretrain_neox`` for
``GptNeoxMLP`` configs (pythia), whose ``mlp.proj`` keeps the general std because ``initialize_weights`` only
depth-scales the ``proj`` of ``(LLaMAMLP, CausalSelfAttention)``. A spec rule cannot select a parameter by the
class of its owner's *parent* (``module`` matches the owning ``Linear``), so the split is by spec, per config.
The intent specs (the GPT-NeoX paper that ``initialize_weights`` cites) are ``litgpt_pretrain_intent`` and, for
Gemma's unit-offset RMSNorm, ``litgpt_pretrain_gemma_intent``.

Importing this module imports neither torch nor litgpt (``litgpt.pretrain`` imports lightning: ~10 s).
"""

from __future__ import annotations

from . import ZooFactory

UPSTREAM = "https://github.com/Lightning-AI/litgpt"
#: Sizes every entry shares (2-4 layers, n_embd 64-128, vocabulary 512).
SMALL = {"n_layer": 4, "n_embd": 128, "n_head": 4, "vocab_size": 512, "block_size": 64}


class _SingleDevice:
    """The part of ``lightning.Fabric`` that ``initialize_weights`` reads: ``fabric.strategy``, checked with
    ``isinstance(fabric.strategy, FSDPStrategy)``; anything else means "call ``reset_parameters(model)`` now" (the
    single-device path of ``pretrain.py``)."""

    strategy = None


def initialize_weights(model) -> None:
    """``litgpt.pretrain.initialize_weights(fabric, model, n_layer, n_embd)`` of the installed release, on one
    device (no FSDP), with ``n_layer``/``n_embd`` from ``model.config`` as ``pretrain.py`` passes them."""
    from litgpt.pretrain import initialize_weights as init

    init(_SingleDevice(), model, n_layer=model.config.n_layer, n_embd=model.config.n_embd)


def _gpt(name: str, **overrides):
    """``GPT(Config.from_name(name, **overrides))``, initialized by :func:`initialize_weights` unless on meta."""
    from litgpt import GPT, Config

    config = Config.from_name(name, **{**overrides, "padded_vocab_size": overrides["vocab_size"]})
    model = GPT(config)
    if model.lm_head.weight.device.type != "meta":  # on meta the factory's init runs it after to_empty
        initialize_weights(model)
    return model


def llama(n_layer: int = 4, n_embd: int = 128, n_head: int = 4, n_query_groups: int = 2,
          intermediate_size: int = 256, vocab_size: int = 512, block_size: int = 64):
    """TinyLlama-1.1B's config (``tiny-llama-1.1b``: RMSNorm, LLaMAMLP, GQA, no bias) shrunk."""
    return _gpt("tiny-llama-1.1b", n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_query_groups=n_query_groups,
                intermediate_size=intermediate_size, vocab_size=vocab_size, block_size=block_size)


def pythia(n_layer: int = 4, n_embd: int = 128, n_head: int = 4, intermediate_size: int = 512,
           vocab_size: int = 512, block_size: int = 64):
    """Pythia-14m's config (``pythia-14m``: LayerNorm with bias, GptNeoxMLP, parallel residual, biases) shrunk."""
    return _gpt("pythia-14m", n_layer=n_layer, n_embd=n_embd, n_head=n_head, intermediate_size=intermediate_size,
                vocab_size=vocab_size, block_size=block_size)


def gemma(n_layer: int = 4, n_embd: int = 128, n_head: int = 4, intermediate_size: int = 256,
          vocab_size: int = 512, block_size: int = 64):
    """Gemma-2b's config (``Gemma-2b``: RMSNorm with unit offset, GemmaMLP, MQA, scaled embeddings) shrunk; the
    head size follows n_embd / n_head (Gemma-2b's own is 256)."""
    return _gpt("Gemma-2b", n_layer=n_layer, n_embd=n_embd, n_head=n_head, head_size=n_embd // n_head,
                intermediate_size=intermediate_size, vocab_size=vocab_size, block_size=block_size)


def _entry(name: str, fn: str, spec: str, intent: str, summary: str) -> ZooFactory:
    return ZooFactory(name=name, library="litgpt", build=f"{__name__}:{fn}", spec=spec, intent=intent,
                      summary=summary, config=dict(SMALL), device_init=("eager", "meta"),
                      init=f"{__name__}:initialize_weights", upstream=UPSTREAM)


ENTRIES = [
    _entry("litgpt-llama", "llama", "litgpt_pretrain", "litgpt_pretrain_intent",
           "litgpt.GPT(tiny-llama-1.1b config, 4 layers, n_embd 128), pretrain.initialize_weights"),
    _entry("litgpt-pythia", "pythia", "litgpt_pretrain_neox", "litgpt_pretrain_intent",
           "litgpt.GPT(pythia-14m config, 4 layers, n_embd 128, GptNeoxMLP), pretrain.initialize_weights"),
    _entry("litgpt-gemma", "gemma", "litgpt_pretrain", "litgpt_pretrain_gemma_intent",
           "litgpt.GPT(Gemma-2b config, 4 layers, n_embd 128, GemmaMLP), pretrain.initialize_weights"),
]
