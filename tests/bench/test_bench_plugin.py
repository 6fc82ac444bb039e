"""Benchmark (``nox -s bench``): what the installed plugin costs a pytest run that does not ask for the suite.

An unrelated one-test project is run with plain ``pytest`` and with ``-p no:conformance``; the target is a ratio of
at most 1.3 (measured here and by ``nox -s wheel``, never asserted).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = tmp_path_factory.mktemp("unrelated")
    (path / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    return path


@pytest.mark.parametrize("plugin", ["with-plugin", "no-conformance"])
def test_unrelated_pytest_run(benchmark, project, plugin):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if plugin == "no-conformance":
        cmd += ["-p", "no:conformance"]

    def run():
        return subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=120)

    proc = benchmark.pedantic(run, rounds=5, iterations=1)
    assert proc.returncode == 0, proc.stdout + proc.stderr
