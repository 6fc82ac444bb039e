"""The zoo: tiny models of real libraries (transformers, LitGPT, torchtitan, OLMo, timm), built from config.

Each :class:`ZooFactory` names a builder (``package.module:callable`` returning an uninitialized-or-initialized
``torch.nn.Module`` the library's own way), the library it needs, the spec of what the library's **code** does and,
where the library states an intent that differs (a docstring, a paper, a config field), the spec of that
**intent**. Nothing here downloads weights or data: every model is built from a config shrunk to a few layers.

Importing this package imports no framework and no model library: the catalogue is plain data collected from the
``ENTRIES`` lists of the per-library modules (``hf_models``, ``litgpt_models``, ``torchtitan_models``,
``olmo_models``, ``timm_models``), which import their library only inside their functions.

Contract of a builder ``fn(**config)``: called under ``torch.device(...)`` (eager) or ``torch.device("meta")``
(meta) by :func:`conformance.backends.torch.models.build`; it returns the model as the library's own training
entry point constructs it. The factory's ``init`` then says what initializes a meta-built model after
``to_empty``: a method name of the model (``init_weights``, ``reset_parameters``), ``auto``, ``none`` or a
``package.module:callable`` taking the model (the library's own init function, e.g. LitGPT's
``pretrain.initialize_weights``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field

#: The per-library modules whose ``ENTRIES`` make the catalogue (in listing order).
MODULES = ("hf_models", "litgpt_models", "torchtitan_models", "olmo_models", "timm_models")


class ZooError(ValueError):
    """An unknown zoo name, or a zoo entry that is malformed (the message names it and what to do)."""


@dataclass(frozen=True)
class ZooFactory:
    """One real-library model factory and the specs it is judged by."""

    name: str  # "hf-llama", "litgpt-pythia", ...: what `conformance audit NAME` takes
    library: str  # the distribution that must be installed ("transformers", "litgpt", ...)
    build: str  # "conformance.audit.zoo.hf_models:llama" (called with **config)
    spec: str  # built-in spec of what the code does
    summary: str = ""  # one line: the model and how it is built/initialized
    intent: str | None = None  # built-in spec of what the library says it intends, when that differs
    config: Mapping = field(default_factory=dict)  # keyword arguments of build
    device_init: tuple[str, ...] = ("eager",)  # the modes the library supports: "eager", "meta"
    init: str = "auto"  # what initializes a meta-built model (see the module docs)
    imports: tuple[str, ...] = ()  # modules that must import for the factory to run (default: the library)
    upstream: str = ""  # https://github.com/owner/repo of the library (links in the findings table)

    @property
    def modules(self) -> tuple[str, ...]:
        return self.imports or (self.library.replace("-", "_"),)


@dataclass(frozen=True)
class Availability:
    """Whether a factory can run here: the installed version, or the reason it cannot."""

    available: bool
    version: str | None
    reason: str = ""


def catalogue() -> list[ZooFactory]:
    """Every built-in factory, in listing order (no framework is imported)."""
    out: list[ZooFactory] = []
    seen: dict[str, str] = {}
    for mod in MODULES:
        module = importlib.import_module(f"{__name__}.{mod}")
        for entry in getattr(module, "ENTRIES", ()):
            if not isinstance(entry, ZooFactory):
                raise ZooError(f"{module.__name__}.ENTRIES holds a {type(entry).__name__}, not a ZooFactory")
            if entry.name in seen:
                raise ZooError(f"zoo name {entry.name!r} is defined twice ({seen[entry.name]} and {mod})")
            seen[entry.name] = mod
            out.append(entry)
    return out


def get(name: str) -> ZooFactory:
    """The factory called ``name``; :class:`ZooError` lists the known names otherwise."""
    entries = catalogue()
    for entry in entries:
        if entry.name == name:
            return entry
    near = [e.name for e in entries if name.lower() in e.name.lower()]
    raise ZooError(f"no zoo factory {name!r}" + (f" (did you mean {', '.join(near)}?)" if near else "")
                   + "; `conformance audit --list` prints them all (a factory path is package.module:callable)")


def is_name(text: str) -> bool:
    """Whether ``text`` looks like a zoo name rather than a ``package.module:callable`` path."""
    return ":" not in text and "/" not in text and not text.endswith(".py")


def version_of(library: str) -> str | None:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return None


def availability(entry: ZooFactory, probe: bool = False) -> Availability:
    """Installed (by distribution metadata, cheap) and, with ``probe``, importable (imports the library)."""
    version = version_of(entry.library)
    if version is None:
        return Availability(False, None, f"{entry.library} is not installed (pip install 'dl-conformance[zoo]' "
                                         f"or pip install {entry.library})")
    for module in entry.modules:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            return Availability(False, version, f"module {module!r} is not importable although {entry.library} "
                                                f"{version} is installed")
    if probe:
        for module in entry.modules:
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - a broken install is a reason, not a crash
                text = " ".join(str(exc).split())[:300]
                return Availability(False, version, f"{entry.library} {version} is installed but {module!r} fails "
                                                    f"to import: {type(exc).__name__}: {text}")
    return Availability(True, version)
