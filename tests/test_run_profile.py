"""Where a run's time goes (conformance.report.profile, `conformance report profile`), the per-record timing it
reads, and the defaults of a user's run: the numpy reference left out unless asked, -n auto for a whole run."""

from __future__ import annotations

import json

import pytest

from conformance.cli import build_parser, default_workers, pytest_args
from conformance.report import profile as pf
from tests.helpers import run_cli


def _record(check: str, backend: str = "torch:cpu", setup: float = 0.1, call: float = 1.0, adapter: float = 0.25,
            outcome: str = "passed") -> dict:
    return {"id": check, "backend": backend, "dtype": "float32", "outcome": outcome, "verdicts": [],
            "timing": {"setup": setup, "call": call, "adapter": adapter}}


def test_profile_splits_draw_check_setup_and_groups_by_area_kind_backend():
    results = {"duration": 10.0, "records": [
        _record("init_schemes/test_random_scheme[normal-0_1]"),
        _record("init_schemes/test_random_scheme[uniform-0_1]", call=2.0, adapter=0.5),
        _record("activations/test_hypothesis[silu]", backend="jax:cpu", setup=0.0, call=3.0, adapter=1.0),
    ]}
    p = pf.profile(results, workers=2)
    assert p.total.checks == 3
    assert p.total.draw == pytest.approx(1.75) and p.total.check == pytest.approx(4.25)
    assert p.total.setup == pytest.approx(0.2) and p.total.total == pytest.approx(6.2)
    assert p.harness == pytest.approx(10.0 * 2 - 6.2)
    assert p.areas["init_schemes"].checks == 2 and p.areas["activations"].draw == pytest.approx(1.0)
    assert set(p.kinds) == {"init_schemes/test_random_scheme", "activations/test_hypothesis"}
    assert p.backends["jax:cpu"].total == pytest.approx(3.0)
    assert p.slowest[0] == (pytest.approx(3.0), "activations/test_hypothesis[silu] [jax:cpu float32]")
    text = pf.markdown(p)
    assert "| init_schemes | 2 | 3.2 |" in text and "harness 13.8 s" in text


def test_profile_of_records_without_timing_counts_their_duration_as_check():
    old = {"id": "seeds/test_x", "backend": "numpy:cpu", "dtype": None, "outcome": "passed", "duration": 0.5}
    p = pf.profile({"duration": 1.0, "records": [old]})
    assert p.total.check == pytest.approx(0.5) and p.total.draw == 0.0
    # an adapter time above the call (clock skew) never makes the check's share negative
    p = pf.profile({"duration": 1.0, "records": [_record("a/test_b", call=0.1, adapter=0.3)]})
    assert p.total.check == 0.0 and p.total.draw == pytest.approx(0.1)


def test_a_run_records_timing_per_check_and_the_profile_reads_it(tmp_path):
    sel = "test_random_scheme and not moments and normal-0_1 and float32"
    proc, results = run_cli("run", "--backend", "numpy:cpu", "-k", sel, report_dir=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (rec,) = [r for r in results["records"] if r["id"] == "init_schemes/test_random_scheme[normal-0_1]"]
    t = rec["timing"]
    assert set(t) == {"setup", "call", "adapter"}
    assert 0 < t["adapter"] <= t["call"]  # the draws happen inside the adapter; the statistics outside it
    assert results["workers"] == 1  # a -k selection runs in one process by default
    shown = run_cli("report", "profile", str(tmp_path / "results.json"))[0]
    assert shown.returncode == 0 and "| init_schemes | 1 |" in shown.stdout, shown.stdout + shown.stderr


def test_report_profile_refuses_two_files_and_a_malformed_one(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"schema": 1, "records": [{"id": "a/b", "backend": "x:cpu", "outcome": "passed",
                                                         "timing": {"call": "slow"}}]}))
    proc = run_cli("report", "profile", str(bad))[0]
    assert proc.returncode == 4 and "timing" in proc.stderr
    proc = run_cli("report", "profile", str(bad), str(bad))[0]
    assert proc.returncode == 2 and "one results file" in proc.stderr


