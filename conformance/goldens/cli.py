"""``conformance golden``: the only way golden files change (``update``), and their checks (``verify``, ``list``).

``conformance golden update [--only KIND[:SPEC]] [--backend SPEC] [--golden-dir DIR] [--force]``
    Recompute and write golden files, each atomically, after computing all of them; print a diff summary per file
    (added / changed / unchanged / removed entries and which streams changed). Without ``--only``: ``streams`` and
    ``model_init`` for every available backend (``activations`` only when named: it is slow and
    backend-independent). ``--only activations[:DTYPE]`` delegates to :mod:`conformance.areas.activations.golden`.
``conformance golden verify [--only ...] [--backend SPEC] [--golden-dir DIR]``
    Validate every file of every kind (schema, checksum, suite version; activations through
    :func:`conformance.areas.activations.golden.check`) and recompute the fingerprints of the available
    backends. Exit 1 when a file is invalid or a stream changed within the same framework version; a change
    against another version's golden and a missing golden are reported, not failed.
``conformance golden list [--golden-dir DIR]``
    Every golden file with its key and provenance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import kinds as K
from . import store


def _parse_only(values: list[str] | None) -> list[tuple[str, str | None]]:
    """``["streams:torch:cpu", "model_init"]`` -> ``[("streams", "torch:cpu"), ("model_init", None)]``."""
    out = []
    for value in values or []:
        kind, _, rest = value.partition(":")
        if kind not in K.KINDS:
            raise ValueError(f"--only {value}: unknown golden kind {kind!r}; known: {', '.join(K.KINDS)}")
        out.append((kind, rest or None))
    return out


def _selected(args, every: bool = False) -> list[tuple[str, str | None]]:
    """Kinds named by --only; else the default ones (``every``: all kinds, as ``verify`` checks)."""
    only = _parse_only(args.only)
    if only:
        return only
    return [(name, None) for name, kind in K.KINDS.items() if every or kind.default]


def _specs(args, selector: str | None) -> list[str]:
    """Backends a per-backend kind runs on: the --only selector, else --backend, else every available backend."""
    from conformance.backends import registry

    if selector:
        return [selector]
    if args.backend:
        return list(dict.fromkeys(args.backend))
    return [r.spec for r in registry.describe() if r.available and not r.spec.endswith(":*")]


def _resolve(spec: str, explicit: bool):
    """The adapter, or None (with a printed reason) when it cannot run here and was not asked for by name."""
    from conformance.backends import registry
    from conformance.backends.base import BackendUnavailable

    try:
        return registry.resolve(spec)
    except BackendUnavailable as exc:
        if explicit:
            raise
        print(f"skipped {spec}: {exc}")
        return None


def _load_adapters(args) -> None:
    from conformance.backends import registry

    for module in args.adapters:
        registry.load_adapter_module(module)


def _directory(args) -> Path:
    """The directory read (verify, list): ``--golden-dir``, else :func:`store.default_dir`."""
    return Path(args.dir) if args.dir else store.default_dir()


def _write_directory(args) -> Path:
    """The directory an update writes: ``--golden-dir``, ``$CONFORMANCE_GOLDEN_DIR`` or a checkout's ``golden/``."""
    return store.write_dir(args.dir)


def _update(args: argparse.Namespace) -> int:
    directory = _write_directory(args)
    _load_adapters(args)
    argv = ["update", *[a for only in (args.only or []) for a in ("--only", only)],
            *[a for b in args.backend for a in ("--backend", b)]]
    plans: list[K.Plan] = []
    for kind_name, selector in _selected(args):
        kind = K.KINDS[kind_name]
        if not kind.per_backend:
            if not kind.available():
                print(f"skipped {kind_name}: conformance.areas.activations.golden offers no update/check")
                continue
            plans.append(kind.plan(selector, directory, argv))
            continue
        explicit = bool(selector or args.backend)
        for spec in _specs(args, selector):
            backend = _resolve(spec, explicit)
            if backend is not None:
                plans.append(kind.plan(backend, directory, argv, args.force))
    if not args.only:
        print("note: activations goldens are updated only with --only activations (slow, backend-independent)")
    # every file is computed above; only now is anything written (each file atomically)
    written = 0
    for plan in plans:
        for line in plan.lines:
            print(line)
        if plan.write is not None:
            plan.write()
            written += 1
    print(f"golden update: {written} file(s) written, {len(plans) - written} unchanged or empty")
    return 0


def _verify(args: argparse.Namespace) -> int:
    _load_adapters(args)
    directory = _directory(args)
    checks: list[K.Check] = []
    for kind_name, selector in _selected(args, every=True):
        kind = K.KINDS[kind_name]
        if not kind.per_backend:
            if kind.available():
                checks.append(kind.verify(directory))
            continue
        checks += kind.validate_files(directory)
        for spec in _specs(args, selector):
            backend = _resolve(spec, bool(selector or args.backend))
            if backend is not None:
                checks.append(kind.verify_backend(backend, directory, lambda s: None))
    for c in checks:
        print(f"{c.status:<4} {c.what}")
        for line in c.lines:
            print(f"     {line}")
    problems = sum(c.problem for c in checks)
    print(f"golden verify: {len(checks)} checked, {problems} problem(s)")
    return 1 if problems else 0


def _list(args: argparse.Namespace) -> int:
    directory = _directory(args)
    for name, kind in K.KINDS.items():
        print(f"{name}: {kind.describe}")
        if kind.per_backend:
            for line in kind.list_files(directory) or ["  (none)"]:
                print(f"  {line}")
        else:
            sub = directory / name
            print(f"  {sub}" + ("" if sub.is_dir() else " (missing)"))
    return 0


def register(sub) -> None:
    kinds_help = ", ".join(K.KINDS)
    g = sub.add_parser("golden", help="update, verify or list golden reference files",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    gsub = g.add_subparsers(dest="golden_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--golden-dir", "--dir", dest="dir", default=None,
                        help=f"golden directory (default ${store.ENV_DIR}, else the data shipped with the package; an "
                             "update writes there only in a source checkout)")
    common.add_argument("--adapters", action="append", default=[], metavar="MODULE[:ATTR]",
                        help="import MODULE and register its backend providers")
    select = argparse.ArgumentParser(add_help=False)
    select.add_argument("--only", action="append", metavar="KIND[:SPEC]",
                        help=f"only this kind ({kinds_help}), optionally one backend (streams:torch:cpu) or, for "
                             "activations, one dtype (repeatable)")
    select.add_argument("--backend", action="append", default=[], metavar="SPEC",
                        help="only these backends (repeatable; default every available one)")
    up = gsub.add_parser("update", parents=[common, select], help="recompute and write golden files (atomic)")
    up.add_argument("--force", action="store_true", help="overwrite files written by a newer suite version")
    up.set_defaults(func=_update)
    ve = gsub.add_parser("verify", parents=[common, select], help="validate golden files and recompute fingerprints")
    ve.set_defaults(func=_verify)
    ls = gsub.add_parser("list", parents=[common], help="list golden files with key and provenance")
    ls.set_defaults(func=_list)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience: python -m conformance.goldens.cli
    from ..cli import main as cli_main

    return cli_main(["golden", *(sys.argv[1:] if argv is None else argv)])
