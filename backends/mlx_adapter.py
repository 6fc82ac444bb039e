"""The MLX adapter: ``mlx:cpu`` (Linux ``mlx[cpu]`` or macOS) and ``mlx:gpu`` (Apple silicon, Metal).

Contract
--------
* ``import mlx`` happens lazily, so importing this module never fails when MLX is absent; the probe's reason
  names the extra to install.
* Every computation runs inside ``mlx.core.stream(device)`` and is evaluated (``mx.eval``) before it crosses
  the boundary; bfloat16 crosses as its uint16 bit pattern.
* **Seeds.** ``seed(s)`` is ``mlx.core.random.seed(s)``: the global key becomes ``mx.random.key(s)`` and every
  draw without a key splits it. A process that never seeds starts from a key derived from the clock (observed
  ``mx.random.state[0]`` = ``[418, 150136490]`` and ``[418, 150136863]`` in two runs), so unseeded processes
  differ. ``mx.random.state`` is read-only (no ``set_state``): no ``rng_state`` capability.
* **Layout.** ``nn.Linear`` weights are ``(out, in)`` like torch; convolution weights are ``(out, *kernel,
  in)`` and ``mlx.nn.init`` computes fans as in = ``shape[-1]`` x receptive field, out = ``shape[0]`` x
  receptive field (:mod:`conformance.backends.layouts` layout ``"oki"``). Canonical shapes are translated both ways;
  ``ConvTranspose`` weights come back in torch's module layout ``(in, out, *kernel)``.
* **dtypes.** MLX layers take no dtype: :meth:`MlxBackend.module_params` builds in float32 and casts with
  ``Module.set_dtype`` (what MLX users do). ``mx.random`` has no float64 sampler on the CPU ("Unsupported
  type"): float64 draws raise :class:`UnsupportedOperation`.
* :meth:`MlxBackend.init` maps ``torch.nn.init`` schemes onto ``mlx.nn.init`` where the distribution is the
  same (the table :data:`INITIALIZERS`): ``xavier_*`` -> ``glorot_*(a, gain)``, ``kaiming_*`` ->
  ``he_*(a, mode=fan_mode, gain)`` with the gain of :mod:`.gains` (MLX has none), ``uniform``, ``normal``,
  ``constant``/``zeros``/``ones``, ``eye`` -> ``identity`` (square only), ``orthogonal`` (2-D only).
  ``mlx.nn.init.sparse`` zeros a fraction of each *row* where ``torch.nn.init.sparse_`` zeros each *column*: not
  mapped (:data:`UNMAPPED`).
* Activations: ``mlx.nn`` functions; the derivative is ``mx.vjp`` with a cotangent of ones.
"""

from __future__ import annotations

import inspect
import math
import platform
from collections.abc import Sequence

import numpy as np

from . import dtypes as D
from . import gains, layouts
from .base import FLOAT_DTYPES, Availability, Backend, Contract, Provider, UnsupportedOperation
from .interface import init_params, sample_params

LAYOUT = "oki"
EXTRA = "pip install 'dl-conformance[mlx]'"
NAMED = ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "normal", "uniform", "constant", "identity",
         "orthogonal", "sparse")


def _mx():
    import mlx.core as mx

    return mx


def _nn():
    import mlx.nn as nn

    return nn


def _mx_dtype(dtype: str):
    return getattr(_mx(), dtype)


def to_numpy(x) -> np.ndarray:
    """An evaluated MLX array as numpy, bit-exact (bfloat16 -> ml_dtypes.bfloat16)."""
    mx = _mx()
    mx.eval(x)
    if x.dtype == mx.bfloat16:
        return np.array(x.view(mx.uint16), copy=True).view(D.NUMPY_DTYPES["bfloat16"])
    return np.array(x, copy=True)


def from_numpy(array: np.ndarray, dtype: str):
    """``array`` converted to ``dtype`` as an MLX array, bit-exact."""
    mx = _mx()
    a = np.ascontiguousarray(np.asarray(array).astype(D.numpy_dtype(dtype), copy=False))
    if dtype == "bfloat16":
        return mx.array(a.view(np.uint16)).view(mx.bfloat16)
    return mx.array(a, dtype=_mx_dtype(dtype))


def _unsupported_dtype(exc: Exception, what: str, dtype: str) -> UnsupportedOperation:
    return UnsupportedOperation(f"mlx {what} in {dtype}: {exc}")


