"""Zoo factories of OLMo (``ai2-olmo``, module ``olmo``; https://github.com/allenai/OLMo) and OLMo-core: tiny models.

OLMo's training script (``scripts/train.py`` of release 0.6.0) builds ``OLMo(cfg.model)``; the official configs set
``init_device: meta``, so ``OLMo.__init__`` skips ``reset_parameters`` (``olmo/model.py`` L1137-1139), FSDP's
``param_init_fn`` only calls ``module.to_empty(...)`` (train.py L171-174) and the script then calls
``olmo_model.reset_parameters()`` once (L217-219). With ``init_device`` unset (``None``, how a single-device user builds
it), ``OLMo.__init__`` calls ``reset_parameters()`` itself. The builder here does both: under the meta device
(``conformance ... --device-init meta``) it sets ``init_device="meta"`` like the configs and the factory's ``init``
(:func:`reset_parameters`) plays the script's call; eagerly it leaves ``init_device`` unset.

The three entries are shrunk from OLMo's own configs: ``olmo-mitchell`` from ``configs/official-0724/OLMo-7B.yaml``
(sequential block, no biases, non-affine LayerNorm, untied, ``init_fn: mitchell``), ``olmo-normal`` from
``configs/official-1124/OLMo2-7B-stage1.yaml`` (RMSNorm with affine, qk-norm, ``norm_after``, ``init_fn: normal``,
``init_std: 0.02``, ``init_cutoff_factor: 3``) and ``olmo-full-megatron`` (no official config uses it: the llama
block, biases, affine LayerNorm with bias and tied embeddings, ``init_fn: full_megatron``).

ai2-olmo 0.6.0 pins ``numpy<2``; in an environment that also needs numpy 2 (torchtitan's datasets/pandas, ml_dtypes)
pip resolves ``ai2-olmo`` to the old 0.2.2 instead. 0.6.0 installed with ``--no-deps`` next to numpy 2 imports and
builds (its model code does not use numpy).

OLMo-core (``ai2-olmo-core``, module ``olmo_core``, https://github.com/allenai/OLMo-core), the package OLMo 2 and 3
train with, has two entries: ``olmo-core-olmo2`` (its ``TransformerConfig.olmo2_14M`` preset, ``InitMethod.normal``)
and ``olmo-core-llama-init`` (the same preset with ``InitMethod.llama``), built with ``build(init_device="meta")`` and
initialized with ``init_weights`` as its train module does. ai2-olmo 0.6.0 pins ``ai2-olmo-core==0.1.0``, whose
``olmo_core`` has no ``nn.transformer``: where OLMo 0.6.0 is installed the OLMo-core entries report unavailable (the
import probe of ``olmo_core.nn.transformer`` fails), and OLMo-core 3.x needs an environment of its own.
Nothing here imports olmo or olmo_core (or torch) at import time.
"""

from __future__ import annotations

from functools import partial

from . import ZooFactory

UPSTREAM = "https://github.com/allenai/OLMo"
CORE_UPSTREAM = "https://github.com/allenai/OLMo-core"
IMPORTS = ("olmo", "olmo.model", "olmo.config")

#: ModelConfig fields whose values are enums (given here as their string values).
_ENUMS = {"init_fn": "InitFnType", "block_type": "BlockType", "layer_norm_type": "LayerNormType",
          "activation_type": "ActivationType"}


def olmo(**config):
    """``OLMo(ModelConfig(**config))`` with ``init_device="meta"`` when built under the meta device (as OLMo's
    configs do), unset otherwise (``OLMo.__init__`` then runs ``reset_parameters`` itself)."""
    import torch
    from olmo import config as C
    from olmo.model import OLMo

    values = dict(config)
    for key, enum in _ENUMS.items():
        if key in values:
            values[key] = getattr(C, enum)(values[key])
    values["init_device"] = "meta" if torch.empty(0).device.type == "meta" else None
    return OLMo(C.ModelConfig(**values))


def reset_parameters(model) -> None:
    """What ``scripts/train.py`` does after FSDP's ``to_empty``: ``olmo_model.reset_parameters()`` (L217-219)."""
    model.reset_parameters()


#: Shared by every entry: tiny sizes, no dropout, no flash attention, RoPE (all official configs use it).
_TINY = {"d_model": 64, "n_heads": 4, "n_layers": 3, "mlp_hidden_size": 256, "vocab_size": 500,
         "embedding_size": 512, "max_sequence_length": 128, "rope": True, "flash_attention": False,
         "attention_dropout": 0.0, "residual_dropout": 0.0, "embedding_dropout": 0.0, "activation_type": "swiglu",
         "eos_token_id": 0, "pad_token_id": 1}

#: configs/official-0724/OLMo-7B.yaml, shrunk.
MITCHELL = {**_TINY, "block_type": "sequential", "include_bias": False, "layer_norm_type": "default",
            "layer_norm_with_affine": False, "bias_for_layer_norm": False, "attention_layer_norm": False,
            "attention_layer_norm_with_affine": False, "weight_tying": False, "init_fn": "mitchell"}
