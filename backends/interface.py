"""The adapter interface in one page: what a backend author implements, capability by capability.

Minimum to implement
--------------------
Subclass :class:`~conformance.backends.base.Backend` (re-exported here) and give it an identity:

* ``framework: str`` (``"myfw"``), ``device: str`` (``"cpu"``), ``dtypes: frozenset[str]`` (a subset of
  :data:`FLOAT_DTYPES`), and ``versions() -> dict[str, str]`` (framework, numpy, device name, ...).

That is a valid adapter: every check is skipped with ``"<spec> does not declare capability ..."``. Publish it
through a :class:`Provider` (``probe(device)`` never raises; ``_create(device)`` builds the adapter) under the
entry-point group ``conformance.backends``, or try it with ``conformance run --adapters mymodule``.

Capabilities
------------
A capability is **derived**, never declared: it is present when the adapter overrides every method it lists
(``type(self).sample is not Backend.sample``), minus what :meth:`Backend.lacks` says this device or build cannot
do (torch lists ``distributed`` on ``mps``). Checks ask for capabilities with ``@pytest.mark.requires(...)``.
(An older adapter that still sets a class attribute ``capabilities = frozenset(...)`` overrides the derivation.)

============  =================================================================  ==========================
capability    implement                                                          protocol
============  =================================================================  ==========================
seed          ``seed(seed)``                                                     :class:`Seeding`
sample        ``sample(dist, shape, dtype, **params)``                           :class:`Sampling`
init          ``init(scheme, shape, dtype, **params)``                           :class:`Initializers`
gain          ``calculate_gain(nonlinearity, param)``                            :class:`Gains`
named_init    ``named_schemes()``, ``named_init(name, shape, dtype, **params)``  :class:`NamedInitializers`
modules       ``module_params(module, dtype, **config)``                         :class:`Modules`
models        ``build_model(factory, device_init, init, dtype, **kwargs)``       :class:`Models`
activations   ``activation(name, x, dtype, **params)`` (+ ``activation2``)       :class:`Activations`
rng_state     ``rng_state(generator)``, ``set_rng_state(state, generator)``      :class:`RNGState`
              (+ ``fork_rng()``)
generators    ``generator(seed)``                                                :class:`Generators`
dropout       ``dropout_mask(shape, p, dtype)``                                  :class:`Dropout`
initializer_  ``initializer_instance_draws(name, shape, dtype, seed, calls)``,   :class:`InitializerInstances`
instances     ``shared_initializer_layers(module, dtype, seed, count, **config)``
              (+ ``named_init`` and ``modules``; contract ``initializer_reuse``)
device_draws  ``device_draws(shape)``                                            :class:`DeviceDraws`
processes     nothing more: present with ``seed`` + ``sample`` + ``modules``     :class:`Processes`
distributed   ``rank_params(world_size, seed, timeout)``                         :class:`Distributed`
checkpoint    ``checkpoint_formats()``, ``checkpoint_models()``,                 :class:`Checkpoints`
              ``save_checkpoint(...)``, ``load_checkpoint(...)``
resume        ``resume_run(directory, seed, steps, save_at, timeout)``           :class:`Resume`
============  =================================================================  ==========================

Methods in parentheses with ``+`` are optional within their capability: without them the checks that need them are
skipped (the base class raises :class:`UnsupportedOperation`).

Rules for every method
----------------------
* Shapes use the **canonical layout** of ``torch.nn.init``: weights are ``(out, in, *kernel)``; an adapter for
  another layout translates the requested shape and the returned array (:mod:`conformance.backends.layouts`).
* Arrays come back as ``numpy.ndarray`` of the requested dtype; ``bfloat16`` as ``ml_dtypes.bfloat16``
  (:data:`conformance.backends.dtypes.NUMPY_DTYPES`). This is enforced on the adapters a run builds
  (:func:`~conformance.backends.base.guard_outputs`): ``init``, ``sample``, ``named_init`` (the requested shape and
  dtype), ``dropout_mask`` (bool), ``device_draws`` and ``module_params`` (dicts of arrays) that return ``None``, a
  scalar, a list, a framework tensor or an array of the wrong shape or dtype fail the check at once with
  :class:`AdapterOutputError`, whose message names the call and what came back.
* What the framework cannot honour raises :class:`UnsupportedOperation` with a human reason: the check is then
  skipped with that reason, never passed. Bad arguments raise what the framework raises (``TypeError`` for an
  unknown parameter name, ``ValueError`` for a bad value).
* Randomness comes from the framework's own global generator, seeded through ``seed``; a check seeds before it
  draws.
* Gains and fans an adapter needs (a framework without ``calculate_gain``) come from
  :mod:`conformance.backends.gains`, the one adapter-side table.

Parameter names (``init`` and ``sample``)
-----------------------------------------
Framework-neutral; each adapter translates them once, at its edge (torch to ``torch.nn.init`` keywords, JAX and
MLX through a table onto their initializers; the numpy reference takes them as they are):

==================  =====================================================================================
``low``, ``high``   bounds: of ``uniform`` (``U[low, high)``) and, **absolute**, of ``trunc_normal``
``mean``, ``std``   location and scale of ``normal``, ``trunc_normal``; ``std`` of ``sparse``'s non-zeros
``value``           the value of ``constant``
``gain``            multiplier of ``xavier_*`` and ``orthogonal``
``fan_mode``        ``"fan_in"`` or ``"fan_out"``: the fan ``kaiming_*`` divides by
``nonlinearity``    the ``calculate_gain`` nonlinearity ``kaiming_*`` takes its gain from
``negative_slope``  leaky ReLU slope of that gain (torch's ``a`` of ``kaiming_*``)
``sparsity``        fraction of each column ``sparse`` sets to zero
``groups``          number of groups of ``dirac``
==================  =====================================================================================

:data:`INIT_PARAMETERS` and :data:`SAMPLE_PARAMETERS` list each scheme's parameters with their defaults.
``named_init`` is the exception: it calls the framework's own initializer with the framework's own keyword names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .base import (
    CAPABILITY_METHODS,
    FLOAT_DTYPES,
    INIT_SCHEMES,
    MODULES,
    AdapterOutputError,
    Availability,
    Backend,
    BackendUnavailable,
    ConformanceError,
    Contract,
    ModelSnapshot,
    Provider,
    SubprocessFailed,
    UnknownBackendError,
    UnsupportedOperation,
    capabilities_of,
    implemented_capabilities,
    missing_methods,
)

if TYPE_CHECKING:  # pragma: no cover
    from conformance.harness.checkpoints import ModelState

__all__ = [
    "CAPABILITIES", "FLOAT_DTYPES", "INIT_PARAMETERS", "INIT_SCHEMES", "MODULES", "REQUIRED", "SAMPLE_PARAMETERS",
    "Activations", "AdapterOutputError", "Availability", "Backend", "BackendUnavailable", "Capability", "Checkpoints",
    "ConformanceError",
    "Contract", "DeviceDraws", "Distributed", "Dropout", "Gains", "Generators", "Identity", "InitializerInstances",
    "Initializers",
    "ModelSnapshot", "Models", "Modules", "NamedInitializers", "Processes", "Provider", "RNGState", "Resume",
    "Sampling", "Seeding", "SubprocessFailed", "UnknownBackendError", "UnsupportedOperation", "capabilities_of",
    "implemented_capabilities", "init_params", "missing_methods", "sample_params",
]


# -- identity (the minimum) -----------------------------------------------------------------------------------------
@runtime_checkable
class Identity(Protocol):
    """What every adapter has. ``contracts`` (optional) maps names such as ``"unseeded"`` to a :class:`Contract`
    quoting the framework's documented behaviour, which checks report instead of failing blindly."""

    framework: str
    device: str
    dtypes: frozenset[str]

    def versions(self) -> dict[str, str]:
        """Versions of the framework and of what matters (numpy, CUDA, the device name)."""


