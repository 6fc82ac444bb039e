"""nox sessions. CPU installs use constraints-cpu.txt so torch resolves to the CPU build.

    conformance   run the conformance suite on every backend present; writes reports/index.html
    tests         our own tests (statistics, plugin, CLI, faulty adapters, calibration)
    lint          ruff
    bench         pytest-benchmark, serial (xdist off)
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

CONSTRAINTS = ["-c", "constraints-cpu.txt"]


def _install(session: nox.Session, extras: str = "torch,dev") -> None:
    session.install(*CONSTRAINTS, "-e", f".[{extras}]")


@nox.session(python="3.11")
def conformance(session: nox.Session) -> None:
    """Every available backend; reports in reports/ (results.json, junit.xml, index.html)."""
    _install(session, "torch")
    session.run("conformance", "backends")
    session.run("conformance", "run", "--report-dir", "reports", *session.posargs)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    _install(session)
    session.run("pytest", "-q", "-n", "2", "--benchmark-disable", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks, serial: speed numbers are measured here, never asserted in timed tests."""
    _install(session)
    session.run("pytest", "tests/bench", "-p", "no:xdist", "--benchmark-only",
                "--benchmark-columns=min,mean,max,rounds", *session.posargs)
