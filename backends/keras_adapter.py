"""The Keras 3 adapter: ``keras-jax:cpu`` and ``keras-torch:cpu`` (one class, parameterized by Keras's backend).

Contract
--------
* **One backend per process.** Keras reads ``KERAS_BACKEND`` once, at ``import keras``. The providers' probes never
  import keras (``importlib.util.find_spec`` only); creating an adapter sets ``KERAS_BACKEND`` when keras is not
  imported yet. When keras is already imported with another backend (``keras-jax:cpu`` and ``keras-torch:cpu`` in
  one run), the probe reports the spec unavailable and says to run it in its own ``conformance run``.
* **Seeds.** ``seed(s)`` is ``keras.utils.set_random_seed(s)``: it seeds Python's ``random``, NumPy, torch (on the
  torch backend) and drops the global ``SeedGenerator``, which is re-created from Python's ``random`` on the next
  unseeded draw. ``keras.random.*`` without ``seed=`` draw from that global ``SeedGenerator``; initializers created
  without a seed take an int from Python's ``random`` (``make_default_seed``) when they are constructed. Both are
  therefore functions of ``s`` after ``seed(s)``, and fresh per process without it (Python seeds ``random`` from
  ``os.urandom``).
* **Layout.** Keras kernels are ``(in, out)`` (Dense) and ``(*kernel, in/groups, out)`` (ConvND), like
  ``jax.nn.initializers`` (:mod:`.layouts` layout ``"io"``); ``keras.initializers`` compute fans from that layout
  (``compute_fans``: fan_in = ``shape[-2] * receptive field``). Transposed convolutions keep ``(*kernel, out, in)``:
  :meth:`KerasBackend.module_params` returns torch's ``ConvTranspose`` layout ``(in, out, *kernel)``.
* :meth:`KerasBackend.init` maps ``torch.nn.init`` schemes onto ``keras.initializers`` only where the distribution
  is the same (:data:`INITIALIZERS`); every call builds a new, unseeded initializer instance, as Keras layers do for a
  string initializer. :meth:`KerasBackend.named_init` calls ``keras.initializers.<name>(**params)`` the same way.
* **Arrays** cross bit-exactly: on JAX ``np.array`` (bfloat16 arrives as ``ml_dtypes.bfloat16``), on torch the
  int16 bit pattern of bfloat16 (:mod:`.torch.tensors`). ``keras.ops.convert_to_numpy`` is not used: on torch it
  widens bfloat16 to float32.
* Activations: ``keras.activations`` (``gelu_tanh`` is ``gelu(approximate=True)``; ``swiglu`` is ``silu(x) * y``)
  differentiated by the backend's own autograd: ``jax.vjp`` (jitted, inputs padded to power-of-two lengths) on
  ``keras-jax``, ``torch.autograd.grad`` on ``keras-torch`` (where transposed and strided inputs are real strided
  views; JAX arrays have no strides).
* Initializer instances (:mod:`conformance.areas.initializer_instances`):
  :meth:`KerasBackend.initializer_instance_draws` calls ONE instance several times,
  :meth:`KerasBackend.shared_initializer_layers` builds layers that share one instance;
  contract ``initializer_reuse`` quotes Keras's docs on what that gives.
"""

from __future__ import annotations

import importlib.util
import math
import os
import platform
import sys
from collections.abc import Sequence

import numpy as np

from . import dtypes as D
from . import gains, layouts
from .base import FLOAT_DTYPES, Availability, Backend, Contract, Provider, UnsupportedOperation
from .interface import init_params, sample_params
from .jax_adapter import contiguous_only, run_padded

LAYOUT = "io"
EXTRAS = {"jax": "pip install 'dl-conformance[keras-jax]'", "torch": "pip install 'dl-conformance[keras-torch]'"}

#: Keras's own initializer names (snake-case aliases exported by ``keras.initializers``) that ``named_init`` calls.
NAMED = ("variance_scaling", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal",
         "lecun_uniform", "truncated_normal", "random_normal", "random_uniform", "orthogonal", "zeros", "ones",
         "constant", "identity")

