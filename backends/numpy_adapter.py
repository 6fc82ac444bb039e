"""The numpy reference adapter: every scheme implemented from its definition, not from any framework.

Contract
--------
* Randomness: one ``numpy.random.Generator(PCG64(seed))``, replaced by
  :meth:`NumpyBackend.seed`; the default seed is :data:`DEFAULT_SEED`.
* Every random value is drawn in float64 from the continuous definition and
  rounded **once** to nearest-even in the requested dtype
  (:func:`conformance.backends.dtypes.round_to`). A value that rounds out of the documented
  support goes to the nearest representable value inside it: ``uniform`` is
  ``[low, high)`` (never returns ``high``), ``trunc_normal`` is ``[low, high]``.
* ``init`` and ``sample`` take the neutral parameter names of
  :mod:`conformance.backends.interface` as they are (``low``, ``high``, ``value``,
  ``fan_mode``, ``negative_slope``, ...); gains and fans come from :mod:`.gains`.
* Definitions (``torch.nn.init`` docs; Glorot and Bengio 2010; He et al. 2015;
  Saxe et al. 2013 for orthogonal; Martens 2010 for sparse): see each function.
* Activations: analytic value and derivative in float64 with numerically
  stable forms, then rounded to the dtype; finite for every finite input.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import warnings
from collections.abc import Sequence

import numpy as np
import scipy
import scipy.special
import scipy.stats

from . import dtypes as D
from .base import FLOAT_DTYPES, Availability, Backend, Contract, Provider, UnsupportedOperation
from .gains import calculate_gain, fan, fans  # the adapters' one gain/fan table (still importable from here)

DEFAULT_SEED = 0

#: torch.nn.init warns "Initializing zero-element tensors is a no-op" only in these schemes (observed on torch 2.x);
#: the other schemes return an empty tensor silently.
WARNS_ON_EMPTY = frozenset({"kaiming_uniform", "kaiming_normal"})
EMPTY_WARNING = "Initializing zero-element tensors is a no-op"


# -- activations: (value, derivative) in float64 -----------------------------------------------------------------
def _sech2(u: np.ndarray) -> np.ndarray:
    """sech(u)^2 = 4 e^{-2|u|} / (1 + e^{-2|u|})^2, without overflow."""
    e = np.exp(-2.0 * np.abs(u))
    return 4.0 * e / (1.0 + e) ** 2


def _softplus(x: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """log(1 + exp(beta x)) / beta, stable for all x."""
    z = beta * x
    return (np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0)) / beta


def _expit(x):
    """sigma(x) without underflowing early: exp(x) / (1 + exp(x)) for x < 0 (scipy's expit is 0 below -709)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _act_sigmoid(x):
    return _expit(x), _expit(x) * _expit(-x)


def _act_silu(x):
    s, sn = _expit(x), _expit(-x)
    # far left, x * sigma(x) = -exp(x + log|x|) / (1 + e^x): no subnormal intermediate
    deep = np.minimum(x, -700.0)
    value = np.where(x < -700.0, -np.exp(deep + np.log(-deep)) / (1.0 + np.exp(deep)), x * s)
    return value, s + x * s * sn  # s (1 + x (1 - s)), with 1 - s computed as sigma(-x)


_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _act_gelu(x):
    cdf = scipy.special.ndtr(x)  # Phi(x) = (1 + erf(x/sqrt2))/2, accurate in the lower tail
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    # lower tail in the log domain: x Phi(x) = -exp(log|x| + log Phi(x)), x pdf = -exp(log|x| - x^2/2 - log sqrt(2 pi))
    t = np.minimum(x, -5.0)
    value = np.where(x < -5.0, -np.exp(np.log(-t) + scipy.special.log_ndtr(t)), x * cdf)
    xpdf = np.where(x < -5.0, -np.exp(np.log(-t) - 0.5 * t * t - _LOG_SQRT_2PI), x * pdf)
    cdf = np.where(x < -5.0, np.exp(scipy.special.log_ndtr(t)), cdf)  # ndtr flushes to 0 below about -37.5
    return value, cdf + xpdf


_GELU_TANH_C = math.sqrt(2.0 / math.pi)


def _act_gelu_tanh(x):
    # 0.5 x (1 + tanh(u)) = x expit(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
    u = _GELU_TANH_C * (x + 0.044715 * x**3)
    s, sn = _expit(2.0 * u), _expit(-2.0 * u)
    du = _GELU_TANH_C * (1.0 + 3 * 0.044715 * x * x)
    tail = np.where(np.abs(x) < 1e4, 2.0 * x * s * sn * du, 0.0)  # the term is exactly 0 in float64 beyond that
    return x * s, s + tail


def _act_softplus(x, beta: float = 1.0):
    return _softplus(x, beta), _expit(beta * x)


def _act_tanh(x):
    return np.tanh(x), _sech2(x)


def _act_mish(x):
    sp = _softplus(x)
    t = np.tanh(sp)
    return x * t, t + x * _sech2(sp) * _expit(x)


def _act_relu(x):
    # derivative 0 at 0 (minimum-norm subgradient, torch's convention); NaN in -> NaN out
    return np.maximum(x, 0.0), np.where(np.isnan(x), np.nan, np.where(x > 0, 1.0, 0.0))


def _act_leaky_relu(x, negative_slope: float = 0.01):
    # derivative at 0 (and -0) is negative_slope: torch's backward uses x > 0 (observed on torch 2.x); NaN propagates
    return (np.where(x > 0, x, negative_slope * x),
            np.where(np.isnan(x), np.nan, np.where(x > 0, 1.0, negative_slope)))


ACTIVATIONS = {
    "silu": _act_silu, "sigmoid": _act_sigmoid, "gelu": _act_gelu, "gelu_tanh": _act_gelu_tanh,
    "softplus": _act_softplus, "tanh": _act_tanh, "mish": _act_mish, "relu": _act_relu,
    "leaky_relu": _act_leaky_relu,
}


def simd_level() -> str:
    """The widest SIMD extension numpy's float64 ufunc loops dispatch to here: ``AVX512``, ``AVX2``, ``SVE``,
    ``ASIMD`` or ``baseline``.

    It is part of the identity of this adapter's streams: numpy's float64 ``exp``/``log`` take AVX-512 (SVML)
    kernels where the CPU has them, whose last bits differ from the AVX2 ones, and ``trunc_normal`` (scipy's
    ``truncnorm``) goes through them. A golden stream is therefore keyed by this level (see
    :func:`conformance.goldens.store.key_of`).
    """
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as feats
    for level, names in (("AVX512", ("AVX512F", "AVX512_SKX", "X86_V4")), ("AVX2", ("AVX2", "X86_V3")),
                         ("SVE", ("SVE",)), ("ASIMD", ("ASIMD", "NEON"))):
        if any(feats.get(name) for name in names):
            return level
    return "baseline"


class NumpyGenerator:
    """An explicit generator object of the reference adapter: its own ``Generator(PCG64(seed))``."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def manual_seed(self, seed: int) -> NumpyGenerator:
        """Reseed in place (torch.Generator's spelling)."""
        self.rng = np.random.Generator(np.random.PCG64(seed))
        return self


def _at_infinity(fn, x64: np.ndarray, **params):
    """fn at x, with +-inf evaluated as the limit: fn at +-DBL_MAX, where a value beyond 1e300 becomes +-inf."""
    inf = np.isinf(x64)
    if not inf.any():
        return fn(x64, **params)
    big = np.finfo(np.float64).max
    value, grad = fn(np.where(inf, np.sign(x64) * big, x64), **params)
    value = np.where(inf & (np.abs(value) > 1e300), np.copysign(np.inf, value), value)
    return value, grad


class NumpyBackend(Backend):
    """Reference adapter: definitions in float64, rounded once to the target dtype."""

    framework = "numpy"
    dtypes = frozenset(FLOAT_DTYPES)
    contracts = {
        "unseeded": Contract(
            "unseeded", f"deterministic default seed {DEFAULT_SEED}: a new adapter starts at "
                        f"Generator(PCG64({DEFAULT_SEED})), so unseeded processes draw the same stream",
            "backends/numpy_adapter.py: NumpyBackend.__init__ seeds DEFAULT_SEED", value="deterministic"),
        "generator_seeding": Contract(
            "generator_seeding", "generator(s) is Generator(PCG64(s)), the same stream as the global generator "
                                 "after seed(s)",
            "backends/numpy_adapter.py: NumpyBackend.generator and NumpyBackend.seed", value="matches_global"),
    }

    def __init__(self, device: str = "cpu", seed: int = DEFAULT_SEED) -> None:
        self.device = device
        self.seed(seed)

    def versions(self) -> dict[str, str]:
        """numpy, scipy and ml_dtypes versions and the CPU."""
        import ml_dtypes

        return {"numpy": np.__version__, "scipy": scipy.__version__, "ml_dtypes": ml_dtypes.__version__,
                "device": platform.processor() or platform.machine(), "simd": simd_level()}

    def seed(self, seed: int) -> None:
        """Replace the generator by ``Generator(PCG64(seed))``."""
        self._rng = np.random.Generator(np.random.PCG64(seed))

    # -- RNG state, generators, dropout ------------------------------------------------------------------------
    def generator(self, seed: int | None = None) -> NumpyGenerator:
        """A new :class:`NumpyGenerator` (``Generator(PCG64(seed))``; seed :data:`DEFAULT_SEED` when None)."""
        return NumpyGenerator(DEFAULT_SEED if seed is None else seed)

    def rng_state(self, generator: NumpyGenerator | None = None) -> bytes:
        """The PCG64 ``bit_generator.state`` (state and increment), as JSON bytes."""
        rng = self._rng if generator is None else generator.rng
        return json.dumps(rng.bit_generator.state, sort_keys=True).encode()

    def set_rng_state(self, state: bytes, generator: NumpyGenerator | None = None) -> None:
        """Restore a state from :meth:`rng_state` into the global generator or ``generator``."""
        rng = self._rng if generator is None else generator.rng
        rng.bit_generator.state = json.loads(bytes(state).decode())

    @contextlib.contextmanager
    def fork_rng(self):
        """Random state changes inside are undone on exit."""
        saved = self.rng_state()
        try:
            yield
        finally:
            self.set_rng_state(saved)

    @contextlib.contextmanager
    def _drawing_from(self, generator: NumpyGenerator | None):
        """Route draws to ``generator`` (when given) for the duration of the block."""
        if generator is None:
            yield
            return
        saved, self._rng = self._rng, generator.rng
        try:
            yield
        finally:
            self._rng = saved

    def dropout_mask(self, shape: Sequence[int], p: float, dtype: str) -> np.ndarray:
        """Each element kept independently with probability ``1 - p`` (``U >= p``)."""
        self.require_dtype(dtype)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        return self._rng.random(tuple(shape)) >= p

    def device_draws(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        """The only device is the CPU."""
        return {"cpu": self._rng.standard_normal(tuple(shape)).astype(np.float32)}

    # -- continuous draws, rounded -----------------------------------------------------------------------------
    def _uniform(self, shape, dtype, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        """U[low, high): low + (high - low) U, rounded; values reaching high go to the largest value below it."""
        x = low + (high - low) * self._rng.random(shape)
        return D.round_into(x, low, high, dtype, hi_open=True)

    def _normal(self, shape, dtype, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
        """N(mean, std^2), rounded."""
        return D.round_to(mean + std * self._rng.standard_normal(shape), dtype)

    def _trunc_normal(self, shape, dtype, mean: float = 0.0, std: float = 1.0, low: float = -2.0,
                      high: float = 2.0) -> np.ndarray:
        """N(mean, std^2) conditioned on [low, high] (absolute bounds), rounded into [low, high]."""
        if math.prod(shape) == 0:
            return np.empty(shape, D.numpy_dtype(dtype))
        x = scipy.stats.truncnorm.rvs((low - mean) / std, (high - mean) / std, loc=mean, scale=std,
                                      size=tuple(shape), random_state=self._rng)
        return D.round_into(np.clip(x, low, high), low, high, dtype)

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``uniform(low, high)``, ``normal(mean, std)``, ``trunc_normal(mean, std, low, high)``, ``rand``,
        ``randn``."""
        self.require_dtype(dtype)
        generator = params.pop("generator", None)
        if generator is not None:
            with self._drawing_from(generator):
                return self.sample(dist, shape, dtype, **params)
        shape = tuple(shape)
        if dist == "uniform":
            return self._uniform(shape, dtype, **params)
        if dist == "normal":
            return self._normal(shape, dtype, **params)
        if dist == "trunc_normal":
            return self._trunc_normal(shape, dtype, **params)
        if dist in ("rand", "randn"):
            if params:
                raise TypeError(f"{dist} takes no parameters, got {sorted(params)}")
            return self._uniform(shape, dtype) if dist == "rand" else self._normal(shape, dtype)
        raise UnsupportedOperation(f"{self.spec} has no sampler {dist!r}")

    # -- initializers ----------------------------------------------------------------------------------------
    def init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """The ``torch.nn.init`` scheme, from its documented definition (neutral parameter names)."""
        self.require_dtype(dtype)
        method = getattr(self, f"_init_{scheme}", None)
        if method is None:
            raise UnsupportedOperation(f"{self.spec} has no initializer {scheme!r}")
        shape = tuple(int(s) for s in shape)
        if math.prod(shape) == 0 and scheme in WARNS_ON_EMPTY:
            warnings.warn(EMPTY_WARNING, UserWarning, stacklevel=2)
            return np.empty(shape, D.numpy_dtype(dtype))
        return method(shape, dtype, **params)

    def _init_uniform(self, shape, dtype, low: float = 0.0, high: float = 1.0):
        return self._uniform(shape, dtype, low, high)

    def _init_normal(self, shape, dtype, mean: float = 0.0, std: float = 1.0):
        return self._normal(shape, dtype, mean, std)

    def _init_trunc_normal(self, shape, dtype, mean: float = 0.0, std: float = 1.0, low: float = -2.0,
                           high: float = 2.0):
        return self._trunc_normal(shape, dtype, mean, std, low, high)

    def _init_constant(self, shape, dtype, value: float):
        return np.full(shape, D.round_to(value, dtype), D.numpy_dtype(dtype))

    def _init_zeros(self, shape, dtype):
        return np.zeros(shape, D.numpy_dtype(dtype))

    def _init_ones(self, shape, dtype):
        return np.ones(shape, D.numpy_dtype(dtype))

    def _init_eye(self, shape, dtype):
        """Identity in a 2-D tensor (ones on the main diagonal of a rectangular matrix)."""
        if len(shape) != 2:
            raise ValueError("Only tensors with 2 dimensions are supported")
        return np.eye(*shape, dtype=D.numpy_dtype(dtype))

    def _init_dirac(self, shape, dtype, groups: int = 1):
        """Dirac delta: out[g*opg + d, d, centre...] = 1 for d < min(opg, in), opg = out/groups."""
        if len(shape) not in (3, 4, 5):
            raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
        if shape[0] % groups != 0:
            raise ValueError("dim 0 must be divisible by groups")
        out = np.zeros(shape, D.numpy_dtype(dtype))
        per_group = shape[0] // groups
        centre = tuple(k // 2 for k in shape[2:])
        for g in range(groups):
            for d in range(min(per_group, shape[1])):
                out[(g * per_group + d, d, *centre)] = 1
        return out

    def _init_xavier_uniform(self, shape, dtype, gain: float = 1.0):
        """U[-bound, bound), bound = gain sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio 2010)."""
        fan_in, fan_out = fans(shape)
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return self._uniform(shape, dtype, -bound, bound)

    def _init_xavier_normal(self, shape, dtype, gain: float = 1.0):
        """N(0, std^2), std = gain sqrt(2 / (fan_in + fan_out))."""
        fan_in, fan_out = fans(shape)
        return self._normal(shape, dtype, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))

    def _init_kaiming_uniform(self, shape, dtype, negative_slope: float = 0, fan_mode: str = "fan_in",
                              nonlinearity: str = "leaky_relu"):
        """U[-bound, bound), bound = sqrt(3) gain(nonlinearity, negative_slope) / sqrt(fan) (He et al. 2015)."""
        std = calculate_gain(nonlinearity, negative_slope) / math.sqrt(fan(shape, fan_mode))
        bound = math.sqrt(3.0) * std
        return self._uniform(shape, dtype, -bound, bound)

    def _init_kaiming_normal(self, shape, dtype, negative_slope: float = 0, fan_mode: str = "fan_in",
                             nonlinearity: str = "leaky_relu"):
        """N(0, std^2), std = gain(nonlinearity, negative_slope) / sqrt(fan)."""
        std = calculate_gain(nonlinearity, negative_slope) / math.sqrt(fan(shape, fan_mode))
        return self._normal(shape, dtype, 0.0, std)

    def _init_orthogonal(self, shape, dtype, gain: float = 1.0):
        """Haar-random (semi-)orthogonal matrix of shape (rows, numel/rows), times gain (Saxe et al. 2013)."""
        if len(shape) < 2:
            raise ValueError("Only tensors with 2 or more dimensions are supported")
        if math.prod(shape) == 0:
            return np.empty(shape, D.numpy_dtype(dtype))
        rows = shape[0]
        cols = math.prod(shape) // rows
        flat = self._rng.standard_normal((rows, cols))
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q = q * np.sign(np.diag(r))  # fixes the signs so that Q is Haar-distributed
        if rows < cols:
            q = q.T
        return D.round_to(gain * q.reshape(shape), dtype)

    def _init_sparse(self, shape, dtype, sparsity: float, std: float = 0.01):
        """2-D; N(0, std^2) with exactly ceil(sparsity * rows) zeros per column, at uniformly random rows."""
        if len(shape) != 2:
            raise ValueError("Only tensors with 2 dimensions are supported")
        rows, cols = shape
        num_zeros = int(math.ceil(sparsity * rows))
        x = std * self._rng.standard_normal(shape)
        for c in range(cols):
            x[self._rng.permutation(rows)[:num_zeros], c] = 0.0
        return D.round_to(x, dtype)

    def calculate_gain(self, nonlinearity: str, param: float | None = None) -> float:
        """The documented gain table (:func:`conformance.backends.gains.calculate_gain`)."""
        return calculate_gain(nonlinearity, param)

    # -- modules (torch.nn docs: default initialization of each layer) ---------------------------------------
    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """Parameters then buffers, with torch's names, drawn from each module's documented default init."""
        self.require_dtype(dtype)
        builder = _MODULE_BUILDERS.get(module)
        if builder is None:
            raise UnsupportedOperation(f"{self.spec} cannot build module {module!r}")
        return builder(self, dtype, **config)

    # -- activations -----------------------------------------------------------------------------------------
    def activation(self, name: str, x: np.ndarray, dtype: str, **params) -> tuple[np.ndarray, np.ndarray]:
        """Analytic value and derivative in float64, each rounded once to ``dtype``."""
        self.require_dtype(dtype)
        fn = ACTIVATIONS.get(name)
        if fn is None:
            raise UnsupportedOperation(f"{self.spec} has no activation {name!r}")
        _contiguous_only(self, params.pop("layout", None))
        x64 = np.asarray(x, dtype=D.numpy_dtype(dtype)).astype(np.float64)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            value, grad = _at_infinity(fn, x64, **params)
        value, grad = np.broadcast_to(value, x64.shape), np.broadcast_to(grad, x64.shape)
        return D.round_to(value, dtype), D.round_to(grad, dtype)

    def activation2(self, name: str, x: np.ndarray, y: np.ndarray, dtype: str,
                    **params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """swiglu(x, y) = silu(x) y and its partials silu'(x) y, silu(x): float64, each rounded once."""
        self.require_dtype(dtype)
        if name != "swiglu":
            raise UnsupportedOperation(f"{self.spec} has no two-input activation {name!r}")
        _contiguous_only(self, params.pop("layout", None))
        x64 = np.asarray(x, dtype=D.numpy_dtype(dtype)).astype(np.float64)
        y64 = np.asarray(y, dtype=D.numpy_dtype(dtype)).astype(np.float64)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            v, g = _at_infinity(_act_silu, x64)
            out = (v * y64, g * y64, v)
        return tuple(D.round_to(np.broadcast_to(o, x64.shape), dtype) for o in out)


# -- module builders -----------------------------------------------------------------------------------------
def _contiguous_only(backend: NumpyBackend, layout: str | None) -> None:
    """The reference computes elementwise in float64 on a copy: a non-contiguous layout could not change its result,
    so a non-contiguous check would test nothing. Declared unsupported instead (the check is skipped with this)."""
    if layout not in (None, "contiguous"):
        raise UnsupportedOperation(f"{backend.spec} computes on a float64 copy: layout {layout!r} cannot change the "
                                   "result, so there is nothing to compare")


def _tuple(value, n: int) -> tuple[int, ...]:
    """An int or a sequence as an n-tuple of ints (torch's _ntuple)."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"expected {n} values, got {value}")
    return value


def _fan_in_uniform(backend: NumpyBackend, shape, dtype, fan_in: int) -> np.ndarray:
    """U[-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5)); bound 0 when fan_in is 0."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    if bound == 0.0:
        return np.zeros(shape, D.numpy_dtype(dtype))
    return backend._uniform(shape, dtype, -bound, bound)


def _linear(backend, dtype, in_features: int, out_features: int, bias: bool = True):
    """weight (out, in) and bias (out,) ~ U(-k, k), k = 1/sqrt(in_features)."""
    out = {"weight": _fan_in_uniform(backend, (out_features, in_features), dtype, in_features)}
    if bias:
        out["bias"] = _fan_in_uniform(backend, (out_features,), dtype, in_features)
    return out


_CONV_EXTRA = {"stride", "padding", "dilation", "padding_mode"}


def _conv(n: int, transposed: bool, backend, dtype, in_channels: int, out_channels: int, kernel_size,
          groups: int = 1, bias: bool = True, **rest):
    """ConvNd weight (out, in/groups, *k), ConvTransposeNd weight (in, out/groups, *k); weight and bias ~ U(-k, k).

    k = sqrt(groups / (C_in prod(kernel))) for ConvNd and sqrt(groups / (C_out prod(kernel))) for ConvTransposeNd,
    i.e. 1/sqrt(fan_in) of the weight in canonical layout.
    """
    allowed = _CONV_EXTRA | ({"output_padding"} if transposed else set())
    unknown = set(rest) - allowed
    if unknown:
        raise TypeError(f"unexpected keyword arguments {sorted(unknown)}")
    if groups <= 0:
        raise ValueError("groups must be a positive integer")
    if in_channels % groups != 0:
        raise ValueError("in_channels must be divisible by groups")
    if out_channels % groups != 0:
        raise ValueError("out_channels must be divisible by groups")
    kernel = _tuple(kernel_size, n)
    lead = (in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups)
    shape = (*lead, *kernel)
    fan_in = fans(shape)[0]
    out = {"weight": _fan_in_uniform(backend, shape, dtype, fan_in)}
    if bias:
        out["bias"] = _fan_in_uniform(backend, (out_channels,), dtype, fan_in)
    return out


def _embedding(backend, dtype, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, **rest):
    """weight (num, dim) ~ N(0, 1), with the padding_idx row zero."""
    unknown = set(rest) - {"max_norm", "norm_type", "scale_grad_by_freq", "sparse"}
    if unknown:
        raise TypeError(f"unexpected keyword arguments {sorted(unknown)}")
    weight = backend._normal((num_embeddings, embedding_dim), dtype)
    if padding_idx is not None:
        if not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError("Padding_idx must be within num_embeddings")
        weight[padding_idx % num_embeddings] = 0
    return {"weight": weight}


def _norm_shape(normalized_shape) -> tuple[int, ...]:
    return _tuple(normalized_shape, 1) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)


def _layer_norm(backend, dtype, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                bias: bool = True):
    """weight ones and bias zeros of normalized_shape (when elementwise_affine, bias flags are set)."""
    shape, dt = _norm_shape(normalized_shape), D.numpy_dtype(dtype)
    out = {}
    if elementwise_affine:
        out["weight"] = np.ones(shape, dt)
        if bias:
            out["bias"] = np.zeros(shape, dt)
    return out


def _rms_norm(backend, dtype, normalized_shape, eps: float | None = None, elementwise_affine: bool = True):
    """weight ones of normalized_shape (when elementwise_affine)."""
    return {"weight": np.ones(_norm_shape(normalized_shape), D.numpy_dtype(dtype))} if elementwise_affine else {}


def _batch_norm(backend, dtype, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                affine: bool = True, track_running_stats: bool = True):
    """weight 1, bias 0; buffers running_mean 0, running_var 1, num_batches_tracked 0 (int64, shape ())."""
    dt = D.numpy_dtype(dtype)
    out = {}
    if affine:
        out["weight"] = np.ones(num_features, dt)
        out["bias"] = np.zeros(num_features, dt)
    if track_running_stats:
        out["running_mean"] = np.zeros(num_features, dt)
        out["running_var"] = np.ones(num_features, dt)
        out["num_batches_tracked"] = np.zeros((), np.int64)
    return out


def _conv_builder(n: int, transposed: bool):
    def build(backend, dtype, **config):
        return _conv(n, transposed, backend, dtype, **config)

    return build


_MODULE_BUILDERS = {
    "Linear": _linear,
    "Conv1d": _conv_builder(1, False), "Conv2d": _conv_builder(2, False), "Conv3d": _conv_builder(3, False),
    "ConvTranspose1d": _conv_builder(1, True), "ConvTranspose2d": _conv_builder(2, True),
    "ConvTranspose3d": _conv_builder(3, True),
    "Embedding": _embedding, "LayerNorm": _layer_norm, "RMSNorm": _rms_norm,
    "BatchNorm1d": _batch_norm, "BatchNorm2d": _batch_norm,
}


class NumpyProvider(Provider):
    """The always-available reference framework (device ``cpu`` only)."""

    def probe(self, device: str) -> Availability:
        """Always available on ``cpu``."""
        if device not in self.devices:
            return Availability(False, f"numpy has no device {device!r}")
        return Availability(True)

    def _create(self, device: str) -> Backend:
        return NumpyBackend(device)


PROVIDER = NumpyProvider(
    framework="numpy",
    devices=("cpu",),
    description="reference adapter: every scheme from its definition (numpy + scipy), rounded once per dtype",
    extra="",
    reference=True,
)
