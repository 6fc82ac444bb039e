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

from . import dtypes as D
from .base import FLOAT_DTYPES, INIT_SCHEMES, MODULES, Availability, Backend, Provider, UnsupportedOperation

_NOT_IMPLEMENTED_MARK = "not implemented for"


def _torch():
    """Import torch (lazily)."""
    import torch

    return torch


def _torch_dtype(dtype: str):
    return getattr(_torch(), dtype)


def to_numpy(tensor) -> np.ndarray:
    """A detached CPU copy of ``tensor`` as numpy, bit-exact (bfloat16 -> ml_dtypes.bfloat16)."""
    torch = _torch()
    t = tensor.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(D.NUMPY_DTYPES["bfloat16"]).copy()
    return t.numpy().copy()


def from_numpy(array: np.ndarray, dtype: str, device: str):
    """``array`` (converted to ``dtype`` first) as a torch tensor on ``device``, bit-exact."""
    torch = _torch()
    a = np.ascontiguousarray(np.asarray(array).astype(D.numpy_dtype(dtype), copy=False))
    if dtype == "bfloat16":
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16).to(device)
    return torch.from_numpy(a.copy()).to(device)


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


class TorchBackend(Backend):
    """torch on one device (``cpu``, ``cuda`` or ``mps``)."""

    framework = "torch"
    capabilities = frozenset({"seed", "sample", "init", "gain", "modules", "activations", "autograd"})
    contracts = {}

    def __init__(self, device: str) -> None:
        self.device = device
        self.dtypes = frozenset(d for d in FLOAT_DTYPES if not (device == "mps" and d == "float64"))

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
        return out

    def seed(self, seed: int) -> None:
        """``torch.manual_seed(seed)``: seeds the CPU and every accelerator generator."""
        _torch().manual_seed(seed)

    def _empty(self, shape: Sequence[int], dtype: str):
        self.require_dtype(dtype)
        return _torch().empty(tuple(shape), dtype=_torch_dtype(dtype), device=self.device)

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``uniform(a=0, b=1)`` via ``uniform_``, ``normal(mean=0, std=1)`` via ``normal_``, ``rand``, ``randn``."""
        torch = _torch()
        if dist == "uniform":
            a, b = params.pop("a", 0.0), params.pop("b", 1.0)
            return to_numpy(self._empty(shape, dtype).uniform_(a, b, **params))
        if dist == "normal":
            mean, std = params.pop("mean", 0.0), params.pop("std", 1.0)
            return to_numpy(self._empty(shape, dtype).normal_(mean, std, **params))
        if dist in ("rand", "randn"):
            self.require_dtype(dtype)
            fn = torch.rand if dist == "rand" else torch.randn
            return to_numpy(fn(tuple(shape), dtype=_torch_dtype(dtype), device=self.device, **params))
        raise UnsupportedOperation(f"{self.spec} has no sampler {dist!r}")

    def init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``torch.nn.init.<scheme>_`` on a new empty tensor; params pass through verbatim."""
        if scheme not in INIT_SCHEMES:
            raise UnsupportedOperation(f"{self.spec} has no initializer {scheme!r}")
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

    def activation(self, name: str, x: np.ndarray, dtype: str, **params) -> tuple[np.ndarray, np.ndarray]:
        """Value ``f(x)`` and ``autograd.grad(f(x), x, ones)`` computed in ``dtype`` on the device."""
        torch = _torch()
        fn = _activation_fn(name)
        if fn is None:
            raise UnsupportedOperation(f"{self.spec} has no activation {name!r}")
        self.require_dtype(dtype)
        xt = from_numpy(x, dtype, self.device).requires_grad_(True)
        with torch.enable_grad():
            y = fn(xt, **params)
            (grad,) = torch.autograd.grad(y, xt, torch.ones_like(y))
        return to_numpy(y), to_numpy(grad)


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
