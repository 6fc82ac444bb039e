"""The suite as a guest: silent in other people's pytest runs, isolated from their configuration, honest about
where golden files may be written (issue: one installable package)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance.goldens import store

ROOT = Path(__file__).resolve().parents[1]
#: Modules the plugin must not import in a pytest run that does not ask for the conformance suite.
HEAVY = ("torch", "jax", "mlx", "candle", "scipy", "matplotlib", "jinja2", "mpmath", "conformance.backends",
         "conformance.stats", "conformance.known_failures", "conformance.context")


def _unrelated_project(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "--strict-markers"\n')
    (path / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    (path / "conftest.py").write_text(textwrap.dedent("""
        import json, sys

        def pytest_sessionfinish(session):
            with open("modules.json", "w") as fh:
                json.dump(sorted(sys.modules), fh)
    """))
    return path


def _pytest(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={**clean, **(env or {})})


def _lines(out: str) -> list[str]:
    """Output lines without the timing of the last line and without the rootdir/platform lines."""
    keep = []
    for line in out.splitlines():
        if " in " in line and ("passed" in line or "failed" in line):
            line = line.split(" in ")[0]
        keep.append(line)
    return keep


def test_plugin_is_silent_and_light_in_an_unrelated_project(tmp_path):
    project = _unrelated_project(tmp_path / "elsewhere")
    plain = _pytest(project)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    modules = json.loads((project / "modules.json").read_text())
    without = _pytest(project, "-p", "no:conformance")
    assert without.returncode == 0, without.stdout + without.stderr
    ours = [ln for ln in plain.stdout.splitlines() if "conformance" in ln.lower() and not ln.startswith("plugins:")]
    assert ours == [], ours
    assert [ln for ln in _lines(plain.stdout) if not ln.startswith("plugins:")] == \
        [ln for ln in _lines(without.stdout) if not ln.startswith("plugins:")]
    heavy = sorted({m for m in modules for h in HEAVY if m == h or m.startswith(h + ".")})
    assert heavy == [], f"the plugin imported {heavy} in a pytest run that never asked for the suite"


def test_run_ignores_the_callers_pytest_configuration(tmp_path):
    """--strict-markers and a failing conftest in the caller's directory change nothing; a third-party adapter
    whose name is no Python identifier is registered as a marker; an existing --report-dir keeps the rootdir."""
    caller = tmp_path / "caller"
    caller.mkdir()
    (caller / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "--strict-markers -x -p no:xdist"\n')
    (caller / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers --maxfail=1\n")
    (caller / "conftest.py").write_text("raise RuntimeError('the caller conftest must not be imported')\n")
    (caller / "reports").mkdir()  # exists before the run: must not become the rootdir
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["PYTHONPATH"] = str(ROOT)  # for --adapters tests.faulty.init_adapters
    env["PYTEST_ADDOPTS"] = "--strict-markers"
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--adapters", "tests.faulty.init_adapters",
                           "--backend", "faulty-std:cpu", "--backend", "numpy:cpu", "--report-dir", "reports",
                           "-k", "random_scheme and normal-0_1 and float32 and not moments", "-q"],
                          cwd=caller, capture_output=True, text=True, timeout=600, env=env)
    out = proc.stdout + proc.stderr
    assert "ERROR" not in out and "collection errors" not in out.lower(), out[-3000:]
    assert proc.returncode == 1, out[-3000:]  # faulty-std fails its check; nothing else goes wrong
    results = json.loads((caller / "reports" / "results.json").read_text())
    outcomes = {(r["backend"], r["outcome"]) for r in results["records"]}
    assert outcomes == {("faulty-std:cpu", "failed"), ("numpy:cpu", "passed")}, outcomes
    assert all(r["nodeid"].startswith("conformance/suite/") for r in results["records"])
    assert (caller / "reports" / "junit.xml").is_file()


def test_hypothesis_profile_option_is_honoured(tmp_path):
    env = {**os.environ, "CI": "true"}  # would select the "ci" profile
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--backend", "numpy:cpu", "--report-dir",
                           str(tmp_path), "-k", "test_hypothesis and relu and float32", "-q", "--",
                           "--hypothesis-profile", "dev"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    messages = [v["message"] for r in results["records"] for v in r["verdicts"]]
    assert messages and all("(profile dev)" in m for m in messages), messages


def test_golden_update_never_writes_into_an_installed_package(tmp_path, monkeypatch):
    installed = tmp_path / "site-packages" / "conformance" / "goldens" / "data"
    installed.mkdir(parents=True)
    monkeypatch.setattr(store, "shipped_dir", lambda: installed)
    monkeypatch.delenv(store.ENV_DIR, raising=False)
    with pytest.raises(store.GoldenError, match="--golden-dir"):
        store.write_dir()
    assert store.write_dir(tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.setenv(store.ENV_DIR, str(tmp_path / "env"))
    assert store.write_dir() == tmp_path / "env"
    assert store.default_dir() == tmp_path / "env"


def test_the_checkout_golden_folder_is_where_updates_go(monkeypatch):
    monkeypatch.delenv(store.ENV_DIR, raising=False)
    shipped = store.shipped_dir()
    assert (shipped / "streams").is_dir() and (shipped / "activations" / "manifest.json").is_file()
    if store.is_checkout(shipped):
        assert store.write_dir() == shipped


def test_golden_update_refusal_is_a_clean_cli_error(tmp_path):
    """`conformance golden update` from an installation prints one line naming --golden-dir (exit 2), writes nothing."""
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from conformance.goldens import store
        store.shipped_dir = lambda: Path({str(tmp_path / 'site-packages')!r})
        from conformance.cli import main
        sys.exit(main(["golden", "update", "--only", "streams:numpy:cpu"]))
    """)
    env = {k: v for k, v in os.environ.items() if k != store.ENV_DIR}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--golden-dir" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "site-packages").exists()


def test_the_plugins_literal_copies_agree_with_their_sources():
    """The plugin repeats a few names so that loading it imports nothing heavy; they must not drift."""
    from conformance.backends import base

    from conformance import context, plugin

    assert plugin.FLOAT_DTYPES == base.FLOAT_DTYPES
    assert (plugin.USER_PROPERTY, plugin.ATTACHMENT_PROPERTY) == (context.USER_PROPERTY, context.ATTACHMENT_PROPERTY)