# -- capabilities ---------------------------------------------------------------------------------------------------
class Seeding(Protocol):
    """Capability ``seed``."""

    def seed(self, seed: int) -> None:
        """Seed the framework's global random state, on every device it drives; draws after ``seed(s)`` are a
        function of ``s`` only (bit for bit, in this process and in a fresh one)."""


class Sampling(Protocol):
    """Capability ``sample``."""

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """Draw ``shape`` values of ``dtype`` from the framework's native sampler ``dist`` and global stream.

        ``dist`` and its parameters (:data:`SAMPLE_PARAMETERS`): ``uniform(low=0, high=1)`` (``U[low, high)``),
        ``normal(mean=0, std=1)``, ``trunc_normal(mean=0, std=1, low=-2, high=2)`` (absolute bounds), ``rand``
        and ``randn`` (no parameters). With capability ``generators``, ``generator=`` (from
        :meth:`Generators.generator`) draws from that generator instead of the global stream.
        """


class Initializers(Protocol):
    """Capability ``init``."""

    def init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """A new tensor of canonical ``shape`` filled by the framework's initializer for ``scheme``.

        ``scheme`` is one of :data:`INIT_SCHEMES` (``torch.nn.init`` names without the trailing underscore);
        ``params`` use the neutral names of :data:`INIT_PARAMETERS`. Map a scheme only onto an initializer with the
        same distribution; otherwise raise :class:`UnsupportedOperation` saying why. A zero-element shape returns
        an empty array.
        """


