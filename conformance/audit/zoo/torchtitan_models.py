"""Zoo factories of torchtitan (https://github.com/pytorch/torchtitan): tiny models built as its Trainer builds them.

torchtitan's training entry point (``torchtitan/trainer.py`` ``Trainer.__init__``, release 0.3.0) takes the model
config from the model registry (``torchtitan.models.<family>.model_registry(flavor).model``, a ``Decoder.Config``
tree whose every leaf carries its ``param_init``), builds it with ``model_config.build()`` under
``torch.device("meta")``, then ``model.to_empty(device=...)`` and, under ``torch.no_grad()``,
``model.init_weights(buffer_device=None)`` (an alias of ``Module.init_states``: every parameter is drawn by its
``param_init`` entry and every buffer, such as each layer's RoPE ``cache``, is recomputed). A torchtitan model is never
initialized eagerly: its constructor leaves PyTorch's default init in place, so these factories are ``meta`` only.

The builders here produce the registry's ``debugmodel`` flavors shrunk (2-4 layers, dim 64, vocab 256) with the
registry's own helpers (``_build_llama3_layers``, ``_build_qwen3_layers``, ``_build_qwen3_moe_layers`` and the
``_*_INIT`` tables), so the per-parameter init functions are the library's; at the registry's own sizes they produce
the ``debugmodel`` config exactly (``tests/test_zoo_torchtitan.py`` checks that). The RoPE ``max_seq_len`` is set
as ``Decoder.Config.update_from_config`` sets it from ``training.seq_len``.

Nothing here imports torchtitan (or torch) at import time; torchtitan 0.3.0 imports triton when it is imported.
"""

from __future__ import annotations

from functools import partial

from . import ZooFactory

UPSTREAM = "https://github.com/pytorch/torchtitan"
#: torchtitan imports triton at import time (torchtitan/__init__ -> ... -> triton); both must import.
IMPORTS = ("torchtitan", "torchtitan.models.llama3", "triton")


def llama3(n_layers: int = 3, dim: int = 64, n_heads: int = 4, vocab_size: int = 256, max_seq_len: int = 128,
           multiple_of: int = 256, attn_backend: str = "flex"):
    """The llama3 ``debugmodel`` (``torchtitan/models/llama3/__init__.py`` ``_debugmodel``) at a tiny size."""
    return llama3_config(n_layers=n_layers, dim=dim, n_heads=n_heads, vocab_size=vocab_size,
                         max_seq_len=max_seq_len, multiple_of=multiple_of, attn_backend=attn_backend).build()


