"""Reference transformer models in torch and the model-building side of :meth:`TorchBackend.build_model`.

Framework code only: nothing here does statistics. The models are small (seconds to audit) and each has an
``init_weights`` that implements one published init scheme, so the audit (``conformance.audit``) can check them
against the built-in specs:

* :class:`GPT2` - nanoGPT / Hugging Face GPT-2 layout (``transformer.wte``, ``transformer.h.N.attn.c_attn``,
  ``...c_proj``, ``lm_head`` tied to ``wte`` by default); init as nanoGPT ``GPT._init_weights`` plus the
  ``c_proj.weight`` rescaling (karpathy/nanoGPT@3adf61e model.py L141-145, L162-168).
* :class:`Llama` - a Llama-style decoder (RMSNorm, SwiGLU, RoPE buffer, untied output) whose parameter names
  follow one of three projects (``naming``) and whose ``init_weights`` implements that project's scheme:
  ``torchtitan`` (pytorch/torchtitan@018740b torchtitan/models/llama3/model/model.py, ``depth_init`` on or off),
  ``olmo`` (allenai/OLMo@59a53e3 olmo/model.py ``reset_parameters``: ``mitchell``, ``normal``,
  ``full_megatron``) and ``litgpt`` (Lightning-AI/litgpt@2685705 litgpt/pretrain.py ``initialize_weights``).
  The RoPE table is a non-persistent buffer (``freqs_cis``, complex64; ``cos``/``sin`` with litgpt naming)
  that ``init_weights`` recomputes, as torchtitan does after meta-device materialization.

Factories for the audit CLI: ``conformance.backends.torch.models:gpt2``, ``conformance.backends.torch.models:llama``
and ``conformance.backends.torch.models:hf_causal_lm`` (Hugging Face ``transformers`` from a config, no download).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math

from ..base import ModelSnapshot, UnsupportedOperation
from .tensors import to_numpy


def _torch():
    import torch

    return torch


# -- helpers ------------------------------------------------------------------------------------------------------

def _place(root, path: str, module) -> None:
    """Set ``module`` at dotted ``path`` under ``root``, creating plain container modules on the way."""
    nn = _torch().nn
    *parents, leaf = path.split(".")
    node = root
    for part in parents:
        if not hasattr(node, part):
            node.add_module(part, nn.Module())
        node = getattr(node, part)
    node.add_module(leaf, module)


def _get(root, path: str):
    for part in path.split("."):
        root = getattr(root, part)
    return root


def _numeric(mapping) -> dict[str, float]:
    return {k: float(v) for k, v in mapping.items()
            if isinstance(v, (bool, int, float)) and not isinstance(v, complex)}


def model_config(model) -> dict[str, float]:
    """Numeric values of ``model.config`` / ``model.model_args`` / ``model.args`` (dataclass, dict, HF config)."""
    out: dict[str, float] = {}
    for attr in ("args", "model_args", "config"):
        obj = getattr(model, attr, None)
        if obj is None:
            continue
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        elif isinstance(obj, dict):
            values = obj
        elif callable(getattr(obj, "to_dict", None)):
            values = obj.to_dict()
        else:
            values = getattr(obj, "__dict__", {})
        out.update(_numeric(values))
    return out


# -- GPT-2 --------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class GPT2Config:
    vocab_size: int = 512
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    bias: bool = True
    tie_embeddings: bool = True
    initializer_range: float = 0.02


@functools.cache
def gpt2_class():
    """The GPT-2 model class (built lazily so importing this module does not import torch)."""
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class Attention(nn.Module):
        def __init__(self, c: GPT2Config):
            super().__init__()
            self.n_head = c.n_head
            self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
            self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.c_attn(x).split(d, dim=2)
            q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(b, t, d))

    class MLP(nn.Module):
        def __init__(self, c: GPT2Config):
            super().__init__()
            self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
            self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x)))

    class Block(nn.Module):
        def __init__(self, c: GPT2Config):
            super().__init__()
            self.ln_1 = nn.LayerNorm(c.n_embd, bias=c.bias)
            self.attn = Attention(c)
            self.ln_2 = nn.LayerNorm(c.n_embd, bias=c.bias)
            self.mlp = MLP(c)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT2Model(nn.Module):
        """GPT-2 with nanoGPT names; ``init_weights`` = nanoGPT ``_init_weights`` + scaled ``c_proj.weight``."""

        def __init__(self, config: GPT2Config):
            super().__init__()
            self.config = config
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            ))
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            if config.tie_embeddings:
                self.transformer.wte.weight = self.lm_head.weight

        def tie_weights(self):
            """Re-tie ``lm_head.weight`` and ``wte.weight``: ``to_empty`` gives each name its own storage."""
            if self.config.tie_embeddings:
                self.transformer.wte.weight = self.lm_head.weight

        def init_weights(self):
            self.tie_weights()
            std = self.config.initializer_range
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, mean=0.0, std=std)
                    if getattr(module, "bias", None) is not None:
                        nn.init.zeros_(module.bias)
                elif isinstance(module, nn.LayerNorm):
                    module.reset_parameters()
            self.scale_residual(std / math.sqrt(2 * self.config.n_layer))

        def scale_residual(self, std: float):
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=std)

        def forward(self, idx):
            pos = torch.arange(idx.shape[1], device=idx.device)
            x = self.transformer.wte(idx) + self.transformer.wpe(pos)
            for block in self.transformer.h:
                x = block(x)
            return self.lm_head(self.transformer.ln_f(x))

    return GPT2Model


def gpt2(**config):
    """A small GPT-2 (nanoGPT layout). Keywords: the fields of :class:`GPT2Config`."""
    return gpt2_class()(GPT2Config(**config))


# -- Llama-style --------------------------------------------------------------------------------------------------

#: Parameter paths per project. ``qkv``/``gate_up`` set means fused projections.
NAMINGS: dict[str, dict[str, str]] = {
    "torchtitan": dict(embed="tok_embeddings", blocks="layers", q="attention.wq", k="attention.wk",
                       v="attention.wv", o="attention.wo", gate="feed_forward.w1", down="feed_forward.w2",
                       up="feed_forward.w3", norm1="attention_norm", norm2="ffn_norm", final_norm="norm",
                       head="output"),
    "olmo": dict(embed="transformer.wte", blocks="transformer.blocks", qkv="att_proj", o="attn_out",
                 gate_up="ff_proj", down="ff_out", norm1="attn_norm", norm2="ff_norm", final_norm="transformer.ln_f",
                 head="transformer.ff_out"),
    "litgpt": dict(embed="transformer.wte", blocks="transformer.h", qkv="attn.qkv", o="attn.proj",
                   gate="mlp.fc_1", up="mlp.fc_2", down="mlp.proj", norm1="norm_1", norm2="norm_2",
                   final_norm="transformer.ln_f", head="lm_head"),
}
#: Init scheme used by default for each naming.
DEFAULT_SCHEME = {"torchtitan": "torchtitan", "olmo": "olmo_mitchell", "litgpt": "litgpt"}
SCHEMES = ("torchtitan", "olmo_mitchell", "olmo_normal", "olmo_full_megatron", "litgpt")


@dataclasses.dataclass
class LlamaConfig:
    vocab_size: int = 512
    dim: int = 128
    n_layers: int = 4
    n_heads: int = 4
    multiple_of: int = 32
    max_seq_len: int = 64
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    depth_init: bool = True
    init_std: float = 0.02
    naming: str = "torchtitan"
    scheme: str = ""
    # aliases other projects' specs use, filled in __post_init__
    hidden_dim: int = 0
    d_model: int = 0
    n_embd: int = 0
    n_layer: int = 0

    def __post_init__(self):
        if self.naming not in NAMINGS:
            raise ValueError(f"unknown naming {self.naming!r}; known: {', '.join(NAMINGS)}")
        self.scheme = self.scheme or DEFAULT_SCHEME[self.naming]
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown init scheme {self.scheme!r}; known: {', '.join(SCHEMES)}")
        if not self.hidden_dim:  # torchtitan FeedForward: int(2 * 4 * dim / 3) rounded up to multiple_of
            hidden = int(2 * 4 * self.dim / 3)
            self.hidden_dim = self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)
        self.d_model = self.n_embd = self.dim
        self.n_layer = self.n_layers


def rope_table(head_dim: int, end: int, theta: float, device=None):
    """``exp(i * t * theta^(-2j/head_dim))`` for t < end, j < head_dim/2, complex64 (torchtitan's freqs_cis)."""
    torch = _torch()
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device)[: head_dim // 2].float() / head_dim))
    t = torch.arange(end, device=device, dtype=torch.float32)
    angles = torch.outer(t, freqs)
    return torch.polar(torch.ones_like(angles), angles)


@functools.cache
def llama_class():
    """The Llama-style model class (built lazily so importing this module does not import torch)."""
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    def linear(i, o):
        return nn.Linear(i, o, bias=False)

    class Block(nn.Module):
        def __init__(self, layer_id: int, c: LlamaConfig):
            super().__init__()
            self.layer_id, self.c = layer_id, c
            n = NAMINGS[c.naming]
            self.names = n
            if "qkv" in n:
                _place(self, n["qkv"], linear(c.dim, 3 * c.dim))
            else:
                for key in ("q", "k", "v"):
                    _place(self, n[key], linear(c.dim, c.dim))
            _place(self, n["o"], linear(c.dim, c.dim))
            if "gate_up" in n:
                _place(self, n["gate_up"], linear(c.dim, 2 * c.hidden_dim))
            else:
                _place(self, n["gate"], linear(c.dim, c.hidden_dim))
                _place(self, n["up"], linear(c.dim, c.hidden_dim))
            _place(self, n["down"], linear(c.hidden_dim, c.dim))
            _place(self, n["norm1"], nn.RMSNorm(c.dim, eps=c.norm_eps))
            _place(self, n["norm2"], nn.RMSNorm(c.dim, eps=c.norm_eps))

        def mod(self, role):
            return _get(self, self.names[role])

        def forward(self, x, freqs):
            b, t, d = x.shape
            h = self.mod("norm1")(x)
            if "qkv" in self.names:
                q, k, v = self.mod("qkv")(h).split(d, dim=2)
            else:
                q, k, v = self.mod("q")(h), self.mod("k")(h), self.mod("v")(h)
            heads = self.c.n_heads
            q, k, v = (z.view(b, t, heads, d // heads) for z in (q, k, v))
            rot = freqs[:t].view(1, t, 1, -1)
            q, k = (torch.view_as_real(torch.view_as_complex(z.float().reshape(b, t, heads, -1, 2)) * rot)
                    .flatten(3).type_as(x) for z in (q, k))
            y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                               is_causal=True)
            x = x + self.mod("o")(y.transpose(1, 2).reshape(b, t, d))
            h = self.mod("norm2")(x)
            if "gate_up" in self.names:
                g, u = self.mod("gate_up")(h).chunk(2, dim=-1)
            else:
                g, u = self.mod("gate")(h), self.mod("up")(h)
            return x + self.mod("down")(F.silu(g) * u)

    class LlamaModel(nn.Module):
        """Llama-style decoder; ``init_weights`` implements ``config.scheme`` and recomputes the RoPE buffer."""

        def __init__(self, config: LlamaConfig):
            super().__init__()
            self.config = c = config
            n = self.names = NAMINGS[c.naming]
            _place(self, n["embed"], nn.Embedding(c.vocab_size, c.dim))
            blocks = nn.ModuleList(Block(i, c) for i in range(c.n_layers))
            _place(self, n["blocks"], blocks)
            _place(self, n["final_norm"], nn.RMSNorm(c.dim, eps=c.norm_eps))
            _place(self, n["head"], linear(c.dim, c.vocab_size))
            self._register_rope(self._rope())

        # RoPE: torchtitan registers freqs_cis (complex) non-persistent; LitGPT registers cos and sin.
        def _rope(self, device=None):
            return rope_table(self.config.dim // self.config.n_heads, self.config.max_seq_len,
                              self.config.rope_theta, device)

        def _register_rope(self, table):
            if self.config.naming == "litgpt":
                cos = torch.repeat_interleave(table.real, 2, dim=-1)
                sin = torch.repeat_interleave(table.imag, 2, dim=-1)
                self.register_buffer("cos", cos, persistent=False)
                self.register_buffer("sin", sin, persistent=False)
            else:
                self.register_buffer("freqs_cis", table, persistent=False)

        def freqs(self):
            if self.config.naming == "litgpt":
                return torch.complex(self.cos[:, ::2], self.sin[:, ::2])
            return self.freqs_cis

        def blocks(self):
            return list(_get(self, self.names["blocks"]))

        def mod(self, role):
            return _get(self, self.names[role])

        def forward(self, tokens):
            x = self.mod("embed")(tokens)
            freqs = self.freqs()
            for block in self.blocks():
                x = block(x, freqs)
            return self.mod("head")(self.mod("final_norm")(x))

        # -- init ------------------------------------------------------------------------------------
        def init_weights(self, buffer_device=None):
            """Recompute the RoPE buffer, reset norms, then initialize every weight per ``config.scheme``."""
            device = buffer_device or next(self.parameters()).device
            self._register_rope(self._rope(device))
            for m in self.modules():
                if isinstance(m, nn.RMSNorm):
                    m.reset_parameters()
            scheme = getattr(self, f"_init_{self.config.scheme}")
            scheme()

        def layer_std(self, layer_id: int) -> float:
            """torchtitan TransformerBlock.weight_init_std."""
            c = self.config
            if c.depth_init:
                return 0.02 / (2 * (layer_id + 1)) ** 0.5
            return 0.02 / (2 * c.n_layers) ** 0.5

        def output_bounds(self, std: float) -> tuple[float, float]:
            """torchtitan: the output layer is truncated at -+3 std."""
            return -3 * std, 3 * std

        def _init_torchtitan(self):
            c = self.config
            nn.init.normal_(self.mod("embed").weight)
            for block in self.blocks():
                std = self.layer_std(block.layer_id)
                for role in ("q", "k", "v", "gate"):
                    nn.init.trunc_normal_(block.mod(role).weight, mean=0.0, std=0.02)
                for role in ("o", "down", "up"):
                    nn.init.trunc_normal_(block.mod(role).weight, mean=0.0, std=std)
            std = c.dim ** -0.5
            a, b = self.output_bounds(std)
            nn.init.trunc_normal_(self.mod("head").weight, mean=0.0, std=std, a=a, b=b)

        @staticmethod
        def _olmo_normal_init(module, std, cutoff):
            if cutoff is None:
                nn.init.normal_(module.weight, mean=0.0, std=std)
            else:
                nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-cutoff * std, b=cutoff * std)

        def _init_olmo(self, proj_std, out_std, emb_std, head_std, cutoff):
            init = self._olmo_normal_init
            init(self.mod("embed"), emb_std, cutoff)
            init(self.mod("head"), head_std, cutoff)
            for block in self.blocks():
                init(block.mod("qkv"), proj_std, cutoff)
                init(block.mod("gate_up"), proj_std, cutoff)
                attn_out, ff_out = out_std(block)
                init(block.mod("o"), attn_out, cutoff)
                init(block.mod("down"), ff_out, cutoff)

        def _init_olmo_mitchell(self):
            d = self.config.d_model
            self._init_olmo(1 / math.sqrt(d),
                            lambda blk: (1 / math.sqrt(2 * d * (blk.layer_id + 1)),
                                         1 / math.sqrt(2 * blk.mod("down").in_features * (blk.layer_id + 1))),
                            1 / math.sqrt(d), 1 / math.sqrt(d), 3.0)

        def _init_olmo_normal(self):
            s = self.config.init_std
            self._init_olmo(s, lambda blk: (s, s), s, s, None)

        def _init_olmo_full_megatron(self):
            c = self.config
            s = c.init_std
            out = s / math.sqrt(2.0 * c.n_layers)
            self._init_olmo(s, lambda blk: (out, out), s, 1 / math.sqrt(c.d_model), 3.0)

        def _init_litgpt(self):
            c = self.config
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / 5 / c.n_embd))
                    if getattr(m, "bias", None) is not None:
                        nn.init.zeros_(m.bias)
            for block in self.blocks():
                for role in ("o", "down"):
                    nn.init.normal_(block.mod(role).weight, mean=0.0, std=1 / math.sqrt(c.n_embd) / c.n_layer)

    return LlamaModel


