"""The adapter interface every backend implements, and the errors it raises.

Contract
--------
An adapter is one object per (framework, device), e.g. ``torch:cpu``. It turns
framework calls into numpy arrays and knows nothing about statistics. Checks ask
it for numbers through the methods below and compare them with expectations.

* Shapes use the **canonical layout** of ``torch.nn.init``: weights are
  ``(out, in, *kernel)``; an adapter for a framework with another layout
  translates both the requested shape and the returned array.
* Returned arrays are ``numpy.ndarray`` of the requested dtype;
  ``bfloat16`` travels as ``ml_dtypes.bfloat16``.
* A method the framework cannot honour raises :class:`UnsupportedOperation`
  with a human reason; the check is then *skipped with that reason*, never
  passed.
* Randomness comes from the framework's own global generator, seeded through
  :meth:`Backend.seed`; a check seeds before it draws.

Providers
---------
A :class:`Provider` describes one framework: which device names it knows,
whether each is usable here (:meth:`Provider.probe`, which must not raise
even when the framework is not installed) and how to build the adapter.
Providers are discovered through the entry-point group
``conformance.backends`` (see :mod:`backends.registry`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: Every floating dtype name the suite knows.
FLOAT_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

#: Names of ``init`` schemes (``torch.nn.init`` names without the trailing underscore).
INIT_SCHEMES: tuple[str, ...] = (
    "uniform", "normal", "trunc_normal", "constant", "zeros", "ones", "eye", "dirac",
    "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
    "orthogonal", "sparse",
)

#: Names of modules understood by ``module_params`` (torch names; canonical layout).
MODULES: tuple[str, ...] = (
    "Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "Embedding", "LayerNorm", "RMSNorm", "BatchNorm1d", "BatchNorm2d",
)


class ConformanceError(Exception):
    """Base class of the suite's errors that carry a message meant for the user."""


class UnknownBackendError(ConformanceError):
    """A backend spec names no registered adapter."""


class BackendUnavailable(ConformanceError):
    """The adapter exists but cannot run here (framework missing, no device)."""


class UnsupportedOperation(ConformanceError, NotImplementedError):
    """The backend cannot perform an operation; the check is skipped with this reason."""


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run on this machine, and if not, why (a human sentence)."""

    available: bool
    reason: str = ""

    def __bool__(self) -> bool:  # pragma: no cover - convenience
        return self.available


@dataclass(frozen=True)
class Contract:
    """A documented behaviour of a backend, quoted from its docs (``source``)."""

    name: str
    statement: str
    source: str = ""


class Backend(abc.ABC):
    """One framework on one device. Subclasses fill in the framework calls."""

    framework: str = ""
    device: str = ""
    dtypes: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()
    contracts: Mapping[str, Contract] = {}

    @property
    def spec(self) -> str:
        """``"framework:device"``, the string users pass to ``--backend``."""
        return f"{self.framework}:{self.device}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"

    # -- identity ---------------------------------------------------------------------
    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the framework and anything relevant (numpy, CUDA, device name)."""

    # -- helpers for subclasses --------------------------------------------------------
    def require(self, capability: str) -> None:
        """Raise :class:`UnsupportedOperation` unless ``capability`` is declared."""
        if capability not in self.capabilities:
            raise UnsupportedOperation(f"{self.spec} does not declare capability {capability!r}")

    def require_dtype(self, dtype: str) -> None:
        """Raise :class:`UnsupportedOperation` if ``dtype`` is not supported here."""
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(FLOAT_DTYPES)}")
        if dtype not in self.dtypes:
            raise UnsupportedOperation(f"{self.spec} does not support {dtype}")

    # -- randomness ---------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """Seed the framework's global random state (every device it drives)."""
        raise UnsupportedOperation(f"{self.spec} cannot be seeded")

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """Draw from the framework's native sampler: ``uniform(a, b)``, ``normal(mean, std)``."""
        raise UnsupportedOperation(f"{self.spec} has no sampler {dist!r}")

    # -- initialization -----------------------------------------------------------------
    def init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """Fill a new tensor of ``shape`` with the framework's initializer ``scheme``.

        ``params`` use ``torch.nn.init`` keyword names (``a``, ``b``, ``mean``, ``std``,
        ``val``, ``gain``, ``mode``, ``nonlinearity``, ``sparsity``, ``groups``).
        """
        raise UnsupportedOperation(f"{self.spec} has no initializer {scheme!r}")

    def calculate_gain(self, nonlinearity: str, param: float | None = None) -> float:
        """The framework's recommended gain for ``nonlinearity``."""
        raise UnsupportedOperation(f"{self.spec} has no calculate_gain")

    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """Build ``module`` with its default init; return parameters and buffers by name."""
        raise UnsupportedOperation(f"{self.spec} cannot build module {module!r}")

    # -- activations --------------------------------------------------------------------
    def activation(self, name: str, x: np.ndarray, dtype: str, **params) -> tuple[np.ndarray, np.ndarray]:
        """Value and derivative of activation ``name`` at ``x``, computed in ``dtype``.

        The derivative is the framework's own backward (autograd with an upstream
        gradient of ones), elementwise. ``x`` arrives as a numpy array of ``dtype``.
        """
        raise UnsupportedOperation(f"{self.spec} has no activation {name!r}")


@dataclass
class Provider(abc.ABC):
    """Describes one framework's adapters; registered under an entry point.

    ``probe`` must never raise: a missing framework is an :class:`Availability`
    with the import error as the reason.
    """

    framework: str
    devices: tuple[str, ...]
    description: str = ""
    extra: str = ""  # the pip extra that installs the framework
    _cache: dict = field(default_factory=dict, repr=False)

    @abc.abstractmethod
    def probe(self, device: str) -> Availability:
        """Is ``framework:device`` usable here? Never raises."""

    @abc.abstractmethod
    def _create(self, device: str) -> Backend:
        """Build the adapter; only called after a successful probe."""

    def create(self, device: str) -> Backend:
        """Return the (cached) adapter, or raise :class:`BackendUnavailable` with the reason."""
        if device not in self.devices:
            raise UnknownBackendError(
                f"{self.framework} has no device {device!r}; known: {', '.join(self.devices)}"
            )
        if device not in self._cache:
            availability = self.probe(device)
            if not availability.available:
                raise BackendUnavailable(f"{self.framework}:{device} is unavailable: {availability.reason}")
            self._cache[device] = self._create(device)
        return self._cache[device]
