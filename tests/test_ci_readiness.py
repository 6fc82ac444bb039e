"""What an unattended CI run relies on: honest status of interrupted and empty runs, validated options, ``--strict``,
readable failure output and a repro that can be pasted (issue 15)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.cli import UsageError, workers

from .helpers import ROOT, records, run_cli

GAIN = "calculate_gain"
FAULTY = ("--adapters", "tests.faulty.init_adapters", "--backend", "faulty-std:cpu")


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_seed_that_is_not_a_number_is_a_usage_error():
    proc = _cli("run", "--seed", "abc")
    assert proc.returncode == 4, proc.stderr
    assert "--seed: invalid int value: 'abc'" in proc.stderr


@pytest.mark.parametrize("kind", ["file", "empty", "under-a-file", "unwritable"])
def test_report_dir_is_validated_before_anything_runs(tmp_path, kind):
    blocker = tmp_path / "afile"
    blocker.write_text("keep me")
    value = {"file": str(blocker), "empty": "", "under-a-file": str(blocker / "sub"),
             "unwritable": "/proc/no-such-dir/reports"}[kind]
    start = time.monotonic()
    proc = _cli("run", "--backend", "numpy:cpu", "--report-dir", value, "-k", GAIN)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("conformance run: error: --report-dir"), proc.stderr
    assert "test session starts" not in proc.stdout  # nothing ran
    assert blocker.read_text() == "keep me"
    assert not Path("/junit.xml").exists()
    assert time.monotonic() - start < 60  # a hang guard, not a speed target


def test_plugin_validates_report_dir_too(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider",
                           "--backend", "numpy:cpu", "-k", GAIN, "--report-dir", str(blocker)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4
    assert f"--report-dir {blocker}: is a file" in proc.stderr


def test_workers_are_capped_at_the_cpus_and_validated(capsys):
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert workers("999") == str(cpus)
    assert "capped at" in capsys.readouterr().err
    assert workers("1") == "1" and workers("auto") == "auto" and workers(None) is None
    for bad in ("abc", "-3"):
        with pytest.raises(UsageError):
            workers(bad)
    assert _cli("run", "-n", "lots").returncode == 4


def _run_until_held(args: list[str], report_dir: Path, sig: int) -> tuple[int, str]:
    """Start ``conformance run`` with the ``tests.hold_after_checks`` plugin, wait until it holds the run after two
    finished checks, send ``sig``; return (rc, output)."""
    marker = report_dir.parent / "held"
    cmd = [sys.executable, "-u", "-m", "conformance", "run", *args, "--report-dir", str(report_dir), "--",
           "-p", "tests.hold_after_checks"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "HOLD_AFTER": "2", "HOLD_MARKER": str(marker)})
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the run never reached its second check"
        time.sleep(0.05)
    os.kill(proc.pid, sig)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_says_so_everywhere(tmp_path, sig):
    # the plugin holds the run after its second check, so the signal always lands mid-run
    report_dir = tmp_path / "reports"
    rc, out = _run_until_held(["--backend", "numpy:cpu", "-k", "test_random_scheme and float32"], report_dir, sig)
    assert rc == 2, out[-3000:]
    results = json.loads((report_dir / "results.json").read_text())
    assert results["status"] == "interrupted"
    assert "SIGINT" in results["interrupted"]
    assert results["summary"]["total"] == 2
    html = (report_dir / "index.html").read_text()
    assert "interrupted" in html[:html.index("</h1>")].lower()
    junit = (report_dir / "junit.xml").read_text()
    assert 'name="conformance_status" value="interrupted"' in junit and "<error" in junit
    summary = out[out.index("conformance summary"):]
    assert summary.splitlines()[1].startswith("conformance: INTERRUPTED - partial results")


def test_stop_after_first_failure_is_interrupted_not_complete(tmp_path):
    proc, results = run_cli("run", *FAULTY, "-k", "normal and float32", "--", "-x", report_dir=tmp_path)
    assert proc.returncode == 1
    assert results["status"] == "interrupted" and "stopping after 1 failures" in results["interrupted"]


def test_empty_selection_leaves_the_previous_report_untouched(tmp_path):
    proc, first = run_cli("run", "--backend", "numpy:cpu", "-k", f"{GAIN} and relu", report_dir=tmp_path)
    assert proc.returncode == 0 and first["status"] == "complete"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert {"results.json", "index.html", "junit.xml"} <= set(before)
    proc, _ = run_cli("run", "--backend", "numpy:cpu", "-k", "no_check_is_called_this", report_dir=tmp_path)
    assert proc.returncode == 5
    assert "conformance: EMPTY - no check was selected; previous reports left as they were" in proc.stdout
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before
    assert "generated xml file: none: no check was selected" in proc.stdout


def _known_failure(tmp_path: Path, check: str, backend: str, **extra: str) -> Path:
    kf = tmp_path / "kf.toml"
    lines = [f'{k} = "{v}"' for k, v in extra.items()]
    kf.write_text("schema = 1\n[[failure]]\n" + f'check = "{check}"\nbackend = "{backend}"\n'
                  'reason = "pretend: this deviation was seen once. More text."\n'
                  'evidence = "EVIDENCE-TEXT-THAT-STAYS-IN-THE-REPORT"\n' + "\n".join(lines) + "\n")
    return kf


def test_strict_fails_on_a_known_failure_that_now_passes(tmp_path):
    kf = _known_failure(tmp_path, "gain/test_calculate_gain[relu]", "numpy:cpu")
    args = ("run", "--backend", "numpy:cpu", "--known-failures", str(kf), "-k", f"{GAIN} and relu")
    lenient, results = run_cli(*args, report_dir=tmp_path / "lenient")
    assert lenient.returncode == 0 and results["strict"]["enabled"] is False
    assert results["strict"]["violations"] and "would fail --strict" in lenient.stdout
    strict, results = run_cli(*args, "--strict", report_dir=tmp_path / "strict")
    assert strict.returncode == 1, strict.stdout[-2000:]
    assert results["strict"]["enabled"] is True
    assert any("gain/test_calculate_gain[relu]" in v for v in results["strict"]["violations"])
    assert "STRICT: " in strict.stdout
    assert 'name="conformance_status" value="complete"' in (tmp_path / "strict" / "junit.xml").read_text()
    xfail_strict, _ = run_cli(*args, "--", "-o", "xfail_strict=True", report_dir=tmp_path / "ini")
    assert xfail_strict.returncode == 1


def test_strict_fails_on_a_stale_entry(tmp_path):
    kf = _known_failure(tmp_path, "gain/test_calculate_gain[no_such_case]", "numpy:cpu")
    # unfiltered runs find entries that match nothing: a small suite of one adapter shows it quickly
    proc, results = run_cli("run", "--backend", "numpy:cpu", "--known-failures", str(kf), "--strict", "-k", GAIN,
                            report_dir=tmp_path)
    assert proc.returncode == 0  # a -k run cannot tell that an entry matches nothing
    kf2 = _known_failure(tmp_path, "gain/test_calculate_gain[relu]", "numpy:cpu")
    proc, results = run_cli("run", "--backend", "numpy:cpu", "--known-failures", str(kf2), "--strict",
                            "-k", f"{GAIN} and relu", report_dir=tmp_path / "b")
    assert proc.returncode == 1
    assert any(v.startswith("stale known-failure entry:") for v in results["strict"]["violations"])


def test_strict_fails_when_a_requested_backend_is_unavailable(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    args = ("run", "--backend", "numpy:cpu", "--backend", "torch:cuda", "-k", f"{GAIN} and relu")
    lenient, _ = run_cli(*args, report_dir=tmp_path / "a")
    assert lenient.returncode == 0
    strict, results = run_cli(*args, "--strict", report_dir=tmp_path / "b")
    assert strict.returncode == 1
    assert any(v.startswith("requested backend torch:cuda is unavailable") for v in results["strict"]["violations"])


def test_failing_check_is_one_readable_block_with_a_pasteable_repro(tmp_path):
    kf = _known_failure(tmp_path, "init_schemes/test_random_scheme[normal-0.5_0.02]", "faulty-std:cpu")
    selection = "(normal-0_1 or normal-0.5_0.02) and float32 and not trunc"
    proc, results = run_cli("run", *FAULTY, "--known-failures", str(kf), "-k", selection, report_dir=tmp_path / "r")
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    failed = next(r for r in results["records"] if r["outcome"] == "failed")
    assert "conformance/context.py" not in out and "raise CheckFailed" not in out  # no internal frames
    block = out[out.index("FAILURES"):out.index("conformance summary")]
    assert "seed" in block and "repro: conformance run" in block and "[variance]" in block
    repro = failed["repro"]
    assert f"--known-failures={kf}" in repro and "--adapters=tests.faulty.init_adapters" in repro
    # the repro pastes as it is: it selects the one failing check and fails it again
    import shlex

    argv = shlex.split(repro)
    assert argv[:2] == ["conformance", "run"]
    again, res2 = run_cli(*argv[1:], report_dir=tmp_path / "again")
    assert again.returncode == 1 and [r["id"] for r in res2["records"]] == [failed["id"]]
    # known failures are counted, their evidence stays in the report
    assert "EVIDENCE-TEXT-THAT-STAYS-IN-THE-REPORT" not in out
    assert "1 known failures" in out
    xfailed = records(results, "init_schemes/test_random_scheme[normal-0.5_0.02]")
    assert "EVIDENCE-TEXT-THAT-STAYS-IN-THE-REPORT" in xfailed[0]["known_failure"]
    # the conformance summary is the last section
    assert out.rindex("conformance summary") > out.rindex("FAILURES")
    assert out.strip().splitlines()[-1].startswith("=") and "failed" in out.strip().splitlines()[-1]


def test_check_that_raises_shows_its_error_text(tmp_path):
    golden = tmp_path / "golden"
    import shutil

    shutil.copytree(ROOT / "golden", golden)
    (golden / "activations" / "manifest.json").write_text("garbage")
    env_proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--backend", "numpy:cpu", "--report-dir",
                               str(tmp_path / "r"), "-k", "test_accuracy and relu and float32 and not leaky"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "CONFORMANCE_GOLDEN_DIR": str(golden)})
    assert env_proc.returncode == 1
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    (rec,) = results["records"]
    assert rec["message"].startswith("GoldenError: golden file") and "manifest.json" in rec["message"]
    assert ": GoldenError\n" not in env_proc.stdout and "Traceback" not in env_proc.stdout