_KERAS_DOCS = "keras 3 docs, keras.initializers (keras/src/initializers/random_initializers.py, keras 3.15)"


def _keras():
    import keras

    return keras


def _imported_backend() -> str | None:
    """The backend of an already imported keras, ``None`` when keras is not imported."""
    mod = sys.modules.get("keras")
    if mod is None:
        return None
    try:
        return str(mod.backend.backend())
    except Exception:  # noqa: BLE001 - a half-imported keras
        return os.environ.get("KERAS_BACKEND", "unknown")


def _ensure_backend(backend: str):
    """Import keras with ``backend``; raise :class:`UnsupportedOperation` if it is already another one."""
    current = _imported_backend()
    if current is None:
        os.environ["KERAS_BACKEND"] = backend
        if backend == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)  # float64 arrays exist only with x64 on

            from .jax_adapter import use_compilation_cache

            use_compilation_cache(jax)
    elif current != backend:
        raise UnsupportedOperation(_other_backend_reason(backend, current))
    keras = _keras()
    if keras.backend.backend() != backend:  # pragma: no cover - a keras.json that wins over the environment
        raise UnsupportedOperation(_other_backend_reason(backend, keras.backend.backend()))
    return keras


def _other_backend_reason(wanted: str, current: str) -> str:
    return (f"keras is already imported in this process with backend {current!r}; Keras fixes its backend once per "
            f"process (KERAS_BACKEND is read at import), so keras-{wanted}:cpu cannot run here: run it in a separate "
            f"`conformance run --backend keras-{wanted}:cpu`")


# -- conversions ----------------------------------------------------------------------------------------------------
def _raw(x):
    """The backend tensor behind a keras Variable (or the tensor itself)."""
    return getattr(x, "value", x)


def to_numpy(x, backend: str) -> np.ndarray:
    """A host copy of a Keras tensor or Variable, bit-exact (bfloat16 -> ``ml_dtypes.bfloat16``)."""
    x = _raw(x)
    if backend == "torch":
        from .torch.tensors import to_numpy as torch_to_numpy

        return torch_to_numpy(x)
    return np.array(x, copy=True)


# -- init: torch.nn.init scheme -> keras.initializers with the same distribution -----------------------------------
def _variance_scaling(mode_fn, distribution: str):
    def make(inits, p, shape):
        scale, mode = mode_fn(p)
        return inits.VarianceScaling(scale=scale, mode=mode, distribution=distribution)

    return make


def _xavier_mode(p):
    return p["gain"] ** 2, "fan_avg"


def _kaiming_mode(p):
    gain = gains.calculate_gain(p["nonlinearity"], p["negative_slope"])
    return gain ** 2, gains.check_fan_mode(p["fan_mode"])


def _trunc_normal(inits, p, shape):
    mean, std = p["mean"], p["std"]
    lo, hi = (p["low"] - mean) / std, (p["high"] - mean) / std
    if not (math.isclose(lo, -2.0, rel_tol=1e-9) and math.isclose(hi, 2.0, rel_tol=1e-9)):
        raise UnsupportedOperation(
            "keras.initializers.TruncatedNormal always truncates at 2 standard deviations of the mean ('values more "
            f"than two standard deviations from the mean are discarded and re-drawn'); asked for [{p['low']:g}, "
            f"{p['high']:g}] = [{lo:g}, {hi:g}] std around mean {mean:g}")
    return inits.TruncatedNormal(mean=mean, stddev=std)


def _orthogonal(inits, p, shape):
    if len(shape) < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    return inits.Orthogonal(gain=p["gain"])


def _eye(inits, p, shape):
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return inits.Identity(gain=1.0)


