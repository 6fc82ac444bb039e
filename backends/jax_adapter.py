"""The JAX adapter: ``jax:cpu`` and ``jax:gpu`` (``jax.random``, ``jax.nn.initializers``, ``jax.nn`` + ``jax.vjp``).

Contract
--------
* ``import jax`` happens lazily (in :meth:`JaxProvider.probe` and in the adapter), so importing this module
  never fails when JAX is absent; the probe's reason names the extra to install.
* Creating the adapter turns on ``jax_enable_x64`` (process-wide) so that float64 arrays exist, and JAX's
  persistent compilation cache unless the user configured one (:func:`use_compilation_cache`;
  ``CONFORMANCE_JAX_CACHE=off`` turns it off, ``CONFORMANCE_JAX_CACHE=DIR`` moves it).
* **Seeds.** JAX has no global random state: every sampler takes an explicit key. The adapter holds one key,
  ``seed(s)`` sets it to ``jax.random.PRNGKey(s)`` and every draw splits it (``key, sub = split(key)``) and
  draws with ``sub``; a fresh adapter starts at ``PRNGKey(0)`` (contract ``unseeded``: deterministic).
  ``rng_state`` is the key's bytes; :meth:`JaxBackend.generator` is another key holder, split the same way, so
  ``generator(s)`` draws what ``seed(s)`` draws (contract ``generator_seeding``).
* **Layout.** ``jax.nn.initializers`` default to ``in_axis=-2, out_axis=-1``: dense ``(in, out)``, convolution
  ``(*kernel, in, out)`` (:mod:`.layouts` layout ``"io"``). Canonical shapes are translated before the
  call and results transposed back; the initializers compute the fans on the framework's own default axes.
* :meth:`JaxBackend.init` maps ``torch.nn.init`` schemes onto ``jax.nn.initializers`` only where the
  distribution is the same (the table :data:`INITIALIZERS`): ``xavier_*``/``kaiming_*`` ->
  ``variance_scaling(gain**2, fan_mode, "uniform"|"normal")`` (gain from :mod:`.gains`: JAX has none),
  ``trunc_normal(std, low, high)`` -> ``truncated_normal(std, low/std, high/std)``, ``uniform(0, high)`` ->
  ``uniform(high)``, ``normal(0, std)`` -> ``normal(std)``, ``orthogonal``, ``constant``/``zeros``/``ones``.
  Everything else raises :class:`UnsupportedOperation` with the reason.
  :meth:`JaxBackend.named_init` calls JAX's own names with JAX's defaults (``he_normal`` is truncated there).
* JAX has no layer modules (those live in flax, haiku, equinox), no dropout and no ``calculate_gain``.
* Activations: ``jax.nn`` functions; the derivative is ``jax.vjp`` with a cotangent of ones, compiled with
  ``jax.jit`` (one cached function per activation; inputs are padded to power-of-two lengths so a handful of
  compiled shapes serve every call). JAX arrays have no strides: ``layout="transposed"``/``"strided"`` raise
  :class:`UnsupportedOperation` (the non-contiguous checks are skipped with that reason, not passed vacuously).
"""

from __future__ import annotations

import contextlib
import math
import platform
from collections.abc import Sequence

import numpy as np

from . import dtypes as D
from . import gains, layouts
from .base import FLOAT_DTYPES, Availability, Backend, Contract, Provider, UnsupportedOperation
from .interface import init_params, sample_params

LAYOUT = "io"
DEFAULT_SEED = 0
EXTRA = "pip install 'dl-conformance[jax]'"

#: JAX's own initializer names that :meth:`JaxBackend.named_init` calls (``jax.nn.initializers``).
NAMED = ("variance_scaling", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal",
         "lecun_uniform", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform",
         "truncated_normal", "normal", "uniform", "orthogonal", "constant", "zeros", "ones")