class Gains(Protocol):
    """Capability ``gain``."""

    def calculate_gain(self, nonlinearity: str, param: float | None = None) -> float:
        """The framework's own recommended gain for ``nonlinearity`` (``param``: leaky ReLU's negative slope).
        Only a framework that has such a function implements this; adapters needing gains internally use
        :func:`conformance.backends.gains.calculate_gain`."""


class NamedInitializers(Protocol):
    """Capability ``named_init``."""

    def named_schemes(self) -> tuple[str, ...]:
        """Names of the framework's own initializers, in its spelling (``"he_normal"``, ``"variance_scaling"``)."""

    def named_init(self, name: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """Call the framework's initializer ``name`` with **its own** keyword ``params`` and defaults.

        Nothing is translated except the layout: ``shape`` is canonical; build the framework's layout for a dense
        (2-D) or convolution (> 2-D) weight, call the initializer there and transpose the result back.
        """


class Modules(Protocol):
    """Capability ``modules``."""

    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """Build ``module`` (one of :data:`MODULES`, torch's names and config keywords) with the framework's default
        init, from the global stream; return its parameters and buffers by torch's names, in canonical layout."""


class Models(Protocol):
    """Capability ``models``."""

    def build_model(self, factory, device_init: str = "eager", init: str = "auto", dtype: str = "float32",
                    **kwargs) -> ModelSnapshot:
        """Build ``factory(**kwargs)`` eagerly or through the meta device (``device_init="meta"``: materialize, fill
        with :attr:`ModelSnapshot.poison`, run the init function) and return it as a :class:`ModelSnapshot`.
        ``init``: ``"init_weights"``, ``"reset_parameters"``, ``"none"`` or ``"auto"``. Factory errors propagate."""


class Activations(Protocol):
    """Capability ``activations`` (``activation2`` optional)."""

    def activation(self, name: str, x: np.ndarray, dtype: str, **params) -> tuple[np.ndarray, np.ndarray]:
        """Value and elementwise derivative of activation ``name`` at ``x``, computed in ``dtype``.

        The derivative is the framework's own (its backward with an upstream gradient of ones; the numpy reference
        gives the analytic one). ``layout``: ``"contiguous"`` (default), ``"transposed"`` or ``"strided"``; an
        adapter whose arrays have no strides raises :class:`UnsupportedOperation` for the latter two.
        """

    def activation2(self, name: str, x: np.ndarray, y: np.ndarray, dtype: str,
                    **params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(f(x, y), df/dx, df/dy)`` of a two-input activation (``swiglu(x, y) = silu(x) * y``)."""


class RNGState(Protocol):
    """Capability ``rng_state`` (``fork_rng`` optional)."""

    def rng_state(self, generator=None) -> bytes:
        """Opaque snapshot of the global random state (or of ``generator``); it changes on every draw."""

    def set_rng_state(self, state: bytes, generator=None) -> None:
        """Restore a snapshot: the next draws equal, bit for bit, those that followed it."""

    def fork_rng(self) -> AbstractContextManager:
        """A context manager undoing random-state changes made inside it."""


class Generators(Protocol):
    """Capability ``generators``."""

    def generator(self, seed: int | None = None) -> Any:
        """A new explicit generator on this device, independent of the global stream, seeded with ``seed`` (else the
        framework's default); accepted as ``generator=`` by ``sample``, ``rng_state`` and ``set_rng_state``."""


class Dropout(Protocol):
    """Capability ``dropout``."""

    def dropout_mask(self, shape: Sequence[int], p: float, dtype: str) -> np.ndarray:
        """Boolean mask of the elements training-mode dropout keeps, drawn from the global stream."""


class InitializerInstances(Protocol):
    """Capability ``initializer_instances``: frameworks whose initializers are reusable objects (Keras). Needs
    ``named_init`` and ``modules``, and the contract ``initializer_reuse`` (``"int:same,none:same,generator:differ"``:
    what a second call of one instance returns for each seed kind, quoted from the framework's docs)."""

    def initializer_instance_draws(self, name: str, shape: Sequence[int], dtype: str, seed: str, calls: int = 2,
                                   **params) -> list[np.ndarray]:
        """The initializer ``name`` (framework spelling and keywords, as ``named_init``) built ONCE with the seed kind
        ``seed`` (``"int"``: a fixed integer, ``"none"``: unseeded, ``"generator"``: the framework's stateful seed
        object), then called ``calls`` times on the canonical ``shape``."""

    def shared_initializer_layers(self, module: str, dtype: str, seed: str, count: int = 2,
                                  **config) -> list[dict[str, np.ndarray]]:
        """``count`` layers ``module(**config)`` (as ``module_params``) whose weight initializer is ONE instance of
        the layer's default initializer class, seeded per ``seed``: what a user who shares one instance gets."""


class DeviceDraws(Protocol):
    """Capability ``device_draws``."""

    def device_draws(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        """One float32 standard-normal draw from the global generator of every device ``seed`` must reach, by
        device name (``"cpu"``, ``"cuda:0"``)."""


class Processes(Protocol):
    """Capability ``processes``: no method of its own. Present with ``seed``, ``sample`` and ``modules``: a fresh
    interpreter resolves the adapter by spec and draws a fixed recipe (``sample("uniform")``, ``sample("normal")``,
    ``module_params("Linear")``) to compare streams across processes. Declare it in :meth:`Backend.lacks` when the
    adapter cannot be rebuilt in a child process."""


class Distributed(Protocol):
    """Capability ``distributed``."""

    def rank_params(self, world_size: int, seed: int, timeout: float) -> dict:
        """Run ``world_size`` ranks of the framework's distributed runtime on this host (scenarios ``same_seed``,
        ``rank_offset``, ``meta_init``, ``skip_seed``); see :meth:`Backend.rank_params` for the result's layout.
        Raises :class:`SubprocessFailed` on a crash or after ``timeout`` seconds."""


class Checkpoints(Protocol):
    """Capability ``checkpoint``."""

    def checkpoint_formats(self) -> tuple[str, ...]:
        """File formats ``save_checkpoint`` writes here (``("torch", "safetensors")``)."""

    def checkpoint_models(self) -> tuple[str, ...]:
        """Names of the built-in reference models the checkpoint checks can build."""

    def save_checkpoint(self, path, model: str, fmt: str, dtype: str, seed: int,
                        device: str | None = None) -> ModelState:
        """Seed, build reference ``model``, save it atomically with provenance; return the saved state."""

    def load_checkpoint(self, path, model: str, fmt: str, dtype: str, device: str | None = None,
                        expect: Mapping | None = None) -> ModelState:
        """Load ``path`` into a fresh ``model``; refuse (a ``CheckpointError`` naming file and key) rather than
        guess; compare the stored provenance with ``expect``."""


class Resume(Protocol):
    """Capability ``resume``."""

    def resume_run(self, directory, seed: int, steps: int, save_at: int, timeout: float) -> dict:
        """Train the reference loop straight and interrupted-then-resumed in a fresh process; return both traces
        (see :meth:`Backend.resume_run`)."""


@dataclass(frozen=True)
class Capability:
    """One capability: the methods an adapter overrides to have it, and other capabilities it needs."""

    name: str
    protocol: type
    methods: tuple[str, ...]
    needs: tuple[str, ...] = ()


_PROTOCOLS = {"seed": Seeding, "sample": Sampling, "init": Initializers, "gain": Gains,
              "named_init": NamedInitializers, "modules": Modules, "models": Models, "activations": Activations,
              "rng_state": RNGState, "generators": Generators, "dropout": Dropout,
              "initializer_instances": InitializerInstances, "device_draws": DeviceDraws,
              "processes": Processes, "distributed": Distributed, "checkpoint": Checkpoints, "resume": Resume}

#: Every capability, in the order of the table above (methods and needs from
#: :data:`conformance.backends.base.CAPABILITY_METHODS`, where :attr:`Backend.capabilities` derives them).
CAPABILITIES: dict[str, Capability] = {
    name: Capability(name, _PROTOCOLS[name], methods, needs) for name, (methods, needs) in CAPABILITY_METHODS.items()
}


# -- parameter names ------------------------------------------------------------------------------------------------
class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Marks a parameter without a default.
REQUIRED: Any = _Required()

_KAIMING = {"negative_slope": 0.0, "fan_mode": "fan_in", "nonlinearity": "leaky_relu"}

#: ``init`` scheme -> its parameters (neutral names) and their defaults (those of ``torch.nn.init``).
INIT_PARAMETERS: dict[str, dict[str, Any]] = {
    "uniform": {"low": 0.0, "high": 1.0},
    "normal": {"mean": 0.0, "std": 1.0},
    "trunc_normal": {"mean": 0.0, "std": 1.0, "low": -2.0, "high": 2.0},
    "constant": {"value": REQUIRED},
    "zeros": {},
    "ones": {},
    "eye": {},
    "dirac": {"groups": 1},
    "xavier_uniform": {"gain": 1.0},
    "xavier_normal": {"gain": 1.0},
    "kaiming_uniform": dict(_KAIMING),
    "kaiming_normal": dict(_KAIMING),
    "orthogonal": {"gain": 1.0},
    "sparse": {"sparsity": REQUIRED, "std": 0.01},
}

#: ``sample`` distribution -> its parameters and defaults (``generator=`` is accepted by every one).
SAMPLE_PARAMETERS: dict[str, dict[str, Any]] = {
    "uniform": {"low": 0.0, "high": 1.0},
    "normal": {"mean": 0.0, "std": 1.0},
    "trunc_normal": {"mean": 0.0, "std": 1.0, "low": -2.0, "high": 2.0},
    "rand": {},
    "randn": {},
}


def _complete(table: Mapping[str, Mapping[str, Any]], what: str, name: str, params: Mapping[str, Any],
              extra: tuple[str, ...] = ()) -> dict[str, Any]:
    known = table[name]
    unknown = sorted(set(params) - set(known) - set(extra))
    if unknown:
        raise TypeError(f"{what} {name!r} takes {', '.join(known) or 'no parameters'}; got unexpected {unknown}")
    out = {k: params.get(k, v) for k, v in known.items()}
    missing = [k for k, v in out.items() if v is REQUIRED]
    if missing:
        raise TypeError(f"{what} {name!r} needs {', '.join(missing)}")
    out.update({k: params[k] for k in extra if k in params})
    return out


def init_params(scheme: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` of ``init(scheme, ...)`` with every default filled in; ``TypeError`` for an unknown or a missing
    name. ``scheme`` must be one of :data:`INIT_PARAMETERS` (``KeyError`` otherwise)."""
    return _complete(INIT_PARAMETERS, "init scheme", scheme, params)


def sample_params(dist: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` of ``sample(dist, ...)`` with defaults filled in (``generator`` kept when given)."""
    return _complete(SAMPLE_PARAMETERS, "sampler", dist, params, extra=("generator",))
