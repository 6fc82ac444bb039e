"""Hostile adapters: what an adapter hands back, a probe or constructor that raises, a PROVIDERS that is no list of
providers. Each fails at once with a message naming what happened, never with a hang, an INTERNALERROR or a run that
stops half way.

The faulty adapters are in ``tests/faulty/broken_adapters.py`` (``HOSTILE_OUTPUTS``, ``PROBE_RAISES``, ...).
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conformance.backends import base, registry
from conformance.backends.base import AdapterOutputError, BackendUnavailable, UnknownBackendError

from conformance.context import CheckContext, CheckFailed

from .faulty import broken_adapters as hostile
from .helpers import failed_tests, records

ROOT = Path(__file__).resolve().parents[1]
MODULE = "tests.faulty.broken_adapters"
#: Only a guard against a hang: these runs take seconds; before the fixes the first one ran for hours.
HANG_GUARD_S = 180


def conformance_cli(*args: str, env: dict | None = None, report_dir: Path | None = None):
    """``python -m conformance <args>`` from the repo root; returns (process, results.json or None)."""
    cmd = [sys.executable, "-m", "conformance", *args]
    if report_dir is not None:
        cmd += ["--report-dir", str(report_dir)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S,
                          env={**os.environ, **(env or {})})
    results = None
    if report_dir is not None and (report_dir / "results.json").exists():
        results = json.loads((report_dir / "results.json").read_text())
    return proc, results


@pytest.fixture
def fresh_registry(monkeypatch):
    """Run-time registrations and the output observer of this test only."""
    monkeypatch.setattr(registry, "_runtime", {})
    monkeypatch.setattr(base, "_observer", None)
    return registry


def _adapter(cls, name: str = "hostile-x"):
    """A fresh adapter of ``cls`` built the way a run builds it (``Provider.create``: outputs guarded)."""
    (provider,) = hostile.providers(**{name.replace("-", "_"): cls})
    return provider.create("cpu")


# -- 1. what an adapter hands back ----------------------------------------------------------------------------------
NORMAL_CALL = "init('normal', shape=(1000, 1000), dtype='float32')"
EXPECTED_ARRAY = "expected a numpy array of shape (1000, 1000) and dtype float32"
#: hostile backend -> what the message must say came back from init('normal', (1000, 1000), 'float32')
RETURNED = {
    "hostile-init-none": "returned None",
    "hostile-init-float": "returned a float (0.5)",
    "hostile-init-npscalar": "returned a numpy scalar of dtype float32 (0.5)",
    "hostile-init-shape": "returned an array of shape (10, 1000) and dtype float32",
    "hostile-init-dtype": "returned an array of shape (1000, 1000) and dtype float64",
    "hostile-init-list": "returned a list of 2 items",
}
RANDOM = "init_schemes/test_random_scheme[normal-0_1]"
MOMENTS = "init_schemes/test_random_scheme_moments[normal-0_1]"
EXACT = "init_schemes/test_deterministic_scheme[zeros]"
SLICES = "seeds/test_slices_differ[rank2-normal]"
MODULE_DEFAULT = "module_defaults/test_random_default[Linear-weight-in_features300-out_features4000]"
SELECTION = ("(hostile-init and float32 and (normal-0_1 or (test_deterministic_scheme and zeros))) or "
             "(hostile-sample-none and test_slices_differ and rank2-normal and float32) or "
             "(hostile-module-none and test_random_default and Linear-weight-in_features300 and float32)")


@pytest.fixture(scope="module")
def output_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile-outputs")
    calls = out / "calls.txt"
    args = ["run", "--adapters", f"{MODULE}:HOSTILE_OUTPUTS", "-k", SELECTION, "-q"]
    for provider in hostile.HOSTILE_OUTPUTS:
        args += ["--backend", f"{provider.framework}:cpu"]
    proc, results = conformance_cli(*args, env={hostile.CALLS_ENV: str(calls)}, report_dir=out / "reports")
    assert results is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    counted = collections.Counter(calls.read_text().splitlines()) if calls.exists() else collections.Counter()
    return proc, results, counted


@pytest.mark.parametrize("backend", sorted(RETURNED))
@pytest.mark.parametrize("check", [RANDOM, MOMENTS, EXACT])
def test_bad_init_output_fails_the_check_naming_what_came_back(output_run, backend, check):
    proc, results, _ = output_run
    (rec,) = records(results, check, f"{backend}:cpu", "float32")
    assert rec["outcome"] == "failed", rec
    assert failed_tests(rec) == {"adapter_output"}, rec["message"]
    call = NORMAL_CALL if check != EXACT else "init('zeros', shape=(31, 17), dtype='float32')"
    expected = EXPECTED_ARRAY if check != EXACT else "expected a numpy array of shape (31, 17) and dtype float32"
    returned = RETURNED[backend]
    if check == EXACT and backend == "hostile-init-shape":
        returned = "returned an array of shape (10, 17) and dtype float32"
    if check == EXACT and backend == "hostile-init-dtype":
        returned = "returned an array of shape (31, 17) and dtype float64"
    assert rec["message"] == f"[adapter_output] {backend}:cpu {call} {returned}; {expected}"
    assert f"[{backend}:cpu float32] {rec['message']}" in proc.stdout  # the terminal summary names it too


def test_each_check_asked_the_bad_adapter_once(output_run):
    """No check loops on a bad output: three checks per hostile init backend, one call each (before the fix: a
    million calls per distribution check, one per element)."""
    _, _, counted = output_run
    for backend in RETURNED:
        assert 1 <= counted[f"{backend} init"] <= 3, counted
    assert counted["hostile-sample-none sample"] == 1, counted
    assert counted["hostile-module-none module_params"] == 1, counted


def test_bad_sample_and_module_params_fail_naming_what_came_back(output_run):
    proc, results, _ = output_run
    (rec,) = records(results, SLICES, "hostile-sample-none:cpu", "float32")
    assert rec["outcome"] == "failed" and failed_tests(rec) == {"adapter_output"}
    assert rec["message"] == ("[adapter_output] hostile-sample-none:cpu sample('normal', shape=(5, 7), "
                              "dtype='float32') returned None; expected a numpy array of shape (5, 7) and dtype "
                              "float32")
    (rec,) = records(results, MODULE_DEFAULT, "hostile-module-none:cpu", "float32")
    assert rec["outcome"] == "failed" and failed_tests(rec) == {"adapter_output"}
    assert "module_params('Linear', dtype='float32', in_features=300, out_features=4000) returned a dict whose " \
           "entry 'weight' is None" in rec["message"]
    assert proc.returncode == 1


@pytest.mark.parametrize(("cls", "returned"), [
    (hostile.InitReturnsNone, "None"),
    (hostile.InitReturnsFloat, "a float (0.5)"),
    (hostile.InitReturnsList, "a list of 2 items"),
    (hostile.InitWrongShape, "an array of shape (10, 20) and dtype float32"),
    (hostile.InitWrongDtype, "an array of shape (30, 20) and dtype float64"),
])
def test_guarded_adapter_raises_at_once(fresh_registry, cls, returned):
    adapter = _adapter(cls)
    with pytest.raises(AdapterOutputError) as info:
        adapter.init("uniform", (30, 20), "float32", low=-1.0)
    assert str(info.value) == (f"hostile-x:cpu init('uniform', shape=(30, 20), dtype='float32', low=-1.0) returned "
                               f"{returned}; expected a numpy array of shape (30, 20) and dtype float32")


def test_guard_keeps_genuine_outputs_and_capabilities(fresh_registry):
    adapter = _adapter(hostile.NumpyBackend, "guarded-numpy")
    assert adapter.capabilities == base.implemented_capabilities(hostile.NumpyBackend)
    x = adapter.init("normal", (4, 3), "bfloat16")
    assert x.shape == (4, 3) and x.dtype.name == "bfloat16"
    assert adapter.sample("uniform", (5,), "float64", generator=adapter.generator(1)).shape == (5,)
    assert adapter.dropout_mask((8,), 0.5, "float32").dtype == bool
    assert adapter.module_params("LayerNorm", "float32", normalized_shape=(4,), elementwise_affine=False) == {}
    assert base.guard_outputs(adapter) is adapter  # idempotent


def test_adapter_output_error_becomes_the_running_checks_failed_verdict(fresh_registry):
    props: list = []
    ctx = CheckContext("area/test_x", "hostile-x:cpu", "float32", 1, "repro", user_properties=props)
    adapter = _adapter(hostile.InitReturnsNone)
    with pytest.raises(CheckFailed, match=r"\[adapter_output\] hostile-x:cpu init\('eye', shape=\(3, 3\)"):
        adapter.init("eye", (3, 3), "float32")  # a direct call, outside draw()
    (verdict,) = ctx.verdicts
    assert verdict.test == "adapter_output" and not verdict.passed
    assert verdict.observed["returned"] == "None" and verdict.expected["shape"] == (3, 3)
    assert props and props[-1][0] == "conformance_verdicts"


@pytest.mark.parametrize(("value", "returned"), [
    (None, "None"), (0.5, "a float (0.5)"), (np.float32(2.0), "a numpy scalar of dtype float32 (2.0)"),
    (np.array(1.0), "a 0-d array (a scalar) of dtype float64"), ([1.0, 2.0], "a list of 2 items"),
    (np.array([], np.float32), "an array of shape (0,) and dtype float32"),
    (np.array(["a"]), "an array of shape (1,) and dtype <U1"),
])
@pytest.mark.parametrize("how", ["draw", "moments"])
def test_draw_and_moments_refuse_a_bad_sampler_at_the_first_call(fresh_registry, value, returned, how):
    ctx = CheckContext("area/test_x", "numpy:cpu", "float32", 1, "repro")
    calls = []

    def sampler():
        calls.append(1)
        return value

    with pytest.raises(CheckFailed) as info:
        if how == "draw":
            ctx.draw(sampler)
        else:
            ctx.moments(sampler, n=2**26, centre=0.0)
    assert len(calls) == 1
    assert f"[sampler_output] numpy:cpu {how}(): the sampler returned {returned}; expected a non-empty numpy " \
           "array of numbers" in str(info.value)
    assert [v.test for v in ctx.verdicts] == ["sampler_output"]


def test_draw_still_concatenates_good_parts():
    ctx = CheckContext("area/test_x", "numpy:cpu", "float32", 1, "repro")
    x = ctx.draw(lambda: np.ones((2, 3), np.float32), n=10)
    assert x.shape == (10,) and x.dtype == np.float32
    acc = ctx.moments(lambda: np.ones(4), n=10, centre=0.0)
    assert acc.n == 10 and acc.mean == 1.0


# -- 2. `conformance backends` with a broken provider --------------------------------------------------------------
def test_describe_lists_every_row_with_broken_ones_and_their_reason(fresh_registry):
    for name in ("CONSTRUCTOR_RAISES", "VERSIONS_RAISE", "PROBE_RAISES"):
        registry.load_adapter_module(f"{MODULE}:{name}")
    rows = {r.spec: r for r in registry.describe(versions=True)}
    assert rows["hostile-ctor:cpu"].status == "broken" and not rows["hostile-ctor:cpu"].available
    assert rows["hostile-ctor:cpu"].reason == "constructor raised RuntimeError: the adapter's __init__ fell over"
    assert rows["hostile-versions:cpu"].status == "broken"
    assert rows["hostile-versions:cpu"].reason == "versions() raised KeyError: 'no version here'"
    assert rows["hostile-probe:cpu"].status == "unavailable"
    assert rows["hostile-probe:cpu"].reason == "probe() raised ValueError: the probe fell over"
    assert rows["numpy:cpu"].status == "available" and rows["numpy:cpu"].versions["numpy"] == np.__version__
    # without versions nothing is built: the broken constructor is not called
    plain = {r.spec: r for r in registry.describe()}
    assert plain["hostile-ctor:cpu"].status == "available" and plain["hostile-ctor:cpu"].versions == {}


def test_backends_command_prints_every_row_when_a_constructor_raises():
    adapters = [arg for name in ("CONSTRUCTOR_RAISES", "VERSIONS_RAISE", "PROBE_RAISES")
                for arg in ("--adapters", f"{MODULE}:{name}")]
    proc, _ = conformance_cli("backends", *adapters)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert re.fullmatch(r"hostile-ctor:cpu +broken +constructor raised RuntimeError: the adapter's __init__ fell over",
                        lines["hostile-ctor:cpu"])
    assert re.fullmatch(r"hostile-versions:cpu +broken +versions\(\) raised KeyError: 'no version here'",
                        lines["hostile-versions:cpu"])
    assert re.fullmatch(r"hostile-probe:cpu +unavailable +probe\(\) raised ValueError: the probe fell over",
                        lines["hostile-probe:cpu"])
    # the rows after the broken ones (alphabetically) are there, with versions or reasons
    assert "available" in lines["numpy:cpu"] and "numpy" in lines["numpy:cpu"]
    assert "torch:cuda" in lines and "torch:mps" in lines
    assert {line.split()[1] for line in lines.values()} <= {"available", "unavailable", "broken"}

    proc, _ = conformance_cli("backends", "--json", *adapters)
    assert proc.returncode == 0, proc.stderr
    rows = {r["spec"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(lines)
    assert rows["hostile-ctor:cpu"]["status"] == "broken" and rows["hostile-ctor:cpu"]["available"] is False
    assert rows["hostile-ctor:cpu"]["reason"] == "constructor raised RuntimeError: the adapter's __init__ fell over"
    assert rows["numpy:cpu"]["status"] == "available" and rows["numpy:cpu"]["versions"]


# -- 3. PROVIDERS that is not a list of providers ------------------------------------------------------------------
BAD_PROVIDERS = {
    "hostile_providers_int": ("PROVIDERS = 5", "PROVIDERS is an int (5)"),
    "hostile_providers_item": ("PROVIDERS = ['numpy:cpu']", "PROVIDERS[0] is a str ('numpy:cpu')"),
    "hostile_providers_class": ("from conformance.backends.numpy_adapter import NumpyProvider\n"
                                "PROVIDERS = [NumpyProvider]",
                                "PROVIDERS[0] is the class NumpyProvider (not an instance)"),
    "hostile_providers_none": ("PROVIDERS = None", "PROVIDERS is None"),
}


@pytest.mark.parametrize("module", sorted(BAD_PROVIDERS))
def test_load_adapter_module_refuses_what_is_not_providers(fresh_registry, tmp_path, monkeypatch, module):
    source, what = BAD_PROVIDERS[module]
    (tmp_path / f"{module}.py").write_text(source + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnknownBackendError) as info:
        registry.load_adapter_module(module)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"adapter module {module!r}: {what}; ")
    assert "Provider instance or an iterable of them" in message
    assert registry._runtime == {}  # nothing half registered


def test_run_with_providers_five_is_a_one_line_usage_error(tmp_path):
    (tmp_path / "hostile_five.py").write_text("PROVIDERS = 5\n")
    proc, _ = conformance_cli("run", "--adapters", "hostile_five", "--backend", "numpy:cpu", "-k", "calculate_gain",
                              env={"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                                               os.environ.get("PYTHONPATH")]))},
                              report_dir=tmp_path / "reports")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-3000:]
    assert "INTERNALERROR" not in out and "Traceback" not in out
    (line,) = [line for line in out.splitlines() if "hostile_five" in line]
    assert "adapter module 'hostile_five': PROVIDERS is an int (5); it should be a Provider instance" in line


# -- 4. a probe that raises ---------------------------------------------------------------------------------------
def test_probe_that_raises_is_unavailable_everywhere(fresh_registry):
    registry.load_adapter_module(f"{MODULE}:PROBE_RAISES")
    reason = "probe() raised ValueError: the probe fell over"
    assert registry.probe("hostile-probe:cpu") == base.Availability(False, reason)
    with pytest.raises(BackendUnavailable, match=re.escape(f"hostile-probe:cpu is unavailable: {reason}")):
        registry.resolve("hostile-probe:cpu")  # the backend fixture's call: skipped, not an error
    assert "hostile-probe:cpu" not in registry.available_specs()


def test_run_skips_every_check_of_a_backend_whose_probe_raises(tmp_path):
    proc, results = conformance_cli("run", "--adapters", f"{MODULE}:PROBE_RAISES", "--backend", "hostile-probe:cpu",
                                    "--backend", "numpy:cpu", "-k", "calculate_gain", report_dir=tmp_path)
    assert results is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    reason = "probe() raised ValueError: the probe fell over"
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert f"backend hostile-probe:cpu SKIPPED: {reason}" in proc.stdout
    mine = records(results, backend="hostile-probe:cpu")
    assert mine and {r["outcome"] for r in mine} == {"skipped"}
    assert all(reason in r["message"] for r in mine)
    assert results["summary"]["error"] == 0 and results["summary"]["failed"] == 0
    assert {r["outcome"] for r in records(results, backend="numpy:cpu")} == {"passed"}
    assert results["backends"]["hostile-probe:cpu"] == {"available": False, "reason": reason}
