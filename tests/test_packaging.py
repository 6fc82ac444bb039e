"""Packaging: one import root, every package listed, entry points and package data resolvable."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MAPPED = PYPROJECT["tool"]["setuptools"]["package-dir"]


def _folder(package: str) -> Path:
    """Where ``package`` lives in the checkout, following the package-dir mapping."""
    for name, folder in sorted(MAPPED.items(), key=lambda kv: -len(kv[0])):
        if package == name or package.startswith(name + "."):
            rest = package[len(name):].lstrip(".")
            return ROOT / folder / Path(*rest.split(".")) if rest else ROOT / folder
    return ROOT / Path(*package.split("."))


def _packages_on_disk() -> set[str]:
    found = set()
    for top, folder in [("conformance", ROOT / "conformance"), *((k, ROOT / v) for k, v in MAPPED.items())]:
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            found.add(".".join([top, *rel.parts]) if rel.parts else top)
    return found


def test_every_package_is_listed_and_there_is_one_import_root():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert {p.split(".")[0] for p in listed} == {"conformance"}
    assert _packages_on_disk() == listed, "pyproject.toml [tool.setuptools] packages must list every package"
    for package in listed:
        assert (_folder(package) / "__init__.py").is_file(), package


def test_entry_points_load_from_the_one_root():
    eps = PYPROJECT["project"]["entry-points"]
    for group in eps.values():
        for value in group.values():
            module = value.split(":")[0]
            assert module.split(".")[0] == "conformance", value
            importlib.import_module(module)
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="conformance.backends")}
    assert installed["numpy"].startswith("conformance.backends.")


def test_package_data_is_read_through_importlib_resources():
    data = importlib.resources.files("conformance.goldens.data")
    assert data.joinpath("activations", "manifest.json").is_file()
    assert importlib.resources.files("conformance").joinpath("known_failures.toml").is_file()
    assert importlib.resources.files("conformance").joinpath("run.ini").is_file()
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert "conformance.goldens.data" in patterns
