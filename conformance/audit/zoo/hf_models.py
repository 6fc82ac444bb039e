"""Hugging Face ``transformers`` causal LMs, built from a tiny config the way users build them.

Every builder is ``AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **tiny))``: the library's own
construction path (``__init__`` then ``post_init``, which runs ``PreTrainedModel.init_weights``). Nothing is
downloaded (no ``from_pretrained``, no hub access). ``tiny`` (:data:`TINY`) shrinks the default config of each
family to 2 layers, hidden 64, 4 heads (2 key/value heads where the family has grouped-query attention),
vocabulary 256; keyword arguments override it (``hf_models.llama(num_hidden_layers=4)``). Token ids that the
default config puts outside a 256-token vocabulary (GPT-2's and OLMo's bos/eos) are moved inside it, so the
config validates without warnings; the padding id (which init zeroes) keeps its default.

Meta path (``device_init="meta"``): the model is built under ``torch.device("meta")``, materialized with
``to_empty`` and then initialized with ``model.init_weights()``, the library's own entry point. In transformers 5.x
``PreTrainedModel.init_weights`` skips initialization while the meta device is the default device and otherwise runs
``initialize_weights`` (``_init_weights`` on every module not flagged ``_is_hf_initialized``, which also recomputes
the rotary ``inv_freq``) and re-ties the embeddings (huggingface/transformers@v5.24.0
src/transformers/modeling_utils.py L3107-3117, L2370-2423, L2357-2368).

In transformers 4.x the same call writes nothing, a finding of the library that is reported, not worked around:
``post_init`` runs ``init_weights`` -> ``initialize_weights`` on the meta tensors as well and flags every module
``_is_hf_initialized`` (v4.57.6 modeling_utils.py L2103-2111, L3640-3655, L2946-2953), so after ``to_empty`` every
module is skipped; and 4.x ``_init_weights`` (L2910-2944) never recomputes buffers, so even
``model.apply(model._init_weights)`` leaves rotary ``inv_freq`` (and GPT-2's ``attn.bias`` mask) unwritten. 5.x
added buffers to ``_init_weights`` (huggingface/transformers#42309).

Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

from . import ZooFactory

UPSTREAM = "https://github.com/huggingface/transformers"

#: Shared tiny sizes (names of the Llama-style configs).
_BASE = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             max_position_embeddings=64)
_GQA = dict(_BASE, num_key_value_heads=2)

#: Tiny config of each model type (overrides of ``AutoConfig.for_model``'s defaults).
TINY: dict[str, dict] = {
    "gpt2": dict(vocab_size=256, n_embd=64, n_layer=2, n_head=4, n_positions=64, bos_token_id=255, eos_token_id=255),
    "llama": dict(_GQA),
    "mistral": dict(_GQA, head_dim=16),
    "qwen2": dict(_GQA),
    "qwen3": dict(_GQA, head_dim=16),
    "gemma": dict(_GQA, head_dim=16),
    "gpt_neox": dict(_BASE),
    "opt": dict(vocab_size=256, hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=64),
    "phi": dict(_BASE),
    "olmo": dict(_BASE, eos_token_id=255),
    "olmo2": dict(_BASE, eos_token_id=255),
}


def causal_lm(model_type: str, **overrides):
    """``AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **(TINY[model_type] | overrides)))``
    (:func:`conformance.backends.torch.models.hf_causal_lm` with the tiny sizes)."""
    from conformance.backends.torch.models import hf_causal_lm

    return hf_causal_lm(model_type, **{**TINY.get(model_type, {}), **overrides})


def gpt2(**overrides):
    """GPT2LMHeadModel (Conv1D projections, LayerNorm, lm_head tied to wte)."""
    return causal_lm("gpt2", **overrides)


def llama(**overrides):
    """LlamaForCausalLM (RMSNorm, SwiGLU, RoPE, untied head)."""
    return causal_lm("llama", **overrides)


def mistral(**overrides):
    """MistralForCausalLM."""
    return causal_lm("mistral", **overrides)


def qwen2(**overrides):
    """Qwen2ForCausalLM (q/k/v biases)."""
    return causal_lm("qwen2", **overrides)


def qwen3(**overrides):
    """Qwen3ForCausalLM (per-head q_norm/k_norm RMSNorm)."""
    return causal_lm("qwen3", **overrides)


def gemma(**overrides):
    """GemmaForCausalLM (zero-centred RMSNorm, scaled embedding, head tied to the embedding, padding id 0)."""
    return causal_lm("gemma", **overrides)


def gpt_neox(**overrides):
    """GPTNeoXForCausalLM (fused query_key_value, LayerNorm with bias, untied embed_out)."""
    return causal_lm("gpt_neox", **overrides)


def opt(**overrides):
    """OPTForCausalLM (init_std, learned positions, head tied to the embedding, padding id 1)."""
    return causal_lm("opt", **overrides)


def phi(**overrides):
    """PhiForCausalLM (LayerNorm, biased projections and lm_head)."""
    return causal_lm("phi", **overrides)


def olmo(**overrides):
    """OlmoForCausalLM (non-parametric LayerNorm, padding id 1)."""
    return causal_lm("olmo", **overrides)


def olmo2(**overrides):
    """Olmo2ForCausalLM (RMSNorm after attention/MLP, q_norm/k_norm over the full width, padding id 1)."""
    return causal_lm("olmo2", **overrides)


_SUMMARIES = {
    "gpt2": "GPT-2: Conv1D/Embedding N(0, initializer_range), c_proj N(0, initializer_range/sqrt(2 n_layer)), tied",
    "llama": "Llama: Linear/Embedding N(0, initializer_range), RMSNorm 1, rotary inv_freq recomputed",
    "mistral": "Mistral: Linear/Embedding N(0, initializer_range), RMSNorm 1",
    "qwen2": "Qwen2: Linear/Embedding N(0, initializer_range), q/k/v biases 0, RMSNorm 1",
    "qwen3": "Qwen3: Linear/Embedding N(0, initializer_range), RMSNorm (incl. q_norm/k_norm) 1",
    "gemma": "Gemma: Linear/Embedding N(0, initializer_range), zero-centred RMSNorm 0, padding row 0, tied head",
    "gpt_neox": "GPT-NeoX: Linear/Embedding N(0, initializer_range), biases 0, LayerNorm 1/0",
    "opt": "OPT: Linear/Embedding N(0, init_std), biases 0, LayerNorm 1/0, padding row 0, tied head",
    "phi": "Phi: Linear/Embedding N(0, initializer_range), biases 0 (incl. lm_head), LayerNorm 1/0",
    "olmo": "OLMo: Linear/Embedding N(0, initializer_range), non-parametric LayerNorm, padding row 0",
    "olmo2": "OLMo 2: Linear/Embedding N(0, initializer_range), RMSNorm 1, padding row 0",
}


def _entry(model_type: str) -> ZooFactory:
    name = model_type.replace("_", "-")
    return ZooFactory(
        name=f"hf-{name}", library="transformers", build=f"{__name__}:{model_type}", spec=f"hf_{model_type}",
        summary=_SUMMARIES[model_type] + "; AutoModelForCausalLM.from_config, meta: to_empty + init_weights()",
        intent=_INTENTS.get(model_type), device_init=("eager", "meta"), init="init_weights", upstream=UPSTREAM)


#: Intent specs (kind intent) where the library states an init its code does not follow (see each spec's sources).
#: Every family: the config docstring of initializer_range (init_std for OPT) says "truncated_normal_initializer";
#: the code draws an untruncated normal (huggingface/transformers#38).
_INTENTS: dict[str, str] = {m: f"hf_{m}_intent" for m in TINY}

ENTRIES: list[ZooFactory] = [_entry(m) for m in TINY]