@pytest.mark.parametrize(("argv", "extra", "want"), [
    (["run"], [], "auto"),
    (["run", "--backend", "torch:cpu"], [], "auto"),
    (["run", "-k", "kaiming"], [], "0"),
    (["run"], ["-k", "kaiming"], "0"),
    (["run"], ["-m", "numpy"], "0"),
    (["run"], ["--maxfail=1"], "auto"),
])
def test_default_workers_whole_run_parallel_selection_serial(argv, extra, want, monkeypatch):
    import conformance.cli as cli

    monkeypatch.setattr(cli, "_cpus", lambda: 4)
    assert default_workers(build_parser().parse_args(argv), extra) == want
    monkeypatch.setattr(cli, "_cpus", lambda: 1)
    assert default_workers(build_parser().parse_args(argv), extra) == "0"


def test_pytest_args_parallel_uses_worksteal_serial_and_no_xdist_do_not():
    args = build_parser().parse_args(["run"])
    args.workers = "auto"
    assert pytest_args(args, [])[-2:] == ["--numprocesses=auto", "--dist=worksteal"]
    args.workers = "0"
    assert "--numprocesses=0" in pytest_args(args, [])
    args.workers = "auto"
    assert not [a for a in pytest_args(args, ["-p", "no:xdist"]) if a.startswith(("--numprocesses", "--dist"))]


def test_the_reference_adapter_is_left_out_of_a_default_run_unless_asked(tmp_path):
    """A user's `conformance run` (no --backend) does not pay for numpy:cpu; --with-reference or --backend runs it.
    Selected with -k so that only a few cheap checks run; the backend list is the same for any selection."""
    sel = "test_reseed_reproduces and float32"
    proc, results = run_cli("run", "-k", sel, report_dir=tmp_path / "default")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "numpy:cpu" not in {r["backend"] for r in results["records"]}
    assert "torch:cpu" in {r["backend"] for r in results["records"]}
    assert "backend numpy:cpu: not run - the suite's reference adapter" in proc.stdout
    proc, results = run_cli("run", "--with-reference", "-k", sel, report_dir=tmp_path / "with")
    assert proc.returncode == 0 and "numpy:cpu" in {r["backend"] for r in results["records"]}
    proc, results = run_cli("run", "--backend", "numpy:cpu", "-k", sel, report_dir=tmp_path / "asked")
    assert proc.returncode == 0 and {r["backend"] for r in results["records"]} == {"numpy:cpu"}


def test_thread_budget_shares_the_cpus_between_workers_and_respects_the_caller(monkeypatch):
    import conformance.cli as cli

    for name in cli.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli, "_cpus", lambda: 8)
    assert cli.thread_budget("0") == {} and cli.thread_budget(None) == {}
    assert cli.thread_budget("2") == dict.fromkeys(cli.THREAD_VARIABLES, "4")
    monkeypatch.delenv("MKL_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the caller's choice stays
    assert cli.thread_budget("auto") == {"MKL_NUM_THREADS": "1"}
    import os

    assert os.environ["OMP_NUM_THREADS"] == "3"


def test_jax_compilation_cache_location_and_the_users_own_cache_wins(monkeypatch, tmp_path):
    """JAX's persistent compilation cache: $CONFORMANCE_JAX_CACHE (off: none), else the XDG cache; a cache the user
    configured is left as it is."""
    from conformance.backends import jax_adapter as J

    class Config:
        jax_compilation_cache_dir = None

        def __init__(self):
            self.set = {}

        def update(self, name, value):
            self.set[name] = value
            setattr(self, name, value)

    class FakeJax:
        config = Config()

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(J.CACHE_VARIABLE, raising=False)
    assert J.compilation_cache_dir() == str(tmp_path / "dl-conformance" / "jax")
    fake = FakeJax()
    assert J.use_compilation_cache(fake) == str(tmp_path / "dl-conformance" / "jax")
    assert fake.config.set["jax_persistent_cache_min_compile_time_secs"] == 0.0
    mine = FakeJax()
    mine.config = Config()
    mine.config.jax_compilation_cache_dir = "/my/cache"
    assert J.use_compilation_cache(mine) == "/my/cache" and mine.config.set == {}
    monkeypatch.setenv(J.CACHE_VARIABLE, "off")
    off = FakeJax()
    off.config = Config()
    assert J.use_compilation_cache(off) is None and off.config.set == {}
    monkeypatch.setenv(J.CACHE_VARIABLE, str(tmp_path / "here"))
    assert J.compilation_cache_dir() == str(tmp_path / "here")
