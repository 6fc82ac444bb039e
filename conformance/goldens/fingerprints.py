"""Fingerprints of random streams and of reference-model init (the NumPy approach: fixed seeds, sha256, first values).

Contract
--------
* A fingerprint of an array is plain JSON data: dtype, shape, sha256 of its little-endian C-order bytes, the
  first :data:`HEAD` values as exact bit patterns (hex) and as numbers, and the sha256 prefix of each of at most
  :data:`BLOCKS` consecutive blocks, so a changed stream is located without storing the stream.
* Stream cases (:data:`STREAM_CASES`) draw 1,024-element tensors from ``sample``, ``init`` and ``module_params``
  right after ``seed(GOLDEN_SEED)``: small, so CUDA streams do not depend on the multiprocessor count.
* Model cases (:data:`MODEL_CASES`) build the built-in reference models (``conformance.backends.torch.models``) through
  ``build_model`` after ``seed(GOLDEN_SEED)`` and fingerprint every parameter.
* :func:`compare` explains a difference: the first differing index and both values when it lies in the head,
  otherwise the first differing block.

Adapters are only called through the :class:`conformance.backends.base.Backend` interface; no statistics here.
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from conformance.backends import dtypes as D
from conformance.backends.base import FLOAT_DTYPES, UnsupportedOperation

#: The fixed seed of every golden stream and model (never derived from the master seed).
GOLDEN_SEED = 20240611
#: Values stored verbatim at the head of each fingerprint.
HEAD = 8
#: Blocks hashed per array (each block's sha256, first 16 hex digits).
BLOCKS = 16


def _bits(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x)
    if x.dtype.kind == "f" or x.dtype == D.numpy_dtype("bfloat16"):
        return x.view({2: "<u2", 4: "<u4", 8: "<u8"}[x.dtype.itemsize])
    return x


def _le_bytes(x: np.ndarray) -> bytes:
    x = np.ascontiguousarray(x)
    if x.dtype.byteorder == ">":
        x = x.byteswap().view(x.dtype.newbyteorder("<"))
    return x.tobytes()


def _dtype_name(x: np.ndarray) -> str:
    try:
        return D.dtype_name(x.dtype)
    except (KeyError, ValueError, TypeError):
        return str(x.dtype)


def _block_size(n: int) -> int:
    return max(1, math.ceil(n / BLOCKS))


def fingerprint(x: np.ndarray) -> dict:
    """The JSON fingerprint of one array (see the module contract)."""
    x = np.ascontiguousarray(x)
    flat = x.reshape(-1)
    bits = _bits(flat)
    width = flat.dtype.itemsize * 2
    size = _block_size(flat.size)
    head = flat[:HEAD]
    return {
        "dtype": _dtype_name(x),
        "shape": list(x.shape),
        "sha256": hashlib.sha256(_le_bytes(flat)).hexdigest(),
        "head_bits": [f"0x{int(b):0{width}x}" for b in bits[:HEAD]] if bits.dtype.kind == "u" else [],
        "head": [float(v) if flat.dtype.kind != "c" else repr(complex(v)) for v in head],
        "block": size,
        "blocks": [hashlib.sha256(_le_bytes(flat[i:i + size])).hexdigest()[:16] for i in range(0, flat.size, size)],
    }


def compare(golden: dict, got: dict, array: np.ndarray | None = None) -> str | None:
    """``None`` when the fingerprints match; else one line locating the first difference."""
    if golden.get("sha256") == got["sha256"] and golden.get("dtype") == got["dtype"] \
            and list(golden.get("shape", [])) == got["shape"]:
        return None
    if golden.get("dtype") != got["dtype"] or list(golden.get("shape", [])) != got["shape"]:
        return (f"dtype/shape changed: golden {golden.get('dtype')} {tuple(golden.get('shape', []))}, "
                f"got {got['dtype']} {tuple(got['shape'])}")
    gb, xb = golden.get("head_bits", []), got["head_bits"]
    gv, xv = golden.get("head", []), got["head"]
    for i in range(min(len(gb), len(xb))):
        if gb[i] != xb[i]:
            return (f"first difference at index {i}: golden {gb[i]} ({gv[i]!r}), got {xb[i]} ({xv[i]!r}); "
                    f"golden head {gv}, got {xv}")
    block = got["block"]
    for j, (a, b) in enumerate(zip(golden.get("blocks", []), got["blocks"], strict=False)):
        if a != b:
            lo, hi = j * block, min((j + 1) * block, math.prod(got["shape"]))
            where = f"first {HEAD} values equal; first difference in elements [{lo}, {hi})"
            if array is not None:
                seg = np.asarray(array).reshape(-1)[lo:lo + 4]
                where += f" (got {[float(v) for v in seg]} there)"
            return where + f"; sha256 golden {golden['sha256'][:16]}..., got {got['sha256'][:16]}..."
    return f"sha256 differs: golden {golden['sha256'][:16]}..., got {got['sha256'][:16]}..."


# -- stream cases ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamCase:
    """One draw from an adapter method right after ``seed(GOLDEN_SEED)``."""

    id: str
    method: str  # "sample" | "init" | "module_params"
    name: str
    shape: tuple[int, ...] = ()
    params: dict = field(default_factory=dict, hash=False)

    def draw(self, backend, dtype: str) -> dict[str, np.ndarray]:
        """``{suffix: array}``: ``{"": x}`` for sample/init, ``{param name: x}`` for a module."""
        backend.seed(GOLDEN_SEED)
        if self.method == "module_params":
            return {k: np.asarray(v) for k, v in backend.module_params(self.name, dtype, **self.params).items()}
        fn = backend.sample if self.method == "sample" else backend.init
        return {"": np.asarray(fn(self.name, self.shape, dtype, **self.params))}


STREAM_CASES: tuple[StreamCase, ...] = (
    StreamCase("sample.uniform", "sample", "uniform", (1024,)),
    StreamCase("sample.normal", "sample", "normal", (1024,)),
    StreamCase("init.trunc_normal-std0.02", "init", "trunc_normal", (1024,), {"std": 0.02}),
    StreamCase("init.xavier_uniform-32x32", "init", "xavier_uniform", (32, 32)),
    StreamCase("init.kaiming_normal-32x32-relu", "init", "kaiming_normal", (32, 32), {"nonlinearity": "relu"}),
    StreamCase("module.Linear-32x31", "module_params", "Linear", (), {"in_features": 32, "out_features": 31}),
)
_CAPABILITY = {"sample": "sample", "init": "init", "module_params": "modules"}


def entry_name(case_id: str, dtype: str, suffix: str = "") -> str:
    return f"{case_id}/{dtype}" + (f"/{suffix}" if suffix else "")


def case_entries(backend, case: StreamCase, dtype: str) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Fingerprints (by entry name) and arrays of one case; raises UnsupportedOperation when it cannot run."""
    if "seed" not in backend.capabilities:
        raise UnsupportedOperation(f"{backend.spec} does not declare capability 'seed'")
    if _CAPABILITY[case.method] not in backend.capabilities:
        raise UnsupportedOperation(f"{backend.spec} does not declare capability {_CAPABILITY[case.method]!r}")
    if dtype not in backend.dtypes:
        raise UnsupportedOperation(f"{backend.spec} does not support {dtype}")
    arrays = {entry_name(case.id, dtype, k): v for k, v in case.draw(backend, dtype).items()}
    return {k: fingerprint(v) for k, v in arrays.items()}, arrays