#: ``init`` scheme -> ``make(keras.initializers, params, canonical shape)``; absent schemes (``dirac``, ``sparse``)
#: have no Keras initializer with the same distribution.
INITIALIZERS = {
    "xavier_uniform": _variance_scaling(_xavier_mode, "uniform"),
    "xavier_normal": _variance_scaling(_xavier_mode, "untruncated_normal"),
    "kaiming_uniform": _variance_scaling(_kaiming_mode, "uniform"),
    "kaiming_normal": _variance_scaling(_kaiming_mode, "untruncated_normal"),
    "uniform": lambda inits, p, shape: inits.RandomUniform(minval=p["low"], maxval=p["high"]),
    "normal": lambda inits, p, shape: inits.RandomNormal(mean=p["mean"], stddev=p["std"]),
    "trunc_normal": _trunc_normal,
    "constant": lambda inits, p, shape: inits.Constant(p["value"]),
    "zeros": lambda inits, p, shape: inits.Zeros(),
    "ones": lambda inits, p, shape: inits.Ones(),
    "eye": _eye,
    "orthogonal": _orthogonal,
}
UNMAPPED = {
    "dirac": "keras.initializers has no Dirac (identity-convolution) initializer",
    "sparse": "keras.initializers has no sparse initializer",
}

_ACTIVATIONS = ("silu", "sigmoid", "gelu", "gelu_tanh", "softplus", "tanh", "mish", "relu", "leaky_relu")


def _activation_fn(name: str, params: dict):
    """``x -> keras.activations.<name>(x, ...)``; raises for parameters Keras does not have."""
    acts = _keras().activations
    p = dict(params)
    if name == "softplus" and p.pop("beta", 1.0) != 1.0:
        raise UnsupportedOperation("keras.activations.softplus has no beta parameter")
    slope = p.pop("negative_slope", 0.01) if name == "leaky_relu" else None
    if p:
        raise TypeError(f"{name} takes no parameters {sorted(p)}")
    table = {
        "silu": acts.silu, "sigmoid": acts.sigmoid, "gelu": lambda x: acts.gelu(x, approximate=False),
        "gelu_tanh": lambda x: acts.gelu(x, approximate=True), "softplus": acts.softplus, "tanh": acts.tanh,
        "mish": acts.mish, "relu": acts.relu, "leaky_relu": lambda x: acts.leaky_relu(x, negative_slope=slope),
    }
    return table[name]


_JIT: dict = {}


def _seed_kind(seed: str):
    """The ``seed=`` a Keras initializer instance gets for the seed kind of :mod:`conformance.areas.
    initializer_instances`: ``"int"`` (1337), ``"none"`` or ``"generator"`` (a ``keras.random.SeedGenerator``)."""
    if seed == "int":
        return 1337
    if seed == "none":
        return None
    if seed == "generator":
        return _keras().random.SeedGenerator(1337)
    raise ValueError(f"unknown seed kind {seed!r}; expected int, none or generator")


