"""The CLI and plugin on bad input and on the report files they promise."""

from __future__ import annotations

import pytest

from .helpers import records, run_cli

GAIN = "calculate_gain"


def test_unknown_backend_lists_known_adapters(tmp_path):
    proc, results = run_cli("run", "--backend", "nope:cpu", "-k", GAIN, report_dir=tmp_path)
    assert proc.returncode == 4
    err = proc.stderr + proc.stdout
    assert "unknown backend 'nope:cpu'" in err
    assert "numpy:cpu" in err and "torch:cpu" in err


def test_broken_framework_is_reported_and_others_still_run(tmp_path):
    proc, results = run_cli("run", "--adapters", "tests.faulty.broken_adapters", "--backend", "brokenfw:cpu",
                            "--backend", "numpy:cpu", "-k", GAIN, report_dir=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "backend brokenfw:cpu SKIPPED: framework failed to import" in proc.stdout
    assert "No module named 'not_a_real_framework_for_conformance'" in proc.stdout
    assert {r["outcome"] for r in records(results, backend="numpy:cpu")} == {"passed"}
    broken = records(results, backend="brokenfw:cpu")
    assert broken and {r["outcome"] for r in broken} == {"skipped"}
    assert "framework failed to import" in broken[0]["message"]
    assert results["backends"]["brokenfw:cpu"]["available"] is False


def test_unavailable_device_is_skipped_and_stated(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc, results = run_cli("run", "--backend", "torch:cuda", "-k", GAIN, report_dir=tmp_path)
    assert proc.returncode == 0
    assert "backend torch:cuda SKIPPED:" in proc.stdout
    recs = records(results, backend="torch:cuda")
    assert recs and all(r["outcome"] == "skipped" and "torch:cuda is unavailable" in r["message"] for r in recs)
    assert results["summary"]["passed"] == 0


def test_backends_command_lists_availability():
    proc, _ = run_cli("backends")
    assert proc.returncode == 0
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert "available" in lines["numpy:cpu"] and "numpy" in lines["numpy:cpu"]
    assert "unavailable" in lines["torch:mps"]


def test_results_json_schema_and_determinism(tmp_path):
    """Two runs with the same seed give the same verdicts and p-values; every record has the schema's fields."""
    args = ("run", "--backend", "numpy:cpu", "-k", "normal-0_1 or eye or (calculate_gain and relu)", "--seed", "7")
    _, first = run_cli(*args, report_dir=tmp_path / "a")
    _, second = run_cli(*args, "-n", "2", report_dir=tmp_path / "b")
    assert first["schema"] == 1 and first["seed"] == 7
    fields = {"id", "backend", "dtype", "outcome", "pvalue", "statistic", "effect", "n", "seed", "repro", "message"}
    assert first["records"] and all(fields <= set(r) for r in first["records"])

    def key(res):
        return [(r["id"], r["backend"], r["dtype"], r["outcome"], r["pvalue"], r["seed"]) for r in res["records"]]

    assert key(first) == key(second)
    assert (tmp_path / "a" / "index.html").read_text().count("<tr>") > len(first["records"]) // 4
    assert (tmp_path / "a" / "junit.xml").exists()


def test_malformed_known_failures_file(tmp_path):
    bad = tmp_path / "kf.toml"
    bad.write_text("schema = 1\n[[failure]]\ncheck = 'x'\n")
    proc, _ = run_cli("run", "--backend", "numpy:cpu", "--known-failures", str(bad), "-k", GAIN, report_dir=tmp_path)
    assert proc.returncode == 4
    assert "entry 1" in proc.stderr + proc.stdout and "missing keys" in proc.stderr + proc.stdout


def test_known_failure_becomes_xfail_and_stale_entries_warn(tmp_path):
    kf = tmp_path / "kf.toml"
    kf.write_text('schema = 1\n[[failure]]\ncheck = "gain/test_calculate_gain[relu]"\nbackend = "numpy:cpu"\n'
                  'reason = "pretend"\n[[failure]]\ncheck = "nothing/matches"\nbackend = "*"\nreason = "stale"\n')
    proc, results = run_cli("run", "--backend", "numpy:cpu", "--known-failures", str(kf), "-k", GAIN,
                            report_dir=tmp_path)
    (rec,) = records(results, "gain/test_calculate_gain[relu]")
    assert rec["outcome"] == "xpassed"
    stale = " ".join(results["stale_known_failures"])
    assert "gain/test_calculate_gain[relu]" in stale and "now passes" in stale
    assert "nothing/matches" not in stale  # a -k filtered run cannot tell whether an entry matches nothing


def test_known_failure_restricted_to_verdicts(tmp_path):
    """An entry with `tests = [...]` expects only those verdicts to fail: any other failing verdict is real."""
    check = "init_schemes/test_random_scheme[uniform-m3_5]"
    outcomes = {}
    every = '["support", "ks", "variance", "tail_lower", "tail_upper"]'  # what a 1% wider bound fails at n = 1e6
    for name, tests in (("support-only", '["support"]'), ("all-failing-verdicts", every)):
        kf = tmp_path / f"{name}.toml"
        kf.write_text(f'schema = 1\n[[failure]]\ncheck = "{check}"\nbackend = "faulty-bound:cpu"\n'
                      f'reason = "pretend"\ntests = {tests}\nsporadic = true\n')
        _, results = run_cli("run", "--adapters", "tests.faulty.init_adapters", "--backend", "faulty-bound:cpu",
                             "--known-failures", str(kf), "-k", "uniform-m3_5 and float32", report_dir=tmp_path / name)
        (rec,) = records(results, check, "faulty-bound:cpu", "float32")
        outcomes[name] = rec["outcome"]
        assert not results["stale_known_failures"]
    assert outcomes == {"support-only": "failed", "all-failing-verdicts": "xfailed"}
