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