def llama(**config):
    """A small Llama-style model. Keywords: the fields of :class:`LlamaConfig` (``naming``, ``scheme``,
    ``depth_init``, ``dim``, ``n_layers``, ...)."""
    return llama_class()(LlamaConfig(**config))


def hf_causal_lm(model_type: str = "gpt2", **config):
    """A Hugging Face ``transformers`` causal LM built from a config (random init, nothing downloaded).

    Raises :class:`UnsupportedOperation` when ``transformers`` is not installed.
    """
    try:
        import transformers
    except ImportError as exc:
        raise UnsupportedOperation(f"transformers is not installed ({exc}); pip install transformers") from None
    cfg = transformers.AutoConfig.for_model(model_type, **config)
    return transformers.AutoModelForCausalLM.from_config(cfg)


# -- building a snapshot ------------------------------------------------------------------------------------------

def _poison_value(dtype) -> float:
    torch = _torch()
    return -float(torch.finfo(dtype).max) / 2


@contextlib.contextmanager
def _default_dtype(dtype):
    torch = _torch()
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def run_init(model, init: str, device_init: str) -> str:
    """Call the model's init function as ``init`` says (see :meth:`Backend.build_model`); return what ran.

    ``init``: ``auto`` (``init_weights`` if the model has it, else ``reset_parameters`` after a meta build, else
    nothing), ``none``, ``reset_parameters`` (every module's), any other method name of the model, or a
    ``package.module:callable`` called with the model (a library's own init function)."""
    torch = _torch()
    if init == "auto":
        if callable(getattr(model, "init_weights", None)):
            init = "init_weights"
        else:
            init = "reset_parameters" if device_init == "meta" else "none"
    if init == "none":
        return "none"
    if ":" in init:  # the library's own init function, called with the model (e.g. LitGPT's initialize_weights)
        from conformance.audit.factory import resolve

        fn = resolve(init)
        with torch.no_grad():
            fn(model)
        return init
    with torch.no_grad():
        if init == "reset_parameters":
            for m in model.modules():
                if callable(getattr(m, "reset_parameters", None)):
                    m.reset_parameters()
        else:
            fn = getattr(model, init, None)
            if not callable(fn):
                raise ValueError(f"{type(model).__name__} has no method {init!r} to initialize it")
            fn()
    return init


