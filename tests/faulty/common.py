"""A provider for faulty adapters used in our self-tests: always available, one device ``cpu``."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.backends.base import Availability, Backend, Provider


@dataclass
class FaultyProvider(Provider):
    """Registers ``backend_cls`` under ``framework`` (spec ``<framework>:cpu``)."""

    backend_cls: type[Backend] | None = None

    def probe(self, device: str) -> Availability:
        return Availability(True)

    def _create(self, device: str) -> Backend:
        backend = self.backend_cls(device)
        backend.framework = self.framework
        return backend


def providers(**classes: type[Backend]) -> list[FaultyProvider]:
    """``providers(faulty_x=Cls)`` -> providers named ``faulty-x``."""
    return [FaultyProvider(framework=name.replace("_", "-"), devices=("cpu",), backend_cls=cls,
                           description=(cls.__doc__ or "").strip().splitlines()[0])
            for name, cls in classes.items()]
