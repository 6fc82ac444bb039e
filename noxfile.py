"""nox sessions. CPU installs use constraints-cpu.txt so torch resolves to the CPU build.

    conformance   run the conformance suite on every backend present; writes reports/index.html
    tests         our own tests (statistics, plugin, CLI, faulty adapters, calibration)
    lint          ruff
    golden        conformance golden verify (golden files valid, fingerprints unchanged)
    report        re-render reports/index.html from reports/results.json and screenshot it in headless Chromium
    bench         pytest-benchmark, serial (xdist off)
    mutation      mutation score of the faulty adapters -> reports/mutation_score.json, README table
    calibration   false alarms of the correct CPU backends under 20 master seeds (not default CI)
    power         power vs PyTorch's test_init.py KS rule -> reports/power.*, docs/power.png, README table
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
    _install(session, "torch,checkpoint")
    session.run("conformance", "backends")
    session.run("conformance", "run", "--report-dir", "reports", *session.posargs)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    _install(session)
    # benchmarks run in the serial `bench` session only
    session.run("pytest", "-q", "-n", "2", "--ignore=tests/bench", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")


@nox.session(python="3.11")
def golden(session: nox.Session) -> None:
    """Validate every golden file and recompute the fingerprints of the backends present (``conformance golden
    verify``); ``nox -s golden -- update --only streams:torch:cpu`` runs another action instead."""
    _install(session, "torch")
    session.run("conformance", "golden", *(session.posargs or ["verify"]))


@nox.session(python="3.11")
def report(session: nox.Session) -> None:
    """Render reports/index.html again from reports/results.json (``-- merge A.json B.json -o DIR`` to merge
    machines' results) and, when Chromium is installed, open it headless: console errors fail the session and a
    screenshot lands in reports/report-screenshot.png."""
    _install(session, "torch")
    session.run("conformance", "report", *(session.posargs or ["reports/results.json"]))
    if not session.posargs:
        session.run("python", "-c", _SCREENSHOT)


_SCREENSHOT = """
import sys
from pathlib import Path
from conformance.browser import find_chromium, open_page
if find_chromium() is None:
    print("Chromium not installed: no screenshot (apt-get install chromium)")
    sys.exit(0)
page = open_page(Path("reports/index.html"), screenshot=Path("reports/report-screenshot.png"))
print("console messages:", page.console or "none")
print("screenshot:", page.screenshot)
sys.exit(1 if page.console else 0)
"""


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks, serial: speed numbers are measured here, never asserted in timed tests."""
    _install(session)
    session.run("pytest", "tests/bench", "-p", "no:xdist", "--benchmark-only",
                "--benchmark-columns=min,mean,max,rounds", *session.posargs)


@nox.session(python="3.11")
def mutation(session: nox.Session) -> None:
    """Mutation score: every faulty adapter of tests/faulty/catalogue.py vs its named check; regenerates README."""
    _install(session, "torch,checkpoint,dev")
    session.run("python", "tools/mutation_score.py", "--readme", "README.md", *session.posargs)


@nox.session(python="3.11")
def calibration(session: nox.Session) -> None:
    """False alarms on the correct CPU backends under 20 master seeds (not default CI; the whole suite takes long).

    ``nox -s calibration -- --subset "init_schemes and float32"`` for a subset; reports/calibration.{md,json}.
    """
    _install(session, "torch,checkpoint,dev")
    session.run("python", "tools/calibration.py", "run", "--seeds", "20", *session.posargs)


@nox.session(python="3.11")
def power(session: nox.Session) -> None:
    """Power against PyTorch's test_init.py KS rule: reports/power.{json,md,png}, docs/power.png, README table."""
    _install(session)
    session.run("python", "tools/power.py", "--readme", "README.md", "--docs-png", "docs/power.png",
                *session.posargs)