def _activation_fn(name: str, params: dict):
    mx, nn = _mx(), _nn()
    if name == "softplus" and params.pop("beta", 1.0) != 1.0:
        raise UnsupportedOperation("mlx.nn.softplus has no beta parameter")
    slope = params.pop("negative_slope", 0.01) if name == "leaky_relu" else None
    if params:
        raise TypeError(f"{name} takes no parameters {sorted(params)}")
    table = {
        "silu": nn.silu, "sigmoid": mx.sigmoid, "gelu": nn.gelu, "gelu_tanh": nn.gelu_approx,
        "softplus": nn.softplus, "tanh": mx.tanh, "mish": nn.mish, "relu": nn.relu,
        "leaky_relu": lambda x: nn.leaky_relu(x, negative_slope=slope),
    }
    return table.get(name)


class MlxBackend(Backend):
    """MLX on one device (``cpu`` or ``gpu``)."""

    framework = "mlx"
    contracts = {
        "unseeded": Contract(
            "unseeded", "fresh per process: the default key is seeded from the clock (mlx/random.cpp "
                        "KeySequence::default_); observed different keys in two runs",
            "mlx 0.32 mlx/random.cpp; mlx.core.random.state docs", value="fresh"),
        "seed_mapping": Contract(
            "seed_mapping", "mlx.core.random.seed(s) sets the global key to mx.random.key(s); each draw without an "
                            "explicit key splits it", "mlx.core.random.seed docs ('Seed the global PRNG')"),
        "layout": Contract(
            "layout", "nn.Linear weight (out, in); convolution weight (out, *kernel, in); mlx.nn.init fans: "
                      "in = shape[-1] * receptive field, out = shape[0] * receptive field",
            "mlx/python/mlx/nn/init.py _calculate_fan_in_fan_out; mlx/python/mlx/nn/layers/convolution.py"),
        "module_dtype": Contract(
            "module_dtype", "layers are built in float32 and cast with Module.set_dtype (MLX layers take no dtype)",
            "mlx.nn.Module.set_dtype docs"),
    }

    def __init__(self, device: str) -> None:
        self.device = device
        self.dtypes = frozenset(FLOAT_DTYPES) if device == "cpu" else frozenset(FLOAT_DTYPES) - {"float64"}

    @property
    def _device(self):
        mx = _mx()
        return mx.cpu if self.device == "cpu" else mx.gpu

    def versions(self) -> dict[str, str]:
        mx = _mx()
        out = {"mlx": mx.__version__, "numpy": np.__version__}
        if self.device == "gpu":
            out["device"] = str(mx.metal.device_info().get("device_name", "metal")) if hasattr(mx, "metal") else "gpu"
        else:
            out["device"] = platform.processor() or platform.machine()
        return out

    def _stream(self):
        return _mx().stream(self._device)

    # -- randomness ----------------------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """``mlx.core.random.seed(seed)``."""
        _mx().random.seed(int(seed))

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``mx.random.uniform(low, high)``, ``normal(loc=mean, scale=std)``, ``truncated_normal`` (bounds
        standardized, then ``mean + std * x``), ``rand``, ``randn``."""
        self.require_dtype(dtype)
        if "generator" in params:
            raise UnsupportedOperation(f"{self.spec}: explicit generators are not exposed by this adapter")
        mx, dt, shape = _mx(), _mx_dtype(dtype), tuple(int(s) for s in shape)
        try:
            with self._stream():
                if dist in ("rand", "randn"):
                    if params:
                        raise TypeError(f"{dist} takes no parameters, got {sorted(params)}")
                    x = mx.random.uniform(shape=shape, dtype=dt) if dist == "rand" else mx.random.normal(shape, dt)
                elif dist == "uniform":
                    p = sample_params(dist, params)
                    x = mx.random.uniform(low=p["low"], high=p["high"], shape=shape, dtype=dt)
                elif dist == "normal":
                    p = sample_params(dist, params)
                    x = mx.random.normal(shape, dt, loc=p["mean"], scale=p["std"])
                elif dist == "trunc_normal":
                    p = sample_params(dist, params)
                    mean, std = p["mean"], p["std"]
                    x = mx.random.truncated_normal((p["low"] - mean) / std, (p["high"] - mean) / std, shape, dt)
                    x = x if (mean, std) == (0.0, 1.0) else mean + std * x
                else:
                    raise UnsupportedOperation(f"{self.spec} has no sampler {dist!r}")
                return to_numpy(x)
        except (ValueError, RuntimeError) as exc:
            if "Unsupported type" in str(exc):
                raise _unsupported_dtype(exc, f"mx.random ({dist})", dtype) from exc
            raise

    def dropout_mask(self, shape: Sequence[int], p: float, dtype: str) -> np.ndarray:
        """``mlx.nn.Dropout(p)`` in training mode on ones: the kept elements are the non-zeros."""
        self.require_dtype(dtype)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        mx = _mx()
        if p == 1.0:
            return np.zeros(tuple(shape), bool)
        with self._stream():
            layer = _nn().Dropout(p)
            layer.train()
            out = layer(mx.ones(tuple(shape), dtype=_mx_dtype(dtype)))
            return to_numpy(out != 0)

    def device_draws(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        with self._stream():
            return {self.device: to_numpy(_mx().random.normal(tuple(shape), _mx().float32))}

    # -- initializers --------------------------------------------------------------------------------------------
    def _apply(self, initializer, shape: Sequence[int], dtype: str, **call) -> np.ndarray:
        """``initializer(mx.zeros(framework_shape), **call)``, transposed back to canonical."""
        shape = tuple(int(s) for s in shape)
        try:
            with self._stream():
                a = _mx().zeros(layouts.to_framework_shape(shape, LAYOUT), dtype=_mx_dtype(dtype))
                x = to_numpy(initializer(a, **call))
        except (ValueError, RuntimeError) as exc:
            if "Unsupported type" in str(exc):
                raise _unsupported_dtype(exc, "mlx.nn.init", dtype) from exc
            raise
        return layouts.from_framework(x, LAYOUT)

    def init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """A ``torch.nn.init`` scheme through the ``mlx.nn.init`` initializer with the same distribution
        (:data:`INITIALIZERS`)."""
        self.require_dtype(dtype)
        if scheme in UNMAPPED:
            raise UnsupportedOperation(UNMAPPED[scheme])
        make = INITIALIZERS.get(scheme)
        if make is None:
            raise UnsupportedOperation(f"mlx.nn.init has no equivalent of torch.nn.init.{scheme}_")
        shape = tuple(int(s) for s in shape)
        initializer, call = make(_nn().init, init_params(scheme, params), shape, _mx_dtype(dtype))
        if scheme == "orthogonal" and math.prod(shape) == 0:
            return np.empty(shape, D.numpy_dtype(dtype))
        return self._apply(initializer, shape, dtype, **call)

    def named_schemes(self) -> tuple[str, ...]:
        inits = _nn().init
        return tuple(n for n in NAMED if hasattr(inits, n))

    def named_init(self, name: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``mlx.nn.init.<name>(**factory_params, dtype)(a, **call_params)`` on the MLX-layout array.

        Parameters the factory's signature names go to the factory; the rest (``mode``, ``gain`` of the He and
        Glorot initializers) go to the returned initializer.
        """
        self.require_dtype(dtype)
        if name not in self.named_schemes():
            raise UnsupportedOperation(f"mlx {_mx().__version__} has no mlx.nn.init.{name}")
        factory = getattr(_nn().init, name)
        accepted = set(inspect.signature(factory).parameters)
        factory_params = {k: v for k, v in params.items() if k in accepted}
        call_params = {k: v for k, v in params.items() if k not in accepted}
        return self._apply(factory(**factory_params, dtype=_mx_dtype(dtype)), shape, dtype, **call_params)

    # -- modules -------------------------------------------------------------------------------------------------
    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """The MLX layer with the same role, built with its default init, cast to ``dtype``, in torch's layout."""
        self.require_dtype(dtype)
        from mlx.utils import tree_flatten

        with self._stream():
            mod, transposed = self._build(module, dict(config))
            if dtype != "float32":
                mod.set_dtype(_mx_dtype(dtype))
            out = {}
            for name, value in tree_flatten(mod.parameters()):
                arr = to_numpy(value)
                if name == "weight" and module.startswith("Conv"):
                    arr = layouts.from_framework(arr, LAYOUT)  # (out, in, *k)
                    if transposed:
                        arr = np.ascontiguousarray(np.swapaxes(arr, 0, 1))  # torch ConvTranspose: (in, out, *k)
                out[name] = arr
        return out

    def _build(self, module: str, c: dict):
        nn = _nn()
        if module == "Linear":
            return nn.Linear(c.pop("in_features"), c.pop("out_features"), bias=c.pop("bias", True)), _done(c, module)
        if module.startswith("Conv"):
            transposed = module.startswith("ConvTranspose")
            cls = getattr(nn, module, None)
            if cls is None:
                raise UnsupportedOperation(f"mlx {_mx().__version__} has no mlx.nn.{module}")
            groups = c.pop("groups", 1)
            kwargs = {"bias": c.pop("bias", True)}
            if groups != 1:
                if "groups" not in inspect.signature(cls.__init__).parameters:
                    raise UnsupportedOperation(f"mlx.nn.{module} has no groups argument (asked for groups={groups})")
                kwargs["groups"] = groups
            for key in ("stride", "padding", "dilation") + (("output_padding",) if transposed else ()):
                if key in c:
                    kwargs[key] = c.pop(key)
            mod = cls(c.pop("in_channels"), c.pop("out_channels"), c.pop("kernel_size"), **kwargs)
            _done(c, module)
            return mod, transposed
        if module == "Embedding":
            if c.pop("padding_idx", None) is not None:
                raise UnsupportedOperation("mlx.nn.Embedding has no padding_idx")
            return nn.Embedding(c.pop("num_embeddings"), c.pop("embedding_dim")), _done(c, module)
        if module in ("LayerNorm", "RMSNorm"):
            shape = c.pop("normalized_shape")
            shape = (shape,) if isinstance(shape, int) else tuple(shape)
            if len(shape) != 1:
                raise UnsupportedOperation(f"mlx.nn.{module} normalizes the last axis only (dims: int); asked for "
                                           f"normalized_shape={shape}")
            eps = c.pop("eps", 1e-5)
            if module == "RMSNorm":
                if not c.pop("elementwise_affine", True):
                    raise UnsupportedOperation("mlx.nn.RMSNorm always has a weight")
                return nn.RMSNorm(shape[0], eps=1e-5 if eps is None else eps), _done(c, module)
            affine = c.pop("elementwise_affine", True)
            return nn.LayerNorm(shape[0], eps=eps, affine=affine, bias=c.pop("bias", True)), _done(c, module)
        if module in ("BatchNorm1d", "BatchNorm2d"):
            mod = nn.BatchNorm(c.pop("num_features"), eps=c.pop("eps", 1e-5), momentum=c.pop("momentum", 0.1),
                               affine=c.pop("affine", True), track_running_stats=c.pop("track_running_stats", True))
            return mod, _done(c, module)
        raise UnsupportedOperation(f"{self.spec} cannot build module {module!r}")

    # -- activations ---------------------------------------------------------------------------------------------
    def _input(self, x: np.ndarray, dtype: str, layout: str):
        mx = _mx()
        x = np.asarray(x)
        if layout == "contiguous":
            return from_numpy(x, dtype)
        if layout == "transposed":
            if x.ndim != 2:
                raise ValueError("layout='transposed' needs a 2-D input")
            return mx.transpose(from_numpy(np.ascontiguousarray(x.T), dtype))
        if layout == "strided":
            wide = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), D.numpy_dtype(dtype))
            wide[..., ::2] = x
            return from_numpy(wide, dtype)[..., ::2]
        raise ValueError(f"unknown layout {layout!r}; expected contiguous, transposed or strided")

    def activation(self, name: str, x: np.ndarray, dtype: str, **params) -> tuple[np.ndarray, np.ndarray]:
        """``mlx.nn.<name>`` and ``mx.vjp`` with a cotangent of ones, computed in ``dtype``."""
        self.require_dtype(dtype)
        layout = params.pop("layout", "contiguous")
        fn = _activation_fn(name, dict(params))
        if fn is None:
            raise UnsupportedOperation(f"{self.spec} has no activation {name!r}")
        mx = _mx()
        with self._stream():
            xt = self._input(x, dtype, layout)
            (out,), (grad,) = mx.vjp(fn, [xt], [mx.ones(xt.shape, dtype=xt.dtype)])
            return to_numpy(out), to_numpy(grad)

    def activation2(self, name: str, x: np.ndarray, y: np.ndarray, dtype: str,
                    **params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``swiglu``: ``mlx.nn.silu(x) * y`` (MLX has no swiglu) and both partials from ``mx.vjp``."""
        layout = self.swiglu_layout(name, dtype, params)
        mx, nn = _mx(), _nn()
        with self._stream():
            xt, yt = self._input(x, dtype, layout), self._input(y, dtype, layout)
            (out,), (gx, gy) = mx.vjp(lambda a, b: nn.silu(a) * b, [xt, yt], [mx.ones(xt.shape, dtype=xt.dtype)])
            return to_numpy(out), to_numpy(gx), to_numpy(gy)


# -- init: torch.nn.init scheme -> mlx.nn.init initializer with the same distribution -----------------------------
def _kaiming(mlx_name: str):
    def make(inits, p, shape, dt):
        gain = gains.calculate_gain(p["nonlinearity"], p["negative_slope"])
        return getattr(inits, mlx_name)(dt), {"mode": gains.check_fan_mode(p["fan_mode"]), "gain": gain}

    return make


def _eye(inits, p, shape, dt):
    if len(shape) != 2 or shape[0] != shape[1]:
        raise UnsupportedOperation(f"mlx.nn.init.identity needs a square matrix, got shape {tuple(shape)}")
    return inits.identity(dtype=dt), {}


def _orthogonal(inits, p, shape, dt):
    if len(shape) != 2:
        raise UnsupportedOperation(f"mlx.nn.init.orthogonal needs a 2-D array, got shape {tuple(shape)}")
    return inits.orthogonal(gain=p["gain"], dtype=dt), {}


#: ``init`` scheme -> ``make(mlx.nn.init, params, canonical shape, mx dtype)`` returning the initializer and the
#: keywords of its call; ``params`` carry the neutral names with every default filled in
#: (:func:`.interface.init_params`).
INITIALIZERS = {
    "xavier_uniform": lambda inits, p, shape, dt: (inits.glorot_uniform(dt), {"gain": p["gain"]}),
    "xavier_normal": lambda inits, p, shape, dt: (inits.glorot_normal(dt), {"gain": p["gain"]}),
    "kaiming_uniform": _kaiming("he_uniform"),
    "kaiming_normal": _kaiming("he_normal"),
    "uniform": lambda inits, p, shape, dt: (inits.uniform(low=p["low"], high=p["high"], dtype=dt), {}),
    "normal": lambda inits, p, shape, dt: (inits.normal(mean=p["mean"], std=p["std"], dtype=dt), {}),
    "constant": lambda inits, p, shape, dt: (inits.constant(p["value"], dtype=dt), {}),
    "zeros": lambda inits, p, shape, dt: (inits.constant(0.0, dtype=dt), {}),
    "ones": lambda inits, p, shape, dt: (inits.constant(1.0, dtype=dt), {}),
    "eye": _eye,
    "orthogonal": _orthogonal,
}

#: Schemes MLX has a same-named function for that is not the same scheme, and why.
UNMAPPED = {
    "trunc_normal": "mlx.nn.init has no truncated-normal initializer (mx.random.truncated_normal is a sampler)",
    "sparse": "mlx.nn.init.sparse zeros a fraction of each row, torch.nn.init.sparse_ of each column: not the same "
              "scheme",
}


def _done(config: dict, module: str) -> bool:
    """Reject configuration the MLX layer has no equivalent for; returns ``False`` (not transposed)."""
    config.pop("device", None)
    if config:
        raise UnsupportedOperation(f"mlx.nn.{module} has no equivalent of {sorted(config)}")
    return False


class MlxProvider(Provider):
    """MLX on ``cpu`` and ``gpu`` (Metal); :meth:`probe` never raises."""

    def probe(self, device: str) -> Availability:
        try:
            import mlx.core as mx
        except Exception as exc:  # noqa: BLE001 - any import failure means unavailable
            return Availability(False, f"mlx is not installed ({EXTRA}; on Linux the CPU build is mlx[cpu]): "
                                       f"{exc!r}")
        if device == "cpu":
            return Availability(True)
        if device == "gpu":
            try:
                if mx.metal.is_available():
                    return Availability(True)
            except Exception:  # noqa: BLE001
                pass
            return Availability(False, f"mlx {mx.__version__}: no Metal GPU here (mx.metal.is_available() is False;"
                                       " mlx:gpu needs Apple silicon)")
        return Availability(False, f"mlx has no device {device!r}")

    def _create(self, device: str) -> Backend:
        return MlxBackend(device)


PROVIDER = MlxProvider(
    framework="mlx",
    devices=("cpu", "gpu"),
    description="MLX (mlx.core.random, mlx.nn.init, mlx.nn layers, mlx.nn activations with mx.vjp)",
    extra="mlx",
)
