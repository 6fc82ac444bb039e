"""Resolve ``package.module:callable`` factory paths with errors that name the path and the cause."""

from __future__ import annotations

import importlib
from collections.abc import Callable


class FactoryError(ValueError):
    """A factory path that does not import, names nothing callable, or whose call raised."""


def resolve(path: str | Callable) -> Callable:
    """The callable named by ``"package.module:attr"`` (``attr`` may be dotted); callables pass through."""
    if callable(path):
        return path
    if not isinstance(path, str) or ":" not in path:
        raise FactoryError(f"factory {path!r} is not of the form package.module:callable")
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise FactoryError(f"factory {path!r} is not of the form package.module:callable")
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to see
        raise FactoryError(f"factory {path!r}: module {module_name!r} could not be imported: "
                           f"{type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise FactoryError(f"factory {path!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise FactoryError(f"factory {path!r} is a {type(obj).__name__}, not callable")
    return obj


def name_of(factory) -> str:
    """A printable name of a factory (its path, or module:qualname)."""
    if isinstance(factory, str):
        return factory
    module = getattr(factory, "__module__", None)
    qual = getattr(factory, "__qualname__", None)
    if module and qual:
        return f"{module}:{qual}"
    return type(factory).__name__ + " instance"


def parse_config(items: list[str]) -> dict:
    """``["n_layer=4", "bias=false", "naming=olmo"]`` -> keyword arguments (ints, floats, booleans, strings)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FactoryError(f"--config {item!r}: expected key=value")
        out[key.strip()] = _value(value.strip())
    return out


def _value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
