"""The PyTorch adapter: one class for ``torch:cpu``, ``torch:cuda`` and ``torch:mps``.

Contract
--------
* ``import torch`` happens lazily (in :meth:`TorchProvider.probe` and in the
  adapter), so importing this module never fails when torch is absent.
* Every device shares every code path; only the dtypes differ (MPS has no
  float64).
* Randomness is torch's global generator, seeded by ``torch.manual_seed``
  (which seeds every device).
* Arrays cross the boundary bit-exactly: bfloat16 travels as its int16 bit
  pattern and is viewed as ``ml_dtypes.bfloat16`` on the numpy side.
* Warnings torch emits (for example "Initializing zero-element tensors is a
  no-op") reach the caller unchanged; errors torch raises for an unimplemented
  dtype kernel become :class:`UnsupportedOperation`.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence

import numpy as np

from .base import (
    FLOAT_DTYPES,
    INIT_SCHEMES,
    MODULES,
    Availability,
    Backend,
    Contract,
    Provider,
    UnsupportedOperation,
)
from .interface import init_params
from .torch.tensors import from_numpy, to_numpy  # re-exported: the adapter's bit-exact conversions

_NOT_IMPLEMENTED_MARK = "not implemented for"

#: Neutral ``init`` parameter name -> ``torch.nn.init`` keyword; every other name is torch's already.
TORCH_KEYWORDS = {"low": "a", "high": "b", "value": "val", "fan_mode": "mode", "negative_slope": "a"}


def _torch():
    """Import torch (lazily)."""
    import torch

    return torch


def _torch_dtype(dtype: str):
    return getattr(_torch(), dtype)


def _activation_fn(name: str):
    """torch.nn.functional callable for ``name``; ``params`` pass through as keywords."""
    F = _torch().nn.functional
    table = {
        "silu": F.silu, "sigmoid": _torch().sigmoid, "gelu": F.gelu,
        "gelu_tanh": lambda x, **p: F.gelu(x, approximate="tanh", **p),
        "softplus": F.softplus, "tanh": _torch().tanh, "mish": F.mish, "relu": F.relu,
        "leaky_relu": F.leaky_relu,
    }
    return table.get(name)


def pack_states(parts: list[bytes]) -> bytes:
    """Length-framed concatenation of generator states (8-byte little-endian length before each)."""
    return b"".join(len(p).to_bytes(8, "little") + p for p in parts)


def unpack_states(blob: bytes) -> list[bytes]:
    """Inverse of :func:`pack_states`; raises ``ValueError`` on a malformed blob."""
    parts, i = [], 0
    while i < len(blob):
        if i + 8 > len(blob):
            raise ValueError("truncated RNG state")
        n = int.from_bytes(blob[i:i + 8], "little")
        parts.append(bytes(blob[i + 8:i + 8 + n]))
        i += 8 + n
    return parts


_TORCH_SEED_SOURCE = ("pytorch aten/src/ATen/CPUGeneratorImpl.cpp: getDefaultCPUGenerator() is created with "
                      "c10::detail::getNonDeterministicRandom() (/dev/urandom); a new torch.Generator() starts at "
                      "c10::detail::default_rng_seed_val = 67280421310721 (c10/core/GeneratorImpl.h); "
                      "torch docs, Reproducibility: 'use torch.manual_seed() to seed the RNG for all devices'")

SEED_CONTRACTS = {
    "unseeded": Contract(
        "unseeded",
        "fresh per process: the default generators are seeded non-deterministically at start-up (torch.initial_seed() "
        "differs between processes); only a new torch.Generator() object starts at the fixed seed 67280421310721",
        _TORCH_SEED_SOURCE, value="fresh"),
    "generator_seeding": Contract(
        "generator_seeding",
        "torch.manual_seed(s) seeds torch.default_generator, a torch.Generator like any other: "
        "a torch.Generator(device) after manual_seed(s) draws the same stream as the global generator after "
        "torch.manual_seed(s)",
        "torch docs: torch.manual_seed returns the torch.Generator object it seeded (torch.default_generator); "
        "torch.Generator.manual_seed", value="matches_global"),
}


class TorchBackend(Backend):
    """torch on one device (``cpu``, ``cuda`` or ``mps``)."""

    framework = "torch"
    contracts = SEED_CONTRACTS

    def __init__(self, device: str) -> None:
        self.device = device
        self.dtypes = frozenset(d for d in FLOAT_DTYPES if not (device == "mps" and d == "float64"))

    def lacks(self) -> dict[str, str]:
        """``distributed`` runs on ``cpu`` (gloo) and ``cuda`` (nccl) only."""
        if self.device in ("cpu", "cuda"):
            return {}
        return {"distributed": f"torch.distributed has no process-group backend for {self.device}"}

    def versions(self) -> dict[str, str]:
        """torch and numpy versions, the device name, CUDA/cuDNN or MPS details."""
        torch = _torch()
        out = {"torch": torch.__version__, "numpy": np.__version__}
        if self.device == "cuda":
            out["device"] = torch.cuda.get_device_name()
            out["cuda"] = str(torch.version.cuda)
            out["cudnn"] = str(torch.backends.cudnn.version())
            out["capability"] = ".".join(map(str, torch.cuda.get_device_capability()))
        elif self.device == "mps":
            out["device"] = f"Apple MPS ({platform.machine()})"
            out["macos"] = platform.mac_ver()[0]
        else:
            out["device"] = platform.processor() or platform.machine()
            out["threads"] = str(torch.get_num_threads())
            cpu = getattr(torch.backends, "cpu", None)  # SIMD level of the dispatched kernels (AVX2, AVX512, ...)
            if cpu is not None and hasattr(cpu, "get_cpu_capability"):
                out["cpu_capability"] = str(cpu.get_cpu_capability())
        return out

    def seed(self, seed: int) -> None:
        """``torch.manual_seed(seed)``: seeds the CPU and every accelerator generator."""
        _torch().manual_seed(seed)

    # -- RNG state, generators, dropout, devices, ranks ----------------------------------------------------------
    def _global_states(self) -> list:
        """The global generators this adapter draws from: CPU always, plus the device's own."""
        torch = _torch()
        gens = [torch.default_generator]
        if self.device == "cuda":
            gens += [torch.cuda.default_generators[i] for i in range(torch.cuda.device_count())]
        elif self.device == "mps":
            gens.append(torch.mps._get_default_mps_generator())
        return gens

    def rng_state(self, generator=None) -> bytes:
        """``Generator.get_state()`` of the CPU generator and the device's default generator(s), length-framed."""
        gens = [generator] if generator is not None else self._global_states()
        return pack_states([bytes(g.get_state().numpy().tobytes()) for g in gens])

    def set_rng_state(self, state: bytes, generator=None) -> None:
        """``Generator.set_state`` on each generator :meth:`rng_state` saved (or on ``generator``)."""
        torch = _torch()
        gens = [generator] if generator is not None else self._global_states()
        parts = unpack_states(state)
        if len(parts) != len(gens):
            raise ValueError(f"state holds {len(parts)} generator states, expected {len(gens)}")
        for g, part in zip(gens, parts, strict=True):
            g.set_state(torch.frombuffer(bytearray(part), dtype=torch.uint8))

    def fork_rng(self):
        """``torch.random.fork_rng`` over the CPU and this adapter's device."""
        torch = _torch()
        if self.device == "cpu":
            return torch.random.fork_rng(devices=[])
        if self.device == "cuda":
            return torch.random.fork_rng(devices=list(range(torch.cuda.device_count())), device_type="cuda")
        return torch.random.fork_rng(device_type=self.device)

    def generator(self, seed: int | None = None):
        """``torch.Generator(device)``, then ``manual_seed(seed)`` when a seed is given."""
        gen = _torch().Generator(device=self.device)
        if seed is not None:
            gen.manual_seed(seed)
        return gen

    def dropout_mask(self, shape: Sequence[int], p: float, dtype: str) -> np.ndarray:
        """``torch.nn.functional.dropout(ones, p, training=True) != 0``."""
        torch = _torch()
        self.require_dtype(dtype)
        ones = torch.ones(tuple(shape), dtype=_torch_dtype(dtype), device=self.device)
        return to_numpy(torch.nn.functional.dropout(ones, p=p, training=True) != 0)

    def device_draws(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        """``torch.randn`` on the CPU and on every CUDA device / MPS that is usable here."""
        torch = _torch()
        devices = ["cpu"]
        if torch.cuda.is_available():
            devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            devices.append("mps")
        return {d: to_numpy(torch.randn(tuple(shape), dtype=torch.float32, device=d)) for d in devices}

    def rank_params(self, world_size: int, seed: int, timeout: float) -> dict:
        """torch.distributed ranks in fresh processes (see :mod:`conformance.backends.torch.distributed`)."""
        self.require("distributed")
        from .torch import distributed

        return distributed.run_ranks(self.device, world_size, seed, timeout)

    def _empty(self, shape: Sequence[int], dtype: str):
        self.require_dtype(dtype)
        return _torch().empty(tuple(shape), dtype=_torch_dtype(dtype), device=self.device)

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``uniform(low=0, high=1)`` via ``uniform_``, ``normal(mean=0, std=1)`` via ``normal_``, ``rand``,
        ``randn``."""
        torch = _torch()
        if dist == "uniform":
            low, high = params.pop("low", 0.0), params.pop("high", 1.0)
            return to_numpy(self._empty(shape, dtype).uniform_(low, high, **params))
        if dist == "normal":
            mean, std = params.pop("mean", 0.0), params.pop("std", 1.0)
            return to_numpy(self._empty(shape, dtype).normal_(mean, std, **params))
        if dist in ("rand", "randn"):
            self.require_dtype(dtype)
            fn = torch.rand if dist == "rand" else torch.randn
            return to_numpy(fn(tuple(shape), dtype=_torch_dtype(dtype), device=self.device, **params))
        raise UnsupportedOperation(f"{self.spec} has no sampler {dist!r}")

    def init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``torch.nn.init.<scheme>_`` on a new empty tensor; the neutral parameter names become torch's keywords
        (:data:`TORCH_KEYWORDS`), the values pass through verbatim."""
        if scheme not in INIT_SCHEMES:
            raise UnsupportedOperation(f"{self.spec} has no initializer {scheme!r}")
        init_params(scheme, params)  # TypeError for a name outside the neutral interface
        return self._torch_init(scheme, shape, dtype, **{TORCH_KEYWORDS.get(k, k): v for k, v in params.items()})

    def _torch_init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``torch.nn.init.<scheme>_(tensor, **params)`` with torch's own keywords."""
        fn = getattr(_torch().nn.init, f"{scheme}_", None)
        if fn is None:
            raise UnsupportedOperation(f"torch {_torch().__version__} has no torch.nn.init.{scheme}_")
        tensor = self._empty(shape, dtype)
        try:
            fn(tensor, **params)
        except (NotImplementedError, RuntimeError) as exc:
            if _NOT_IMPLEMENTED_MARK not in str(exc):
                raise
            raise UnsupportedOperation(f"{self.spec}: torch.nn.init.{scheme}_ in {dtype}: {exc}") from exc
        return to_numpy(tensor)

    def named_schemes(self) -> tuple[str, ...]:
        """torch's own initializer names (``torch.nn.init.<name>_``); the layout is already canonical."""
        return ("kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "trunc_normal", "normal",
                "uniform", "orthogonal")

    def named_init(self, name: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``torch.nn.init.<name>_`` with torch's own keywords and defaults (the call :meth:`init` makes)."""
        if name not in self.named_schemes():
            raise UnsupportedOperation(f"{self.spec} has no named initializer {name!r}")
        return self._torch_init(name, shape, dtype, **params)

    def calculate_gain(self, nonlinearity: str, param: float | None = None) -> float:
        """``torch.nn.init.calculate_gain``."""
        return float(_torch().nn.init.calculate_gain(nonlinearity, param))

    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """``torch.nn.<module>(**config, dtype=..., device=...)``: named parameters, then named buffers."""
        if module not in MODULES or not hasattr(_torch().nn, module):
            raise UnsupportedOperation(f"{self.spec} cannot build module {module!r}")
        self.require_dtype(dtype)
        mod = getattr(_torch().nn, module)(**config, dtype=_torch_dtype(dtype), device=self.device)
        out = {name: to_numpy(p) for name, p in mod.named_parameters()}
        out.update({name: to_numpy(b) for name, b in mod.named_buffers()})
        return out

    def build_model(self, factory, device_init: str = "eager", init: str = "auto", dtype: str = "float32",
                    **kwargs):
        """``factory(**kwargs)`` under ``torch.device(device)`` or ``torch.device("meta")`` + ``to_empty`` +
        poison fill, then the init function (see :func:`conformance.backends.torch.models.build`)."""
        from .torch import models

        self.require_dtype(dtype)
        return models.build(factory, self.device, device_init=device_init, init=init, dtype=dtype, **kwargs)

    def activation(self, name: str, x: np.ndarray, dtype: str, **params) -> tuple[np.ndarray, np.ndarray]:
        """Value ``f(x)`` and ``autograd.grad(f(x), x, ones)`` computed in ``dtype`` on the device."""
        torch = _torch()
        fn = _activation_fn(name)
        if fn is None:
            raise UnsupportedOperation(f"{self.spec} has no activation {name!r}")
        self.require_dtype(dtype)
        layout = params.pop("layout", "contiguous")
        xt = self._leaf(x, dtype, layout)
        with torch.enable_grad():
            y = fn(xt, **params)
            (grad,) = torch.autograd.grad(y, xt, torch.ones_like(y))
        return to_numpy(y), to_numpy(grad)

    def _leaf(self, x: np.ndarray, dtype: str, layout: str = "contiguous"):
        """A leaf tensor requiring grad whose logical values are ``x``, laid out as ``layout``.

        ``transposed``: the ``.t()`` of a contiguous (n, m) tensor (2-D ``x`` only); ``strided``: every
        other element along the last axis of a buffer twice as wide. Both are non-contiguous views.
        """
        torch = _torch()
        x = np.asarray(x)
        if layout == "contiguous":
            t = from_numpy(x, dtype, self.device)
        elif layout == "transposed":
            if x.ndim != 2:
                raise ValueError("layout='transposed' needs a 2-D input")
            t = from_numpy(np.ascontiguousarray(x.T), dtype, self.device).t()
        elif layout == "strided":
            base = torch.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=_torch_dtype(dtype), device=self.device)
            base[..., ::2] = from_numpy(x, dtype, self.device)
            t = base[..., ::2]
        else:
            raise ValueError(f"unknown layout {layout!r}; expected contiguous, transposed or strided")
        if layout != "contiguous" and t.numel() > 1 and t.is_contiguous():
            raise AssertionError(f"layout {layout!r} produced a contiguous tensor")
        return t.detach().requires_grad_(True)

    def activation2(self, name: str, x: np.ndarray, y: np.ndarray, dtype: str,
                    **params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``swiglu``: ``F.silu(x) * y`` (the LLaMA-style gate) and ``autograd.grad`` w.r.t. x and y."""
        torch = _torch()
        layout = self.swiglu_layout(name, dtype, params)
        xt, yt = self._leaf(x, dtype, layout), self._leaf(y, dtype, layout)
        with torch.enable_grad():
            out = torch.nn.functional.silu(xt) * yt
            gx, gy = torch.autograd.grad(out, (xt, yt), torch.ones_like(out))
        return to_numpy(out), to_numpy(gx), to_numpy(gy)


    # -- checkpoints (conformance.backends.torch.checkpoint_io, .checkpoint_models, .resume) ---------------------
    #: seed offset of the fresh model a checkpoint is loaded into, so nothing it holds can match by accident
    FRESH_SEED_OFFSET = 0x5EED
    #: the training loop :meth:`resume_run` runs (``module:Class``); faulty adapters point it elsewhere
    HARNESS = "conformance.backends.torch.resume:ResumeHarness"

    def checkpoint_formats(self) -> tuple[str, ...]:
        """``torch`` (``torch.save``, loaded with ``weights_only=True``) and ``safetensors`` when installed."""
        from .torch import checkpoint_io

        return tuple(f for f in checkpoint_io.FORMATS
                     if f != "safetensors" or checkpoint_io.safetensors_available() is None)

    def checkpoint_models(self) -> tuple[str, ...]:
        """``tiny_tied`` plus the built-in ``gpt2`` and ``llama`` of :mod:`.torch.models`, shrunk."""
        from .torch import checkpoint_models

        return checkpoint_models.model_names()

    def save_checkpoint(self, path, model: str, fmt: str, dtype: str, seed: int, device: str | None = None):
        """Build ``model`` after ``torch.manual_seed(seed)``; save it atomically with provenance."""
        from .torch import checkpoint_io as cio
        from .torch import checkpoint_models as cm

        self.require("checkpoint")
        self.require_dtype(dtype)
        device = device or self.device
        built = cm.build_model(model, dtype, device, seed)
        state = cio.model_state(built, model)
        versions = {k: v for k, v in self.versions().items() if k in ("torch", "numpy", "cuda")}
        state.provenance = cio.save_model(built, path, fmt, cm.provenance_of(model, seed, dtype, device, versions))
        state.file_keys = cio.file_entries(path, fmt)
        state.path = str(path)
        return state

    def load_checkpoint(self, path, model: str, fmt: str, dtype: str, device: str | None = None, expect=None):
        """Read ``path`` (``weights_only=True`` / safetensors), verify digests, keys and provenance, load strictly."""
        from conformance.harness.checkpoints import verify_provenance

        from .torch import checkpoint_models as cm

        self.require("checkpoint")
        self.require_dtype(dtype)
        device = device or self.device
        seed = (expect or {}).get("seed")
        fresh = (seed if isinstance(seed, int) else 0) + self.FRESH_SEED_OFFSET
        state = cm.load_model(path, model, fmt, dtype, device, fresh)
        verify_provenance(path, state.provenance, expect)
        return state

    def resume_run(self, directory, seed: int, steps: int, save_at: int, timeout: float) -> dict:
        """Straight, interrupted and resumed runs of :attr:`HARNESS`, each in a fresh process."""
        from .torch import resume

        self.require("resume")
        return resume.run_resume(directory, seed, steps, save_at, timeout, device=self.device, harness=self.HARNESS)


class TorchProvider(Provider):
    """torch on ``cpu``, ``cuda`` and ``mps``; :meth:`probe` never raises."""

    def probe(self, device: str) -> Availability:
        """Availability of ``torch:device`` with a human reason when unusable."""
        try:
            import torch
        except Exception as exc:  # noqa: BLE001 - any import failure means unavailable
            return Availability(False, f"torch is not installed (pip install 'dl-conformance[torch]'): {exc!r}")
        try:
            return _probe_device(torch, device)
        except Exception as exc:  # noqa: BLE001 - probe must never raise
            return Availability(False, f"probing torch:{device} raised {exc!r}")

    def _create(self, device: str) -> Backend:
        return TorchBackend(device)


def _probe_device(torch, device: str) -> Availability:
    if device == "cpu":
        return Availability(True)
    if device == "cuda":
        if torch.cuda.is_available():
            return Availability(True)
        if torch.version.cuda is None:
            return Availability(False, f"CPU-only build of torch {torch.__version__} (torch.version.cuda is None); "
                                       "torch.cuda.is_available() is False")
        return Availability(False, f"torch.cuda.is_available() is False (torch {torch.__version__} built for CUDA "
                                   f"{torch.version.cuda}; no usable GPU or driver)")
    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_built():
            return Availability(False, f"torch {torch.__version__} was built without MPS "
                                       "(torch.backends.mps.is_built() is False)")
        if not mps.is_available():
            return Availability(False, "torch.backends.mps.is_available() is False "
                                       "(MPS needs macOS 12.3+ on Apple silicon)")
        return Availability(True)
    return Availability(False, f"torch has no device {device!r}")


PROVIDER = TorchProvider(
    framework="torch",
    devices=("cpu", "cuda", "mps"),
    description="PyTorch (torch.nn.init, torch.nn modules, autograd)",
    extra="torch",
)