def stream_entries(backend, log: Callable[[str], None] = lambda s: None) -> dict[str, dict]:
    """Every stream fingerprint ``backend`` can produce (cases it cannot run are left out, with a log line)."""
    out: dict[str, dict] = {}
    for case in STREAM_CASES:
        for dtype in FLOAT_DTYPES:
            try:
                entries, _ = case_entries(backend, case, dtype)
            except UnsupportedOperation as exc:
                log(f"  skipped {entry_name(case.id, dtype)}: {exc}")
                continue
            out.update(entries)
    return out


# -- model init cases -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelCase:
    """A built-in reference model: ``factory(**kwargs)`` built eagerly in float32 after ``seed(GOLDEN_SEED)``."""

    id: str
    factory: str  # "package.module:callable"
    kwargs: dict = field(default_factory=dict, hash=False)

    def build(self, backend) -> dict[str, np.ndarray]:
        module, _, attr = self.factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        backend.seed(GOLDEN_SEED)
        return backend.build_model(factory, dtype="float32", **self.kwargs).params


_SMALL_LLAMA = {"vocab_size": 256, "dim": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 32}
#: Reference models per framework (the factories live in that framework's adapter package).
MODEL_CASES: dict[str, tuple[ModelCase, ...]] = {
    "torch": (
        ModelCase("gpt2", "conformance.backends.torch.models:gpt2",
                  {"vocab_size": 256, "block_size": 32, "n_layer": 2, "n_head": 4, "n_embd": 64}),
        ModelCase("llama-torchtitan", "conformance.backends.torch.models:llama",
                  {**_SMALL_LLAMA, "naming": "torchtitan"}),
        ModelCase("llama-olmo", "conformance.backends.torch.models:llama", {**_SMALL_LLAMA, "naming": "olmo"}),
        ModelCase("llama-litgpt", "conformance.backends.torch.models:llama", {**_SMALL_LLAMA, "naming": "litgpt"}),
    ),
}
MODEL_IDS: tuple[str, ...] = tuple(dict.fromkeys(c.id for cases in MODEL_CASES.values() for c in cases))


def model_case(backend, model_id: str) -> ModelCase:
    """The case ``model_id`` for ``backend``'s framework; UnsupportedOperation when it has none."""
    if "models" not in backend.capabilities:
        raise UnsupportedOperation(f"{backend.spec} does not declare capability 'models'")
    for case in MODEL_CASES.get(backend.framework, ()):
        if case.id == model_id:
            return case
    raise UnsupportedOperation(f"no built-in reference model {model_id!r} for framework {backend.framework}")


def model_case_entries(backend, case: ModelCase) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    arrays = {f"{case.id}/{name}": v for name, v in sorted(case.build(backend).items())}
    return {k: fingerprint(v) for k, v in arrays.items()}, arrays


def model_entries(backend, log: Callable[[str], None] = lambda s: None) -> dict[str, dict]:
    """Per-parameter fingerprints of every reference model of ``backend``'s framework."""
    out: dict[str, dict] = {}
    missing = [c for c in ("seed", "models") if c not in backend.capabilities]
    if missing:
        log(f"  skipped: {backend.spec} does not declare capability {', '.join(map(repr, missing))}")
        return out
    for case in MODEL_CASES.get(backend.framework, ()):
        try:
            out.update(model_case_entries(backend, case)[0])
        except UnsupportedOperation as exc:
            log(f"  skipped {case.id}: {exc}")
    return out
