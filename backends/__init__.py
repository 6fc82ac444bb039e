"""Backend adapters: the interface (:mod:`conformance.backends.interface`, on one page; the base class and errors in
:mod:`conformance.backends.base`), discovery (:mod:`conformance.backends.registry`) and the built-in adapters (torch,
numpy reference, JAX, MLX, Candle), each registered through entry points."""

from .base import (
    FLOAT_DTYPES,
    Availability,
    Backend,
    BackendUnavailable,
    ConformanceError,
    Contract,
    Provider,
    UnknownBackendError,
    UnsupportedOperation,
)

__all__ = [
    "FLOAT_DTYPES", "Availability", "Backend", "BackendUnavailable", "ConformanceError",
    "Contract", "Provider", "UnknownBackendError", "UnsupportedOperation",
]