class KerasBackend(Backend):
    """Keras 3 on one backend (``jax`` or ``torch``), device ``cpu``."""

    dtypes = frozenset(FLOAT_DTYPES)

    def __init__(self, backend: str, device: str = "cpu") -> None:
        self.keras_backend = backend
        self.framework = f"keras-{backend}"
        self.device = device
        self._k = _ensure_backend(backend)
        self.contracts = _contracts(backend)

    def versions(self) -> dict[str, str]:
        out = {"keras": self._k.__version__, "keras_backend": self.keras_backend, "numpy": np.__version__,
               "device": platform.processor() or platform.machine()}
        if self.keras_backend == "jax":
            import jax

            out["jax"] = jax.__version__
        else:
            import torch

            out["torch"] = torch.__version__
        return out

    def _np(self, x) -> np.ndarray:
        return to_numpy(x, self.keras_backend)

    def _scope(self):
        return self._k.device("cpu:0")

    # -- randomness ----------------------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """``keras.utils.set_random_seed(seed)``."""
        self._k.utils.set_random_seed(int(seed))

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``keras.random.uniform(minval=low, maxval=high)``, ``normal(mean, stddev)``, ``truncated_normal`` (only
        with bounds at mean +- 2 std: Keras truncates there and nowhere else), ``rand``, ``randn``; no ``seed=``:
        the global ``SeedGenerator``."""
        self.require_dtype(dtype)
        if "generator" in params:
            raise UnsupportedOperation(f"{self.spec}: explicit generators are not exposed by this adapter")
        rnd, shape = self._k.random, tuple(int(s) for s in shape)
        with self._scope():
            if dist in ("rand", "randn"):
                if params:
                    raise TypeError(f"{dist} takes no parameters, got {sorted(params)}")
                x = rnd.uniform(shape, dtype=dtype) if dist == "rand" else rnd.normal(shape, dtype=dtype)
            elif dist == "uniform":
                p = sample_params(dist, params)
                x = rnd.uniform(shape, minval=p["low"], maxval=p["high"], dtype=dtype)
            elif dist == "normal":
                p = sample_params(dist, params)
                x = rnd.normal(shape, mean=p["mean"], stddev=p["std"], dtype=dtype)
            elif dist == "trunc_normal":
                p = sample_params(dist, params)
                _trunc_normal(self._k.initializers, p, shape)  # raises unless the bounds are mean +- 2 std
                x = rnd.truncated_normal(shape, mean=p["mean"], stddev=p["std"], dtype=dtype)
            else:
                raise UnsupportedOperation(f"{self.spec} has no sampler {dist!r}")
            return self._np(x)

    def dropout_mask(self, shape: Sequence[int], p: float, dtype: str) -> np.ndarray:
        """``keras.random.dropout(ones, rate=p)`` without ``seed=``: the kept elements are the non-zeros (JAX: a
        Bernoulli draw from the global SeedGenerator; torch: ``torch.nn.functional.dropout`` on torch's global
        generator, which ``keras.utils.set_random_seed`` seeds with ``torch.manual_seed``)."""
        self.require_dtype(dtype)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        shape = tuple(int(s) for s in shape)
        with self._scope():
            out = self._k.random.dropout(self._k.ops.ones(shape, dtype=dtype), rate=p)
            return self._np(out) != 0

    # -- initializers --------------------------------------------------------------------------------------------
    def _call(self, initializer, shape: Sequence[int], dtype: str) -> np.ndarray:
        """``initializer(keras_shape, dtype)``, transposed back to canonical."""
        shape = tuple(int(s) for s in shape)
        with self._scope():
            x = initializer(layouts.to_framework_shape(shape, LAYOUT), dtype=dtype)
            return layouts.from_framework(self._np(x), LAYOUT)

    def init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """A ``torch.nn.init`` scheme through a new, unseeded ``keras.initializers`` instance with the same
        distribution (:data:`INITIALIZERS`)."""
        self.require_dtype(dtype)
        if scheme in UNMAPPED:
            raise UnsupportedOperation(UNMAPPED[scheme])
        make = INITIALIZERS.get(scheme)
        if make is None:
            raise UnsupportedOperation(f"keras.initializers has no equivalent of torch.nn.init.{scheme}_")
        shape = tuple(int(s) for s in shape)
        initializer = make(self._k.initializers, init_params(scheme, params), shape)
        if math.prod(shape) == 0:
            return np.empty(shape, D.numpy_dtype(dtype))
        try:
            return self._call(initializer, shape, dtype)
        except (NotImplementedError, RuntimeError) as exc:
            if scheme != "orthogonal":
                raise
            raise UnsupportedOperation(f"{self.spec}: keras.initializers.Orthogonal in {dtype}: the backend's QR "
                                       f"has no kernel for it ({type(exc).__name__}: {str(exc)[:160]})") from exc

    def named_schemes(self) -> tuple[str, ...]:
        inits = self._k.initializers
        return tuple(n for n in NAMED if hasattr(inits, n))

    def named_init(self, name: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``keras.initializers.<name>(**params)`` (a new instance) on the Keras-layout shape."""
        self.require_dtype(dtype)
        if name not in self.named_schemes():
            raise UnsupportedOperation(f"keras {self._k.__version__} has no keras.initializers.{name}")
        return self._call(getattr(self._k.initializers, name)(**params), shape, dtype)

    # -- one initializer instance, called more than once (conformance.areas.initializer_instances) ----------------
    def initializer_instance_draws(self, name: str, shape: Sequence[int], dtype: str, seed: str, calls: int = 2,
                                   **params) -> list[np.ndarray]:
        """``init = keras.initializers.<name>(seed=..., **params)`` built ONCE, then called ``calls`` times."""
        self.require_dtype(dtype)
        if name not in self.named_schemes():
            raise UnsupportedOperation(f"keras {self._k.__version__} has no keras.initializers.{name}")
        instance = getattr(self._k.initializers, name)(seed=_seed_kind(seed), **params)
        return [self._call(instance, shape, dtype) for _ in range(calls)]

    def shared_initializer_layers(self, module: str, dtype: str, seed: str, count: int = 2,
                                  **config) -> list[dict[str, np.ndarray]]:
        """``count`` layers ``module(**config)`` whose weight initializer is ONE instance of the layer's default
        class (``GlorotUniform`` for Dense/Conv, ``RandomUniform`` for Embedding), seeded per ``seed``: what a user
        writing ``init = GlorotUniform(); Dense(..., kernel_initializer=init)`` for every layer gets."""
        self.require_dtype(dtype)
        inits = self._k.initializers
        cls = inits.RandomUniform if module == "Embedding" else inits.GlorotUniform
        shared = cls(seed=_seed_kind(seed))
        return [self.module_params(module, dtype, _weight_initializer=shared, **config) for _ in range(count)]

    # -- modules -------------------------------------------------------------------------------------------------
    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """The Keras layer with the same role, built (``layer.build``) with its default init in ``dtype``;
        parameters by torch's names in torch's layout."""
        self.require_dtype(dtype)
        config = dict(config)
        weight_init = config.pop("_weight_initializer", None)
        with self._scope():
            return self._build(module, dtype, config, weight_init)

    def _build(self, module: str, dtype: str, c: dict, weight_init) -> dict[str, np.ndarray]:
        L = self._k.layers
        c.pop("device", None)
        extra = {} if weight_init is None else {"kernel_initializer": weight_init}
        if module == "Linear":
            n_in, n_out = c.pop("in_features"), c.pop("out_features")
            layer = L.Dense(n_out, use_bias=c.pop("bias", True), dtype=dtype, **extra)
            _done(c, module)
            layer.build((None, n_in))
            out = {"weight": self._np(layer.kernel).T.copy()}
            if layer.use_bias:
                out["bias"] = self._np(layer.bias)
            return out
        if module.startswith("Conv"):
            return self._conv(module, dtype, c, extra)
        if module == "Embedding":
            if c.pop("padding_idx", None) is not None:
                raise UnsupportedOperation("keras.layers.Embedding has no padding_idx (mask_zero masks index 0 in "
                                           "the output mask but leaves its row random)")
            if weight_init is not None:
                extra = {"embeddings_initializer": weight_init}
            layer = L.Embedding(c.pop("num_embeddings"), c.pop("embedding_dim"), dtype=dtype, **extra)
            _done(c, module)
            layer.build((None,))
            return {"weight": self._np(layer.embeddings)}
        if module in ("LayerNorm", "RMSNorm"):
            shape = c.pop("normalized_shape")
            shape = (shape,) if isinstance(shape, int) else tuple(shape)
            axis = -1 if len(shape) == 1 else list(range(-len(shape), 0))
            affine = c.pop("elementwise_affine", True)
            if module == "RMSNorm":
                if not hasattr(L, "RMSNormalization"):
                    raise UnsupportedOperation(f"keras {self._k.__version__} has no keras.layers.RMSNormalization")
                if not affine:
                    raise UnsupportedOperation("keras.layers.RMSNormalization always has a scale")
                eps = c.pop("eps", None)
                layer = L.RMSNormalization(axis=axis, epsilon=1e-6 if eps is None else eps, dtype=dtype)
                _done(c, module)
                layer.build((None, *shape))
                return {"weight": self._np(layer.scale)}
            bias = c.pop("bias", True)
            layer = L.LayerNormalization(axis=axis, epsilon=c.pop("eps", 1e-5), center=affine and bias,
                                         scale=affine, dtype=dtype)
            _done(c, module)
            layer.build((None, *shape))
            out = {}
            if layer.scale:
                out["weight"] = self._np(layer.gamma)
            if layer.center:
                out["bias"] = self._np(layer.beta)
            return out
        if module in ("BatchNorm1d", "BatchNorm2d"):
            if not c.pop("track_running_stats", True):
                raise UnsupportedOperation("keras.layers.BatchNormalization always tracks moving statistics")
            n, affine = c.pop("num_features"), c.pop("affine", True)
            layer = L.BatchNormalization(axis=-1, epsilon=c.pop("eps", 1e-5), momentum=1.0 - c.pop("momentum", 0.1),
                                         center=affine, scale=affine, dtype=dtype)
            _done(c, module)
            layer.build((None, n) if module == "BatchNorm1d" else (None, 4, 4, n))
            out = {"running_mean": self._np(layer.moving_mean), "running_var": self._np(layer.moving_variance)}
            if affine:
                out["weight"], out["bias"] = self._np(layer.gamma), self._np(layer.beta)
            return out
        raise UnsupportedOperation(f"{self.spec} cannot build module {module!r}")

    def _conv(self, module: str, dtype: str, c: dict, extra: dict) -> dict[str, np.ndarray]:
        L = self._k.layers
        transposed = module.startswith("ConvTranspose")
        dims = int(module[-2])
        cls = getattr(L, f"Conv{dims}D{'Transpose' if transposed else ''}", None)
        if cls is None:
            raise UnsupportedOperation(f"keras {self._k.__version__} has no keras.layers.Conv{dims}D"
                                       f"{'Transpose' if transposed else ''}")
        n_in, n_out, kernel = c.pop("in_channels"), c.pop("out_channels"), c.pop("kernel_size")
        groups = c.pop("groups", 1)
        kwargs = {"strides": c.pop("stride", 1), "dilation_rate": c.pop("dilation", 1),
                  "use_bias": c.pop("bias", True)}
        padding = c.pop("padding", 0)
        if padding not in (0, "valid", "same"):
            raise UnsupportedOperation(f"keras.layers.{cls.__name__} pads 'valid' or 'same' only (asked for "
                                       f"padding={padding!r})")
        kwargs["padding"] = "same" if padding == "same" else "valid"
        if c.pop("padding_mode", "zeros") != "zeros":
            raise UnsupportedOperation(f"keras.layers.{cls.__name__} pads with zeros only")
        if transposed:
            if groups != 1:
                raise UnsupportedOperation(f"keras.layers.{cls.__name__} has no groups argument (asked for "
                                           f"groups={groups})")
            output_padding = c.pop("output_padding", 0)
            if output_padding:
                kwargs["output_padding"] = output_padding
        else:
            kwargs["groups"] = groups
        _done(c, module)
        layer = cls(n_out, kernel, dtype=dtype, **kwargs, **extra)
        layer.build((None, *([None] * dims), n_in))
        k = self._np(layer.kernel)
        if transposed:  # Keras (*k, out, in) -> torch ConvTranspose (in, out, *k)
            w = np.ascontiguousarray(k.transpose((dims + 1, dims, *range(dims))))
        else:  # Keras (*k, in/groups, out) -> torch (out, in/groups, *k)
            w = layouts.from_framework(k, LAYOUT)
        out = {"weight": w}
        if layer.use_bias:
            out["bias"] = self._np(layer.bias)
        return out

    # -- activations ---------------------------------------------------------------------------------------------
    def activation(self, name: str, x: np.ndarray, dtype: str, **params) -> tuple[np.ndarray, np.ndarray]:
        """``keras.activations.<name>`` and the backend's autograd (``jax.vjp`` / ``torch.autograd.grad``) with an
        upstream gradient of ones, in ``dtype``."""
        if name not in _ACTIVATIONS:
            raise UnsupportedOperation(f"{self.spec} has no activation {name!r}")
        self.require_dtype(dtype)
        layout = params.pop("layout", "contiguous")
        fn = _activation_fn(name, params)
        if self.keras_backend == "jax":
            contiguous_only(self.spec, layout)
            return self._jax_run((name, tuple(sorted(params.items()))), lambda a: fn(a), [x], dtype)
        return self._torch_run(lambda a: fn(a), [x], dtype, layout)

    def activation2(self, name: str, x: np.ndarray, y: np.ndarray, dtype: str,
                    **params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``swiglu``: ``keras.activations.silu(x) * y`` (Keras has no swiglu) and both partials."""
        layout = self.swiglu_layout(name, dtype, params)
        fn = lambda a, b: self._k.activations.silu(a) * b  # noqa: E731
        if self.keras_backend == "jax":
            contiguous_only(self.spec, layout)
            return self._jax_run(("swiglu", ()), fn, [x, y], dtype)
        return self._torch_run(fn, [x, y], dtype, layout)

    def _jax_run(self, key, fn, inputs: list[np.ndarray], dtype: str) -> tuple[np.ndarray, ...]:
        """``jit(x -> (fn(x), vjp(fn, x)(ones)))``, cached per ``key``, on padded inputs (as the JAX adapter)."""
        import jax
        import jax.numpy as jnp

        if key not in _JIT:
            def run(*args):
                out, vjp = jax.vjp(fn, *args)
                return (out, *vjp(jnp.ones_like(out)))

            _JIT[key] = jax.jit(run)
        return run_padded(_JIT[key], inputs, dtype)

    def _torch_run(self, fn, inputs: list[np.ndarray], dtype: str, layout: str) -> tuple[np.ndarray, ...]:
        import torch

        from .torch.tensors import to_numpy as torch_to_numpy

        leaves = [_torch_leaf(a, dtype, layout) for a in inputs]
        with torch.enable_grad():
            out = fn(*leaves)
            grads = torch.autograd.grad(out, leaves, torch.ones_like(out))
        return (torch_to_numpy(out), *(torch_to_numpy(g) for g in grads))


def _torch_leaf(x: np.ndarray, dtype: str, layout: str):
    """A CPU leaf tensor requiring grad whose logical values are ``x``, contiguous, transposed or strided."""
    import torch

    from .torch.tensors import from_numpy

    x = np.asarray(x)
    if layout == "contiguous":
        t = from_numpy(x, dtype, "cpu")
    elif layout == "transposed":
        if x.ndim != 2:
            raise ValueError("layout='transposed' needs a 2-D input")
        t = from_numpy(np.ascontiguousarray(x.T), dtype, "cpu").t()
    elif layout == "strided":
        base = torch.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=getattr(torch, dtype))
        base[..., ::2] = from_numpy(x, dtype, "cpu")
        t = base[..., ::2]
    else:
        raise ValueError(f"unknown layout {layout!r}; expected contiguous, transposed or strided")
    return t.detach().requires_grad_(True)


def _done(config: dict, module: str) -> None:
    if config:
        raise UnsupportedOperation(f"the Keras layer for {module} has no equivalent of {sorted(config)}")


def _contracts(backend: str) -> dict[str, Contract]:
    seedgen = ("Keras docs, keras.random.SeedGenerator: 'if you pass an integer seed to them (such as seed=42), they "
               "will return the same values for repeated calls. To get different values for each call, a "
               "SeedGenerator providing the state of the random generator has to be used'")
    shift = ("keras/src/backend/torch/random.py torch_seed_generator: generator.manual_seed(first_seed + second_seed) "
             "with SeedGenerator(s).next() = [s, k] on its k-th draw" if backend == "torch" else
             "keras/src/backend/jax/random.py: the key is the raw [seed, counter] pair")
    return {
        "unseeded": Contract(
            "unseeded", "fresh per process: without set_random_seed the global SeedGenerator and every unseeded "
                        "initializer take their seed from Python's random module (make_default_seed = "
                        "random.randint(1, 1e9)), which Python seeds from os.urandom",
            "keras/src/random/seed_generator.py make_default_seed, global_seed_generator (keras 3.15)",
            value="fresh"),
        "seed_mapping": Contract(
            "seed_mapping", "seed(s) is keras.utils.set_random_seed(s): random.seed(s), np.random.seed(s)"
                            + (", torch.manual_seed(s)" if backend == "torch" else "")
                            + " and the global SeedGenerator is dropped (re-created from Python's random on the next "
                              "unseeded keras.random call)",
            "keras.utils.set_random_seed docs: 'Sets all random seeds (Python, NumPy, and backend framework, e.g. "
            "TF)'; 'it resets the global Keras SeedGenerator'"),
        "seed_generator": Contract(
            "seed_generator", "keras.random.SeedGenerator(s) is a counter: its k-th draw uses the seed pair [s, k]; "
                              "an int seed= is the pair [s, 0] on every call. "
                              + ("On the torch backend the pair is summed into one torch seed, so SeedGenerator(s+1) "
                                 "draws the stream of SeedGenerator(s) shifted by one draw, and int seed s+1 equals "
                                 "SeedGenerator(s)'s second draw" if backend == "torch" else
                                 "On the JAX backend the pair is the raw PRNG key"),
            f"{seedgen}; {shift}"),
        "initializer_reuse": Contract(
            "initializer_reuse", "an initializer instance seeded with an int or unseeded returns the same values on "
                                 "every call (so layers that share one such instance are identical); one seeded with "
                                 "a keras.random.SeedGenerator returns different values on each call",
            f"{_KERAS_DOCS}, every RandomInitializer's seed argument: 'Note that an initializer seeded with an "
            "integer or None (unseeded) will produce the same random values across multiple calls. To get different "
            "random values across multiple calls, use as seed an instance of keras.random.SeedGenerator.'",
            value="int:same,none:same,generator:differ"),
        "layout": Contract(
            "layout", "Dense kernel (in, out), ConvND kernel (*kernel, in/groups, out), ConvNDTranspose kernel "
                      "(*kernel, out, in); keras.initializers fans from that layout: fan_in = shape[-2] * receptive "
                      "field, fan_out = shape[-1] * receptive field",
            "keras/src/initializers/random_initializers.py compute_fans; keras/src/layers/convolutional/base_conv.py, "
            "base_conv_transpose.py (keras 3.15)"),
    }


class KerasProvider(Provider):
    """Keras 3 on one backend; :meth:`probe` never raises and never imports keras."""

    def __init__(self, backend: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.backend = backend

    def probe(self, device: str) -> Availability:
        if device not in self.devices:
            return Availability(False, f"keras-{self.backend} has no device {device!r}")
        for module in ("keras", self.backend):
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError) as exc:
                return Availability(False, f"{module} cannot be found ({EXTRAS[self.backend]}): {exc!r}")
            if not found:
                return Availability(False, f"{module} is not installed ({EXTRAS[self.backend]})")
        current = _imported_backend()
        if current is not None and current != self.backend:
            return Availability(False, _other_backend_reason(self.backend, current))
        return Availability(True)

    def _create(self, device: str) -> Backend:
        try:
            return KerasBackend(self.backend, device)
        except UnsupportedOperation as exc:
            from .base import BackendUnavailable

            raise BackendUnavailable(f"keras-{self.backend}:{device} is unavailable: {exc}") from exc


JAX_PROVIDER = KerasProvider(
    "jax", framework="keras-jax", devices=("cpu",),
    description="Keras 3 on JAX (keras.random, keras.initializers, keras.layers, keras.activations with jax.vjp); "
                "one Keras backend per process",
    extra="keras-jax")
TORCH_PROVIDER = KerasProvider(
    "torch", framework="keras-torch", devices=("cpu",),
    description="Keras 3 on torch (keras.random, keras.initializers, keras.layers, keras.activations with "
                "torch.autograd); one Keras backend per process",
    extra="keras-torch")
