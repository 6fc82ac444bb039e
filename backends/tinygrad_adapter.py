"""The tinygrad adapter: ``tinygrad:cpu`` (clang), ``tinygrad:cuda`` and ``tinygrad:metal`` (probed; skipped with the
reason where absent).

Contract
--------
* ``import tinygrad`` happens lazily, so importing this module never fails when tinygrad is absent. Before the first
  import for ``tinygrad:cpu`` the environment variable ``DEV`` is set to ``CPU`` **only when the user has not set it**
  (tinygrad 0.14 reads ``DEV``; the old ``CPU=1`` raises). Every call runs inside ``Context(DEV=...)``: for the CPU
  spec a user's own ``DEV`` naming the CPU (``DEV=CPU:LLVM``) is kept, any other value is replaced by ``CPU`` for the
  duration of the call only.
* **Realization.** tinygrad is lazy: a draw is a graph until realized, and the RNG counter is advanced by an
  ``assign`` in the same graph. Draws realized newest-first repeat each other (tinygrad #16520, open), so the adapter
  realizes **every draw on its own, before the next one is built** (``_realize``); nothing is ever batched.
* **Seeds.** ``seed(s)`` is ``Tensor.manual_seed(s)``: the per-device key becomes ``[sha256(index of the device among
  those used since the seed), s]`` and the counter restarts at 0 (tinygrad/tensor.py ``_next_counter``). A process that
  never seeds uses ``Tensor._seed = int(time.time())``: fresh per process at one-second resolution (contract
  ``unseeded``).
* **dtypes.** Each dtype is compiled once when the adapter is built (a draw and a cast). A dtype the compiler rejects is
  dropped and every call in it raises :class:`UnsupportedOperation` with the compiler's first error line. bfloat16 on
  clang without ``__bf16`` support (clang 14 on x86-64) is retried with tinygrad's own ``EMULATED_DTYPES=bfloat16``
  (set for bfloat16 calls only, contract ``bfloat16``).
* **Numpy conversion** (:func:`to_numpy`) is bit-exact: the realized tensor must already have the requested dtype (else
  :class:`TinygradDtypeError`), it is bitcast to the unsigned integer of its width, copied out and viewed as the numpy
  dtype (``ml_dtypes.bfloat16``); then every value is checked to survive a round trip through the dtype (float64 ->
  dtype -> float64, NaN for NaN). Nothing goes through ``Tensor.numpy()``'s own float conversion (which upcasts
  bfloat16).
* **Layout.** tinygrad weights are torch's: ``nn.Linear`` ``(out, in)``, ``nn.Conv2d`` ``(out, in/groups, *kernel)``,
  ``nn.ConvTranspose2d`` ``(in, out/groups, *kernel)``; its initializers take fans from that layout (``shape[0]``,
  ``prod(shape[1:])``). No translation.
* :meth:`TinygradBackend.init` maps ``torch.nn.init`` schemes only onto tinygrad initializers with the same
  distribution (:data:`INIT_MAP`); the rest raise :class:`UnsupportedOperation` saying why.
* **Modules.** tinygrad layers take no dtype; they are built under ``Context(DEFAULT_FLOAT=dtype)`` (tinygrad's
  documented ``DEFAULT_FLOAT``), which is how tinygrad users get half-precision layers. ``Conv1d``/``ConvTranspose1d``
  are tinygrad's; ``Conv3d``/``ConvTranspose3d`` are ``nn.Conv2d``/``nn.ConvTranspose2d`` with a 3-tuple kernel
  (tinygrad's convolutions are N-d; ``Conv1d`` itself is built that way); ``BatchNorm1d``/``2d`` are ``nn.BatchNorm``.
* **Activations.** ``Tensor`` methods; the derivative is tinygrad's autograd, ``y.gradient(x, gradient=ones)``.
  Inputs are copied bit for bit into a device buffer (no kernel), flattened and zero-padded to power-of-two lengths
  (min 64); value and gradients run as one ``TinyJit`` per (activation, parameters, dtype, layout, size), so a handful
  of compiled kernels are replayed instead of re-scheduled on every call (verified bit-identical to the un-jitted
  graph). ``layout="transposed"`` and ``"strided"`` build real tinygrad views (``permute``, every other element of a
  buffer twice as long). No randomness is involved there, so the JIT cannot hide a stream bug.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import shutil
import sys
from collections.abc import Sequence

import numpy as np

from . import dtypes as D
from .base import FLOAT_DTYPES, Availability, Backend, ConformanceError, Contract, Provider, UnsupportedOperation
from .interface import init_params, sample_params

EXTRA = "pip install 'dl-conformance[tinygrad]'"
#: Spec device -> tinygrad device name.
DEVICES = {"cpu": "CPU", "cuda": "CUDA", "metal": "METAL"}
#: tinygrad's own initializers (``Tensor`` class methods) that :meth:`TinygradBackend.named_init` calls.
NAMED = ("kaiming_uniform", "kaiming_normal", "glorot_uniform", "scaled_uniform", "uniform", "normal", "rand", "randn")
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}
_ACTIVATIONS = ("silu", "sigmoid", "gelu", "gelu_tanh", "softplus", "tanh", "mish", "relu", "leaky_relu")


class TinygradDtypeError(ConformanceError, TypeError):
    """A tensor about to be handed back is not exactly of the requested dtype (a hidden cast or a lost rounding)."""


def _set_env(device: str) -> None:
    """``DEV=CPU`` before tinygrad is first imported, for the CPU spec, unless the user set ``DEV`` already."""
    if device == "cpu" and "tinygrad" not in sys.modules and not os.environ.get("DEV"):
        os.environ["DEV"] = "CPU"


def _tg():
    import tinygrad

    return tinygrad


def _tdtype(dtype: str):
    from tinygrad import dtypes

    return getattr(dtypes, dtype)


def _udtype(itemsize: int):
    from tinygrad import dtypes

    return {2: dtypes.uint16, 4: dtypes.uint32, 8: dtypes.uint64}[itemsize]


def tinygrad_version() -> str:
    try:
        from importlib.metadata import version

        return version("tinygrad")
    except Exception:  # noqa: BLE001
        return str(getattr(_tg(), "__version__", "unknown"))


def _realize(t):
    """Realize ``t`` alone, now (never together with, or after, a later draw: tinygrad #16520)."""
    return t.realize()


def exactly_representable(a: np.ndarray, dtype: str) -> np.ndarray:
    """Elementwise: does each value of ``a`` survive float64 -> ``dtype`` -> float64 unchanged (NaN counts as kept)?"""
    wide = np.asarray(a).astype(np.float64)
    back = D.round_to(wide, dtype).astype(np.float64)
    return (back == wide) | (np.isnan(back) & np.isnan(wide))


def check_representable(a: np.ndarray, dtype: str, what: str = "array") -> np.ndarray:
    """``a`` when it is an array of ``dtype`` whose every value is exactly representable in ``dtype``; else raise
    :class:`TinygradDtypeError` naming the first offending value."""
    want = D.numpy_dtype(dtype)
    if not isinstance(a, np.ndarray) or a.dtype != want:
        got = type(a).__name__ if not isinstance(a, np.ndarray) else str(a.dtype)
        raise TinygradDtypeError(f"{what}: expected a numpy array of {want}, got {got}")
    ok = exactly_representable(a, dtype)
    if not ok.all():
        bad = np.flatnonzero(~ok.ravel())
        v = float(np.asarray(a).astype(np.float64).ravel()[bad[0]])
        raise TinygradDtypeError(f"{what}: {bad.size} of {a.size} values are not exactly representable in {dtype} "
                                 f"(first: {v!r} at flat index {int(bad[0])}); a cast was skipped or rounded twice")
    return a


def to_numpy(t, dtype: str) -> np.ndarray:
    """A tinygrad tensor of ``dtype`` as a numpy array of ``dtype``, bit for bit (see the module contract).

    float16/32/64: the realized buffer itself (``Tensor.numpy()`` copies it without a kernel), refused unless its
    numpy dtype is exactly the requested one. bfloat16: the buffer's uint16 bit pattern viewed as
    ``ml_dtypes.bfloat16``, cross-checked against tinygrad's own float32 upcast (``Tensor.numpy()`` on bfloat16): those
    float32 values must survive a round trip through bfloat16 and equal the bit-pattern view exactly."""
    want = _tdtype(dtype)
    if t.dtype != want:
        raise TinygradDtypeError(f"tinygrad tensor has dtype {t.dtype}, requested {dtype}: refusing to convert "
                                 "(a hidden cast would change the values)")
    shape = tuple(int(s) for s in t.shape)
    np_dt = D.numpy_dtype(dtype)
    what = f"tinygrad {dtype} tensor of shape {shape}"
    if math.prod(shape) == 0:
        return np.empty(shape, np_dt)
    _realize(t)
    if dtype != "bfloat16":
        out = np.array(t.numpy(), copy=True)
        if out.dtype != np_dt or out.shape != shape:
            raise TinygradDtypeError(f"{what}: Tensor.numpy() returned {out.dtype}{out.shape}")
        return check_representable(out, dtype, what)
    bits = _realize(t.bitcast(_udtype(2))).numpy()
    if bits.dtype != np.uint16 or bits.shape != shape:
        raise TinygradDtypeError(f"{what}: bitcast to uint16 came back as {bits.dtype}{bits.shape}")
    out = np.array(bits, copy=True).view(np_dt)
    wide = np.asarray(t.numpy())  # tinygrad's own upcast to float32
    ok = exactly_representable(wide, dtype)
    if wide.dtype != np.float32 or not ok.all():
        raise TinygradDtypeError(f"{what}: tinygrad's float32 view holds {int((~ok).sum())} values that are not "
                                 f"bfloat16 values (dtype {wide.dtype})")
    same = (out.astype(np.float32).view(np.uint32) == wide.view(np.uint32)) | (np.isnan(wide) & np.isnan(out))
    # tinygrad's emulated bfloat16 -> float32 conversion flushes subnormals to (signed) zero ("NB: denormals are
    # zero!", tinygrad/codegen/decomp/dtype.py f2f): the bit pattern is the value, the upcast is not -- tolerated there
    tiny = np.abs(out.astype(np.float64)) < float(np.finfo(np.float32).tiny)
    daz = tiny & (wide == 0) & (np.signbit(wide) == np.signbit(out.astype(np.float32)))
    same |= daz
    if not same.all():
        raise TinygradDtypeError(f"{what}: the bit pattern and tinygrad's float32 upcast disagree at "
                                 f"{int((~same).sum())} positions")
    return check_representable(out, dtype, what)


def from_numpy(a: np.ndarray, dtype: str, device: str):
    """``a`` converted to ``dtype`` (rounded once, to nearest) as a realized tinygrad tensor, bit for bit: the bytes
    are copied into a freshly allocated device buffer (no kernel, so no compile and no cast)."""
    from tinygrad import Tensor
    from tinygrad.device import Buffer

    np_dt = D.numpy_dtype(dtype)
    arr = np.asarray(a)
    arr = np.ascontiguousarray(arr if arr.dtype == np_dt else D.round_to(arr.astype(np.float64), dtype))
    t = Tensor.empty(*arr.shape, dtype=_tdtype(dtype), device=device)
    if arr.size:
        src = Buffer("PYTHON", arr.size, _tdtype(dtype), opaque=memoryview(bytearray(arr.tobytes())))
        t.uop.buffer.ensure_allocated().copy_from(src)
    return t


_C_TYPES = {"float16": "_Float16", "bfloat16": "__bf16", "float32": "float", "float64": "double"}


def _rerun_compiler(exc: BaseException, dtype: str) -> str:
    """tinygrad compiles in worker processes whose stderr cannot be captured here: when a clang command failed
    (``CalledProcessError``), run the same command on a one-line program using the dtype's C type and return the
    compiler's first ``error:`` line."""
    import subprocess

    cmd = getattr(exc, "cmd", None)
    if not isinstance(cmd, (list, tuple)) or not cmd:
        return ""
    ctype = _C_TYPES.get(dtype, "float")
    src = f"{ctype} f(unsigned short x) {{ return ({ctype})x; }}\n"
    try:
        res = subprocess.run(list(cmd), input=src.encode(), capture_output=True, timeout=30)
    except Exception:  # noqa: BLE001
        return ""
    lines = [ln.strip() for ln in res.stderr.decode(errors="replace").splitlines() if "error:" in ln]
    return f"{cmd[0]}: {lines[0]}" if lines else ""


def compile_error(fn, dtype: str = "float32") -> tuple[bool, str]:
    """Run ``fn()``: ``(True, "")`` or ``(False, reason)``, the reason being the compiler's first error line."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - any failure is the reason
        text = _rerun_compiler(exc, dtype)
        if not text:
            msg = str(exc).strip()
            text = f"{type(exc).__name__}: {msg.splitlines()[0] if msg else ''}"
        return False, text[:300]
    return True, ""


@functools.cache
def _clang_version() -> str:
    import subprocess

    try:
        out = subprocess.run(["clang", "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    except Exception as exc:  # noqa: BLE001
        return f"unavailable ({type(exc).__name__})"


def _activation_fn(name: str, params: dict):
    p = dict(params)
    if name == "leaky_relu":
        slope = p.pop("negative_slope", 0.01)
        fn = lambda x: x.leaky_relu(neg_slope=slope)  # noqa: E731
    elif name == "softplus":
        beta = p.pop("beta", 1.0)
        fn = lambda x: x.softplus(beta=beta)  # noqa: E731
    else:
        fn = {"silu": lambda x: x.silu(), "sigmoid": lambda x: x.sigmoid(),
              "gelu": lambda x: x.gelu(approximate="none"), "gelu_tanh": lambda x: x.gelu(approximate="tanh"),
              "tanh": lambda x: x.tanh(), "mish": lambda x: x.mish(), "relu": lambda x: x.relu()}[name]
    if p:
        raise TypeError(f"{name} takes no parameters {sorted(p)}")
    return fn


#: Jitted value-and-gradient functions (:meth:`TinygradBackend._compiled`), one per activation/dtype/layout/size.
_JITS: dict = {}


def _bucket(n: int) -> int:
    return max(64, 1 << max(n - 1, 0).bit_length())


# -- init: torch.nn.init scheme -> tinygrad initializer with the same distribution ----------------------------------
def _kaiming_a(p: dict, name: str) -> float:
    """tinygrad's ``kaiming_*`` take only ``a`` (gain sqrt(2/(1+a^2)), fan_in = prod(shape[1:]))."""
    if p["fan_mode"] != "fan_in":
        if p["fan_mode"] == "fan_out":
            raise UnsupportedOperation(f"tinygrad Tensor.{name} has no mode: it always divides by fan_in = "
                                       "prod(shape[1:]) (asked for fan_mode='fan_out')")
        raise ValueError(f"Mode {p['fan_mode']} not supported, please use one of fan_in, fan_out")
    if p["nonlinearity"] == "leaky_relu":
        return float(p["negative_slope"])
    if p["nonlinearity"] == "relu":
        return 0.0
    raise UnsupportedOperation(f"tinygrad Tensor.{name} takes only a leaky-ReLU slope a (gain sqrt(2/(1+a^2))); "
                               f"it has no gain for nonlinearity={p['nonlinearity']!r}")


def _xavier_uniform(T, p, shape, kw):
    if p["gain"] != 1.0:
        raise UnsupportedOperation(f"tinygrad Tensor.glorot_uniform has no gain (asked for gain={p['gain']:g})")
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    if len(shape) > 2 and math.prod(shape[2:]) != 1:
        raise UnsupportedOperation("tinygrad Tensor.glorot_uniform takes fan_out = shape[0] (no receptive field) "
                                   f"and fan_in = prod(shape[1:]): not torch's xavier fans for a kernel {shape}")
    return T.glorot_uniform(*shape, **kw)


def _eye(T, p, shape, kw):
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return T.eye(shape[0], shape[1], dtype=kw["dtype"]).to(kw["device"])


#: ``init`` scheme -> ``make(Tensor, params, canonical shape, {"dtype", "device"})`` returning the lazy tensor.
INIT_MAP = {
    "uniform": lambda T, p, shape, kw: T.uniform(*shape, low=p["low"], high=p["high"], **kw),
    "normal": lambda T, p, shape, kw: T.normal(*shape, mean=p["mean"], std=p["std"], **kw),
    "constant": lambda T, p, shape, kw: T.full(shape, p["value"], **kw),
    "zeros": lambda T, p, shape, kw: T.zeros(*shape, **kw),
    "ones": lambda T, p, shape, kw: T.ones(*shape, **kw),
    "eye": _eye,
    "xavier_uniform": _xavier_uniform,
    "kaiming_uniform": lambda T, p, shape, kw: T.kaiming_uniform(*shape, a=_kaiming_a(p, "kaiming_uniform"), **kw),
    "kaiming_normal": lambda T, p, shape, kw: T.kaiming_normal(*shape, a=_kaiming_a(p, "kaiming_normal"), **kw),
}

#: Schemes tinygrad has no initializer for, and why.
UNMAPPED = {
    "trunc_normal": "tinygrad (0.14) has no truncated-normal sampler or initializer",
    "xavier_normal": "tinygrad (0.14) has no glorot/xavier normal initializer (only Tensor.glorot_uniform)",
    "orthogonal": "tinygrad (0.14) has no orthogonal initializer",
    "sparse": "tinygrad (0.14) has no sparse initializer",
    "dirac": "tinygrad (0.14) has no dirac initializer",
}


class TinygradBackend(Backend):
    """tinygrad on one device (``cpu``, ``cuda`` or ``metal``)."""

    framework = "tinygrad"
    contracts = {
        "unseeded": Contract(
            "unseeded", "fresh per process at one-second resolution: Tensor._seed = int(time.time()) when "
                        "tinygrad/tensor.py is imported; two processes started in the same second draw the same "
                        "stream", "tinygrad 0.14.0 tinygrad/tensor.py (Tensor._seed)", value="fresh"),
        "seed_mapping": Contract(
            "seed_mapping", "Tensor.manual_seed(s) resets the per-device keys and counters: key = [sha256(index of "
                            "the device among those used since the seed), s], counter 0; every draw of n bytes "
                            "advances the counter by ceil(n/4) (threefry random_bits)",
            "tinygrad 0.14.0 tinygrad/tensor.py manual_seed, _next_counter; tinygrad/mixin/rand.py"),
        "realization": Contract(
            "realization", "every draw is realized on its own before the next draw is built (tinygrad #16520: lazy "
                           "draws realized newest-first repeat each other)",
            "https://github.com/tinygrad/tinygrad/issues/16520"),
        "layout": Contract(
            "layout", "torch's: Linear (out, in), Conv (out, in/groups, *kernel), ConvTranspose (in, out/groups, "
                      "*kernel); initializers take fan_in = prod(shape[1:]), glorot_uniform fan_out = shape[0]",
            "tinygrad 0.14.0 tinygrad/nn/__init__.py, tinygrad/mixin/rand.py"),
        "module_dtype": Contract(
            "module_dtype", "layers take no dtype: they are built under Context(DEFAULT_FLOAT=<dtype>), tinygrad's "
                            "default float type", "tinygrad 0.14.0 tinygrad/helpers.py DEFAULT_FLOAT; dtype.py "
                                                  "dtypes.default_float"),
    }

    def __init__(self, device: str) -> None:
        _set_env(device)
        self.device = device
        self._dev = DEVICES[device]
        self._emulate: set[str] = set()
        self._dropped: dict[str, str] = {}
        self.contracts = dict(type(self).contracts)
        self.dtypes = self._probe_dtypes()

    # -- environment -------------------------------------------------------------------------------------------------
    def _dev_value(self) -> str:
        user = os.environ.get("DEV", "")
        first = user.split(";")[0].split("+")[-1].split(":")[0].upper() if user else ""
        return user if first == self._dev else self._dev

    @contextlib.contextmanager
    def _ctx(self, dtype: str | None = None, default_float: bool = False):
        from tinygrad import Context
        from tinygrad.helpers import EMULATED_DTYPES

        kw = {"DEV": self._dev_value()}
        if dtype in self._emulate:
            have = [x for x in str(EMULATED_DTYPES.value).split(",") if x]
            kw["EMULATED_DTYPES"] = ",".join(have + [dtype] if dtype not in have else have)
        if default_float and dtype is not None:
            kw["DEFAULT_FLOAT"] = dtype
        with Context(**kw):
            yield

    def _probe_dtypes(self) -> frozenset[str]:
        from tinygrad import Tensor

        ok = set()
        for dtype in FLOAT_DTYPES:
            def attempt(dtype=dtype):
                with self._ctx(dtype):
                    x = Tensor.rand(3, dtype=_tdtype(dtype), device=self._dev)
                    y = (x * 2 + 1).cast(_tdtype("float32")) if dtype != "float32" else x * 2 + 1
                    _realize(y)
                    to_numpy(_realize(x), dtype)

            good, reason = compile_error(attempt, dtype)
            if not good and dtype == "bfloat16" and self.device == "cpu":
                self._emulate.add(dtype)
                good, reason2 = compile_error(attempt, dtype)
                if good:
                    self.contracts["bfloat16"] = Contract(
                        "bfloat16", f"bfloat16 runs with tinygrad's EMULATED_DTYPES=bfloat16 (set for bfloat16 calls "
                                    f"only): {_clang_version()} rejects native __bf16 ({reason})",
                        "tinygrad 0.14.0 tinygrad/codegen/decomp/dtype.py (_should_emulate)")
                else:
                    self._emulate.discard(dtype)
                    reason = f"{reason}; with EMULATED_DTYPES=bfloat16: {reason2}"
            if good:
                ok.add(dtype)
            else:
                self._dropped[dtype] = (f"{self.spec}: tinygrad cannot compile {dtype} here ({_clang_version()}): "
                                        f"{reason}")
        return frozenset(ok)

    def require_dtype(self, dtype: str) -> None:
        if dtype in self._dropped:
            raise UnsupportedOperation(self._dropped[dtype])
        super().require_dtype(dtype)

    def versions(self) -> dict[str, str]:
        out = {"tinygrad": tinygrad_version(), "numpy": np.__version__, "DEV": self._dev_value()}
        if self.device == "cpu":
            out["device"] = platform.processor() or platform.machine()
            out["clang"] = _clang_version()
        if self._emulate:
            out["emulated_dtypes"] = ",".join(sorted(self._emulate))
        return out

    # -- randomness --------------------------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """``Tensor.manual_seed(seed)``."""
        from tinygrad import Tensor

        Tensor.manual_seed(int(seed))

    def _draw(self, make, dtype: str) -> np.ndarray:
        """Build one draw with ``make()`` under the dtype's context, realize it alone, convert it."""
        with self._ctx(dtype):
            return to_numpy(_realize(make()), dtype)

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``Tensor.rand``, ``randn``, ``uniform(low, high)``, ``normal(mean, std)`` in ``dtype`` on the device."""
        from tinygrad import Tensor

        self.require_dtype(dtype)
        if "generator" in params:
            raise UnsupportedOperation(f"{self.spec}: tinygrad has no explicit generator objects")
        shape = tuple(int(s) for s in shape)
        kw = {"dtype": _tdtype(dtype), "device": self._dev}
        if dist in ("rand", "randn"):
            if params:
                raise TypeError(f"{dist} takes no parameters, got {sorted(params)}")
            fn = Tensor.rand if dist == "rand" else Tensor.randn
            return self._draw(lambda: fn(*shape, **kw), dtype)
        if dist == "uniform":
            p = sample_params(dist, params)
            return self._draw(lambda: Tensor.uniform(*shape, low=p["low"], high=p["high"], **kw), dtype)
        if dist == "normal":
            p = sample_params(dist, params)
            return self._draw(lambda: Tensor.normal(*shape, mean=p["mean"], std=p["std"], **kw), dtype)
        if dist == "trunc_normal":
            sample_params(dist, params)
            raise UnsupportedOperation(UNMAPPED["trunc_normal"])
        raise UnsupportedOperation(f"{self.spec} has no sampler {dist!r}")

    # -- initializers ------------------------------------------------------------------------------------------------
    def init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """A ``torch.nn.init`` scheme through the tinygrad initializer with the same distribution (:data:`INIT_MAP`)."""
        from tinygrad import Tensor

        self.require_dtype(dtype)
        if scheme in UNMAPPED:
            init_params(scheme, params)
            raise UnsupportedOperation(UNMAPPED[scheme])
        make = INIT_MAP.get(scheme)
        if make is None:
            raise UnsupportedOperation(f"tinygrad has no equivalent of torch.nn.init.{scheme}_")
        p = init_params(scheme, params)
        shape = tuple(int(s) for s in shape)
        kw = {"dtype": _tdtype(dtype), "device": self._dev}
        if scheme in ("uniform",) and not p["low"] < p["high"]:
            raise ValueError(f"Tensor.uniform requires low < high, got low={p['low']}, high={p['high']}")
        return self._draw(lambda: make(Tensor, p, shape, kw), dtype)

    def named_schemes(self) -> tuple[str, ...]:
        from tinygrad import Tensor

        return tuple(n for n in NAMED if hasattr(Tensor, n))

    def named_init(self, name: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``Tensor.<name>(*shape, **params, dtype=dtype, device=device)``: tinygrad's own keywords and defaults; the
        shape is already tinygrad's layout (torch's)."""
        from tinygrad import Tensor

        self.require_dtype(dtype)
        if name not in self.named_schemes():
            raise UnsupportedOperation(f"tinygrad {tinygrad_version()} has no Tensor.{name}")
        shape = tuple(int(s) for s in shape)
        fn = getattr(Tensor, name)
        return self._draw(lambda: fn(*shape, **params, dtype=_tdtype(dtype), device=self._dev), dtype)

    # -- modules -----------------------------------------------------------------------------------------------------
    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """The tinygrad layer with the same role, built with its default init under ``DEFAULT_FLOAT=dtype``; its
        state dict by torch's names (the layouts are torch's). Each tensor is realized on its own, in creation
        order."""
        from tinygrad.nn.state import get_state_dict

        self.require_dtype(dtype)
        with self._ctx(dtype, default_float=True):
            mod = self._build(module, dict(config))
            state = get_state_dict(mod)
            out = {}
            for name, t in state.items():
                _realize(t)
                if t.dtype == _tdtype(dtype):
                    out[name] = to_numpy(t, dtype)
                elif name == "num_batches_tracked":
                    out[name] = _realize(t).numpy().copy()  # an integer counter: numpy's int64 is exact
                else:
                    raise TinygradDtypeError(f"tinygrad {module}.{name} came back as {t.dtype}, built under "
                                             f"DEFAULT_FLOAT={dtype}")
        return out

    def _build(self, module: str, c: dict):
        from tinygrad import nn

        c.pop("device", None)
        c.pop("dtype", None)
        if module == "Linear":
            return _done(nn.Linear(c.pop("in_features"), c.pop("out_features"), bias=c.pop("bias", True)), c, module)
        if module.startswith("Conv"):
            transposed = module.startswith("ConvTranspose")
            dims = int(module[-2])
            kernel = c.pop("kernel_size")
            kernel = tuple(kernel) if isinstance(kernel, (tuple, list)) else (int(kernel),) * dims
            if len(kernel) != dims:
                raise ValueError(f"{module} needs a kernel of {dims} dims, got {kernel}")
            kwargs = {k: c.pop(k) for k in ("stride", "padding", "dilation", "groups", "bias") if k in c}
            if transposed and "output_padding" in c:
                kwargs["output_padding"] = c.pop("output_padding")
            if c.pop("padding_mode", "zeros") != "zeros":
                raise UnsupportedOperation(f"tinygrad nn.{module} has no padding_mode")
            cls = nn.ConvTranspose2d if transposed else nn.Conv2d  # N-d: the kernel tuple sets the dims
            return _done(cls(c.pop("in_channels"), c.pop("out_channels"), kernel, **kwargs), c, module)
        if module == "Embedding":
            if c.pop("padding_idx", None) is not None:
                raise UnsupportedOperation("tinygrad nn.Embedding(vocab_size, embed_size) has no padding_idx")
            for key in ("max_norm", "scale_grad_by_freq", "sparse"):
                if c.pop(key, None):
                    raise UnsupportedOperation(f"tinygrad nn.Embedding has no {key}")
            return _done(nn.Embedding(c.pop("num_embeddings"), c.pop("embedding_dim")), c, module)
        if module in ("LayerNorm", "RMSNorm"):
            shape = c.pop("normalized_shape")
            shape = (shape,) if isinstance(shape, int) else tuple(shape)
            affine = c.pop("elementwise_affine", True)
            if module == "LayerNorm":
                if not c.pop("bias", True):
                    raise UnsupportedOperation("tinygrad nn.LayerNorm has no bias=False (its affine has both)")
                return _done(nn.LayerNorm(shape, eps=c.pop("eps", 1e-5), elementwise_affine=affine), c, module)
            if len(shape) != 1:
                raise UnsupportedOperation(f"tinygrad nn.RMSNorm(dim) normalizes the last axis only; asked for "
                                           f"normalized_shape={shape}")
            eps = c.pop("eps", None)
            return _done(nn.RMSNorm(shape[0], eps=1e-6 if eps is None else eps, elementwise_affine=affine), c, module)
        if module in ("BatchNorm1d", "BatchNorm2d"):
            mod = nn.BatchNorm(c.pop("num_features"), eps=c.pop("eps", 1e-5), affine=c.pop("affine", True),
                               track_running_stats=c.pop("track_running_stats", True),
                               momentum=c.pop("momentum", 0.1))
            return _done(mod, c, module)
        raise UnsupportedOperation(f"{self.spec} cannot build module {module!r}")

    # -- activations -------------------------------------------------------------------------------------------------
    def _view(self, x, shape: tuple[int, ...], layout: str):
        """The flat input ``x`` viewed as ``layout`` (a real tinygrad view, not a copy)."""
        if layout == "contiguous":
            return x
        if layout == "transposed":
            n0, n1 = shape
            return x.reshape(n1, n0).permute(1, 0)
        if layout == "strided":
            return x.reshape(-1, 2)[:, 0]  # every other element of a buffer twice as long
        raise ValueError(f"unknown layout {layout!r}; expected contiguous, transposed or strided")

    def _compiled(self, fn, key: tuple, shape: tuple[int, ...], layout: str):
        """``TinyJit(inputs -> (f, *grads))`` cached per activation, parameters, dtype, layout and padded size: the
        kernels are compiled once and replayed (tinygrad's JIT), instead of re-scheduled on every call."""
        jit = _JITS.get(key)
        if jit is None:
            from tinygrad import TinyJit

            def run(*flats):
                xs = [self._view(f, shape, layout) for f in flats]
                out = fn(*xs)
                grads = out.gradient(*xs, gradient=out.ones_like())
                return tuple(r.contiguous().realize() for r in (out, *grads))

            jit = _JITS[key] = TinyJit(run)
        return jit

    def _run(self, fn, key: tuple, inputs: list[np.ndarray], dtype: str, layout: str) -> tuple[np.ndarray, ...]:
        """Pad the flat inputs to a power-of-two length (a handful of compiled shapes serve every call), run the
        jitted value-and-gradient, cut and reshape the outputs (copied out at once: the JIT reuses its buffers)."""
        dt = D.numpy_dtype(dtype)
        arrays = [np.asarray(a) for a in inputs]
        shape = arrays[0].shape
        n = arrays[0].size
        if layout == "transposed":
            if len(shape) != 2:
                raise ValueError("layout='transposed' needs a 2-D input")
            # built as the transpose, then permuted back: a non-contiguous view of the same values
            arrays = [np.ascontiguousarray(a.T) for a in arrays]
            size, view_shape = n, shape
        else:
            size, view_shape = _bucket(n), (_bucket(n),)
        flats = []
        for a in arrays:
            buf = np.zeros(size * (2 if layout == "strided" else 1), dt)
            vals = D.round_to(a.astype(np.float64), dtype).ravel() if a.dtype != dt else a.ravel()
            if layout == "strided":
                buf[: 2 * n: 2] = vals
            else:
                buf[:n] = vals
            flats.append(buf)
        with self._ctx(dtype):
            tensors = [from_numpy(f, dtype, self._dev) for f in flats]
            jit = self._compiled(fn, (*key, dtype, layout, size, view_shape, self._dev_value()), view_shape, layout)
            results = jit(*tensors)
            return tuple(to_numpy(r, dtype).ravel()[:n].reshape(shape) for r in results)

    def activation(self, name: str, x: np.ndarray, dtype: str, **params) -> tuple[np.ndarray, np.ndarray]:
        """``Tensor.<name>`` and its tinygrad autograd derivative (upstream gradient of ones), in ``dtype``."""
        if name not in _ACTIVATIONS:
            raise UnsupportedOperation(f"{self.spec} has no activation {name!r}")
        self.require_dtype(dtype)
        layout = params.pop("layout", "contiguous")
        key = (name, tuple(sorted(params.items())))
        fn = _activation_fn(name, params)
        return self._run(fn, key, [x], dtype, layout)

    def activation2(self, name: str, x: np.ndarray, y: np.ndarray, dtype: str,
                    **params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``swiglu``: ``x.silu() * y`` (tinygrad has no swiglu) and both partials from tinygrad's autograd."""
        layout = self.swiglu_layout(name, dtype, params)
        return self._run(lambda a, b: a.silu() * b, ("swiglu",), [x, y], dtype, layout)


def _done(mod, config: dict, module: str):
    """Reject configuration the tinygrad layer has no equivalent for."""
    if config:
        raise UnsupportedOperation(f"tinygrad nn.{module} has no equivalent of {sorted(config)}")
    return mod


class TinygradProvider(Provider):
    """tinygrad on ``cpu``, ``cuda`` and ``metal``; :meth:`probe` never raises."""

    def probe(self, device: str) -> Availability:
        if device not in DEVICES:
            return Availability(False, f"tinygrad has no device {device!r}")
        try:
            _set_env(device)
            import tinygrad  # noqa: F401
            from tinygrad import Device
        except Exception as exc:  # noqa: BLE001 - any import failure means unavailable
            return Availability(False, f"tinygrad is not installed ({EXTRA}): {exc!r}")
        name = DEVICES[device]
        if device == "cpu" and ":" not in os.environ.get("DEV", "CPU") and shutil.which("clang") is None:
            return Availability(False, f"tinygrad {tinygrad_version()}: tinygrad:cpu compiles its kernels with clang, "
                                       "which is not on PATH (Debian/Ubuntu: apt-get install clang; or choose "
                                       "another CPU renderer, e.g. DEV=CPU:LLVM)")
        try:
            Device[name]
        except Exception as exc:  # noqa: BLE001 - no such device or runtime here
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            hint = " (tinygrad:cpu compiles with clang: apt-get install clang)" if device == "cpu" else ""
            return Availability(False, f"tinygrad {tinygrad_version()}: device {name} unavailable here: "
                                       f"{type(exc).__name__}: {text}{hint}")
        return Availability(True)

    def _create(self, device: str) -> Backend:
        return TinygradBackend(device)


PROVIDER = TinygradProvider(
    framework="tinygrad",
    devices=tuple(DEVICES),
    description="tinygrad (Tensor.rand/randn/uniform/normal with manual_seed, Tensor initializers, tinygrad.nn "
                "layers, Tensor activations with tinygrad autograd)",
    extra="tinygrad",
)
