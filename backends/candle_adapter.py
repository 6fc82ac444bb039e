"""The Candle adapter: ``candle:cpu`` (``candle-nn`` on PyPI, module ``candle``), ``candle:cuda``, ``candle:metal``.

Contract
--------
* ``import candle`` happens lazily, so importing this module never fails when Candle is absent; the probe's
  reason names the extra to install.
* Tensors cross the boundary bit-exactly through ``candle.utils.save_safetensors`` /
  ``load_safetensors`` in a private temporary directory (``Tensor.values()`` goes through Python floats and
  is 100 times slower).
* What the Python API of ``candle-nn`` 0.4.2 offers, and therefore what this adapter implements:

  - ``candle.rand(shape)`` and ``candle.randn(shape)``: float32 only (no ``dtype`` argument), no bounds or
    scale parameters (uniform(a, b) and normal(mean, std) are not native: only the defaults are drawn);
  - ``candle.nn.Linear``, ``candle.nn.Embedding``, ``candle.nn.LayerNorm``: no convolutions, RMSNorm or
    BatchNorm; ``Embedding`` takes no dtype (built in float32 and cast with ``Tensor.to_dtype``) and has no
    ``padding_idx``;
  - ``candle.functional``: gelu, relu, silu, tanh, softmax, pooling, but no autograd (no ``backward`` or
    ``grad``): the activation checks need derivatives, so ``activations`` is not declared;
  - no ``manual_seed``/``set_seed`` (the Rust ``Device::set_seed`` is not bound; CPU draws use
    ``rand::thread_rng``, seeded by the OS): no ``seed`` capability (:meth:`CandleBackend.lacks`);
  - no initializers (``candle_nn::init`` is Rust only): no ``init`` or ``named_init``;
  - no ``calculate_gain``, dropout, RNG state or generators.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Sequence

import numpy as np

from . import dtypes as D
from .base import FLOAT_DTYPES, Availability, Backend, Contract, Provider, UnsupportedOperation

EXTRA = "pip install 'dl-conformance[candle]'"
_CANDLE_DTYPES = {"float16": "f16", "bfloat16": "bf16", "float32": "f32", "float64": "f64"}
_SAFETENSORS_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64"}

LACKS = {
    "seed": "candle's Python API (candle-nn 0.4.2) has no seed function: candle.rand/randn draw from "
            "rand::thread_rng on the CPU; Device::set_seed (Rust) is not bound",
    "init": "candle's Python API has no initializers (candle_nn::init is Rust only)",
    "activations": "candle's Python API has no autograd (Tensor has no backward/grad): derivatives cannot be taken",
    "sample_dtype": "candle.rand/candle.randn (Python) take no dtype and draw float32 only",
    "sample_params": "candle.rand/candle.randn take no bounds, mean or scale: only U[0, 1) and N(0, 1) are native",
}


def _candle():
    import candle

    return candle


class CandleBackend(Backend):
    """Candle on one device (``cpu``, ``cuda`` or ``metal``)."""

    framework = "candle"
    dtypes = frozenset(FLOAT_DTYPES)
    contracts = {
        "unseeded": Contract(
            "unseeded", "fresh per process: CPU draws use rand::thread_rng (OS-seeded); the Python API cannot seed",
            "candle-core src/cpu_backend/mod.rs rand_uniform/rand_normal: rand::thread_rng()", value="fresh"),
        "lacks": Contract("lacks", "; ".join(f"{k}: {v}" for k, v in LACKS.items()),
                          "candle-nn 0.4.2 candle/__init__.pyi, candle/functional/__init__.pyi, candle/nn/*.py"),
        "module_dtype": Contract(
            "module_dtype", "candle.nn.Embedding takes no dtype: built in float32 and cast with Tensor.to_dtype",
            "candle-nn 0.4.2 candle/nn/sparse.py"),
    }

    def __init__(self, device: str) -> None:
        self.device = device
        self._tmp = tempfile.TemporaryDirectory(prefix="conformance-candle-")

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        candle = _candle()
        out = {"candle-nn": version("candle-nn"), "numpy": np.__version__,
               "mkl": str(candle.utils.has_mkl()), "threads": str(candle.utils.get_num_threads())}
        out["device"] = platform.processor() or platform.machine() if self.device == "cpu" else self.device
        return out

    # -- boundary --------------------------------------------------------------------------------------------------
    def to_numpy(self, tensor) -> np.ndarray:
        """Bit-exact host copy through a safetensors file."""
        path = os.path.join(self._tmp.name, "out.safetensors")
        _candle().utils.save_safetensors(path, {"t": tensor.to_device("cpu") if self.device != "cpu" else tensor})
        with open(path, "rb") as fh:
            blob = fh.read()
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + n])["t"]
        dt = D.numpy_dtype(_SAFETENSORS_DTYPES[header["dtype"]])
        start, stop = header["data_offsets"]
        data = np.frombuffer(blob[8 + n + start:8 + n + stop], dtype=dt.newbyteorder("<") if dt.itemsize > 1 else dt)
        return data.astype(dt).reshape(header["shape"]).copy()

    def _dtype(self, dtype: str):
        return getattr(_candle(), _CANDLE_DTYPES[dtype])

    def lacks(self) -> dict[str, str]:
        """``seed``: :meth:`seed` exists only to raise the reason."""
        return {"seed": LACKS["seed"]}

    # -- randomness ------------------------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """Raises :class:`UnsupportedOperation` with the reason (capability ``seed`` is in :meth:`lacks`)."""
        raise UnsupportedOperation(LACKS["seed"])

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """``candle.rand`` (U[0, 1)) and ``candle.randn`` (N(0, 1)) in float32; nothing else is native."""
        self.require_dtype(dtype)
        if "generator" in params:
            raise UnsupportedOperation(f"{self.spec} has no explicit generators")
        native = {"rand": "rand", "randn": "randn", "uniform": "rand", "normal": "randn"}
        if dist not in native:
            raise UnsupportedOperation(f"{self.spec} has no sampler {dist!r}")
        defaults = {"uniform": {"low": 0.0, "high": 1.0}, "normal": {"mean": 0.0, "std": 1.0}}.get(dist, {})
        if any(params.get(k, v) != v for k, v in defaults.items()) or set(params) - set(defaults):
            raise UnsupportedOperation(f"{LACKS['sample_params']} (asked for {dist}{params})")
        if dtype != "float32":
            raise UnsupportedOperation(f"{LACKS['sample_dtype']} (asked for {dtype})")
        fn = getattr(_candle(), native[dist])
        return self.to_numpy(fn(tuple(int(s) for s in shape), device=self.device))

    # -- modules ---------------------------------------------------------------------------------------------------
    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """``candle.nn.Linear`` (weight ``(out, in)``), ``Embedding``, ``LayerNorm``, default-initialized."""
        self.require_dtype(dtype)
        import candle.nn as nn

        c = dict(config)
        if module == "Linear":
            mod = nn.Linear(c.pop("in_features"), c.pop("out_features"), bias=c.pop("bias", True),
                            device=self.device, dtype=self._dtype(dtype))
        elif module == "Embedding":
            if c.pop("padding_idx", None) is not None:
                raise UnsupportedOperation("candle.nn.Embedding has no padding_idx")
            mod = nn.Embedding(c.pop("num_embeddings"), c.pop("embedding_dim"), device=self.device)
        elif module == "LayerNorm":
            if not c.pop("elementwise_affine", True):
                raise UnsupportedOperation("candle.nn.LayerNorm has no elementwise_affine argument")
            mod = nn.LayerNorm(c.pop("normalized_shape"), eps=c.pop("eps", 1e-5), bias=c.pop("bias", True),
                               device=self.device, dtype=self._dtype(dtype))
        else:
            raise UnsupportedOperation(f"candle-nn's Python API has no candle.nn.{module} (it has Linear, Embedding "
                                       "and LayerNorm)")
        if c:
            raise UnsupportedOperation(f"candle.nn.{module} has no equivalent of {sorted(c)}")
        out = {}
        for name in ("weight", "bias"):
            tensor = getattr(mod, name, None)
            if tensor is None:
                continue
            if str(tensor.dtype) != str(self._dtype(dtype)):
                tensor = tensor.to_dtype(self._dtype(dtype))
            out[name] = self.to_numpy(tensor)
        return out


class CandleProvider(Provider):
    """Candle on ``cpu``, ``cuda`` and ``metal``; :meth:`probe` never raises."""

    def probe(self, device: str) -> Availability:
        try:
            import candle
        except Exception as exc:  # noqa: BLE001 - any import failure means unavailable
            return Availability(False, f"candle is not installed ({EXTRA}; the PyPI package is candle-nn, module "
                                       f"candle): {exc!r}")
        if device == "cpu":
            return Availability(True)
        if device not in self.devices:
            return Availability(False, f"candle has no device {device!r}")
        try:
            candle.zeros((1,), device=device)
        except Exception as exc:  # noqa: BLE001 - not compiled for that device
            return Availability(False, f"this candle build cannot use {device}: {exc!r}")
        return Availability(True)

    def _create(self, device: str) -> Backend:
        return CandleBackend(device)


PROVIDER = CandleProvider(
    framework="candle",
    devices=("cpu", "cuda", "metal"),
    description="Candle's Python API (candle-nn: candle.rand/randn, candle.nn Linear/Embedding/LayerNorm)",
    extra="candle",
)