def llama3_config(*, n_layers: int, dim: int, n_heads: int, vocab_size: int, max_seq_len: int, multiple_of: int = 256,
                  attn_backend: str = "flex"):
    """``_debugmodel``'s ``Llama3Model.Config`` with these sizes (the registry's own init tables)."""
    from torchtitan.models import llama3 as L
    from torchtitan.models.common import ComplexRoPE, Embedding, Linear, RMSNorm, compute_ffn_hidden_dim

    return L.Llama3Model.Config(
        dim=dim,
        vocab_size=vocab_size,
        tok_embeddings=Embedding.Config(num_embeddings=vocab_size, embedding_dim=dim, param_init=L._EMBEDDING_INIT),
        norm=RMSNorm.Config(normalized_shape=dim, param_init=L._NORM_INIT),
        lm_head=Linear.Config(in_features=dim, out_features=vocab_size, param_init=L._output_linear_init(dim)),
        layers=L._build_llama3_layers(
            fuse_qkv=True, n_layers=n_layers, dim=dim, n_heads=n_heads,
            hidden_dim=compute_ffn_hidden_dim(dim, multiple_of=multiple_of),
            rope=ComplexRoPE.Config(dim=dim // n_heads, max_seq_len=max_seq_len, theta=500000, scaling="llama"),
            attn_backend=attn_backend),
    )


def qwen3(n_layers: int = 3, dim: int = 64, n_heads: int = 4, n_kv_heads: int = 2, head_dim: int = 16,
          hidden_dim: int = 192, vocab_size: int = 256, max_seq_len: int = 128, attn_backend: str = "flex"):
    """The dense qwen3 ``debugmodel`` (weight tying, qk-norm; ``torchtitan/models/qwen3/__init__.py``) tiny."""
    return qwen3_config(n_layers=n_layers, dim=dim, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim,
                        hidden_dim=hidden_dim, vocab_size=vocab_size, max_seq_len=max_seq_len,
                        attn_backend=attn_backend).build()


def qwen3_config(*, n_layers: int, dim: int, n_heads: int, n_kv_heads: int, head_dim: int, hidden_dim: int,
                 vocab_size: int, max_seq_len: int, attn_backend: str = "flex"):
    """qwen3 ``_debugmodel``'s ``Qwen3Model.Config`` with these sizes."""
    from torchtitan.models import qwen3 as Q
    from torchtitan.models.common import CosSinRoPE, Embedding, Linear

    return Q.Qwen3Model.Config(
        vocab_size=vocab_size,
        dim=dim,
        norm=Q._qwen3_norm(dim),
        enable_weight_tying=True,
        tok_embeddings=Embedding.Config(num_embeddings=vocab_size, embedding_dim=dim,
                                        param_init=Q._EMBEDDING_SKIP_INIT),
        lm_head=Linear.Config(in_features=dim, out_features=vocab_size, param_init=Q._LINEAR_INIT),
        layers=Q._build_qwen3_layers(
            fuse_qkv=True, n_layers=n_layers, dim=dim, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim,
            hidden_dim=hidden_dim, attn_backend=attn_backend,
            rope=CosSinRoPE.Config(dim=head_dim, max_seq_len=max_seq_len, theta=1000000.0)),
    )


def qwen3_moe(n_layers: int = 2, dim: int = 64, n_heads: int = 4, n_kv_heads: int = 2, head_dim: int = 16,
              moe_hidden_dim: int = 64, num_experts: int = 8, top_k: int = 2, vocab_size: int = 256,
              max_seq_len: int = 128, attn_backend: str = "flex", moe_comm_backend: str = "standard"):
    """The qwen3 ``debugmodel_moe`` (untied, grouped experts, router) tiny."""
    return qwen3_moe_config(n_layers=n_layers, dim=dim, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim,
                            moe_hidden_dim=moe_hidden_dim, num_experts=num_experts, top_k=top_k,
                            vocab_size=vocab_size, max_seq_len=max_seq_len, attn_backend=attn_backend,
                            moe_comm_backend=moe_comm_backend).build()


def qwen3_moe_config(*, n_layers: int, dim: int, n_heads: int, n_kv_heads: int, head_dim: int, moe_hidden_dim: int,
                     num_experts: int, top_k: int, vocab_size: int, max_seq_len: int, attn_backend: str = "flex",
                     moe_comm_backend: str = "standard"):
    """qwen3 ``_debugmodel_moe``'s ``Qwen3Model.Config`` with these sizes."""
    from torchtitan.models import qwen3 as Q
    from torchtitan.models.common import CosSinRoPE, Embedding, Linear

    return Q.Qwen3Model.Config(
        vocab_size=vocab_size,
        dim=dim,
        norm=Q._qwen3_norm(dim),
        tok_embeddings=Embedding.Config(num_embeddings=vocab_size, embedding_dim=dim, param_init=Q._EMBEDDING_INIT),
        lm_head=Linear.Config(in_features=dim, out_features=vocab_size, param_init=Q._LINEAR_INIT),
        layers=Q._build_qwen3_moe_layers(
            fuse_qkv=True, n_layers=n_layers, dim=dim, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim,
            moe_hidden_dim=moe_hidden_dim, num_experts=num_experts, top_k=top_k, attn_backend=attn_backend,
            rope=CosSinRoPE.Config(dim=head_dim, max_seq_len=max_seq_len, theta=1000000.0),
            moe_comm_backend=moe_comm_backend),
    )


# -- the transformers modeling backend (torchtitan/experiments/transformers_modeling_backend) -----------------------

#: Attributes of transformers classes that ``HFTransformerModel.__init__`` replaces process-wide
#: (``_patch_hf_llama_like``, model.py L922-924 of 0.3.0); :func:`hf_llama` and :func:`hf_init_weights` put the
#: originals back so the patch never leaks into other models built in the same process.
_PATCHED = (("transformers.modeling_utils", "PreTrainedModel", "_init_weights"),
            ("transformers.modeling_utils", "PreTrainedModel", "_initialize_weights"),
            ("transformers.models.llama.modeling_llama", "LlamaDecoderLayer", "__init__"))
_ORIGINALS: list = []


def _originals() -> list:
    """``[(class, name, original or None)]``, captured once, before the first backend build patches anything."""
    import importlib

    if not _ORIGINALS:
        for module, cls, name in _PATCHED:
            owner = getattr(importlib.import_module(module), cls)
            _ORIGINALS.append((owner, name, owner.__dict__.get(name)))
    return _ORIGINALS


def _restore() -> None:
    for owner, name, value in _originals():
        if value is not None:
            setattr(owner, name, value)
        elif name in owner.__dict__:
            delattr(owner, name)


def hf_llama(n_layers: int = 2, dim: int = 64, n_heads: int = 4, vocab_size: int = 256, intermediate_size: int = 256,
             seq_len: int = 128):
    """A tiny ``LlamaForCausalLM`` through torchtitan's transformers modeling backend, as its Trainer builds it.

    The backend's ``update_from_config`` reads the Hugging Face config with ``AutoConfig.from_pretrained(hf_model)``;
    ``hf_model`` is a temporary folder holding a tiny ``LlamaConfig``'s ``config.json`` (nothing is downloaded). The
    size overrides are given the way the backend's ``debugmodel`` flavor gives them (``TitanModelConfig``).
    ``intermediate_size`` goes into the Hugging Face config: 0.3.0's ``update_from_config`` means to derive it from an
    overridden ``dim`` but never does (it looks up ``"dim"`` among overrides it stores under the HF name
    ``hidden_size``, model.py L477), so the HF config's value is what the model gets."""
    import shutil
    import tempfile
    import types

    import torch
    from torchtitan.config import DebugConfig, ParallelismConfig, TrainingConfig
    from torchtitan.experiments import transformers_modeling_backend as B
    from transformers import LlamaConfig

    _originals()
    folder = tempfile.mkdtemp(prefix="conformance-hf-llama-")
    try:
        LlamaConfig(hidden_size=dim, intermediate_size=intermediate_size, num_hidden_layers=n_layers,
                    num_attention_heads=n_heads,
                    num_key_value_heads=n_heads, vocab_size=vocab_size, max_position_embeddings=seq_len,
                    architectures=["LlamaForCausalLM"]).save_pretrained(folder)
        config = B.HFTransformerModel.Config(model_config=B.TitanModelConfig(
            dim=dim, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads))
        trainer = types.SimpleNamespace(training=TrainingConfig(seq_len=seq_len), parallelism=ParallelismConfig(),
                                        debug=DebugConfig(), loss=types.SimpleNamespace(), hf_model=folder)
        config.update_from_config(config=trainer)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        model = config.build()
    except BaseException:
        _restore()
        raise
    if torch.empty(0).device.type != "meta":
        _restore()  # an eager build (the audit's reference) needs the patch only while it is constructed
    return model


def hf_init_weights(model) -> None:
    """``model.init_weights(buffer_device=None)`` as ``Trainer.__init__`` calls it, then the transformers classes
    patched by the build are restored."""
    try:
        model.init_weights(buffer_device=None)
    finally:
        _restore()


#: What every entry shares: torchtitan builds on meta only (Trainer.__init__), then init_weights by default.
_titan = partial(ZooFactory, library="torchtitan", device_init=("meta",), init="init_weights", upstream=UPSTREAM)

ENTRIES = [
    _titan(
        name="torchtitan-llama3",
        build="conformance.audit.zoo.torchtitan_models:llama3",
        spec="torchtitan_real_llama3",
        summary="torchtitan 0.3.0 llama3 debugmodel (3 layers, dim 64, vocab 256, fused wqkv): meta build, to_empty, "
                "init_weights(buffer_device=None) as Trainer.__init__ does",
        config={"n_layers": 3, "dim": 64, "n_heads": 4, "vocab_size": 256, "max_seq_len": 128},
        imports=IMPORTS,
    ),
    _titan(
        name="torchtitan-qwen3",
        build="conformance.audit.zoo.torchtitan_models:qwen3",
        spec="torchtitan_real_qwen3",
        intent="torchtitan_real_qwen3_intent",
        summary="torchtitan 0.3.0 dense qwen3 debugmodel (3 layers, dim 64, tied embedding, qk-norm): meta build, "
                "to_empty, init_weights(buffer_device=None)",
        config={"n_layers": 3, "dim": 64, "n_heads": 4, "n_kv_heads": 2, "head_dim": 16, "hidden_dim": 192,
                "vocab_size": 256, "max_seq_len": 128},
        imports=IMPORTS + ("torchtitan.models.qwen3",),
    ),
    _titan(
        name="torchtitan-qwen3-moe",
        build="conformance.audit.zoo.torchtitan_models:qwen3_moe",
        spec="torchtitan_real_qwen3_moe",
        summary="torchtitan 0.3.0 qwen3 debugmodel_moe (2 layers, dim 64, 8 experts top-2): meta build, to_empty, "
                "init_weights(buffer_device=None)",
        config={"n_layers": 2, "dim": 64, "n_heads": 4, "n_kv_heads": 2, "head_dim": 16, "moe_hidden_dim": 64,
                "num_experts": 8, "top_k": 2, "vocab_size": 256, "max_seq_len": 128},
        imports=IMPORTS + ("torchtitan.models.qwen3",),
    ),
    _titan(
        name="torchtitan-hf-llama",
        build="conformance.audit.zoo.torchtitan_models:hf_llama",
        spec="torchtitan_real_hf_llama",
        intent="torchtitan_real_hf_llama_intent",
        summary="torchtitan 0.3.0 transformers modeling backend, tiny LlamaForCausalLM (2 layers, dim 64): meta "
                "build, to_empty, init_weights(buffer_device=None); checks the rotary inv_freq is recomputed",
        config={"n_layers": 2, "dim": 64, "n_heads": 4, "vocab_size": 256, "intermediate_size": 256, "seq_len": 128},
        init="conformance.audit.zoo.torchtitan_models:hf_init_weights",
        imports=IMPORTS + ("transformers", "torchtitan.experiments.transformers_modeling_backend"),
    ),
]
