"""The base class every backend subclasses, and the errors it raises.

Read :mod:`conformance.backends.interface` first: the minimum to implement, each capability's methods and the
parameter names, on one page (it re-exports everything below). This module stays importable as
``conformance.backends.base`` for third-party adapters.

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
``conformance.backends`` (see :mod:`conformance.backends.registry`).
"""

from __future__ import annotations

import abc
import functools
import inspect
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .dtypes import NUMPY_DTYPES

if TYPE_CHECKING:  # pragma: no cover
    from conformance.harness.checkpoints import ModelState

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
    #: Machine-readable form checks act on, e.g. ``"fresh"`` or ``"deterministic"`` for ``unseeded``.
    value: str = ""


#: Contract names about seeding (see :class:`Backend` docs). ``unseeded``: value ``"fresh"`` (processes that never
#: seed draw different streams) or ``"deterministic"`` (a fixed default seed; the statement names it).
#: ``generator_seeding``: value ``"matches_global"`` when an explicit generator seeded with ``s`` draws the same
#: stream as the global generator after ``seed(s)``.
SEED_CONTRACTS: tuple[str, ...] = ("unseeded", "generator_seeding")


def params_digest(params: Mapping[str, np.ndarray]) -> str:
    """sha256 hex of named arrays: for each name in sorted order, its UTF-8 bytes, a NUL, the C-order bytes.

    Adapters and checks both use it, so hashes gathered inside a framework can be recomputed from the arrays.
    """
    import hashlib

    h = hashlib.sha256()
    for name in sorted(params):
        h.update(name.encode() + b"\0")
        h.update(np.ascontiguousarray(params[name]).tobytes())
    return h.hexdigest()


class SubprocessFailed(ConformanceError):
    """A child process the adapter started crashed, hung past its timeout or answered garbage.

    The message names what ran, the exit status or timeout, and the tail of its stderr.
    """


