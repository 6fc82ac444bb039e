"""The ``conformance`` command line.

``conformance run``       run the conformance suite (pytest underneath) and write reports
``conformance backends``  list every adapter with its availability and the reason

Further subcommands live in their own modules (listed in :data:`COMMAND_MODULES`); each exposes
``register(subparsers)`` which adds its parser and sets ``func(args) -> int`` as a default.

Exit codes of ``run`` are pytest's: 0 every check passed (known failures allowed),
1 at least one check failed, 2 interrupted, 3 internal error, 4 usage error (unknown
backend, bad option), 5 nothing was collected.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import sys
from pathlib import Path

from .seeding import DEFAULT_MASTER_SEED


def run_ini() -> Path:
    """The pytest configuration ``conformance run`` uses, whatever the caller's own files say (package data)."""
    return Path(str(importlib.resources.files("conformance").joinpath("run.ini")))


def pytest_args(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The pytest command line of ``conformance run``.

    Its own configuration file (``-c``) and rootdir (the folder holding the ``conformance`` package), and the suite
    named by its path, so the caller's ``pytest.ini``/``pyproject.toml``/``setup.cfg`` and ``conftest.py`` are not
    read; every option with a value is one ``--name=value`` token, so no value is ever taken for a path. Arguments
    after ``--`` (``extra``) go last, unchanged."""
    import conformance

    package = Path(conformance.__file__).resolve().parent
    report_dir = str(Path(args.report_dir).resolve())
    # the suite is named by its path (not --pyargs), so pytest's first conftest search starts there, not in the
    # caller's directory; --confcutdir stops it at the package
    out = ["-c", str(run_ini()), f"--rootdir={package.parent}", f"--confcutdir={package}", str(package / "suite"),
           "-p", "no:cacheprovider",
           "-q" if args.quiet else "-ra", f"--conformance-seed={args.seed}", f"--report-dir={report_dir}",
           f"--junitxml={Path(report_dir) / 'junit.xml'}"]
    out += [f"--backend={spec}" for spec in args.backend]
    out += [f"--adapters={module}" for module in args.adapters]
    if args.keyword:
        out.append(f"-k={args.keyword}")
    if args.workers:
        out.append(f"--numprocesses={args.workers}")
    if args.strict_tier:
        out.append("--strict-tier")
    if args.known_failures:
        out.append(f"--known-failures={Path(args.known_failures).resolve()}")
    return out + extra


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    import os

    import pytest

    saved = os.environ.pop("PYTEST_ADDOPTS", None)  # the caller's pytest defaults do not apply to a conformance run
    try:
        return int(pytest.main(pytest_args(args, extra)))
    finally:
        if saved is not None:
            os.environ["PYTEST_ADDOPTS"] = saved


def _backends(args: argparse.Namespace) -> int:
    from conformance.backends import registry

    for module in args.adapters:
        registry.load_adapter_module(module)
    rows = registry.describe()
    if args.json:
        print(json.dumps([vars(r) for r in rows], indent=1))
        return 0
    width = max((len(r.spec) for r in rows), default=10)
    for r in rows:
        status = "available" if r.available else "unavailable"
        line = f"{r.spec:<{width}}  {status:<11}"
        if r.available:
            from conformance.backends.registry import resolve

            versions = resolve(r.spec).versions()
            line += "  " + ", ".join(f"{k} {v}" for k, v in versions.items())
        else:
            line += f"  {r.reason}"
        print(line)
    return 0


#: Modules that add subcommands through ``register(subparsers)``.
COMMAND_MODULES: list[str] = ["conformance.report.cli", "conformance.goldens.cli", "conformance.audit.cli"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conformance", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the conformance suite and write reports",
                         description="Run the conformance suite on the given backends (default: every available one) "
                                     "and write REPORT_DIR/results.json, junit.xml and index.html. Arguments after "
                                     "'--' go to pytest unchanged.")
    run.add_argument("--backend", action="append", default=[], metavar="SPEC",
                     help="backend spec such as torch:cpu or numpy:cpu (repeatable)")
    run.add_argument("--seed", type=int, default=DEFAULT_MASTER_SEED, help="master seed (default %(default)s)")
    run.add_argument("--report-dir", default="reports", help="where reports go (default %(default)s)")
    run.add_argument("-k", dest="keyword", default=None, help="only checks matching this pytest -k expression")
    run.add_argument("-n", dest="workers", default=None, help="pytest-xdist workers, e.g. 2 or auto")
    run.add_argument("--adapters", action="append", default=[], metavar="MODULE[:ATTR]",
                     help="import MODULE and register its backend providers")
    run.add_argument("--known-failures", default=None, metavar="FILE", help="known-failures TOML file")
    run.add_argument("--strict-tier", action="store_true", help="also run the stricter tier (limits at +-inf, ...)")
    run.add_argument("-q", "--quiet", action="store_true", help="less output")
    bk = sub.add_parser("backends", help="list adapters, availability and versions")
    bk.add_argument("--json", action="store_true", help="machine-readable output")
    bk.add_argument("--adapters", action="append", default=[], metavar="MODULE[:ATTR]")
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args, extra)
    func = _backends if args.command == "backends" else args.func
    try:
        return int(func(args))
    except Exception as exc:  # noqa: BLE001 - turn user errors into one line
        print(f"conformance {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