#: Initializers that are factories taking only keyword parameters and then ``(key, shape, dtype)``.
_FAN_BASED = {"variance_scaling", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal",
              "lecun_uniform", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform"}


def _jax():
    import jax

    return jax


#: Where compiled XLA programs are kept between processes and runs: ``$CONFORMANCE_JAX_CACHE`` (``off``: none), else
#: ``$XDG_CACHE_HOME/dl-conformance/jax`` (``~/.cache/...``).
CACHE_VARIABLE = "CONFORMANCE_JAX_CACHE"


def compilation_cache_dir() -> str | None:
    """The directory :func:`use_compilation_cache` gives JAX, or None when ``$CONFORMANCE_JAX_CACHE`` is ``off``."""
    import os

    chosen = os.environ.get(CACHE_VARIABLE, "")
    if chosen.lower() in ("off", "0", "none"):
        return None
    if chosen:
        return chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dl-conformance", "jax")


def use_compilation_cache(jax) -> str | None:
    """Turn on JAX's persistent compilation cache (process-wide) unless the user configured one or turned it off;
    return the directory in use.

    Every new shape and dtype of a draw compiles an XLA program: 0.3 to 1.8 s each on CPU (a rank-5 normal: 1.8 s),
    which made up most of a jax:cpu run (``conformance report profile``: 170 of 213 s were the adapter's). With the
    cache, the xdist workers of one run, the JAX-based frameworks (Flax, Equinox, Keras on JAX) and later runs load
    what was compiled once (the same five draws: 4.9 s cold, 0.35 s warm). The compiled programs are JAX's own,
    keyed by JAX on the program, the compile options, the jaxlib version and the device; no value changes.
    """
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current  # the user's own cache
    where = compilation_cache_dir()
    if where is None:
        return None
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return where


def _jnp():
    import jax.numpy as jnp

    return jnp


def jax_dtype(dtype: str):
    """The ``jax.numpy`` dtype named ``dtype``."""
    return getattr(_jnp(), dtype)


def to_numpy(x) -> np.ndarray:
    """A host copy of a JAX array as numpy (bfloat16 arrives as ``ml_dtypes.bfloat16``)."""
    return np.array(x, copy=True)


class KeyStream:
    """A JAX key that is split on every draw: the adapter's global stream and its explicit generators."""

    def __init__(self, seed: int) -> None:
        self.key = _jax().random.PRNGKey(seed)

    def manual_seed(self, seed: int) -> KeyStream:
        self.key = _jax().random.PRNGKey(seed)
        return self

    def next(self):
        """``key, sub = split(key)``; returns ``sub``."""
        self.key, sub = _jax().random.split(self.key)
        return sub


_ACTIVATIONS = ("silu", "sigmoid", "gelu", "gelu_tanh", "softplus", "tanh", "mish", "relu", "leaky_relu")


def _activation_fn(name: str, params: tuple):
    jax, jnp = _jax(), _jnp()
    p = dict(params)
    table = {
        "silu": jax.nn.silu, "sigmoid": jax.nn.sigmoid,
        "gelu": lambda x: jax.nn.gelu(x, approximate=False),
        "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
        "softplus": jax.nn.softplus, "tanh": jnp.tanh, "mish": jax.nn.mish, "relu": jax.nn.relu,
        "leaky_relu": lambda x: jax.nn.leaky_relu(x, negative_slope=p.get("negative_slope", 0.01)),
    }
    if name == "softplus" and p.get("beta", 1.0) != 1.0:
        raise UnsupportedOperation("jax.nn.softplus has no beta parameter")
    extra = set(p) - ({"negative_slope"} if name == "leaky_relu" else {"beta"} if name == "softplus" else set())
    if extra:
        raise TypeError(f"{name} takes no parameters {sorted(extra)}")
    return table[name]


_COMPILED: dict = {}


def _compiled(name: str, params: tuple):
    """``jit(x -> (f(x), vjp(f, x)(ones)))``, cached per activation and parameters."""
    key = (name, params)
    if key not in _COMPILED:
        jax, jnp = _jax(), _jnp()
        if name == "swiglu":
            def run(x, y):
                out, vjp = jax.vjp(lambda a, b: jax.nn.silu(a) * b, x, y)
                gx, gy = vjp(jnp.ones_like(out))
                return out, gx, gy
        else:
            fn = _activation_fn(name, params)

            def run(x):
                out, vjp = jax.vjp(fn, x)
                (g,) = vjp(jnp.ones_like(out))
                return out, g
        _COMPILED[key] = jax.jit(run)
    return _COMPILED[key]


def _bucket(n: int) -> int:
    return max(64, 1 << max(n - 1, 0).bit_length())


# -- init: torch.nn.init scheme -> jax.nn.initializers factory with the same distribution -------------------------
def _xavier(dist: str):
    return lambda inits, p, shape: inits.variance_scaling(p["gain"] ** 2, "fan_avg", dist)


def _kaiming(dist: str):
    def make(inits, p, shape):
        mode = gains.check_fan_mode(p["fan_mode"])
        return inits.variance_scaling(gains.calculate_gain(p["nonlinearity"], p["negative_slope"]) ** 2, mode, dist)

    return make


def _zero_mean(p: dict, jax_name: str) -> float:
    """``p["std"]``; JAX's normal initializers have mean 0 only."""
    if p["mean"] != 0.0:
        raise UnsupportedOperation(f"jax.nn.initializers.{jax_name} has mean 0 only (asked for mean={p['mean']:g})")
    return p["std"]


def _uniform(inits, p, shape):
    if p["low"] != 0.0:
        raise UnsupportedOperation("jax.nn.initializers.uniform(scale) draws U[0, scale): no lower bound "
                                   f"(asked for low={p['low']:g})")
    return inits.uniform(p["high"])


def _trunc_normal(inits, p, shape):
    std = _zero_mean(p, "truncated_normal")
    # jax's lower/upper are in units of stddev ("applied before the output is multiplied by the stddev")
    return inits.truncated_normal(std, lower=p["low"] / std, upper=p["high"] / std)


def _orthogonal(inits, p, shape):
    if len(shape) < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    return inits.orthogonal(scale=p["gain"])


#: ``init`` scheme -> ``make(jax.nn.initializers, params, canonical shape)`` returning the initializer; ``params``
#: carry the neutral names with every default filled in (:func:`.interface.init_params`). Schemes absent here
#: (``eye``, ``dirac``, ``sparse``) have no JAX initializer with the same distribution.
INITIALIZERS = {
    "xavier_uniform": _xavier("uniform"),
    "xavier_normal": _xavier("normal"),
    "kaiming_uniform": _kaiming("uniform"),
    "kaiming_normal": _kaiming("normal"),
    "uniform": _uniform,
    "normal": lambda inits, p, shape: inits.normal(_zero_mean(p, "normal")),
    "trunc_normal": _trunc_normal,
    "constant": lambda inits, p, shape: inits.constant(p["value"]),
    "zeros": lambda inits, p, shape: inits.zeros,
    "ones": lambda inits, p, shape: inits.ones,
    "orthogonal": _orthogonal,
}


class KeyedJaxBackend(Backend):
    """What every adapter computing through JAX shares (JAX itself, Flax, Equinox): creating it turns on
    ``jax_enable_x64`` (process-wide, so that float64 exists), it holds the JAX device and the adapter's
    :class:`KeyStream`, which starts at ``PRNGKey(DEFAULT_SEED)``; ``seed(s)`` restarts it at ``PRNGKey(s)``."""

    def __init__(self, device: str) -> None:
        jax = _jax()
        jax.config.update("jax_enable_x64", True)
        use_compilation_cache(jax)
        self.device = device
        self._device = jax.devices(device)[0]
        self._stream = KeyStream(DEFAULT_SEED)

    def jax_versions(self) -> dict[str, str]:
        """jax, jaxlib, numpy and the device (the CPU, or the accelerator's kind)."""
        import jaxlib

        return {"jax": _jax().__version__, "jaxlib": jaxlib.__version__, "numpy": np.__version__,
                "device": getattr(self._device, "device_kind", str(self._device)) if self.device != "cpu"
                else platform.processor() or platform.machine()}

    @contextlib.contextmanager
    def _on_device(self):
        with _jax().default_device(self._device):
            yield

    def seed(self, seed: int) -> None:
        """The adapter's key becomes ``jax.random.PRNGKey(seed)``; each draw (or layer) splits the next key."""
        self._stream = KeyStream(int(seed))


class JaxBackend(KeyedJaxBackend):
    """JAX on one device (``cpu`` or ``gpu``)."""

    framework = "jax"
    dtypes = frozenset(FLOAT_DTYPES)
    contracts = {
        "unseeded": Contract(
            "unseeded", f"deterministic: JAX has no global random state; the adapter's key starts at "
                        f"jax.random.PRNGKey({DEFAULT_SEED}) in every process until seed() replaces it",
            "JAX docs, 'Pseudorandom numbers' (jax.readthedocs.io/en/latest/random-numbers.html): 'JAX avoids "
            "implicit global random state, and instead tracks state explicitly via a random key'; "
            "backends/jax_adapter.py: KeyStream", value="deterministic"),
        "generator_seeding": Contract(
            "generator_seeding", "seed(s) and generator(s) both start a KeyStream at PRNGKey(s) and split it per "
                                 "draw: the same stream", "backends/jax_adapter.py: KeyStream", value="matches_global"),
        "seed_mapping": Contract(
            "seed_mapping", "seed(s) sets the adapter's key to jax.random.PRNGKey(s); each draw splits it "
                            "(key, sub = jax.random.split(key)) and draws with sub",
            "backends/jax_adapter.py"),
        "layout": Contract(
            "layout", "jax.nn.initializers default to in_axis=-2, out_axis=-1: dense (in, out), conv "
                      "(*kernel, in, out); canonical (out, in, *kernel) is translated both ways",
            "jax._src.nn.initializers._compute_fans (jax 0.4-0.10)"),
    }

    def versions(self) -> dict[str, str]:
        return self.jax_versions()

    # -- randomness ----------------------------------------------------------------------------------------------
    def generator(self, seed: int | None = None) -> KeyStream:
        """A new :class:`KeyStream` at ``PRNGKey(seed)`` (``PRNGKey(0)`` when None)."""
        return KeyStream(DEFAULT_SEED if seed is None else int(seed))

    def rng_state(self, generator: KeyStream | None = None) -> bytes:
        """The raw key (two uint32) of the global stream or of ``generator``."""
        stream = self._stream if generator is None else generator
        return np.asarray(stream.key).tobytes()

    def set_rng_state(self, state: bytes, generator: KeyStream | None = None) -> None:
        stream = self._stream if generator is None else generator
        raw = np.frombuffer(bytes(state), dtype=np.uint32)
        if raw.size != 2:
            raise ValueError(f"a JAX PRNGKey state is 8 bytes, got {len(state)}")
        stream.key = _jnp().asarray(raw.copy())

    @contextlib.contextmanager
    def fork_rng(self):
        saved = self.rng_state()
        try:
            yield
        finally:
            self.set_rng_state(saved)

    def device_draws(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        with self._on_device():
            return {str(self._device): to_numpy(_jax().random.normal(self._stream.next(), tuple(shape),
                                                                     _jnp().float32))}

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``jax.random.uniform(minval=low, maxval=high)``, ``normal`` (scaled: ``mean + std * normal``),
        ``truncated_normal`` (``mean + std * truncated_normal((low-mean)/std, (high-mean)/std)``), ``rand``,
        ``randn``."""
        self.require_dtype(dtype)
        generator = params.pop("generator", None)
        stream = self._stream if generator is None else generator
        jax, dt, shape = _jax(), jax_dtype(dtype), tuple(int(s) for s in shape)
        with self._on_device():
            if dist in ("rand", "randn"):
                if params:
                    raise TypeError(f"{dist} takes no parameters, got {sorted(params)}")
                fn = jax.random.uniform if dist == "rand" else jax.random.normal
                return to_numpy(fn(stream.next(), shape, dt))
            if dist == "uniform":
                p = sample_params(dist, params)
                return to_numpy(jax.random.uniform(stream.next(), shape, dt, minval=p["low"], maxval=p["high"]))
            if dist == "normal":
                p = sample_params(dist, params)
                mean, std = p["mean"], p["std"]
                x = jax.random.normal(stream.next(), shape, dt)
                return to_numpy(x if (mean, std) == (0.0, 1.0) else mean + std * x)
            if dist == "trunc_normal":
                p = sample_params(dist, params)
                mean, std = p["mean"], p["std"]
                x = jax.random.truncated_normal(stream.next(), (p["low"] - mean) / std, (p["high"] - mean) / std,
                                                shape, dt)
                return to_numpy(x if (mean, std) == (0.0, 1.0) else mean + std * x)
        raise UnsupportedOperation(f"{self.spec} has no sampler {dist!r}")

    # -- initializers --------------------------------------------------------------------------------------------
    def _call(self, initializer, shape: Sequence[int], dtype: str) -> np.ndarray:
        """``initializer(key, framework_shape, dtype)``, transposed back to canonical."""
        shape = tuple(int(s) for s in shape)
        with self._on_device():
            x = initializer(self._stream.next(), layouts.to_framework_shape(shape, LAYOUT), jax_dtype(dtype))
        return layouts.from_framework(to_numpy(x), LAYOUT)

    def init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """A ``torch.nn.init`` scheme through the ``jax.nn.initializers`` function with the same distribution
        (:data:`INITIALIZERS`)."""
        self.require_dtype(dtype)
        make = INITIALIZERS.get(scheme)
        if make is None:
            raise UnsupportedOperation(f"jax.nn.initializers has no equivalent of torch.nn.init.{scheme}_")
        shape = tuple(int(s) for s in shape)
        initializer = make(_jax().nn.initializers, init_params(scheme, params), shape)
        if scheme == "orthogonal" and math.prod(shape) == 0:
            return np.empty(shape, D.numpy_dtype(dtype))
        try:
            return self._call(initializer, shape, dtype)
        except NotImplementedError as exc:  # jaxlib's LAPACK QR has no float16/bfloat16 kernel
            if scheme != "orthogonal":
                raise
            raise UnsupportedOperation(f"{self.spec}: jax.nn.initializers.orthogonal in {dtype}: jaxlib LAPACK "
                                       f"QR is not implemented for it ({exc!r})") from exc

    def named_schemes(self) -> tuple[str, ...]:
        inits = _jax().nn.initializers
        return tuple(n for n in NAMED if hasattr(inits, n))

    def named_init(self, name: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``jax.nn.initializers.<name>(**params)`` on the JAX-layout shape (default in/out axes)."""
        self.require_dtype(dtype)
        if name not in self.named_schemes():
            raise UnsupportedOperation(f"jax {_jax().__version__} has no jax.nn.initializers.{name}")
        factory = getattr(_jax().nn.initializers, name)
        initializer = factory if name in ("zeros", "ones") else factory(**params)
        return self._call(initializer, shape, dtype)

    # -- activations ---------------------------------------------------------------------------------------------
    def activation(self, name: str, x: np.ndarray, dtype: str, **params) -> tuple[np.ndarray, np.ndarray]:
        """``jax.nn.<name>`` and ``jax.vjp`` with a cotangent of ones, jitted, computed in ``dtype``."""
        if name not in _ACTIVATIONS:
            raise UnsupportedOperation(f"{self.spec} has no activation {name!r}")
        self.require_dtype(dtype)
        contiguous_only(self.spec, params.pop("layout", "contiguous"))
        fn = _compiled(name, tuple(sorted(params.items())))
        out, grad = self._run(fn, [x], dtype)
        return out, grad

    def activation2(self, name: str, x: np.ndarray, y: np.ndarray, dtype: str,
                    **params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``swiglu``: ``jax.nn.silu(x) * y`` (JAX has no swiglu) and both partials from ``jax.vjp``."""
        contiguous_only(self.spec, self.swiglu_layout(name, dtype, params))
        return self._run(_compiled("swiglu", ()), [x, y], dtype)

    def _run(self, fn, inputs: list[np.ndarray], dtype: str) -> tuple[np.ndarray, ...]:
        with self._on_device():
            return run_padded(fn, inputs, dtype)


def run_padded(fn, inputs: list[np.ndarray], dtype: str) -> tuple[np.ndarray, ...]:
    """Flatten and zero-pad the inputs to a power-of-two length (so a handful of compiled shapes serve every call),
    run the jitted ``fn`` on them as ``dtype`` JAX arrays, cut and reshape the outputs (shared by the adapters that
    compute through JAX: this one and Keras on JAX)."""
    dt = D.numpy_dtype(dtype)
    arrays = [np.asarray(a).astype(dt) for a in inputs]
    shape, n = arrays[0].shape, arrays[0].size
    size = _bucket(n)
    padded = []
    for a in arrays:
        buf = np.zeros(size, dt)
        buf[:n] = a.ravel()
        padded.append(buf)
    outs = fn(*[_jnp().asarray(p) for p in padded])
    return tuple(to_numpy(o)[:n].reshape(shape) for o in outs)


def contiguous_only(spec: str, layout: str) -> None:
    """JAX arrays have no user-visible strides: a transposed or strided *view* cannot be built, so the
    non-contiguous checks cannot run (comparing the same array with itself would pass vacuously)."""
    if layout == "contiguous":
        return
    if layout in ("transposed", "strided"):
        raise UnsupportedOperation(f"{spec}: JAX arrays have no strides (jax.Array is a dense logical array; x.T "
                                   f"and x[::2] are new arrays), so a {layout} non-contiguous input cannot be built")
    raise ValueError(f"unknown layout {layout!r}; expected contiguous, transposed or strided")


def probe_jax_stack(framework: str, device: str, devices: Sequence[str], modules: Sequence[str] = (),
                    extra: str = EXTRA) -> Availability:
    """Availability of a framework built on JAX (JAX itself, Flax, Equinox) on ``device``: ``modules`` and jax
    import, the device is one of ``devices``, and jax has that platform here. Never raises."""
    try:
        import importlib

        for module in modules:
            importlib.import_module(module)
        import jax
    except Exception as exc:  # noqa: BLE001 - any import failure means unavailable
        return Availability(False, f"{framework} is not installed ({extra}): {exc!r}")
    if device not in devices:
        return Availability(False, f"{framework} has no device {device!r}")
    try:
        jax.devices(device)
    except Exception as exc:  # noqa: BLE001 - no such platform here
        return Availability(False, f"jax {jax.__version__} has no {device} platform here: {exc}")
    return Availability(True)


class JaxProvider(Provider):
    """JAX on ``cpu`` and ``gpu``; :meth:`probe` never raises."""

    def probe(self, device: str) -> Availability:
        return probe_jax_stack("jax", device, self.devices)

    def _create(self, device: str) -> Backend:
        return JaxBackend(device)


PROVIDER = JaxProvider(
    framework="jax",
    devices=("cpu", "gpu"),
    description="JAX (jax.random with explicit keys, jax.nn.initializers, jax.nn activations with jax.vjp)",
    extra="jax",
)
