"""Hugging Face ``transformers`` models turned into plain data for the spec-free init scan.

Framework code only: this module builds models and reads tensors; every statistic and verdict lives in
:mod:`conformance.audit.hf_scan`, which never imports torch. Importing this module imports neither torch nor
transformers.

What :func:`probe` builds for one ``PreTrainedModel`` class and config (each build seeded, deterministic):

* ``eager`` (:class:`ModelSnapshot`): the model as users build it, ``cls._from_config(config)`` (what
  ``AutoModelForCausalLM.from_config`` calls, with the text config of a VLM config: :func:`model_class`), with
  every floating tensor that ``torch.empty`` / ``torch.empty_like`` allocates during construction filled with
  :data:`POISON` first, so an element nobody writes is seen. ``eager2``: the same with seed + 1 (a parameter
  equal in both is deterministic, e.g. ``ones`` or ``log(arange)``).
* ``meta``: the library's meta-device path: construction under ``torch.device("meta")`` (``post_init`` then skips
  initialization: huggingface/transformers@v5.24.0 src/transformers/modeling_utils.py L3107-3117), ``to_empty``, every
  floating parameter and buffer filled with :data:`POISON`, then ``model.init_weights()``, i.e.
  ``initialize_weights()`` (``smart_apply`` of ``_initialize_weights`` -> ``_init_weights``, L2370-2423) followed by
  ``tie_weights(recompute_mapping=False)``: the same two steps ``from_pretrained`` runs on keys missing from a
  checkpoint (``_finalize_model_loading`` -> ``_initialize_missing_keys`` -> ``initialize_weights``, then
  ``tie_weights``; L4605-4628, L4889-4923). Fails softly: ``meta_error`` says why.
* ``model_draws``: what the model's own ``_init_weights`` writes: a deep copy of the eager model, declared ties
  untied (as they are while ``post_init`` initializes), every floating parameter set to :data:`POISON`, every
  ``_is_hf_initialized`` flag cleared, ``initialize_weights()`` run under seed + 1 + i, then ``tie_weights``. An
  element still poison-derived was not written by ``_init_weights``.
* ``default_draws``: the module defaults: the model constructed with ``initialize_weights`` patched to do nothing
  (so each module keeps what its constructor / torch ``reset_parameters`` gave it), seed + 1001 + i.
* ``expected_ties``: ``{target: source}`` from ``get_expanded_tied_weights_keys(all_submodels=True)`` (the
  ``_tied_weights_keys`` of every submodel, filtered by ``tie_word_embeddings``), plus output -> input embeddings
  when the text config says ``tie_word_embeddings`` and the model declares no tie for them.

Family coverage: :func:`causal_lm_families` lists ``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES``; :func:`shrunk_config`
builds ``AutoConfig.for_model(model_type, **small)`` where ``small`` sets each usual size field the default config
has (:data:`SIZE_FIELDS`; nested ``*_config`` dicts too), keeps one layer of each kind of the per-layer lists
(:func:`_layers_to_keep`), renumbers special token ids that fall outside the small vocabulary and applies
:data:`FAMILY_OVERRIDES`. Anything that cannot be built raises :class:`ProbeSkip` with a one-line reason.
:func:`offline` sets ``HF_HUB_OFFLINE=1`` for the run: nothing is downloaded; a config that needs a hub file is
skipped with that reason.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..base import ModelSnapshot
from .tensors import to_numpy

#: The value every floating element gets before an init is meant to write it (float32: -1.70e38).
POISON = -float(np.finfo(np.float32).max) / 2
#: Default cap on the parameter count of a shrunk family.
MAX_PARAMS = 2_000_000
#: Layers of a shrunk model.
LAYERS = 2

#: The usual size fields and the value a shrunk config gets (only fields the default config has are set).
SIZE_FIELDS: dict[str, int] = {
    # width
    "hidden_size": 64, "n_embd": 64, "d_model": 64, "emb_dim": 64, "dim_model": 64, "embedding_dim": 64,
    "attention_hidden_size": 64,
    # depth
    "num_hidden_layers": LAYERS, "n_layer": LAYERS, "num_layers": LAYERS, "n_layers": LAYERS,
    "decoder_layers": LAYERS, "encoder_layers": LAYERS, "num_decoder_layers": LAYERS,
    # heads
    "num_attention_heads": 4, "n_head": 4, "n_heads": 4, "num_heads": 4, "decoder_attention_heads": 4,
    "encoder_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "dim_head": 16, "kv_channels": 16,
    # feed-forward
    "intermediate_size": 128, "n_inner": 128, "ffn_dim": 128, "decoder_ffn_dim": 128, "encoder_ffn_dim": 128,
    "dff": 128, "dim_ff": 128, "d_ff": 128, "ffn_hidden_size": 128, "expert_ffn_hidden_size": 64,
    # vocabulary and positions
    "vocab_size": 256, "max_position_embeddings": 128, "n_positions": 128, "n_ctx": 128,
    # mixture of experts
    "num_experts": 4, "num_local_experts": 4, "n_routed_experts": 4, "moe_num_experts": 4, "num_experts_per_tok": 2,
    "moe_intermediate_size": 64, "shared_expert_intermediate_size": 64, "n_group": 1, "topk_group": 1,
    "moe_k": 2, "moe_topk": 2,
    # multi-head latent attention
    "kv_lora_rank": 16, "q_lora_rank": 32, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 16,
    # linear attention / state-space mixers
    "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 16, "linear_value_head_dim": 16,
    "state_size": 8, "ssm_state_size": 8, "mamba_d_state": 8, "time_step_rank": 8, "mamba_n_heads": 4,
    "mamba_head_dim": 32, "mamba_num_heads": 4, "linear_head_dim": 16, "linear_num_heads": 4,
    # more heads and experts (sliding-window heads, MLA head size, shared and zero experts)
    "swa_num_attention_heads": 4, "swa_num_key_value_heads": 2, "swa_head_dim": 16, "qk_head_dim": 16,
    "num_expert_group": 1, "num_experts_per_token": 2, "zero_expert_num": 4, "n_shared_experts": 1,
    "num_shared_experts": 1, "shared_experts_intermediate_size": 64, "attention_head_dim": 16, "mamba_dt_rank": 8,
    # low-rank and indexer projections (DeepSeek-V3.2/V4 style)
    "o_lora_rank": 32, "o_groups": 2, "index_n_heads": 4, "index_head_dim": 16, "hc_lowrank": 16,
    "ple_embed_dim": 64,
}

#: Most layer kinds a shrunk hybrid model keeps (one layer of each; see :func:`_layers_to_keep`).
MAX_KINDS = 4
#: Layer-count fields (the first the default config has gives the length of its per-layer lists).
LAYER_FIELDS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "decoder_layers")

#: Per-family corrections applied after the generic shrink (each one says why it is needed).
FAMILY_OVERRIDES: dict[str, dict[str, Any]] = {
    # ReformerModelWithLMHead asserts is_decoder (modeling_reformer.py L2153); axial positions must multiply to the
    # sequence length and the hidden size must split into the axial dims.
    "reformer": {"is_decoder": True, "axial_pos_shape": [8, 16], "axial_pos_embds_dim": [32, 32],
                 "attn_layers": ["local", "lsh"], "num_buckets": 4},
    # Mamba-2 requires num_heads * head_dim == expand * hidden_size (configuration_mamba2.py validate_architecture).
    "mamba2": {"num_heads": 4, "head_dim": 32, "n_groups": 1},
    # ZAYA supports num_experts_per_tok=1 only (its validate_architecture).
    "zaya": {"num_experts_per_tok": 1},
    # Dory stores (attention, mlp) pairs and derives the recurrent layer count (configuration_dory.py L84-125).
    "dory": {"num_hidden_layers": 3, "n_input_layers": 1, "n_output_layers": 1, "n_recurrent_layers": 1,
             "layer_types": ["sliding_attention", "sliding_attention", "full_attention"]},
    # Zamba ties the shared transformer of every hybrid layer to the first one by a regex that must match at least
    # one other layer (modeling_utils.py L2521 raises otherwise): keep two hybrid layers.
    "zamba": {"num_hidden_layers": 3, "layers_block_type": ["linear_attention", "hybrid", "hybrid"]},
    # Qwen4-Exp "indexed_attention" layers need the indexer sizes, None by default (modeling_qwen4_exp.py L694-699:
    # the default config does not build).
    "qwen4_exp_text": {"indexer_n_heads": 4, "indexer_kv_heads": 1, "indexer_head_dim": 16, "indexer_budget": 64,
                       "indexer_compress_ratio": 4},
    "qwen4_exp": {"text_config": {"indexer_n_heads": 4, "indexer_kv_heads": 1, "indexer_head_dim": 16,
                                  "indexer_budget": 64, "indexer_compress_ratio": 4}},
    # Gemma-3n shares the KV cache of the last num_kv_shared_layers layers with earlier layers of the same type
    # (configuration_gemma3n.py L208-221): keep two producing layers (sliding, full) and two sharing ones.
    "gemma3n_text": {"num_hidden_layers": 4, "num_kv_shared_layers": 2,
                     "layer_types": ["sliding_attention", "full_attention"] * 2},
}


class ProbeSkip(Exception):
    """A family or model that cannot be probed here; ``str(exc)`` is one line saying why, ``stage`` where."""

    def __init__(self, reason: str, stage: str = "build"):
        super().__init__(" ".join(str(reason).split()))
        self.stage = stage


@dataclass
class HFProbe:
    """Everything :mod:`conformance.audit.hf_scan` needs about one model, as numpy data (see the module docs)."""

    name: str
    model_class: str
    n_params: int
    eager: ModelSnapshot
    eager2: ModelSnapshot
    meta: ModelSnapshot | None
    meta_error: str = ""
    model_draws: list[dict[str, np.ndarray]] = field(default_factory=list)
    default_draws: list[dict[str, np.ndarray]] = field(default_factory=list)
    expected_ties: dict[str, str] = field(default_factory=dict)
    tie_word_embeddings: bool | None = None
    config_only_ties: list[str] = field(default_factory=list)
    poison: float = POISON
    shrunk: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


# -- environment -------------------------------------------------------------------------------------------------

def environment() -> tuple[bool, str | None, str]:
    """``(usable, transformers version, reason)``: whether torch and transformers import here."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return False, None, f"torch is not installed ({exc})"
    with offline():
        try:
            import transformers
        except ImportError as exc:
            return False, None, f"transformers is not installed ({exc}); pip install transformers"
        except Exception as exc:  # noqa: BLE001 - a broken install is a reason, not a crash
            return False, None, f"transformers does not import: {_one_line(exc)}"
    if not hasattr(transformers, "PreTrainedModel"):
        return False, transformers.__version__, "transformers has no PreTrainedModel (torch backend missing?)"
    return True, transformers.__version__, ""