class AdapterOutputError(ConformanceError):
    """An adapter method returned what its contract forbids: ``None``, a scalar, a list, a framework tensor, or an
    array of the wrong shape or dtype (:func:`guard_outputs`). The check fails at once with this message, which
    names the call, what came back and what was expected, e.g. ``"torch:cpu init('normal', shape=(1000, 1000),
    dtype='float32') returned None; expected a numpy array of shape (1000, 1000) and dtype float32"``.
    """

    def __init__(self, message: str, *, spec: str = "", call: str = "", got: str = "",
                 expected: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.spec, self.call, self.got = spec, call, got
        self.expected: dict[str, Any] = dict(expected or {})


@dataclass
class ModelSnapshot:
    """A model built by :meth:`Backend.build_model`, as plain data (no framework objects).

    * ``params``: every parameter by its full name, aliases included (a tied parameter appears under each
      name); ``buffers`` likewise, with ``persistent[name]`` telling whether it is saved in the state dict.
    * ``tied``: groups (size >= 2) of parameter names that share storage.
    * ``module_types[name]``: class name of the module owning each parameter/buffer (``"Linear"``).
    * ``weight_shapes[name]``: canonical ``(out, in, *kernel)`` shape of the owning module's weight (a bias
      gets its module's weight shape), from which the audit derives fan_in and fan_out.
    * ``config``: the model's numeric config values (booleans as 0/1) merged over the factory's kwargs.
    * ``poison``: the value every floating element was set to after meta-device materialization and before
      the init function ran (``None`` on the eager path); an element still equal to it was never written.
    * ``framework_defaults``: name of the built-in init spec describing the framework's own module defaults.
    """

    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    persistent: dict[str, bool] = field(default_factory=dict)
    tied: list[frozenset[str]] = field(default_factory=list)
    module_types: dict[str, str] = field(default_factory=dict)
    weight_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    config: dict[str, float] = field(default_factory=dict)
    dtype: str = "float32"
    device_init: str = "eager"
    init_method: str = ""
    poison: float | None = None
    framework_defaults: str = ""
    info: dict[str, str] = field(default_factory=dict)


class Backend(abc.ABC):
    """One framework on one device. Subclasses fill in the framework calls.

    The minimum, and which methods make which capability, is in :mod:`conformance.backends.interface`.
    """

    framework: str = ""
    device: str = ""
    dtypes: frozenset[str] = frozenset()
    contracts: Mapping[str, Contract] = {}

    @property
    def capabilities(self) -> frozenset[str]:
        """Derived, never declared: the capabilities whose methods this class overrides, minus :meth:`lacks`
        (see :func:`capabilities_of`)."""
        return capabilities_of(self)

    def lacks(self) -> Mapping[str, str]:
        """Capabilities this class implements that this device or build cannot offer: name -> human reason
        (torch: ``{"distributed": ...}`` on ``mps``). Empty by default."""
        return {}

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
        """Raise :class:`UnsupportedOperation` unless this adapter has ``capability``."""
        if capability not in self.capabilities:
            raise UnsupportedOperation(f"{self.spec} does not declare capability {capability!r}")

    def require_dtype(self, dtype: str) -> None:
        """Raise :class:`UnsupportedOperation` if ``dtype`` is not supported here."""
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(FLOAT_DTYPES)}")
        if dtype not in self.dtypes:
            raise UnsupportedOperation(f"{self.spec} does not support {dtype}")

    def swiglu_layout(self, name: str, dtype: str, params: dict) -> str:
        """The ``layout`` of an ``activation2`` call, after the checks every adapter makes: the activation is
        ``swiglu`` (else :class:`UnsupportedOperation`), ``dtype`` is supported here, no other parameter is given
        (else ``TypeError``)."""
        if name != "swiglu":
            raise UnsupportedOperation(f"{self.spec} has no two-input activation {name!r}")
        self.require_dtype(dtype)
        params = dict(params)
        layout = params.pop("layout", "contiguous")
        if params:
            raise TypeError(f"swiglu takes no parameters, got {sorted(params)}")
        return layout

    # -- randomness ---------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """Seed the framework's global random state (every device it drives)."""
        raise UnsupportedOperation(f"{self.spec} cannot be seeded")

    def sample(self, dist: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """Draw from the framework's native sampler: ``uniform(low, high)``, ``normal(mean, std)``,
        ``trunc_normal(mean, std, low, high)`` (neutral names: :data:`.interface.SAMPLE_PARAMETERS`).

        With capability ``generators``, ``generator=`` (from :meth:`generator`) draws from that object instead
        of the global stream.
        """
        raise UnsupportedOperation(f"{self.spec} has no sampler {dist!r}")

    # -- RNG state, generators, dropout, devices, ranks (capabilities "rng_state", "generators", "dropout",
    #    "distributed") -------------------------------------------------------------------------------------
    def rng_state(self, generator=None) -> bytes:
        """An opaque snapshot of the random state: the global one (``generator=None``) or an explicit generator's.

        Restoring it with :meth:`set_rng_state` (into the same or a new generator) must make the next draws
        bitwise equal to the draws that followed the snapshot. The state must change on every draw.
        """
        raise UnsupportedOperation(f"{self.spec} cannot export its RNG state")

    def set_rng_state(self, state: bytes, generator=None) -> None:
        """Restore ``state`` (from :meth:`rng_state`) into the global generator or into ``generator``."""
        raise UnsupportedOperation(f"{self.spec} cannot restore an RNG state")

    def fork_rng(self):
        """A context manager: random state changes inside it are undone on exit (``torch.random.fork_rng``)."""
        raise UnsupportedOperation(f"{self.spec} has no fork_rng")

    def generator(self, seed: int | None = None):
        """A new explicit generator object on this device, independent of the global stream.

        Seeded with ``seed`` when given; otherwise at the framework's default for a new generator.
        Pass it as ``generator=`` to :meth:`sample`, :meth:`rng_state` and :meth:`set_rng_state`.
        """
        raise UnsupportedOperation(f"{self.spec} has no explicit generator objects")

    def dropout_mask(self, shape: Sequence[int], p: float, dtype: str) -> np.ndarray:
        """Boolean mask of the elements the framework's training-mode dropout keeps (drawn from the global RNG)."""
        raise UnsupportedOperation(f"{self.spec} has no dropout")

    def initializer_instance_draws(self, name: str, shape: Sequence[int], dtype: str, seed: str, calls: int = 2,
                                   **params) -> list[np.ndarray]:
        """The framework's initializer object ``name`` built ONCE with the seed kind ``seed`` (``"int"``,
        ``"none"``, ``"generator"``), then called ``calls`` times on the canonical ``shape``."""
        raise UnsupportedOperation(f"{self.spec} has no reusable initializer objects")

    def shared_initializer_layers(self, module: str, dtype: str, seed: str, count: int = 2,
                                  **config) -> list[dict[str, np.ndarray]]:
        """``count`` layers ``module(**config)`` (as :meth:`module_params`) sharing ONE instance of the layer's
        default weight initializer, seeded per ``seed``."""
        raise UnsupportedOperation(f"{self.spec} has no reusable initializer objects")

    def device_draws(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        """One float32 standard-normal draw from the global generator of every device :meth:`seed` must seed.

        Keys name the devices (``"cpu"``, ``"cuda:0"``, ...). Used to prove that seeding reaches every device.
        """
        raise UnsupportedOperation(f"{self.spec} cannot draw per device")

    def rank_params(self, world_size: int, seed: int, timeout: float) -> dict:
        """Run ``world_size`` ranks of the framework's distributed runtime on this host (loopback only).

        Every rank builds the same small reference model, two ``Linear(256, 256)`` layers named ``0`` and ``1``,
        in each scenario:

        * ``same_seed``: every rank seeds ``seed``, builds with default init;
        * ``rank_offset``: rank ``r`` seeds ``seed + r``;
        * ``meta_init``: builds on the meta device, materializes (``to_empty``), seeds ``seed``, re-initializes;
        * ``skip_seed``: like ``same_seed`` but the last rank never seeds.

        Returns ``{"scenarios": {name: [per-rank {param: ndarray}]}, "gathered": {name: [per-rank sha256 hex]},
        "backend": "gloo"|"nccl", "device": ...}`` where ``gathered`` are the parameter hashes the ranks
        exchanged through the framework's own collective. Raises :class:`SubprocessFailed` if a rank crashes or
        the run exceeds ``timeout`` seconds.
        """
        raise UnsupportedOperation(f"{self.spec} has no distributed runtime")

    # -- initialization -----------------------------------------------------------------
    def init(self, scheme: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """Fill a new tensor of ``shape`` with the framework's initializer ``scheme``.

        ``params`` use framework-neutral names (``low``, ``high``, ``mean``, ``std``, ``value``, ``gain``,
        ``fan_mode``, ``nonlinearity``, ``negative_slope``, ``sparsity``, ``groups``; defaults in
        :data:`.interface.INIT_PARAMETERS`), which the adapter translates to its framework's keywords.
        """
        raise UnsupportedOperation(f"{self.spec} has no initializer {scheme!r}")

    def calculate_gain(self, nonlinearity: str, param: float | None = None) -> float:
        """The framework's recommended gain for ``nonlinearity``."""
        raise UnsupportedOperation(f"{self.spec} has no calculate_gain")

    # -- named initializers (capability "named_init") -------------------------------------------------------
    def named_schemes(self) -> tuple[str, ...]:
        """Names of the framework's own initializers that :meth:`named_init` can call, in the framework's spelling
        (``"he_normal"``, ``"variance_scaling"``, ``"kaiming_normal"``, ...). Empty when it exposes none."""
        return ()

    def named_init(self, name: str, shape: Sequence[int], dtype: str, **params) -> np.ndarray:
        """Call the framework's own initializer ``name`` with its own keyword ``params`` and default arguments.

        Unlike :meth:`init` (neutral scheme parameters mapped onto the framework), nothing is translated except the
        layout: ``shape`` is canonical ``(out, in, *kernel)``; the adapter builds the framework's layout for a
        dense (2-D) or convolution (> 2-D) weight, calls the initializer there, and transposes the result back.
        """
        raise UnsupportedOperation(f"{self.spec} has no named initializer {name!r}")

    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """Build ``module`` with its default init; return parameters and buffers by name."""
        raise UnsupportedOperation(f"{self.spec} cannot build module {module!r}")

    def build_model(self, factory, device_init: str = "eager", init: str = "auto", dtype: str = "float32",
                    **kwargs) -> ModelSnapshot:
        """Build a whole model from ``factory(**kwargs)`` and return it as a :class:`ModelSnapshot` (capability
        ``models``).

        ``factory`` is a callable returning a model of this framework (``conformance.audit`` resolves
        ``"package.module:callable"`` strings before calling), or an already built model.
        ``device_init``: ``"eager"`` builds on the device;
        ``"meta"`` builds without storage (the framework's meta device), materializes it on the device, fills it
        with :attr:`ModelSnapshot.poison`, then runs the init function. ``init``: the model's method to call
        after construction (``"init_weights"``, ``"reset_parameters"`` = every submodule's, ``"none"``), or
        ``"auto"``: ``init_weights`` if the model has one, else nothing (eager) or every submodule's
        ``reset_parameters`` (meta). Errors from the factory propagate unchanged.
        """
        raise UnsupportedOperation(f"{self.spec} cannot build models")

    # -- activations --------------------------------------------------------------------
    def activation(self, name: str, x: np.ndarray, dtype: str, **params) -> tuple[np.ndarray, np.ndarray]:
        """Value and derivative of activation ``name`` at ``x``, computed in ``dtype``.

        The derivative is the framework's own backward (autograd with an upstream
        gradient of ones), elementwise. ``x`` arrives as a numpy array of ``dtype``.
        ``layout`` (optional): ``"contiguous"`` (default), ``"transposed"`` (2-D: the tensor is
        the transpose of a contiguous one) or ``"strided"`` (every other element of a larger
        buffer); the logical values are ``x`` either way. Adapters whose arrays have no strides
        (or whose result cannot depend on them) raise :class:`UnsupportedOperation` for a non-contiguous layout.
        """
        raise UnsupportedOperation(f"{self.spec} has no activation {name!r}")

    def activation2(self, name: str, x: np.ndarray, y: np.ndarray, dtype: str,
                    **params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Value and both partial derivatives of a two-input activation (``swiglu(x, y) = silu(x) * y``).

        Returns ``(f(x, y), df/dx, df/dy)`` from the framework's backward with an upstream gradient
        of ones; ``params`` as in :meth:`activation` (including ``layout``).
        """
        raise UnsupportedOperation(f"{self.spec} has no two-input activation {name!r}")

    # -- checkpoints (capabilities "checkpoint" and "resume"; see conformance.harness.checkpoints) ------
    def checkpoint_formats(self) -> tuple[str, ...]:
        """File formats :meth:`save_checkpoint` writes here, e.g. ``("torch", "safetensors")`` or ``("npz",)``."""
        raise UnsupportedOperation(f"{self.spec} cannot save checkpoints")

    def checkpoint_models(self) -> tuple[str, ...]:
        """Names of the built-in reference models the checkpoint checks can build."""
        raise UnsupportedOperation(f"{self.spec} has no checkpoint reference models")

    def save_checkpoint(self, path, model: str, fmt: str, dtype: str, seed: int,
                        device: str | None = None) -> ModelState:
        """Seed ``seed``, build reference ``model`` in ``dtype`` on ``device`` (default: this adapter's), save it to
        ``path`` in ``fmt``, atomically, with its provenance; return the state of the model that was saved.

        The returned :class:`~conformance.harness.checkpoints.ModelState` holds every state entry *and* every
        non-persistent buffer (bits, dtype, shape, strides in elements, bytes), the groups of names sharing storage
        (ties), the provenance written (``seed``, ``init``, ``versions``, ``device``, ``dtype``, ...) and
        ``file_keys``. A format this backend cannot write raises :class:`UnsupportedOperation`.
        """
        raise UnsupportedOperation(f"{self.spec} cannot save checkpoints")

    def load_checkpoint(self, path, model: str, fmt: str, dtype: str, device: str | None = None,
                        expect: Mapping | None = None) -> ModelState:
        """Build a *fresh* ``model`` (seeded differently from the saved one) on ``device``, load ``path`` into it and
        return its state, as :meth:`save_checkpoint` does, with the provenance read from the file.

        Must refuse rather than guess: a file that is truncated, corrupted, would run code when unpickled, misses or
        adds keys, or differs in shape or dtype raises a
        :class:`~conformance.harness.checkpoints.CheckpointError` subclass whose one-line message names the file and
        the key. Fields of ``expect`` (``seed``, ``init``, ``dtype``, ``device``, ``versions``: a subset of
        libraries) are compared with the stored provenance
        (:class:`~conformance.harness.checkpoints.ProvenanceMismatch`). Non-persistent buffers come from the fresh
        model.
        """
        raise UnsupportedOperation(f"{self.spec} cannot load checkpoints")

    def resume_run(self, directory, seed: int, steps: int, save_at: int, timeout: float) -> dict:
        """Train the adapter's small deterministic reference loop straight for ``steps`` steps, and interrupted
        after ``save_at`` steps with a checkpoint (model, optimizer, LR scheduler, every device's RNG state,
        data-loader position) in ``directory``, then resumed from that checkpoint in a fresh process for the
        remaining steps.

        Returns ``{"straight", "resumed"}`` (plus ``"interrupted"`` when that run was a process of its own), each a
        trace dict with arrays ``step``, ``loss``, ``lr``, ``batch`` (sample indices per step), ``mask`` (packed
        dropout masks per step), and for the final runs ``params`` and ``optim`` (name -> array); plus
        ``seconds``. Raises :class:`SubprocessFailed` when a process crashes or the run exceeds ``timeout``.
        """
        raise UnsupportedOperation(f"{self.spec} has no resume harness")


#: capability -> (the methods an adapter overrides to have it, the capabilities it needs). The protocols that
#: document each one are in :mod:`conformance.backends.interface`.
CAPABILITY_METHODS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "seed": (("seed",), ()),
    "sample": (("sample",), ()),
    "init": (("init",), ()),
    "gain": (("calculate_gain",), ()),
    "named_init": (("named_schemes", "named_init"), ()),
    "modules": (("module_params",), ()),
    "models": (("build_model",), ()),
    "activations": (("activation",), ()),
    "rng_state": (("rng_state", "set_rng_state"), ()),
    "generators": (("generator",), ()),
    "dropout": (("dropout_mask",), ()),
    "initializer_instances": (("initializer_instance_draws", "shared_initializer_layers"), ("named_init", "modules")),
    "device_draws": (("device_draws",), ()),
    "processes": ((), ("seed", "sample", "modules")),
    "distributed": (("rank_params",), ()),
    "checkpoint": (("checkpoint_formats", "checkpoint_models", "save_checkpoint", "load_checkpoint"), ()),
    "resume": (("resume_run",), ()),
}


def missing_methods(cls: type, capability: str) -> tuple[str, ...]:
    """The methods of ``capability`` that ``cls`` does not override (empty when it implements them all)."""
    return tuple(m for m in CAPABILITY_METHODS[capability][0] if getattr(cls, m, None) is getattr(Backend, m))


@functools.cache
def implemented_capabilities(cls: type) -> frozenset[str]:
    """Capabilities whose methods ``cls`` overrides (composite ones such as ``processes`` included)."""
    have = {name for name, (methods, _) in CAPABILITY_METHODS.items() if methods and not missing_methods(cls, name)}
    return frozenset(have | {name for name, (methods, needs) in CAPABILITY_METHODS.items()
                             if not methods and set(needs) <= have})


def capabilities_of(backend: Backend) -> frozenset[str]:
    """``backend``'s capabilities: what its class implements minus what :meth:`Backend.lacks` names for its device;
    a capability whose needs are lacked is gone too."""
    lacks = set(backend.lacks())
    have = {name for name in implemented_capabilities(type(backend)) if name not in lacks}
    return frozenset(name for name in have if set(CAPABILITY_METHODS[name][1]) <= have)


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
    #: A reference adapter (the suite's own control, such as numpy): left out of a run that names no backend,
    #: because it judges the suite rather than the user's software; ``--backend SPEC`` or ``--with-reference``
    #: runs it (CI and the calibration always do).
    reference: bool = False
    _cache: dict = field(default_factory=dict, repr=False)

    @abc.abstractmethod
    def probe(self, device: str) -> Availability:
        """Is ``framework:device`` usable here? Never raises."""

    @abc.abstractmethod
    def _create(self, device: str) -> Backend:
        """Build the adapter; only called after a successful probe."""

    def create(self, device: str) -> Backend:
        """Return the (cached) adapter, its outputs checked (:func:`guard_outputs`), or raise
        :class:`BackendUnavailable` with the reason (a probe that raises, too: :func:`probe_safely`)."""
        if device not in self.devices:
            raise UnknownBackendError(
                f"{self.framework} has no device {device!r}; known: {', '.join(self.devices)}"
            )
        if device not in self._cache:
            availability = probe_safely(self, device)
            if not availability.available:
                raise BackendUnavailable(f"{self.framework}:{device} is unavailable: {availability.reason}")
            self._cache[device] = guard_outputs(self._create(device))
        return self._cache[device]


def describe_exception(exc: BaseException) -> str:
    """``"ValueError: first line of the message"`` (the type alone when the message is empty)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def probe_safely(provider: Provider, device: str) -> Availability:
    """``provider.probe(device)``, which must never raise but might: an exception, or an answer that is not an
    :class:`Availability`, makes the backend unavailable with that as the reason (``"probe() raised ValueError:
    ..."``), so a run skips its checks instead of erroring on each."""
    try:
        availability = provider.probe(device)
    except Exception as exc:  # noqa: BLE001 - a hostile probe must not take the run down
        return Availability(False, f"probe() raised {describe_exception(exc)}")
    if not isinstance(availability, Availability):
        return Availability(False, f"probe() returned {describe_value(availability)}; expected an Availability")
    return availability


# -- what adapters hand back --------------------------------------------------------------------------------------
def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def describe_value(value: Any) -> str:
    """A short phrase naming what ``value`` is, for messages: ``None``, ``a float (0.5)``, ``a list of 3 items``,
    ``an array of shape (10, 10) and dtype float64``, ``a torch.Tensor (not a numpy array) of shape (3,) ...``."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return f"a 0-d array (a scalar) of dtype {value.dtype}"
        return f"an array of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.generic):
        return f"a numpy scalar of dtype {value.dtype} ({_short(value.item())})"
    if isinstance(value, (bool, int, float, complex, str, bytes)):
        return f"{_article(type(value).__name__)} {type(value).__name__} ({_short(value)})"
    if isinstance(value, Mapping):
        keys = [str(k) for k in list(value)[:6]]
        kind = type(value).__name__
        return f"{_article(kind)} {kind} with keys {keys}" if keys else f"an empty {kind}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    kind = type(value).__qualname__ if type(value).__module__ == "builtins" else \
        f"{type(value).__module__}.{type(value).__qualname__}"
    text = f"{_article(kind)} {kind} (not a numpy array)"
    try:
        text += f" of shape {tuple(int(d) for d in value.shape)}"
    except Exception:  # noqa: BLE001 - no usable shape
        pass
    if getattr(value, "dtype", None) is not None:
        text += f" and dtype {value.dtype}"
    return text


#: The methods whose return values :func:`guard_outputs` checks, with their leading positional parameter names.
GUARDED_METHODS: dict[str, tuple[str, ...]] = {
    "init": ("scheme", "shape", "dtype"),
    "sample": ("dist", "shape", "dtype"),
    "named_init": ("name", "shape", "dtype"),
    "dropout_mask": ("shape", "p", "dtype"),
    "device_draws": ("shape",),
    "module_params": ("module", "dtype"),
}


def _as_shape(shape: Any) -> tuple[int, ...] | None:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        return tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        return None


def _render(value: Any) -> str:
    if isinstance(value, (str, int, float, bool, type(None))):
        return repr(value)
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, np.integer)) for v in value):
        return repr(tuple(int(v) for v in value))
    return f"<{type(value).__name__}>"


def _numeric(dtype: np.dtype) -> bool:
    return dtype.kind in "biuf" or dtype in NUMPY_DTYPES.values()


def _array_ok(value: Any, shape: tuple[int, ...] | None, dtype: np.dtype | None) -> bool:
    return (isinstance(value, np.ndarray) and (value.ndim > 0 if shape is None else value.shape == shape)
            and (dtype is None or value.dtype == dtype))


def _want(shape: tuple[int, ...] | None, dtype: np.dtype | None) -> str:
    parts = ([f"shape {shape}"] if shape is not None else []) + ([f"dtype {dtype}"] if dtype is not None else [])
    return "a numpy array" + (" of " + " and ".join(parts) if parts else "")


def check_output(spec: str, method: str, args: tuple, kwargs: Mapping[str, Any], out: Any) -> AdapterOutputError | None:
    """The error to raise when ``out``, returned by ``method(*args, **kwargs)`` of the adapter ``spec``, breaks the
    contract of :data:`GUARDED_METHODS`; ``None`` when it is fine."""
    names = GUARDED_METHODS[method]
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    shape = _as_shape(bound.get("shape")) if "shape" in names else None
    dtype_name = bound.get("dtype")
    dtype = NUMPY_DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
    got = None
    if method in ("init", "sample", "named_init", "dropout_mask"):
        if method == "dropout_mask":
            dtype = np.dtype(bool)
        if _array_ok(out, shape, dtype):
            return None
        want = _want(shape, dtype)
        kind = "numpy.ndarray"
    else:
        if method == "device_draws":
            dtype = np.dtype(np.float32)
            want = f"a non-empty dict of device name -> {_want(shape, dtype)}"
            entry_ok = lambda v: _array_ok(v, shape, dtype)  # noqa: E731
        else:
            want = "a dict of parameter name -> a numpy array of numbers"
            entry_ok = lambda v: isinstance(v, np.ndarray) and _numeric(v.dtype)  # noqa: E731
        kind = "dict[str, numpy.ndarray]"
        if isinstance(out, Mapping) and (out or method == "module_params"):
            bad = next(((k, v) for k, v in out.items() if not isinstance(k, str) or not entry_ok(v)), None)
            if bad is None:
                return None
            got = f"a dict whose entry {bad[0]!r} is {describe_value(bad[1])}"
    # only now, on the way to an error, is the call described
    bound = dict(zip(names, args, strict=False))
    bound.update((f"arg{i}", a) for i, a in enumerate(args[len(names):], start=len(names)))
    bound.update(kwargs)
    shown = [_render(v) if i == 0 and k == names[0] != "shape" else f"{k}={_render(v)}"
             for i, (k, v) in enumerate(bound.items())]
    call = f"{method}({', '.join(shown)})"
    got = got or describe_value(out)
    expected = {"type": kind, "shape": shape, "dtype": None if dtype is None else str(dtype)}
    return AdapterOutputError(f"{spec} {call} returned {got}; expected {want}", spec=spec, call=call, got=got,
                              expected={k: v for k, v in expected.items() if v is not None})


_observer: Callable[[], Callable[[AdapterOutputError], None] | None] | None = None


def observe_output_errors(callback: Callable[[AdapterOutputError], None] | None) -> None:
    """Install the one callback told of every :class:`AdapterOutputError` before it is raised (``None`` removes it).

    The running check's context (:class:`conformance.context.CheckContext`) installs itself, records the error as a
    failed verdict and raises its ``CheckFailed``, so ``results.json`` and the terminal name what came back. A bound
    method is held weakly: once its context is gone, errors are raised as they are.
    """
    global _observer
    if callback is None:
        _observer = None
    elif hasattr(callback, "__self__"):
        _observer = weakref.WeakMethod(callback)
    else:
        _observer = lambda: callback  # noqa: E731


class _AdapterClock:
    """Seconds spent inside guarded adapter methods in this process (the framework's own work, for the run's
    profile: ``draw`` vs ``check`` in :mod:`conformance.report.profile`). Nested calls (an adapter method calling
    another) count once, at the outermost."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0
        self._start = 0.0

    def __enter__(self) -> None:
        if self._depth == 0:
            self._start = time.perf_counter()
        self._depth += 1

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.seconds += time.perf_counter() - self._start


_ADAPTER_CLOCK = _AdapterClock()


def adapter_seconds() -> float:
    """Seconds spent so far in this process inside adapter methods whose outputs are checked (:func:`guard_outputs`)."""
    return _ADAPTER_CLOCK.seconds


def _guarded(adapter: Backend, name: str, own: Callable | None) -> Callable:
    """``adapter.<name>`` checked: its own instance attribute ``own`` if it had one, else the class's method, looked
    up at each call (so a method patched on the class later is the one called)."""

    resolved: list = [None, None]  # (the class attribute, its static descriptor): looked up again when it changes

    def method() -> Callable:
        if own is not None:
            return own
        cls = type(adapter)
        key = getattr(cls, name)
        if resolved[0] is not key:
            resolved[:] = [key, inspect.getattr_static(cls, name)]
        static = resolved[1]
        return static.__get__(adapter, cls) if hasattr(static, "__get__") else static

    @functools.wraps(getattr(adapter, name))
    def guarded(*args, **kwargs):
        with _ADAPTER_CLOCK:
            out = method()(*args, **kwargs)
        error = check_output(adapter.spec, name, args, kwargs, out)
        if error is None:
            return out
        callback = _observer() if _observer is not None else None
        if callback is not None:
            callback(error)  # records a failed verdict, and raises the check's own failure
        raise error

    return guarded


def guard_outputs(adapter: Backend) -> Backend:
    """Make ``adapter`` check, on every call, what its array-returning methods (:data:`GUARDED_METHODS`) hand back.

    ``None``, a scalar, a list, a framework tensor or an array of the wrong shape or dtype raises
    :class:`AdapterOutputError` at once, naming the call and what came back; otherwise a check could call the
    method once per element until it has its million values. Only this instance is changed (its class, and so its
    derived capabilities, are not); methods it does not implement are left alone. Idempotent; returns ``adapter``.
    """
    state = getattr(adapter, "__dict__", None)
    if not isinstance(adapter, Backend) or state is None or state.get("_outputs_guarded"):
        return adapter  # not a Backend (left to fail where it is used), or no instance dict (__slots__)
    for name in GUARDED_METHODS:
        if getattr(type(adapter), name, None) is getattr(Backend, name):
            continue  # the base method raises UnsupportedOperation: nothing comes back
        setattr(adapter, name, _guarded(adapter, name, state.get(name)))
    adapter._outputs_guarded = True
    return adapter
