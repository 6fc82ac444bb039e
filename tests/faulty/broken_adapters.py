"""An adapter whose framework fails to import: it must be listed as unavailable with the error
while the other backends still run."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.backends.base import Availability, Backend, Provider


@dataclass
class BrokenProvider(Provider):
    def probe(self, device: str) -> Availability:
        try:
            import not_a_real_framework_for_conformance  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"framework failed to import: {exc!r}")
        return Availability(True)  # pragma: no cover

    def _create(self, device: str) -> Backend:  # pragma: no cover - never reached
        raise AssertionError("unavailable provider was asked to create an adapter")


PROVIDERS = [BrokenProvider(framework="brokenfw", devices=("cpu",), description="framework that fails to import")]


# -- hostile adapters (tests/test_hostile_adapters.py) -----------------------------------------------------------
# Each is registered through its own attribute (``--adapters tests.faulty.broken_adapters:HOSTILE_OUTPUTS``), so a
# run that loads ``PROVIDERS`` above never sees them. Calls to the faulty methods are counted: one line per call in
# the file named by $CONFORMANCE_HOSTILE_CALLS, when set, so a test can bound how often a check asked.

import os  # noqa: E402

import numpy as np  # noqa: E402
from conformance.backends.numpy_adapter import NumpyBackend  # noqa: E402

from .common import providers  # noqa: E402

CALLS_ENV = "CONFORMANCE_HOSTILE_CALLS"


def _count(what: str) -> None:
    path = os.environ.get(CALLS_ENV)
    if path:
        with open(path, "a") as fh:
            fh.write(what + "\n")


class InitReturnsNone(NumpyBackend):
    """init returns None (and computes nothing)."""

    def init(self, scheme, shape, dtype, **params):
        _count(f"{self.framework} init")
        return None


class InitReturnsFloat(NumpyBackend):
    """init returns a Python float instead of an array."""

    def init(self, scheme, shape, dtype, **params):
        _count(f"{self.framework} init")
        return 0.5


class InitReturnsNumpyScalar(NumpyBackend):
    """init returns a numpy float32 scalar instead of an array."""

    def init(self, scheme, shape, dtype, **params):
        _count(f"{self.framework} init")
        return np.float32(0.5)


class InitWrongShape(NumpyBackend):
    """init returns 10 rows whatever the shape asked."""

    def init(self, scheme, shape, dtype, **params):
        _count(f"{self.framework} init")
        return super().init(scheme, (10, *tuple(shape)[1:]), dtype, **params)


class InitWrongDtype(NumpyBackend):
    """init returns float64 whatever the dtype asked."""

    def init(self, scheme, shape, dtype, **params):
        _count(f"{self.framework} init")
        return super().init(scheme, shape, "float64", **params)


class InitReturnsList(NumpyBackend):
    """init returns a (nested) Python list instead of an array."""

    def init(self, scheme, shape, dtype, **params):
        _count(f"{self.framework} init")
        return np.zeros((2, 2)).tolist()


class SampleReturnsNone(NumpyBackend):
    """sample returns None."""

    def sample(self, dist, shape, dtype, **params):
        _count(f"{self.framework} sample")
        return None


class ModuleParamIsNone(NumpyBackend):
    """module_params returns None for every parameter."""

    def module_params(self, module, dtype, **config):
        _count(f"{self.framework} module_params")
        return {name: None for name in super().module_params(module, dtype, **config)}


HOSTILE_OUTPUTS = providers(hostile_init_none=InitReturnsNone, hostile_init_float=InitReturnsFloat,
                            hostile_init_npscalar=InitReturnsNumpyScalar, hostile_init_shape=InitWrongShape,
                            hostile_init_dtype=InitWrongDtype, hostile_init_list=InitReturnsList,
                            hostile_sample_none=SampleReturnsNone, hostile_module_none=ModuleParamIsNone)


@dataclass
class ProbeRaises(Provider):
    """A provider whose probe() raises (it must never raise, but this one does)."""

    def probe(self, device: str) -> Availability:
        raise ValueError("the probe fell over")

    def _create(self, device: str) -> Backend:  # pragma: no cover - never reached: the probe fails first
        raise AssertionError("a backend whose probe raised was built")


@dataclass
class ConstructorRaises(Provider):
    """A provider that says it is available and whose adapter's constructor raises."""

    def probe(self, device: str) -> Availability:
        return Availability(True)

    def _create(self, device: str) -> Backend:
        raise RuntimeError("the adapter's __init__ fell over")


class VersionsRaise(NumpyBackend):
    """versions() raises."""

    def versions(self):
        raise KeyError("no version here")


PROBE_RAISES = [ProbeRaises(framework="hostile-probe", devices=("cpu",), description="probe() raises")]
CONSTRUCTOR_RAISES = [ConstructorRaises(framework="hostile-ctor", devices=("cpu",),
                                        description="constructor raises")]
VERSIONS_RAISE = providers(hostile_versions=VersionsRaise)