def _weight_shape(module) -> tuple[int, ...] | None:
    w = getattr(module, "weight", None)
    if w is None or not hasattr(w, "shape") or w.dim() < 2:
        return None
    shape = tuple(int(s) for s in w.shape)
    if type(module).__name__ == "Conv1D":  # Hugging Face Conv1D stores (in, out)
        shape = (shape[1], shape[0])
    return shape


def snapshot(model, *, dtype: str, device_init: str, init_method: str, poison: float | None,
             kwargs: dict | None = None) -> ModelSnapshot:
    """Read every parameter and buffer of ``model`` (aliases, owners, persistence) into a :class:`ModelSnapshot`."""
    params, buffers, persistent, types, shapes = {}, {}, {}, {}, {}
    owners: dict[int, list[str]] = {}
    for mod_name, module in model.named_modules(remove_duplicate=False):
        prefix = f"{mod_name}." if mod_name else ""
        wshape = _weight_shape(module)
        for pname, p in module._parameters.items():
            if p is None:
                continue
            full = prefix + pname
            if full in params:
                continue
            params[full] = to_numpy(p)
            types[full] = type(module).__name__
            if wshape is not None:
                shapes[full] = wshape
            key = id(p) if p.device.type == "meta" else (p.data_ptr(), tuple(p.shape), tuple(p.stride()))
            owners.setdefault(key, []).append(full)
        for bname, b in module._buffers.items():
            if b is None:
                continue
            full = prefix + bname
            buffers[full] = to_numpy(b)
            persistent[full] = bname not in module._non_persistent_buffers_set
            types[full] = type(module).__name__
    tied = [frozenset(names) for names in owners.values() if len(names) > 1]
    config = _numeric(kwargs or {})
    config.update(model_config(model))
    return ModelSnapshot(params=params, buffers=buffers, persistent=persistent, tied=tied, module_types=types,
                         weight_shapes=shapes, config=config, dtype=dtype, device_init=device_init,
                         init_method=init_method, poison=poison, framework_defaults="torch_defaults",
                         info={"model_class": f"{type(model).__module__}.{type(model).__qualname__}"})