@contextlib.contextmanager
def offline():
    """``HF_HUB_OFFLINE=1`` (and ``TRANSFORMERS_OFFLINE=1``) while inside, also for an already imported hub client."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    constants, old = None, None
    try:
        import huggingface_hub.constants as constants

        old, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    except ImportError:
        pass
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = old
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


def _where(exc: BaseException) -> str:
    """``transformers/models/x/modeling_x.py:L123`` of the innermost frame inside transformers, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "transformers" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f" at {f.filename.split('site-packages/')[-1]}:L{f.lineno}"


def _skip_from(exc: BaseException, stage: str) -> ProbeSkip:
    text = _one_line(exc)
    low = text.lower()
    if any(s in low for s in ("offline", "localentrynotfound", "couldn't connect", "hf_hub_offline",
                              "does not appear to have a file", "is not a local folder")):
        return ProbeSkip(f"needs a file from the Hugging Face hub (never downloaded here): {text}", "hub")
    if isinstance(exc, ImportError):
        return ProbeSkip(f"needs a missing package: {text}", "import")
    return ProbeSkip(f"{stage} fails: {text}{_where(exc)}", stage)


# -- families and configs ------------------------------------------------------------------------------------------

def causal_lm_families() -> dict[str, str]:
    """``{model_type: class name}`` of the installed transformers' causal-LM auto mapping."""
    with offline():
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return dict(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def shrink_fields(defaults: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments that shrink a config whose default values are ``defaults`` (see the module docs).

    Size fields get :data:`SIZE_FIELDS` values (per-layer lists of sizes: that value per layer), any other
    ``*vocab*`` integer the small vocabulary; per-layer lists (length = the default layer count) keep the layers
    :func:`_layers_to_keep` picks and the layer count follows; ``overrides`` win over all of it.
    """
    overrides = overrides or {}
    kw: dict[str, Any] = {}
    old_layers = next((defaults[k] for k in LAYER_FIELDS if _is_int(defaults.get(k))), None)
    for k, v in SIZE_FIELDS.items():
        if k in defaults and (defaults[k] is None or _is_int(defaults[k])):
            kw[k] = v
    for k, v in defaults.items():
        if "vocab" in k and _is_int(v) and v > SIZE_FIELDS["vocab_size"]:
            kw[k] = SIZE_FIELDS["vocab_size"]
    kw.update(overrides)
    new_layers = next((k for k in LAYER_FIELDS if k in kw), None)
    per_layer = {k: v for k, v in defaults.items()
                 if isinstance(v, list) and old_layers and len(v) == old_layers and k not in overrides}
    if new_layers and per_layer:
        keep = _layers_to_keep(per_layer, old_layers, kw[new_layers], explicit=new_layers in overrides)
        if new_layers not in overrides:
            kw[new_layers] = len(keep)
        for k, v in per_layer.items():
            if k in SIZE_FIELDS and all(_is_int(x) for x in v):
                kw[k] = [SIZE_FIELDS[k]] * len(keep)
            else:
                kw[k] = [v[i] for i in keep]
    vocab = kw.get("vocab_size", defaults.get("vocab_size"))
    if _is_int(vocab):
        free = iter(range(vocab - 1, 0, -1))
        for k, v in defaults.items():
            if not k.endswith(("token_id", "token_ids")):
                continue
            if _is_int(v) and v >= vocab:
                kw[k] = next(free)
            elif isinstance(v, list) and any(_is_int(x) and x >= vocab for x in v):
                kw[k] = [next(free) if _is_int(x) and x >= vocab else x for x in v]
    return kw


def _layers_to_keep(per_layer: dict[str, list], old: int, new: int, explicit: bool) -> list[int]:
    """Indices of the default layers a shrunk model keeps: the first layer of each distinct combination of the
    per-layer lists (so a hybrid model keeps one layer of each kind, at most :data:`MAX_KINDS`), then the first
    layers up to ``new``. With ``explicit`` (the layer count is a family override) exactly ``new`` layers."""
    firsts: dict[tuple, int] = {}
    for i in range(old):
        firsts.setdefault(tuple(repr(v[i]) for v in per_layer.values()), i)
    keep = set(sorted(firsts.values())[:MAX_KINDS])
    i = 0
    while len(keep) < new and i < old:
        keep.add(i)
        i += 1
    return sorted(keep)[:new] if explicit else sorted(keep)


def shrunk_config(model_type: str, gqa: bool = True):
    """``(config, fields set)`` for ``model_type``, shrunk; raises :class:`ProbeSkip` with the reason.

    ``gqa=False`` sets ``num_key_value_heads`` equal to the attention heads (for families that require it).
    """
    with offline():
        import transformers

        try:
            defaults = transformers.AutoConfig.for_model(model_type).to_dict()
        except Exception as exc:  # noqa: BLE001 - every failure is a skip reason
            raise _skip_from(exc, "default config") from None
        overrides = FAMILY_OVERRIDES.get(model_type, {})
        kw = shrink_fields(defaults, {k: v for k, v in overrides.items() if not isinstance(v, dict)})
        for k, v in defaults.items():
            if isinstance(v, dict) and k.endswith("_config") and "model_type" in v:
                sub = shrink_fields(v, overrides.get(k))
                if sub:
                    kw[k] = sub
        if not gqa:
            _equal_kv_heads(kw)
        try:
            cfg = transformers.AutoConfig.for_model(model_type, **kw)
        except Exception as exc:  # noqa: BLE001
            raise _skip_from(exc, "shrunk config") from None
    return cfg, kw


def _equal_kv_heads(kw: dict) -> None:
    if "num_key_value_heads" in kw:
        kw["num_key_value_heads"] = kw.get("num_attention_heads", 4)
    for v in kw.values():
        if isinstance(v, dict):
            _equal_kv_heads(v)


def model_class(model_type: str, config):
    """``(class, config)`` that ``AutoModelForCausalLM.from_config(config)`` builds: the class the auto mapping gives
    the config, and the config itself, or its ``text_config`` when the class takes that (a VLM config mapped to its
    text-only causal LM: models/auto/auto_factory.py L234-247 of v5.24.0)."""
    with offline():
        from transformers import AutoModelForCausalLM

        mapping = AutoModelForCausalLM._model_mapping
        try:
            cls = mapping[type(config)]
        except Exception as exc:  # noqa: BLE001
            raise _skip_from(exc, "model class lookup") from None
        text_class = getattr(config, "sub_configs", {}).get("text_config")
        if text_class is not None and getattr(cls, "config_class", None) == text_class:
            config = config.get_text_config()
        return cls, config


# -- building --------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _poisoned_empty():
    """``torch.empty`` / ``torch.empty_like`` return floating tensors filled with :data:`POISON` (not on meta)."""
    import torch

    empty, empty_like = torch.empty, torch.empty_like

    def fill(t):
        if isinstance(t, torch.Tensor) and t.device.type != "meta" and (t.is_floating_point()) and t.numel():
            with torch.no_grad():
                t.fill_(POISON)
        return t

    torch.empty = lambda *a, **k: fill(empty(*a, **k))
    torch.empty_like = lambda *a, **k: fill(empty_like(*a, **k))
    try:
        yield
    finally:
        torch.empty, torch.empty_like = empty, empty_like


@contextlib.contextmanager
def _library_init_skipped():
    """Every ``initialize_weights`` of ``PreTrainedModel`` and its subclasses does nothing while inside."""
    from transformers import PreTrainedModel

    classes, todo = [], [PreTrainedModel]
    while todo:
        c = todo.pop()
        todo.extend(c.__subclasses__())
        if "initialize_weights" in c.__dict__:
            classes.append((c, c.__dict__["initialize_weights"]))
    for c, _ in classes:
        c.initialize_weights = lambda self, *a, **k: None
    try:
        yield
    finally:
        for c, fn in classes:
            c.initialize_weights = fn


@contextlib.contextmanager
def _stage(name: str):
    """Turn any exception inside into :class:`ProbeSkip` naming the stage (``ProbeSkip`` passes through)."""
    try:
        yield
    except ProbeSkip:
        raise
    except Exception as exc:  # noqa: BLE001 - a family that breaks a stage is skipped with the reason
        raise _skip_from(exc, name) from None


def _build(cls, config, seed: int):
    import torch

    torch.manual_seed(seed)
    return cls._from_config(copy.deepcopy(config))


def snapshot(model, path: str, init_method: str) -> ModelSnapshot:
    """Every parameter (aliases included) and buffer of ``model``, tied groups by storage, module types.

    Like :func:`conformance.backends.torch.models.snapshot` but without reading the config (some transformers
    configs raise on reading per-layer attributes globally)."""
    params, buffers, persistent, types = {}, {}, {}, {}
    owners: dict[tuple, list[str]] = {}
    for mod_name, module in model.named_modules(remove_duplicate=False):
        prefix = f"{mod_name}." if mod_name else ""
        for pname, p in module._parameters.items():
            if p is None or prefix + pname in params:
                continue
            params[prefix + pname] = to_numpy(p)
            types[prefix + pname] = type(module).__name__
            key = (p.data_ptr(), tuple(p.shape), tuple(p.stride()), str(p.dtype))
            owners.setdefault(key, []).append(prefix + pname)
        for bname, b in module._buffers.items():
            if b is None or prefix + bname in buffers:
                continue
            buffers[prefix + bname] = to_numpy(b)
            persistent[prefix + bname] = bname not in module._non_persistent_buffers_set
            types[prefix + bname] = type(module).__name__
    tied = [frozenset(names) for names in owners.values() if len(names) > 1]
    return ModelSnapshot(params=params, buffers=buffers, persistent=persistent, tied=tied, module_types=types,
                         dtype="float32", device_init=path, init_method=init_method, poison=POISON,
                         framework_defaults="torch_defaults",
                         info={"model_class": f"{type(model).__module__}.{type(model).__qualname__}"})


def _params(model) -> dict[str, np.ndarray]:
    return {n: to_numpy(p) for n, p in model.named_parameters(remove_duplicate=False)}


def _clear_flags(model) -> None:
    for obj in [*model.modules(), *model.parameters(), *model.buffers()]:
        if "_is_hf_initialized" in getattr(obj, "__dict__", {}):
            del obj.__dict__["_is_hf_initialized"]


def _untie(model, ties: dict[str, str]) -> None:
    """Give every declared tie target that shares storage with its source a parameter of its own.

    ``from_config`` runs ``initialize_weights`` before ``post_init`` ties (``init_weights``: initialize, then
    ``tie_weights``), so the source's init is what a tied pair ends with; re-running the init on a tied copy would
    let whichever module comes last win instead."""
    import torch

    for target, source in ties.items():
        try:
            t, s = model.get_parameter(target), model.get_parameter(source)
        except AttributeError:
            continue
        if t.data_ptr() == s.data_ptr():
            parent, _, leaf = target.rpartition(".")
            setattr(model.get_submodule(parent), leaf, torch.nn.Parameter(t.detach().clone(), t.requires_grad))


def _retie(model) -> None:
    """``tie_weights`` as ``init_weights`` calls it (``recompute_mapping=False`` where the release has it)."""
    try:
        model.tie_weights(recompute_mapping=False)
    except TypeError:
        model.tie_weights()


def _poison_(tensors) -> None:
    import torch

    with torch.no_grad():
        for t in tensors:
            if t.is_floating_point():
                t.fill_(POISON)


def expected_ties(model) -> tuple[dict[str, str], bool | None, list[str]]:
    """``({target: source}, tie_word_embeddings, targets only the config declares)``: the ties the model and its
    config declare (the last list: output embeddings the config says to tie that no ``_tied_weights_keys`` names)."""
    config_only: list[str] = []
    ties: dict[str, str] = {}
    fn = getattr(model, "get_expanded_tied_weights_keys", None)
    if callable(fn):
        with contextlib.suppress(Exception):
            ties.update(fn(all_submodels=True))
    elif isinstance(getattr(model, "all_tied_weights_keys", None), dict):
        ties.update(model.all_tied_weights_keys)
    cfg = getattr(model, "config", None)
    text = cfg.get_text_config() if cfg is not None and hasattr(cfg, "get_text_config") else cfg
    tie = getattr(text, "tie_word_embeddings", getattr(cfg, "tie_word_embeddings", None))
    if tie:
        # by module, not by parameter: a tie made by assigning one Parameter to both modules (transformers 4) gives
        # both names the same object, so a name looked up by id would be the same for target and source
        modules = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
        out, inp = None, None
        with contextlib.suppress(Exception):
            out, inp = model.get_output_embeddings(), model.get_input_embeddings()
        ow, iw = getattr(out, "weight", None), getattr(inp, "weight", None)
        if ow is not None and iw is not None and ow.shape == iw.shape:
            target = f"{modules[id(out)]}.weight" if id(out) in modules else None
            source = f"{modules[id(inp)]}.weight" if id(inp) in modules else None
            if target and source and target != source and target not in ties and source not in ties:
                ties[target] = source
                config_only.append(target)
    return ties, (None if tie is None else bool(tie)), config_only


def probe(cls, config, *, name: str = "", seed: int = 0, draws: int = 2, max_params: int | None = MAX_PARAMS,
          shrunk: dict | None = None) -> HFProbe:
    """Build ``cls`` from ``config`` every way the scan needs (see the module docs); raise :class:`ProbeSkip`."""
    with offline():
        import torch

        times: dict[str, float] = {}
        t0 = time.perf_counter()
        with _stage("meta-device build"), torch.device("meta"):
            meta_model = _build(cls, config, seed)
        n = sum(p.numel() for p in meta_model.parameters())
        if max_params is not None and n > max_params:
            big = max(meta_model.named_parameters(), key=lambda kv: kv[1].numel())
            raise ProbeSkip(f"too large after shrinking: {n:,} parameters > {max_params:,} (largest {big[0]} "
                            f"{tuple(big[1].shape)})", "size")
        times["meta_build"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        with _stage("from_config build"), _poisoned_empty():
            model = _build(cls, config, seed)
            model2 = _build(cls, config, seed + 1)
        with _stage("snapshot"):
            eager = snapshot(model, "eager", "from_config")
            eager2 = snapshot(model2, "eager", "from_config")
            ties, tie_flag, config_only = expected_ties(model)
        del model2
        kind = getattr(config, "model_type", "") or name
        times["eager"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        meta, meta_error = None, ""
        try:
            meta_model.to_empty(device="cpu")
            _poison_([*meta_model.parameters(), *meta_model.buffers()])
            torch.manual_seed(seed)
            meta_model.init_weights()
            meta = snapshot(meta_model, "meta", "init_weights")
        except Exception as exc:  # noqa: BLE001 - the meta path failing is itself reported
            meta_error = _one_line(exc) + _where(exc)
        del meta_model
        times["meta"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        model_draws = []
        with _stage("re-running initialize_weights"):
            for i in range(draws):
                m = copy.deepcopy(model)
                _untie(m, ties)
                _poison_(m.parameters())
                _clear_flags(m)
                torch.manual_seed(seed + 1 + i)
                with torch.no_grad():
                    m.initialize_weights()
                _retie(m)
                model_draws.append(_params(m))
        times["model_draws"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        default_draws = []
        with _stage("build with initialize_weights skipped"), _library_init_skipped(), _poisoned_empty():
            for i in range(draws):
                default_draws.append(_params(_build(cls, config, seed + 1001 + i)))
        times["default_draws"] = time.perf_counter() - t0
    return HFProbe(name=name or kind, model_class=f"{cls.__module__}.{cls.__qualname__}", n_params=int(n),
                   eager=eager, eager2=eager2, meta=meta, meta_error=meta_error, model_draws=model_draws,
                   default_draws=default_draws, expected_ties=ties, tie_word_embeddings=tie_flag,
                   config_only_ties=config_only,
                   shrunk=dict(shrunk or {}), seconds=times)


def probe_family(model_type: str, *, seed: int = 0, draws: int = 2, max_params: int | None = MAX_PARAMS) -> HFProbe:
    """Shrink ``model_type``'s config, look its causal-LM class up and :func:`probe` it; raise :class:`ProbeSkip`.

    A family whose shrunk config fails to build with grouped-query attention is retried with as many key/value
    heads as attention heads (the first failure is kept as the reason when the retry fails too).
    """
    with offline():
        import transformers

        transformers.logging.set_verbosity_error()
        first: ProbeSkip | None = None
        for gqa in (True, False):
            try:
                cfg, kw = shrunk_config(model_type, gqa=gqa)
                cls, cfg = model_class(model_type, cfg)
                return probe(cls, cfg, name=model_type, seed=seed, draws=draws, max_params=max_params, shrunk=kw)
            except ProbeSkip as exc:
                if exc.stage in ("size", "hub", "import", "default config") or first is not None:
                    if first is not None and str(exc) != str(first):
                        raise ProbeSkip(f"{first}; with as many key/value heads as attention heads: {exc}",
                                        first.stage) from None
                    raise
                first = exc
        raise first
