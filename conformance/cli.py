"""The ``conformance`` command line.

``conformance run``       run the conformance suite (pytest underneath) and write reports
``conformance backends``  list every adapter with its availability and the reason

Further subcommands live in their own modules (listed in :data:`COMMAND_MODULES`); each exposes
``register(subparsers)`` which adds its parser and sets ``func(args) -> int`` as a default.

Exit codes of ``run`` are pytest's: 0 every check passed (known failures allowed),
1 at least one check failed (or, with ``--strict``, a known failure now passes, a known-failures entry is stale or
a requested backend is unavailable), 2 interrupted, 3 internal error, 4 usage error (unknown backend, bad option or
input file; every subcommand exits 4 on a bad command line), 5 nothing was collected.
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
           "-q" if args.quiet else "-rN", f"--conformance-seed={args.seed}", f"--report-dir={report_dir}",
           f"--junitxml={Path(report_dir) / 'junit.xml'}"]
    out += [f"--backend={spec}" for spec in args.backend]
    out += [f"--adapters={module}" for module in args.adapters]
    if args.keyword:
        out.append(f"-k={args.keyword}")
    if any(a.replace(" ", "") in ("no:xdist", "-pno:xdist") for a in extra):
        pass  # the caller turned xdist off (`-- -p no:xdist`): its options would be unknown
    elif args.workers and args.workers != "0":
        # worksteal: an idle worker takes queued checks from a busy one, so a few slow checks (the streamed 2^26
        # moments, the Haar check) do not leave the other CPUs idle at the end of the run
        out += [f"--numprocesses={args.workers}", "--dist=worksteal"]
    elif args.workers == "0":
        out.append("--numprocesses=0")
    if args.strict_tier:
        out.append("--strict-tier")
    if args.with_reference:
        out.append("--with-reference")
    if args.strict:
        out.append("--conformance-strict")
    if args.known_failures:
        out.append(f"--known-failures={Path(args.known_failures).resolve()}")
    return out + extra


def default_workers(args: argparse.Namespace, extra: list[str]) -> str:
    """``-n`` when none is given: ``auto`` for a whole run on more than one CPU, ``0`` (one process) for a ``-k`` or
    ``-m`` selection (ours or pytest's after ``--``) or on a single CPU."""
    selected = bool(args.keyword) or any(a.startswith(("-k", "-m")) for a in extra)
    return "0" if selected or _cpus() < 2 else "auto"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def workers(value: str | None) -> str | None:
    """``-n``: ``auto``, ``logical`` or a whole number, capped at the CPUs this process may use (more workers than
    CPUs only cost memory: each one imports every framework)."""
    if value is None or value in ("auto", "logical"):
        return value
    try:
        n = int(value)
    except ValueError:
        raise UsageError(f"-n {value}: give a number of workers or 'auto'") from None
    if n < 0:
        raise UsageError(f"-n {value}: the number of workers cannot be negative")
    cpus = _cpus()
    if n > cpus:
        print(f"conformance run: -n {n} capped at {cpus}, the CPUs available here", file=sys.stderr)
        n = cpus
    return str(n)


#: Thread-pool sizes of the native libraries under the frameworks (torch's OpenMP, MKL, OpenBLAS behind numpy).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_budget(workers: str | None) -> dict[str, str]:
    """With several workers, give each worker's native thread pools its share of the CPUs (``cpus // workers``, at
    least 1) through :data:`THREAD_VARIABLES`, which the xdist workers and the children of checks inherit; a
    variable the caller set is left alone. Returns what was set.

    Without it every worker's OpenMP pool takes every CPU: on 2 CPUs with 2 workers torch's draws took 4.7 times as
    long (15 s -> 72 s of adapter time for the torch:cpu suite) and the parallel run was slower than the serial one.
    The verdicts do not depend on it: the same records, verdicts and statistics came out of serial, parallel and
    single-threaded runs (issue 19's measurements)."""
    import os

    if workers in (None, "0", "1"):
        return {}
    n = _cpus() if workers in ("auto", "logical") else int(workers)
    share = str(max(1, _cpus() // max(n, 1)))
    chosen = {name: share for name in THREAD_VARIABLES if name not in os.environ}
    os.environ.update(chosen)
    return chosen


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    import os
    import signal

    import pytest

    from .harness.files import ReportDirError, prepare_report_dir

    try:
        args.workers = workers(args.workers if args.workers is not None else default_workers(args, extra))
        prepare_report_dir(args.report_dir)
    except (UsageError, ReportDirError) as exc:
        print(f"conformance run: error: {exc}", file=sys.stderr)
        return 4

    def _terminate(signum, frame):  # a CI job cancelled or timed out: end like Ctrl-C, with an honest report
        raise KeyboardInterrupt(f"signal {signum}")

    budget = thread_budget(args.workers)
    saved = os.environ.pop("PYTEST_ADDOPTS", None)  # the caller's pytest defaults do not apply to a conformance run
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        return int(pytest.main(pytest_args(args, extra)))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if saved is not None:
            os.environ["PYTEST_ADDOPTS"] = saved
        for name in budget:  # a caller that runs main() in its own process gets its environment back
            os.environ.pop(name, None)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _backends(args: argparse.Namespace) -> int:
    """Every adapter, one row each: available (with versions), unavailable or broken (with the reason). A backend
    whose constructor or ``versions()`` raises is a ``broken`` row; the other rows still print."""
    from dataclasses import asdict

    from conformance.backends import registry

    for module in args.adapters:
        registry.load_adapter_module(module)
    rows = registry.describe(versions=True)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1, default=str))
        return 0
    width = max((len(r.spec) for r in rows), default=10)
    for r in rows:
        line = f"{r.spec:<{width}}  {r.status:<11}"
        if r.status == "available":
            line += "  " + ", ".join(f"{k} {v}" for k, v in r.versions.items())
        else:
            line += f"  {r.reason}"
        print(line.rstrip())
    return 0


class UsageError(ValueError):
    """A bad command line; ``main`` prints it in one line and exits 4."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the suite's exit code for a bad command line: 4 (2 means "interrupted" for ``run``)."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.print_usage(sys.stderr)
        self.exit(4, f"{self.prog}: error: {message}\n")


#: Modules that add subcommands through ``register(subparsers)``.
COMMAND_MODULES: list[str] = ["conformance.report.cli", "conformance.goldens.cli", "conformance.audit.cli",
                              "conformance.audit.zoo.cli", "conformance.audit.hf_scan_cli", "conformance.resume.cli",
                              "conformance.checkpoints_cli"]


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="conformance", description=__doc__.split("\n\n")[0],
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
    run.add_argument("-n", dest="workers", default=None,
                     help="pytest-xdist workers: auto (one per CPU), a number, or 0 for one process. Default: auto "
                          "for a whole run, one process for a -k/-m selection (each worker imports every framework, "
                          "seconds a small selection does not win back). The verdicts are the same either way: "
                          "every check seeds itself")
    run.add_argument("--adapters", action="append", default=[], metavar="MODULE[:ATTR]",
                     help="import MODULE and register its backend providers")
    run.add_argument("--known-failures", default=None, metavar="FILE", help="known-failures TOML file")
    run.add_argument("--strict-tier", action="store_true",
                     help="strict tier: deviations fail too and the strict-tier checks (limits at +-inf) run; the "
                     "default tier fails on defects only")
    run.add_argument("--with-reference", action="store_true",
                     help="with no --backend: also run the reference adapter numpy:cpu (the suite's own control; "
                          "left out by default, CI and the calibration run it)")
    run.add_argument("--strict", action="store_true",
                     help="for CI: exit 1 when a known failure now passes, a known-failures entry is stale, or a "
                          "backend asked for with --backend is unavailable (a broken CUDA driver must not go green)")
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
