"""The Flax adapters: ``flax:cpu`` (``flax.nnx``) and ``flax-linen:cpu`` (``flax.linen``).

Contract
--------
* ``import flax`` happens lazily (in the probe and in the adapter): importing this module never fails when Flax is
  absent; the probe's reason names the extra to install.
* **Seeds.** Flax has no global random state: layers take explicit keys (``nnx.Rngs``, ``Module.init(key, x)``).
  The adapter holds one :class:`~conformance.backends.jax_adapter.KeyStream` (the JAX adapter's): ``seed(s)`` sets
  it to ``jax.random.PRNGKey(s)`` and every layer built by :meth:`module_params` takes the next split key
  (``nnx.Rngs(params=key)``, ``module.init(key, x)``); a fresh adapter starts at ``PRNGKey(0)`` (contract
  ``unseeded``: deterministic).
* Creating the adapter turns on ``jax_enable_x64`` process-wide, as the JAX adapter does, so that ``param_dtype =
  float64`` exists. Flax's own default ``param_dtype`` is ``jnp.float32`` explicitly, so x64 does not change what a
  user gets from a layer built without ``param_dtype``.
* **Modules** (:meth:`FlaxBackend.module_params`): torch's module names and config keywords mapped onto the Flax
  layer with the same role, built with Flax's own default initializers and ``param_dtype = dtype``:
  ``Linear`` -> ``Linear``/``Dense``, ``ConvNd`` -> ``Conv`` (``groups`` -> ``feature_group_count``),
  ``ConvTransposeNd`` -> ``ConvTranspose`` (no groups in Flax), ``Embedding`` -> ``Embed``, ``LayerNorm``,
  ``RMSNorm``, ``BatchNorm1d/2d`` -> ``BatchNorm``. Parameters come back by torch's names in torch's layout:
  ``kernel`` (Flax ``(in, out)`` / ``(*kernel, in/groups, out)``, :mod:`.layouts` ``"io"``) -> ``weight``
  ``(out, in)`` / ``(out, in/groups, *kernel)``; a ``ConvTranspose`` kernel ``(*kernel, in, out)`` (with Flax's
  default ``transpose_kernel=False`` it is applied as a plain convolution kernel over the dilated input) -> torch's
  ``ConvTranspose`` weight ``(in, out, *kernel)`` with the spatial axes flipped (torch's transposed convolution
  correlates with the flipped kernel); ``embedding`` -> ``weight``; ``scale`` -> ``weight``; ``mean``/``var`` ->
  ``running_mean``/``running_var`` (Flax keeps them in float32 whatever ``param_dtype`` is). Configurations the
  Flax layer cannot express (``padding_idx``, ``output_padding``, grouped transposed convolutions, a multi-axis
  ``normalized_shape`` in nnx, cumulative BatchNorm) raise :class:`UnsupportedOperation` with the reason.
* **Named initializers.** ``flax.nnx.initializers`` and ``flax.linen.initializers`` re-export
  ``jax.nn.initializers``: the same function objects (checked by ``tests/test_flax_equinox_adapters.py``), so
  :meth:`FlaxBackend.named_init` calls Flax's names on the JAX layout and the named-scheme entries are JAX's,
  inherited (``conformance/areas/named_schemes/flax_entries.py``).
* No sampler (``jax.random`` is the JAX adapter's), no activations (``jax.nn``), no dropout mask capability.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import layouts
from .base import FLOAT_DTYPES, Availability, Backend, Contract, Provider, UnsupportedOperation
from .jax_adapter import DEFAULT_SEED, NAMED, KeyedJaxBackend, jax_dtype, probe_jax_stack, to_numpy

LAYOUT = "io"
EXTRA = "pip install 'dl-conformance[flax]'"
_LINEN_SRC = "flax 0.12.8 flax/linen/linear.py, flax/linen/normalization.py"
_NNX_SRC = "flax 0.12.8 flax/nnx/nn/linear.py, flax/nnx/nn/normalization.py"


def _kernel(kernel_size, dims: int) -> tuple[int, ...]:
    return tuple(int(k) for k in kernel_size) if isinstance(kernel_size, (tuple, list)) else (int(kernel_size),) * dims


def _tuple(value, dims: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * dims


def _padding(padding, dims: int):
    """torch's ``padding`` (int, tuple or ``"same"``/``"valid"``) as Flax's."""
    if isinstance(padding, str):
        if padding.lower() not in ("same", "valid"):
            raise ValueError(f"invalid padding string {padding!r}")
        return padding.upper()
    return [(p, p) for p in _tuple(padding, dims)]


#: Why a transposed convolution's ``padding`` is not passed on: torch's crops ``dilation * (kernel - 1) - padding``
#: from each side of the full output, Flax's pads the stride-dilated input; the two are different numbers for the
#: same layer, and neither changes the parameters, which are all :meth:`FlaxBackend.module_params` returns.
_TRANSPOSED_PADDING = "torch ConvTranspose padding crops the output; Flax's pads the dilated input"


def conv_config(module: str, c: dict) -> dict:
    """torch ``ConvNd``/``ConvTransposeNd`` config -> the keywords shared by Flax and Equinox (neutral names):
    ``dims, transposed, in_ch, out_ch, kernel, stride, padding, dilation, groups, bias, output_padding``. Consumes
    the keys it reads from ``c``."""
    dims = int(module[-2])
    transposed = module.startswith("ConvTranspose")
    out = {"dims": dims, "transposed": transposed, "in_ch": int(c.pop("in_channels")),
           "out_ch": int(c.pop("out_channels")), "kernel": _kernel(c.pop("kernel_size"), dims),
           "stride": _tuple(c.pop("stride", 1), dims), "padding": c.pop("padding", 0),
           "dilation": _tuple(c.pop("dilation", 1), dims), "groups": int(c.pop("groups", 1)),
           "bias": bool(c.pop("bias", True)), "output_padding": _tuple(c.pop("output_padding", 0), dims)}
    mode = c.pop("padding_mode", "zeros")
    if mode != "zeros":
        raise UnsupportedOperation(f"{module}: padding_mode={mode!r} is not mapped (only torch's 'zeros')")
    if out["in_ch"] % out["groups"] or out["out_ch"] % out["groups"]:
        raise ValueError(f"in_channels and out_channels must be divisible by groups={out['groups']}")
    return out


def transposed_to_torch(weight: np.ndarray, groups: int) -> np.ndarray:
    """A transposed-convolution weight ``(out, in/groups, *kernel)`` applied as a plain convolution kernel over the
    dilated input -> torch's ``ConvTranspose`` weight ``(in, out/groups, *kernel)``, spatial axes flipped."""
    out_ch, in_g, *kernel = weight.shape
    w = weight.reshape(groups, out_ch // groups, in_g, *kernel).swapaxes(1, 2).reshape(groups * in_g,
                                                                                     out_ch // groups, *kernel)
    return np.ascontiguousarray(np.flip(w, axis=tuple(range(2, w.ndim))))


def norm_shape(c: dict) -> tuple[int, ...]:
    shape = c.pop("normalized_shape")
    return (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)


def bn_momentum(c: dict, module: str) -> float:
    """torch's ``momentum`` (weight of the new batch) as Flax/Equinox's (weight of the running average)."""
    m = c.pop("momentum", 0.1)
    if m is None:
        raise UnsupportedOperation(f"{module}(momentum=None) (a cumulative moving average) has no Flax/Equinox "
                                   "equivalent: their running statistics are exponential averages")
    return 1.0 - float(m)


def done(config: dict, where: str) -> None:
    """Reject configuration the layer has no equivalent for."""
    config.pop("device", None)
    config.pop("dtype", None)
    if config:
        raise UnsupportedOperation(f"{where} has no equivalent of {sorted(config)}")


def embedding_config(c: dict, where: str) -> tuple[int, int]:
    if c.pop("padding_idx", None) is not None:
        raise UnsupportedOperation(f"{where} has no padding_idx (torch zeros that row and keeps its gradient at "
                                   "zero; a Flax/Equinox embedding row is an ordinary parameter)")
    for key in ("max_norm", "scale_grad_by_freq", "sparse"):
        if c.pop(key, None):
            raise UnsupportedOperation(f"{where} has no equivalent of torch's {key}")
    return int(c.pop("num_embeddings")), int(c.pop("embedding_dim"))


class FlaxBackend(KeyedJaxBackend):
    """Shared by the nnx and linen adapters: identity, the key stream, named initializers and the torch-name
    mapping of parameters; subclasses build the layer (:meth:`_build`)."""

    framework = "flax"
    api = ""
    dtypes = frozenset(FLOAT_DTYPES)

    def versions(self) -> dict[str, str]:
        import flax

        return {"flax": flax.__version__, **self.jax_versions(), "api": self.api}

    # -- named initializers ----------------------------------------------------------------------------------------
    def _initializers(self):
        raise NotImplementedError

    def named_schemes(self) -> tuple[str, ...]:
        inits = self._initializers()
        return tuple(n for n in NAMED if hasattr(inits, n))

    def named_init(self, name: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``flax.<api>.initializers.<name>(**params)`` on the Flax-layout shape (JAX's default in/out axes)."""
        self.require_dtype(dtype)
        if name not in self.named_schemes():
            raise UnsupportedOperation(f"flax.{self.api}.initializers has no {name}")
        factory = getattr(self._initializers(), name)
        initializer = factory if name in ("zeros", "ones") else factory(**params)
        shape = tuple(int(s) for s in shape)
        with self._on_device():
            x = initializer(self._stream.next(), layouts.to_framework_shape(shape, LAYOUT), jax_dtype(dtype))
        return layouts.from_framework(to_numpy(x), LAYOUT)

    # -- modules ---------------------------------------------------------------------------------------------------
    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """The Flax layer with the same role, built with its default initializers in ``param_dtype = dtype`` from
        the next key of the stream; parameters and batch statistics by torch's names, in torch's layout."""
        self.require_dtype(dtype)
        c = dict(config)
        with self._on_device():
            raw, conv = self._build(module, c, jax_dtype(dtype), self._stream.next())
        out: dict[str, np.ndarray] = {}
        for name, value in raw.items():
            arr = to_numpy(value)
            torch_name = {"kernel": "weight", "embedding": "weight", "scale": "weight", "mean": "running_mean",
                          "var": "running_var"}.get(name, name)
            if name == "kernel":
                arr = layouts.from_framework(arr, LAYOUT)  # (out, in/groups, *kernel)
                if conv is not None and conv["transposed"]:
                    arr = transposed_to_torch(arr, 1)
            out[torch_name] = arr
        return out

    def _build(self, module: str, c: dict, dt, key) -> tuple[dict, dict | None]:
        """``({flax name: array}, conv config or None)``."""
        raise NotImplementedError

    def _conv_check(self, module: str, cc: dict, where: str) -> None:
        if cc["transposed"] and cc["groups"] != 1:
            raise UnsupportedOperation(f"{where} has no feature_group_count (asked for groups={cc['groups']})")
        if any(cc["output_padding"]):
            raise UnsupportedOperation(f"{where} has no output_padding (asked for {cc['output_padding']})")


_CONTRACTS = {
    "unseeded": Contract(
        "unseeded", f"deterministic: Flax layers take explicit keys; the adapter's key starts at "
                    f"jax.random.PRNGKey({DEFAULT_SEED}) in every process until seed() replaces it",
        "Flax docs, 'Randomness' (flax.readthedocs.io/en/latest/guides/randomness.html): Flax NNX uses "
        "'explicit' PRNG keys through nnx.Rngs; linen Module.init(rngs, ...); backends/flax_adapter.py",
        value="deterministic"),
    "seed_mapping": Contract(
        "seed_mapping", "seed(s) sets the adapter's key to jax.random.PRNGKey(s); each layer is built with the next "
                        "split key (nnx.Rngs(params=key) / module.init(key, x))", "backends/flax_adapter.py"),
    "layout": Contract(
        "layout", "Dense/Linear kernel (in, out); Conv kernel (*kernel_size, in_features // feature_group_count, "
                  "out_features); ConvTranspose kernel (*kernel_size, in_features, out_features) (transpose_kernel="
                  "False); Embed embedding (num_embeddings, features)",
        _NNX_SRC + ": kernel_shape = kernel_size + (in_features // feature_group_count, out_features)"),
    "module_dtype": Contract(
        "module_dtype", "param_dtype: 'the dtype passed to parameter initializers (default: float32)'; BatchNorm's "
                        "running mean and var are float32 whatever param_dtype is",
        _NNX_SRC + " (BatchNorm: self.mean = nnx.BatchStat(jnp.zeros(feature_shape, jnp.float32)))"),
    "named_init": Contract(
        "named_init", "flax.nnx.initializers and flax.linen.initializers re-export jax.nn.initializers: the same "
                      "function objects (flax.nnx.initializers.lecun_normal is jax.nn.initializers.lecun_normal)",
        "flax 0.12.8 flax/nnx/nn/initializers.py ('from jax.nn.initializers import ... as ...')"),
}


class NnxBackend(FlaxBackend):
    """``flax.nnx`` layers (``nnx.Linear``, ``nnx.Conv``, ...) built with ``nnx.Rngs``."""

    api = "nnx"
    contracts = dict(_CONTRACTS)

    def _initializers(self):
        from flax import nnx

        return nnx.initializers

    def _build(self, module: str, c: dict, dt, key) -> tuple[dict, dict | None]:
        from flax import nnx

        rngs = nnx.Rngs(params=key)
        if module == "Linear":
            layer = nnx.Linear(int(c.pop("in_features")), int(c.pop("out_features")), use_bias=c.pop("bias", True),
                               param_dtype=dt, rngs=rngs)
            done(c, "flax.nnx.Linear")
            return _nnx_params(layer), None
        if module.startswith("Conv"):
            cc = conv_config(module, c)
            where = f"flax.nnx.{'ConvTranspose' if cc['transposed'] else 'Conv'}"
            self._conv_check(module, cc, where)
            done(c, where)
            common = {"strides": cc["stride"], "padding": _padding(cc["padding"], cc["dims"]),
                      "kernel_dilation": cc["dilation"], "use_bias": cc["bias"], "param_dtype": dt, "rngs": rngs}
            if cc["transposed"]:
                common.pop("padding")  # see _TRANSPOSED_PADDING
                layer = nnx.ConvTranspose(cc["in_ch"], cc["out_ch"], cc["kernel"], **common)
            else:
                layer = nnx.Conv(cc["in_ch"], cc["out_ch"], cc["kernel"], feature_group_count=cc["groups"], **common)
            return _nnx_params(layer), cc
        if module == "Embedding":
            n, d = embedding_config(c, "flax.nnx.Embed")
            done(c, "flax.nnx.Embed")
            return _nnx_params(nnx.Embed(n, d, param_dtype=dt, rngs=rngs)), None
        if module in ("LayerNorm", "RMSNorm"):
            shape = norm_shape(c)
            if len(shape) != 1:
                raise UnsupportedOperation(f"flax.nnx.{module}(num_features: int) normalizes one feature axis; asked "
                                           f"for normalized_shape={shape}")
            eps = c.pop("eps", 1e-5)
            affine = c.pop("elementwise_affine", True)
            if module == "RMSNorm":
                done(c, "flax.nnx.RMSNorm")
                layer = nnx.RMSNorm(shape[0], epsilon=1e-5 if eps is None else eps, use_scale=affine,
                                    param_dtype=dt, rngs=rngs)
            else:
                bias = c.pop("bias", True)
                done(c, "flax.nnx.LayerNorm")
                layer = nnx.LayerNorm(shape[0], epsilon=eps, use_scale=affine, use_bias=affine and bias,
                                      param_dtype=dt, rngs=rngs)
            return _nnx_params(layer), None
        if module in ("BatchNorm1d", "BatchNorm2d"):
            n, eps, momentum, affine = _bn(c, module)
            done(c, "flax.nnx.BatchNorm")
            layer = nnx.BatchNorm(n, epsilon=eps, momentum=momentum, use_scale=affine, use_bias=affine,
                                  param_dtype=dt, rngs=rngs)
            return _nnx_params(layer), None
        raise UnsupportedOperation(f"{self.spec} cannot build module {module!r}")


def _bn(c: dict, module: str) -> tuple[int, float, float, bool]:
    n = int(c.pop("num_features"))
    eps = float(c.pop("eps", 1e-5))
    momentum = bn_momentum(c, module)
    affine = bool(c.pop("affine", True))
    if not c.pop("track_running_stats", True):
        raise UnsupportedOperation(f"{module}(track_running_stats=False): Flax/Equinox BatchNorm always keeps "
                                   "running statistics")
    return n, eps, momentum, affine


def _nnx_params(layer) -> dict:
    """Every ``nnx.Param`` and ``nnx.BatchStat`` of a one-level layer, by attribute name."""
    from flax import nnx

    state = nnx.state(layer, nnx.Param, nnx.BatchStat)
    out = {}
    for part in state:
        for path, var in nnx.to_flat_state(part):
            value = var.get_value() if hasattr(var, "get_value") else var.value
            out[str(path[-1])] = value
    return out


class LinenBackend(FlaxBackend):
    """``flax.linen`` layers (``nn.Dense``, ``nn.Conv``, ...) initialized with ``Module.init(key, x)``."""

    framework = "flax-linen"
    api = "linen"
    contracts = {**_CONTRACTS, "layout": Contract(
        "layout", _CONTRACTS["layout"].statement, _LINEN_SRC + ": kernel_shape = kernel_size + (in_features // "
                                                               "self.feature_group_count, self.features)")}

    def _initializers(self):
        import flax.linen as nn

        return nn.initializers

    def _build(self, module: str, c: dict, dt, key) -> tuple[dict, dict | None]:
        import flax.linen as nn
        import jax.numpy as jnp

        cc = None
        if module == "Linear":
            n_in = int(c.pop("in_features"))
            layer = nn.Dense(int(c.pop("out_features")), use_bias=c.pop("bias", True), param_dtype=dt)
            done(c, "flax.linen.Dense")
            x = jnp.zeros((1, n_in), dt)
        elif module.startswith("Conv"):
            cc = conv_config(module, c)
            where = f"flax.linen.{'ConvTranspose' if cc['transposed'] else 'Conv'}"
            self._conv_check(module, cc, where)
            done(c, where)
            common = {"strides": cc["stride"], "padding": _padding(cc["padding"], cc["dims"]),
                      "kernel_dilation": cc["dilation"], "use_bias": cc["bias"], "param_dtype": dt}
            if cc["transposed"]:
                common.pop("padding")  # see _TRANSPOSED_PADDING
                layer = nn.ConvTranspose(cc["out_ch"], cc["kernel"], **common)
            else:
                layer = nn.Conv(cc["out_ch"], cc["kernel"], feature_group_count=cc["groups"], **common)
            # the smallest input every padding mode accepts: the dilated kernel plus one stride
            spatial = tuple(d * (k - 1) + 1 + s for k, d, s in zip(cc["kernel"], cc["dilation"], cc["stride"],
                                                                    strict=True))
            x = jnp.zeros((1, *spatial, cc["in_ch"]), dt)
        elif module == "Embedding":
            n, d = embedding_config(c, "flax.linen.Embed")
            done(c, "flax.linen.Embed")
            layer, x = nn.Embed(n, d, param_dtype=dt), jnp.zeros((1,), jnp.int32)
        elif module in ("LayerNorm", "RMSNorm"):
            shape = norm_shape(c)
            axes = tuple(range(-len(shape), 0))
            eps = c.pop("eps", 1e-5)
            affine = c.pop("elementwise_affine", True)
            if module == "RMSNorm":
                done(c, "flax.linen.RMSNorm")
                layer = nn.RMSNorm(epsilon=1e-5 if eps is None else eps, use_scale=affine, reduction_axes=axes,
                                   feature_axes=axes, param_dtype=dt)
            else:
                bias = c.pop("bias", True)
                done(c, "flax.linen.LayerNorm")
                layer = nn.LayerNorm(epsilon=eps, use_scale=affine, use_bias=affine and bias, reduction_axes=axes,
                                     feature_axes=axes, param_dtype=dt)
            x = jnp.zeros((1, *shape), dt)
        elif module in ("BatchNorm1d", "BatchNorm2d"):
            n, eps, momentum, affine = _bn(c, module)
            done(c, "flax.linen.BatchNorm")
            layer = nn.BatchNorm(use_running_average=False, epsilon=eps, momentum=momentum, use_scale=affine,
                                 use_bias=affine, param_dtype=dt)
            x = jnp.zeros((2, n), dt)
        else:
            raise UnsupportedOperation(f"{self.spec} cannot build module {module!r}")
        variables = layer.init(key, x)
        out = dict(variables.get("params", {}))
        out.update(variables.get("batch_stats", {}))
        return out, cc


class FlaxProvider(Provider):
    """Flax NNX on ``cpu`` (and ``gpu`` when jax has one); :meth:`probe` never raises."""

    backend_cls = None  # set below: NnxBackend

    def probe(self, device: str) -> Availability:
        return probe_jax_stack(self.framework, device, self.devices, ("flax",), EXTRA)

    def _create(self, device: str) -> Backend:
        return self.backend_cls(device)


class LinenProvider(FlaxProvider):
    """Flax Linen on ``cpu`` (and ``gpu``)."""


FlaxProvider.backend_cls = NnxBackend
LinenProvider.backend_cls = LinenBackend


NNX_PROVIDER = FlaxProvider(framework="flax", devices=("cpu", "gpu"),
                            description="Flax NNX layers (nnx.Linear, nnx.Conv, nnx.Embed, norms) with their default "
                                        "initializers; flax.nnx.initializers", extra="flax")
LINEN_PROVIDER = LinenProvider(framework="flax-linen", devices=("cpu", "gpu"),
                              description="Flax Linen layers (nn.Dense, nn.Conv, nn.Embed, norms) via Module.init; "
                                          "flax.linen.initializers", extra="flax")
