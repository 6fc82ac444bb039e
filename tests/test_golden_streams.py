"""The golden checks of the suite catch a changed stream (``pytest --pyargs conformance.suite.test_golden_streams``
in fresh interpreters, like a user's run, collecting only that module to stay fast).

A golden for the genuine ``numpy:cpu`` is written to a temporary directory; then the suite runs, in parallel
processes, against faulty adapters posing as ``numpy:cpu`` (tests/faulty/stream_adapters.py) and against an empty
golden directory:

* same version, one draw skipped -> the stream checks FAIL naming index 5 and both values;
* newer version, same defect -> expected failure "stream changed since VERSION" (the run does not fail);
* newer version, genuine stream -> passes, "unchanged since VERSION";
* no golden -> skipped with the exact command that creates it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conformance.cli import main
from conformance.goldens import store

from .helpers import ROOT, records

UNIFORM = "golden_streams/test_stream[sample.uniform]"
TRUNC = "golden_streams/test_stream[init.trunc_normal-std0.02]"
RUNS = {"same": "SKIPPED_DRAW", "newer_changed": "NEWER_CHANGED", "newer_same": "NEWER_SAME", "missing": None}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    golden = tmp_path_factory.mktemp("golden")
    assert main(["golden", "update", "--only", "streams:numpy:cpu", "--dir", str(golden)]) == 0
    version = store.load_file(store.files_of(golden, "streams")[0]).key.version
    procs = {}
    for name, attr in RUNS.items():
        out = tmp_path_factory.mktemp(name)
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "--pyargs",
               "conformance.suite.test_golden_streams", "--backend", "numpy:cpu", "--report-dir", str(out), "-q"]
        if attr:
            cmd += ["--adapters", f"tests.faulty.stream_adapters:{attr}"]
        env = {**os.environ, store.ENV_DIR: str(golden if attr else out / "empty")}
        procs[name] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True), out)
    results = {}
    for name, (proc, out) in procs.items():
        text, _ = proc.communicate(timeout=300)
        path = out / "results.json"
        assert path.exists(), text[-3000:]
        results[name] = (proc.returncode, json.loads(path.read_text()), text)
    return version, golden, results


def test_changed_stream_within_a_version_fails_naming_the_index(runs):
    version, _, results = runs
    code, res, _ = results["same"]
    assert code == 1
    rec = records(res, UNIFORM, "numpy:cpu", "float32")[0]
    assert rec["outcome"] == "failed"
    assert f"stream changed within numpy {version}" in rec["message"]
    assert "sample.uniform/float32: first difference at index 5: golden 0x" in rec["message"]
    assert rec["verdicts"][0]["test"] == "golden_streams"
    assert records(res, TRUNC, "numpy:cpu", "float32")[0]["outcome"] == "passed"  # the defect spares truncnorm
    failed = {r["id"] for r in res["records"] if r["outcome"] == "failed"}
    assert failed == {f"golden_streams/test_stream[{c}]" for c in ("sample.uniform", "sample.normal",
                      "init.xavier_uniform-32x32", "init.kaiming_normal-32x32-relu", "module.Linear-32x31")}


def test_changed_stream_across_versions_is_reported_not_failed(runs):
    version, _, results = runs
    code, res, _ = results["newer_changed"]
    assert code == 0
    rec = records(res, UNIFORM, "numpy:cpu", "bfloat16")[0]
    assert rec["outcome"] == "xfailed"
    assert f"stream changed since {version}" in rec["known_failure"]
    assert "conformance golden update --only streams:numpy:cpu" in rec["known_failure"]
    assert res["summary"]["xfailed"] == 20 and res["summary"]["failed"] == 0


def test_unchanged_stream_across_versions_passes(runs):
    version, _, results = runs
    code, res, _ = results["newer_same"]
    assert code == 0 and res["summary"]["passed"] == 24
    verdict = records(res, UNIFORM, "numpy:cpu", "float16")[0]["verdicts"][0]
    assert f"unchanged since {version}" in verdict["message"]


def test_missing_golden_is_skipped_with_the_command(runs):
    _, _, results = runs
    code, res, _ = results["missing"]
    rec = records(res, UNIFORM, "numpy:cpu", "float32")[0]
    assert rec["outcome"] == "skipped"
    assert "no golden streams for numpy:cpu" in rec["message"]
    assert "create it with `conformance golden update --only streams:numpy:cpu --golden-dir " in rec["message"]
    assert code == 0
