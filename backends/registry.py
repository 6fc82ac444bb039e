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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .base import (
    Availability,
    Backend,
    BackendUnavailable,
    Provider,
    UnknownBackendError,
    describe_exception,
    describe_value,
    probe_safely,
)

ENTRY_POINT_GROUP = "conformance.backends"

_runtime: dict[str, Provider] = {}
_broken: dict[str, str] = {}


@dataclass(frozen=True)
class BackendInfo:
    """One row of ``conformance backends``.

    ``status``: ``"available"``, ``"unavailable"`` (the probe says why) or ``"broken"`` (the probe said available
    but building the adapter or asking its ``versions()`` raised; ``reason`` says what, and ``available`` is false).
    ``versions`` are filled in by :func:`describe` with ``versions=True`` only.
    """

    spec: str
    available: bool
    reason: str
    description: str
    extra: str
    status: str = ""
    versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", "available" if self.available else "unavailable")


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
    name = attr or "PROVIDERS"
    if not hasattr(module, name):
        raise UnknownBackendError(f"adapter module {module_name!r} has no attribute {name!r}")
    for provider in _providers_of(module_name, name, getattr(module, name)):
        register(provider)


def _providers_of(module_name: str, name: str, obj) -> list[Provider]:
    """``obj`` (attribute ``name`` of an adapters module) as a list of providers, or :class:`UnknownBackendError`
    with one line naming the module, the attribute, what it is and what it should be."""
    should = ("should be a Provider instance or an iterable of them "
              "(conformance.backends.base.Provider subclasses, e.g. PROVIDERS = [MyProvider(framework=..., "
              "devices=(...))])")

    def what(value) -> str:
        return f"the class {value.__qualname__} (not an instance)" if isinstance(value, type) else describe_value(value)

    if isinstance(obj, Provider):
        return [obj]
    if isinstance(obj, (str, bytes, Mapping)) or not isinstance(obj, Iterable):
        raise UnknownBackendError(f"adapter module {module_name!r}: {name} is {what(obj)}; it {should}")
    try:
        items = list(obj)
    except Exception as exc:  # noqa: BLE001 - reported to the user
        raise UnknownBackendError(f"adapter module {module_name!r}: iterating {name} raised "
                                  f"{describe_exception(exc)}; it {should}") from exc
    for i, item in enumerate(items):
        if not isinstance(item, Provider):
            raise UnknownBackendError(f"adapter module {module_name!r}: {name}[{i}] is {what(item)}; {name} {should}")
    return items


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
    """Availability of ``spec``; raises only for an unknown spec. A probe that raises (or answers something other
    than an :class:`Availability`) makes it unavailable with that reason (``"probe() raised ValueError: ..."``),
    the same reason :func:`resolve` then gives."""
    provider, device = parse_spec(spec)
    return probe_safely(provider, device)


def resolve(spec: str) -> Backend:
    """The adapter for ``spec``; :class:`BackendUnavailable` (with reason) if it cannot run here."""
    provider, device = parse_spec(spec)
    return provider.create(device)


def available_specs() -> list[str]:
    """Specs usable on this machine: the default set of a run."""
    return [spec for spec in known_specs() if probe(spec).available]


def describe(versions: bool = False) -> list[BackendInfo]:
    """Every known spec with availability and reason, plus broken entry points.

    With ``versions``, every available backend is also built and asked for its ``versions()``; one whose
    constructor or ``versions()`` raises is a ``"broken"`` row with the reason, and the other rows still come.
    """
    rows = []
    for name, prov in sorted(providers().items()):
        for dev in prov.devices:
            spec = f"{name}:{dev}"
            av = probe_safely(prov, dev)
            info = BackendInfo(spec, av.available, av.reason, prov.description, prov.extra)
            if versions and av.available:
                info = _with_versions(info, prov, dev)
            rows.append(info)
    for name, why in sorted(_broken.items()):
        rows.append(BackendInfo(f"{name}:*", False, why, "", ""))
    return rows


def _with_versions(info: BackendInfo, provider: Provider, device: str) -> BackendInfo:
    """``info`` with the adapter's versions, or as a ``"broken"`` row saying which call raised what."""

    def broken(reason: str) -> BackendInfo:
        return BackendInfo(info.spec, False, reason, info.description, info.extra, status="broken")

    try:
        adapter = provider.create(device)
    except BackendUnavailable as exc:  # the probe changed its mind
        return BackendInfo(info.spec, False, str(exc), info.description, info.extra)
    except Exception as exc:  # noqa: BLE001 - one broken adapter must not hide the other rows
        return broken(f"constructor raised {describe_exception(exc)}")
    try:
        found = adapter.versions()
    except Exception as exc:  # noqa: BLE001 - as above
        return broken(f"versions() raised {describe_exception(exc)}")
    if not isinstance(found, Mapping):
        return broken(f"versions() returned {describe_value(found)}; expected a dict of name -> version")
    return BackendInfo(info.spec, True, "", info.description, info.extra, versions={str(k): str(v)
                                                                                   for k, v in found.items()})
