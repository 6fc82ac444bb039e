"""Determinism across the suite's areas: two serial runs with the same master seed write identical results files
apart from timings (``created``, ``duration``, each record's ``timing``), and a ``-n 2`` run gives the same verdicts
(outcome, statistic, p-value, seed of every test) as the serial one. The selection spans init schemes (continuous
and 16-bit), module defaults, deterministic schemes, gains, seeds, RNG state and activations (with a known failure,
whose traceback must not leak memory addresses into the file), on numpy:cpu and torch:cpu."""

from __future__ import annotations

import copy

import pytest

from .helpers import run_cli

SEED = "4242"
BACKENDS = ("numpy:cpu", "torch:cpu")
SELECTION = ("(test_random_scheme and normal-0_1 and (float32 or bfloat16)) "
             "or (test_random_scheme and kaiming_uniform-fan_in-relu and float32) "
             "or (test_deterministic_default and LayerNorm and float32) "
             "or (test_deterministic_scheme and (eye-5x7 or dirac-1d)) "
             "or (test_calculate_gain and relu) "
             "or ((test_successive_draws_differ or test_layers_independent) and float32) "
             "or (test_restore_resumes_stream and uniform and float16) "
             "or (test_accuracy and silu and not swiglu and bfloat16)")  # a known failure on torch:cpu (xfail)
TIMINGS = ("created", "duration", "timing")  # a record's timing: its setup, call and adapter seconds


def _run(tmp_path, name: str, *extra: str) -> dict:
    args = ["run", "-q", "--seed", SEED, "-k", SELECTION, *extra]
    for b in BACKENDS:
        args += ["--backend", b]
    proc, results = run_cli(*args, report_dir=tmp_path / name)
    assert results is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode in (0, 1), proc.stdout[-3000:]
    return results


def without_timings(results: dict) -> dict:
    """The results document with its timings removed and records in node-id order."""
    doc = copy.deepcopy(results)
    for key in TIMINGS:
        doc.pop(key, None)
    for rec in doc["records"]:
        for key in TIMINGS:
            rec.pop(key, None)
    doc["records"].sort(key=lambda r: r["nodeid"])
    return doc


def verdicts(results: dict) -> list[tuple]:
    return sorted((r["id"], r["backend"], r["dtype"], r["outcome"], r["seed"], r["pvalue"], r["statistic"],
                   tuple((v["test"], v["passed"], v.get("pvalue"), v.get("statistic")) for v in r["verdicts"]))
                  for r in results["records"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("determinism")
    return _run(tmp, "serial-a"), _run(tmp, "serial-b"), _run(tmp, "xdist", "-n", "2")


def test_selection_spans_the_areas(runs):
    first, _, _ = runs
    areas = {r["id"].split("/")[0] for r in first["records"]}
    assert {"init_schemes", "module_defaults", "gain", "seeds", "rng_state", "activations"} <= areas, areas
    assert {r["backend"] for r in first["records"]} == set(BACKENDS)
    assert len(first["records"]) >= 25


def test_same_seed_same_results_file_apart_from_timings(runs):
    first, second, _ = runs
    a, b = without_timings(first), without_timings(second)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], f"results.json differs in {key!r} between two runs with seed {SEED}"


def test_serial_and_two_workers_give_identical_verdicts(runs):
    serial, _, xdist = runs
    assert verdicts(serial) == verdicts(xdist)
    # every other field too, except the traceback text of failed/xfailed records (xdist reformats it)
    strip = [{k: v for k, v in r.items() if k != "detail"} for r in without_timings(serial)["records"]]
    assert strip == [{k: v for k, v in r.items() if k != "detail"} for r in without_timings(xdist)["records"]]