#: configs/official-1124/OLMo2-7B-stage1.yaml, shrunk.
NORMAL = {**_TINY, "block_type": "sequential", "include_bias": False, "layer_norm_type": "rms",
          "layer_norm_with_affine": True, "layer_norm_eps": 1e-6, "bias_for_layer_norm": False,
          "attention_layer_norm": True, "attention_layer_norm_with_affine": True, "norm_after": True,
          "weight_tying": False, "rope_theta": 500000, "init_fn": "normal", "init_std": 0.02,
          "init_cutoff_factor": 3.0}
#: full_megatron on the llama block with biases, affine LayerNorm (with bias) and tied embeddings.
FULL_MEGATRON = {**_TINY, "block_type": "llama", "include_bias": True, "layer_norm_type": "default",
                 "layer_norm_with_affine": True, "weight_tying": True, "init_fn": "full_megatron",
                 "init_std": 0.02}

# -- OLMo-core (ai2-olmo-core >= 2, the package OLMo 2 and 3 train with; module olmo_core) -------------------------

CORE_IMPORTS = ("olmo_core", "olmo_core.nn.transformer")


def olmo_core(size: str = "olmo2_14M", vocab_size: int = 256, n_layers: int = 2, init_method: str = "normal"):
    """``TransformerConfig.<size>(vocab_size, n_layers=..., init_method=...).build(init_device=...)``: OLMo-core's
    own presets (``olmo2_14M``: d_model 128, 8 heads, qk-norm, reordered norm), built on the meta device as its train
    scripts do (``model_config.build(init_device="meta")``) or on the CPU."""
    import torch
    from olmo_core.nn.transformer import InitMethod, TransformerConfig

    config = getattr(TransformerConfig, size)(vocab_size=vocab_size, n_layers=n_layers,
                                              init_method=InitMethod(init_method))
    return config.build(init_device="meta" if torch.empty(0).device.type == "meta" else "cpu")


def olmo_core_init_weights(model) -> None:
    """``model.init_weights(max_seq_len=..., device=...)`` as ``parallelize_model`` calls it (``to_empty``, every
    module's ``reset_parameters``, then the ``InitMethod`` draws from a generator seeded with ``init_seed``)."""
    import torch

    model.init_weights(max_seq_len=128, device=torch.device("cpu"))


#: What every entry of one package shares: its library, builder, modes, init and imports.
_olmo = partial(ZooFactory, library="ai2-olmo", build="conformance.audit.zoo.olmo_models:olmo",
                device_init=("eager", "meta"), init="conformance.audit.zoo.olmo_models:reset_parameters",
                imports=IMPORTS, upstream=UPSTREAM)
_olmo_core = partial(ZooFactory, library="ai2-olmo-core", build="conformance.audit.zoo.olmo_models:olmo_core",
                     device_init=("meta",), init="conformance.audit.zoo.olmo_models:olmo_core_init_weights",
                     imports=CORE_IMPORTS, upstream=CORE_UPSTREAM)

ENTRIES = [
    _olmo(
        name="olmo-mitchell",
        spec="olmo_real_mitchell",
        summary="OLMo 0.6.0 OLMo-7B config (3 layers, d_model 64, vocab 512), init_fn mitchell: OLMo(ModelConfig) "
                "eager (reset_parameters in __init__) or init_device=meta, to_empty, reset_parameters() (train.py)",
        config=MITCHELL,
    ),
    _olmo(
        name="olmo-normal",
        spec="olmo_real_normal",
        summary="OLMo 0.6.0 OLMo2-7B stage-1 config (3 layers, d_model 64, RMSNorm, qk-norm), init_fn normal std 0.02 "
                "cutoff 3: eager or init_device=meta + reset_parameters()",
        config=NORMAL,
    ),
    _olmo(
        name="olmo-full-megatron",
        spec="olmo_real_full_megatron",
        intent="olmo_real_full_megatron_intent",
        summary="OLMo 0.6.0 llama block with biases and tied embeddings (3 layers, d_model 64, vocab 512), init_fn "
                "full_megatron, init_cutoff_factor unset: eager or init_device=meta + reset_parameters()",
        config=FULL_MEGATRON,
    ),
    _olmo_core(
        name="olmo-core-olmo2",
        spec="olmo_core_olmo2",
        summary="OLMo-core 3.0.0 TransformerConfig.olmo2_14M (2 layers, d_model 128, vocab 256), InitMethod.normal: "
                "build(init_device=meta), init_weights(max_seq_len, device)",
        config={"size": "olmo2_14M", "vocab_size": 256, "n_layers": 2, "init_method": "normal"},
    ),
    _olmo_core(
        name="olmo-core-llama-init",
        spec="olmo_core_llama",
        intent="olmo_core_llama_intent",
        summary="OLMo-core 3.0.0 olmo2_14M (2 layers, d_model 128) with InitMethod.llama (depth-scaled output "
                "layers): build(init_device=meta), init_weights",
        config={"size": "olmo2_14M", "vocab_size": 256, "n_layers": 2, "init_method": "llama"},
    ),
]