def build(factory, device: str, device_init: str = "eager", init: str = "auto", dtype: str = "float32",
          **kwargs) -> ModelSnapshot:
    """Build ``factory(**kwargs)`` on ``device`` (eagerly or through the meta device), initialize, snapshot."""
    torch = _torch()
    if device_init not in ("eager", "meta"):
        raise ValueError(f"device_init must be 'eager' or 'meta', got {device_init!r}")
    tdtype = getattr(torch, dtype)
    build_dtype = tdtype if dtype in ("float32", "float64") else torch.float32
    if isinstance(factory, torch.nn.Module):
        model = factory
        ran = run_init(model, init, "eager") if init not in ("auto", "none") else "none (model given)"
        return snapshot(model, dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
                        device_init="given", init_method=ran, poison=None, kwargs=kwargs)
    poison = None
    with _default_dtype(build_dtype):
        if device_init == "eager":
            with torch.device(device):
                model = factory(**kwargs)
            if build_dtype != tdtype:
                model = model.to(tdtype)
        else:
            with torch.device("meta"):
                model = factory(**kwargs)
            if build_dtype != tdtype:
                model = model.to(tdtype)
            model.to_empty(device=device)
            poison = _poison_value(tdtype)
            with torch.no_grad():
                for t in list(model.parameters()) + list(model.buffers()):
                    if t.is_floating_point() or t.is_complex():
                        t.fill_(complex(poison, poison) if t.is_complex() else poison)
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"the factory returned {type(model).__name__}, not a torch.nn.Module")
        ran = run_init(model, init, device_init)
    return snapshot(model, dtype=dtype, device_init=device_init, init_method=ran, poison=poison, kwargs=kwargs)
