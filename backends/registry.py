"""Discovery of backend providers and resolution of ``framework:device`` specs.

Providers come from the entry-point group :data:`ENTRY_POINT_GROUP`; the
built-in ones (torch, numpy) register there exactly as a third-party package
would. :func:`register` adds providers at run time (used by ``--adapters``
and by our own tests for faulty adapters). Loading an entry point that fails
is not fatal: the framework is listed as unavailable with the error.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass

from .base import Availability, Backend, BackendUnavailable, Provider, UnknownBackendError

ENTRY_POINT_GROUP = "conformance.backends"

_runtime: dict[str, Provider] = {}
_broken: dict[str, str] = {}


@dataclass(frozen=True)
class BackendInfo:
    """One row of ``conformance backends``."""

    spec: str
    available: bool
    reason: str
    description: str
    extra: str


def register(provider: Provider) -> None:
    """Register ``provider`` for this process (overrides an entry point of the same name)."""
    _runtime[provider.framework] = provider


def load_adapter_module(path: str) -> None:
    """Import ``module`` or ``module:attr`` and register the providers it exposes.

    ``attr`` (default ``PROVIDERS``) is a Provider or an iterable of them. The current directory is searched
    too, as with ``python -m``.
    """
    module_name, _, attr = path.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path:  # like `python -m`: modules in the current directory are importable
        sys.path.append(cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - reported to the user
        raise UnknownBackendError(f"cannot import adapter module {module_name!r}: {exc!r}") from exc
    obj = getattr(module, attr or "PROVIDERS", None)
    if obj is None:
        raise UnknownBackendError(f"adapter module {module_name!r} has no attribute {attr or 'PROVIDERS'!r}")
    for provider in [obj] if isinstance(obj, Provider) else list(obj):
        register(provider)


def providers() -> dict[str, Provider]:
    """Every provider by framework name: entry points first, run-time registrations on top."""
    found: dict[str, Provider] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _runtime or ep.name in found:
            continue
        try:
            obj = ep.load()
            found[ep.name] = obj() if isinstance(obj, type) else obj
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            _broken[ep.name] = f"entry point {ep.value!r} failed to load: {exc!r}"
    found.update(_runtime)
    return found


def known_specs() -> list[str]:
    """All ``framework:device`` specs any provider knows, available or not."""
    return sorted(f"{name}:{dev}" for name, prov in providers().items() for dev in prov.devices)


def parse_spec(spec: str) -> tuple[Provider, str]:
    """Split ``framework:device`` and find its provider, or raise with the known specs."""
    framework, sep, device = spec.partition(":")
    provs = providers()
    if framework in _broken and framework not in provs:
        raise BackendUnavailable(f"{spec}: {_broken[framework]}")
    if not sep or framework not in provs or device not in provs[framework].devices:
        raise UnknownBackendError(
            f"unknown backend {spec!r}; known backends: {', '.join(known_specs()) or '(none)'}"
            " (install a framework extra, e.g. pip install 'dl-conformance[jax]', or pass --adapters MODULE)"
        )
    return provs[framework], device


def probe(spec: str) -> Availability:
    """Availability of ``spec``; raises only for an unknown spec."""
    provider, device = parse_spec(spec)
    try:
        return provider.probe(device)
    except Exception as exc:  # noqa: BLE001 - probe must not take the run down
        return Availability(False, f"probe raised {exc!r}")


def resolve(spec: str) -> Backend:
    """The adapter for ``spec``; :class:`BackendUnavailable` (with reason) if it cannot run here."""
    provider, device = parse_spec(spec)
    return provider.create(device)


def available_specs() -> list[str]:
    """Specs usable on this machine: the default set of a run."""
    return [spec for spec in known_specs() if probe(spec).available]


def describe() -> list[BackendInfo]:
    """Every known spec with availability and reason, plus broken entry points."""
    rows = []
    for name, prov in sorted(providers().items()):
        for dev in prov.devices:
            spec = f"{name}:{dev}"
            av = probe(spec)
            rows.append(BackendInfo(spec, av.available, av.reason, prov.description, prov.extra))
    for name, why in sorted(_broken.items()):
        rows.append(BackendInfo(f"{name}:*", False, why, "", ""))
    return rows
