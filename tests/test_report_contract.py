"""The explicit report contract: checks hand typed attachments to the report (conformance.report.attachments);
the report builds its sections from them alone, lists attachments it cannot read, and reads no file but the ones
it is given."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance.cli import main as cli_main
from conformance.context import ATTACHMENT_PROPERTY, USER_PROPERTY, CheckContext
from conformance.report import attachments as A
from conformance.report import named_table
from conformance.report.html import render_html
from conformance.report.merge import merge_results
from conformance.stats import compare_distribution, design, normal
from conformance.stats.verdict import Verdict

from .helpers import ROOT

PLOT = A.DistributionPlot(reference="normal(0, 1)", probs=[0.25, 0.5, 0.75], sample_q=[-0.7, 0.01, 0.66],
                          ref_q=[-0.674, 0.0, 0.674], edges=[-1.0, 0.0, 1.0], observed=[40, 60], expected=[50.0, 50.0],
                          cdf_x=[-1.0, 0.0, 1.0], cdf_y=[0.16, 0.5, 0.84], test="ks", what="normal_ float32")
ERROR_MAP = A.ActivationErrorMap(function="silu", output="value", dtype="float16", x=[-1.0, 0.5, 2.0],
                                 err=[0.0, 3.0, 0.5], nan_x=[65504.0], test="ulp")
CONTRACT = A.SeedContract(contract="unseeded", statement="deterministic default seed 0 (numpy docs)",
                          source="https://numpy.org/doc", value="deterministic",
                          behaviour="3 unseeded processes drew 1 distinct stream(s)", consistent=True)
ROW = A.NamedSchemeRow(scheme="he_normal", weight_kind="dense", framework="jax", backend="jax:cpu",
                       call="he_normal()", family="truncated normal", formula="std = sqrt(2 / fan_in) / .87962566",
                       shape=[384, 256], fan_in=256, fan_out=384, fitted={"std": 0.0884, "excess_kurtosis": -0.9},
                       canonical_std=0.0884, std_ratio_vs_canonical=1.0001, docs_verdict="pass",
                       canonical_verdict="documented difference", convention="truncated", source="jax docs",
                       quote="he_normal: truncated normal")
MISSING_ROW = A.NamedSchemeRow(scheme="lecun_uniform", weight_kind="conv2d", framework="numpy", backend="numpy:cpu",
                               note="numpy declares no named initializer for lecun_uniform")
AUDIT = A.ModelInitAudit(spec="gpt2", factory="conformance.backends.torch.models:gpt2", device_init="meta",
                         counts={"pass": 1, "fail": 1},
                         tensors=[{"name": "h.0.attn.c_proj.weight", "kind": "parameter", "status": "fail",
                                   "rule": "residual_proj", "rule_where": "", "layer_id": 0,
                                   "expected": {"std": 0.02}, "observed": {"std": 0.03}, "message": "std 0.03"}],
                         depth=[{"rule": "residual_proj", "layers": [0, 1], "observed_std": [0.03, 0.02],
                                 "expected_std": [0.02, 0.02], "stderr": [0.001, 0.001], "fit": {},
                                 "expected_fit": {}}])
EXAMPLES = [PLOT, ERROR_MAP, CONTRACT, ROW, MISSING_ROW, AUDIT]


# -- the attachments themselves ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("att", EXAMPLES, ids=lambda a: f"{a.kind}-{getattr(a, 'scheme', '')}")
def test_every_kind_round_trips_through_json(att):
    d = json.loads(json.dumps(att.to_dict(), allow_nan=False))
    assert d["kind"] == att.kind == type(att).KIND and d["version"] == att.version == 1
    assert type(att).from_dict(d) == att
    assert A.decode("x", d) == att


def test_every_kind_is_registered():
    assert set(A.KINDS) == {"distribution_plot", "activation_error_map", "seed_contract", "named_scheme_row",
                            "model_init_audit"}
    assert {type(a) for a in EXAMPLES} == set(A.KINDS.values())


@pytest.mark.parametrize(("data", "why"), [
    ({"kind": "violin_plot", "version": 1, "x": [1]}, "unknown attachment kind 'violin_plot'"),
    ({"version": 1, "spec": "gpt2"}, "unknown attachment kind None"),
    ({**PLOT.to_dict(), "version": 2}, "distribution_plot version 2; this suite reads version 1"),
    ({**CONTRACT.to_dict(), "colour": "red"}, "unknown fields ['colour']"),
    ({k: v for k, v in ERROR_MAP.to_dict().items() if k != "err"}, "missing fields ['err']"),
    ("not a dict", "unknown attachment kind None"),
])
def test_unknown_kind_version_or_fields_decode_to_a_note(data, why):
    got = A.decode("name", data)
    assert isinstance(got, A.Unreadable) and got.name == "name" and why in got.reason


def test_non_finite_numbers_stay_json():
    d = A.SeedContract("c", "s", "src", "v", "b").to_dict()
    assert d["consistent"] is None
    e = A.ActivationErrorMap("silu", "grad", "float32", x=[np.float32(1.5)], err=[float("inf")]).to_dict()
    assert e["x"] == [1.5] and e["err"] == ["inf"]
    json.dumps(e, allow_nan=False)


def test_attachments_module_is_framework_free():
    code = ("import sys, conformance.report.attachments, conformance.context; "
            "print(sorted(m for m in ('jinja2', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# -- checks hand them over through the context --------------------------------------------------------------------
def _context() -> tuple[CheckContext, list]:
    props: list = []
    return CheckContext("area/test_x", "numpy:cpu", "float32", 1, "repro", user_properties=props), props


def test_attach_stores_typed_dicts_under_unique_names():
    ctx, props = _context()
    assert ctx.attach(CONTRACT) == "seed_contract"
    assert ctx.attach(CONTRACT) == "seed_contract-2"
    assert ctx.attach(AUDIT, name="audit") == "audit"
    stored = {k: v for key, d in props if key == ATTACHMENT_PROPERTY for k, v in d.items()}
    assert list(stored) == ["seed_contract", "seed_contract-2", "audit"]
    assert stored["audit"]["kind"] == "model_init_audit" and A.decode("audit", stored["audit"]) == AUDIT
    with pytest.raises(TypeError, match="typed attachment"):
        ctx.attach({"kind": "seed_contract"})  # type: ignore[arg-type]


def test_distribution_plot_travels_beside_the_verdict_not_in_it():
    x = np.random.default_rng(3).standard_normal(20_000)
    verdicts = compare_distribution(x, normal(0.0, 1.0), "float32", design.ALPHA)
    gof = next(v for v in verdicts if v.test == "ks")
    assert [type(a) for a in gof.attachments] == [A.DistributionPlot]
    for v in verdicts:
        d = v.to_dict()
        assert "plot" not in d["observed"] and "attachments" not in d
        assert set(d) == {"test", "passed", "message", "n", "statistic", "pvalue", "alpha", "effect", "observed",
                          "expected", "severity"}
    ctx, props = _context()
    ctx.expect(verdicts, "normal_ float32")
    stored = [d for key, d in props if key == ATTACHMENT_PROPERTY]
    assert len(stored) == 1 and stored[0]["distribution_plot"]["test"] == "ks"
    assert stored[0]["distribution_plot"]["what"] == "normal_ float32"
    assert all("plot" not in v["observed"] for key, vs in props if key == USER_PROPERTY for v in vs)


def test_activation_error_map_is_an_attachment():
    from conformance.areas.activations import expect as E

    x = np.linspace(-4, 4, 101)
    ref = x / (1 + np.exp(-x))
    got = ref.copy()
    got[10] += 1e-3
    v = E.accuracy("silu", "value", x, got, ref, "float64")
    assert not v.passed and "error_map" not in v.observed
    (emap,) = v.attachments
    assert isinstance(emap, A.ActivationErrorMap) and (emap.function, emap.output, emap.dtype) == ("silu", "value",
                                                                                                   "float64")
    assert len(emap.x) == len(emap.err) > 0


# -- the report reads the attachments ---------------------------------------------------------------------------------
def _record(cid: str, backend: str, outcome: str, attachments: dict, dtype: str | None = "float32",
            verdicts: list | None = None) -> dict:
    verdicts = verdicts if verdicts is not None else [
        Verdict("ks", outcome == "passed", f"{cid} verdict", n=10, pvalue=0.5, alpha=1e-7).to_dict()]
    return {"id": cid, "backend": backend, "dtype": dtype, "tier": "hard", "outcome": outcome, "pvalue": 0.5,
            "statistic": 0.1, "effect": {}, "n": 10, "seed": 1, "repro": f"conformance run -k '{cid}'",
            "message": f"message of {cid}", "nodeid": cid, "duration": 0.1, "verdicts": verdicts,
            "detail": "", "known_failure": "", "attachments": attachments}


def _results(records: list[dict]) -> dict:
    counts = {k: sum(r["outcome"] == k for r in records) for k in ("passed", "failed", "skipped", "xfailed",
                                                                    "xpassed", "error")}
    backends = {"numpy:cpu": {"available": True, "versions": {"numpy": "2"}, "dtypes": ["float32"],
                              "capabilities": ["named_init", "seed"], "contracts": {}},
                "candle:cpu": {"available": True, "versions": {"candle": "0.8"}, "dtypes": ["float32"],
                               "capabilities": ["seed"], "contracts": {}}}
    return {"schema": 1, "suite_version": "0.1.0", "seed": 20251123, "created": "2025-01-01T00:00:00Z",
            "duration": 1.0, "environment": {"python": "3.11"}, "design": design.summary(), "backends": backends,
            "summary": {**counts, "total": len(records), "statistical_tests": len(records),
                        "fwer_bound": len(records) * design.ALPHA},
            "stale_known_failures": [], "records": records}


def _full_results() -> dict:
    return _results([
        _record("init_schemes/test_normal[0_1]", "numpy:cpu", "failed", {"distribution_plot": PLOT.to_dict()}),
        _record("activations/test_accuracy[silu]", "numpy:cpu", "failed", {"activation_error_map": ERROR_MAP.to_dict()},
                dtype="float16"),
        _record("processes/test_unseeded_processes", "numpy:cpu", "passed", {"seed_contract": CONTRACT.to_dict()},
                dtype=None),
        # a renamed check: the table comes from the attachments, whatever the id
        _record("renamed_area/test_what_initializers_draw[anything]", "jax:cpu", "passed",
                {"named_scheme_row": ROW.to_dict()}),
        _record("renamed_area/test_what_initializers_draw[else]", "numpy:cpu", "skipped",
                {"named_scheme_row": MISSING_ROW.to_dict()}),
        _record("model_init/test_reference_model_init[gpt2]", "torch:cpu", "failed",
                {"model_init_audit": AUDIT.to_dict()}, dtype=None),
        _record("seeds/test_future", "numpy:cpu", "passed",
                {"violin": {"kind": "violin_plot", "version": 1}, "old": {**CONTRACT.to_dict(), "version": 7}}),
    ])


def test_report_renders_every_section_from_attachments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    html = render_html(_full_results())
    problem = html.split('data-id="init_schemes/test_normal[0_1]" data-outcomes="failed">', 1)[1].split("</section>")[0]
    assert 'alt="distribution plots for init_schemes/test_normal[0_1]" src="data:image/png;base64,' in problem
    assert 'alt="error map for activations/test_accuracy[silu]" src="data:image/png;base64,' in html
    contracts = html.split('<table id="contracts">', 1)[1].split("</table>")[0]
    assert contracts.count('<tr class="contract">') == 1
    assert "deterministic default seed 0 (numpy docs)" in contracts and "drew 1 distinct stream(s)" in contracts
    named = html.split('<table id="named">', 1)[1].split("</table>")[0]
    assert "he_normal()" in named and "0.0884" in named and "documented difference" in named
    assert "lecun_uniform" in named and "skipped" in named
    assert "Not run on candle:cpu (no <code>named_init</code> capability)" in html
    assert "Model init audits" in html and "h.0.attn.c_proj.weight" in html and 'alt="std against depth' in html
    unreadable = html.split('<table id="unreadable">', 1)[1].split("</table>")[0]
    assert "violin_plot" in unreadable and "unknown attachment kind" in unreadable
    assert "seed_contract version 7; this suite reads version 1" in unreadable
    assert "seeds/test_future" in unreadable
    assert "Mutation score" not in html


def test_named_table_comes_from_attachments_not_check_ids():
    rows = named_table.from_results(_full_results())
    assert [(r["scheme"], r["kind"], r["framework"]) for r in rows] == [("he_normal", "dense", "jax"),
                                                                         ("lecun_uniform", "conv2d", "numpy")]
    drawn, missing = rows
    assert drawn["fitted_std"] == 0.0884 and drawn["docs_verdict"] == "pass" and drawn["outcome"] == "passed"
    assert missing["fitted_std"] is None and missing["docs_verdict"] == "skipped"
    assert missing["note"].startswith("numpy declares no named initializer")
    assert "he_normal" in named_table.as_text(rows)
    # a named-scheme check id with no attachment contributes nothing: ids are never parsed
    bare = _results([_record("named_schemes/test_named_scheme[he_normal-dense]", "numpy:cpu", "passed", {})])
    assert named_table.from_results(bare) == []


def test_no_attachments_no_sections():
    html = render_html(_results([_record("gain/test_calculate_gain[relu]", "numpy:cpu", "passed", {})]))
    for marker in ('id="named"', 'id="contracts"', 'id="unreadable"', "Model init audits", "Mutation score"):
        assert marker not in html


# -- the report reads nothing but the given files ---------------------------------------------------------------------
def _decoy(where: Path) -> None:
    (where / "reports").mkdir(parents=True, exist_ok=True)
    (where / "reports" / "mutation_score.json").write_text(json.dumps(
        {"caught": 111, "total": 999, "mutants": [{"mutant": "DECOY_MUTANT", "caught": True}]}))


def test_render_ignores_files_in_the_working_directory(tmp_path, monkeypatch):
    _decoy(tmp_path)
    monkeypatch.chdir(tmp_path)
    html = render_html(_full_results())
    assert "DECOY_MUTANT" not in html and "Mutation score" not in html and "111 of 999" not in html
    given = render_html(_full_results(), mutation_score={"caught": 5, "total": 6, "mutants": [
        {"mutant": "std_times_1.01", "backend": "faulty-std:cpu", "check": "init_schemes/test_normal",
         "dtype": "float32", "test": "variance", "caught": True, "reference_outcome": "passed"}]})
    assert "5 of 6 faulty adapters caught" in given and "std_times_1.01" in given


def test_report_command_reads_only_its_arguments(tmp_path, monkeypatch, capsys):
    _decoy(tmp_path)
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "run" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps(_full_results()))
    assert cli_main(["report", str(results)]) == 0
    html = (results.parent / "index.html").read_text()
    assert "DECOY_MUTANT" not in html and "Mutation score" not in html
    score = tmp_path / "elsewhere" / "score.json"
    score.parent.mkdir()
    score.write_text(json.dumps({"caught": 2, "total": 3, "mutants": [{"mutant": "GIVEN_MUTANT", "caught": False}]}))
    assert cli_main(["report", str(results), "-o", str(tmp_path / "out"), "--mutation-score", str(score)]) == 0
    html = (tmp_path / "out" / "index.html").read_text()
    assert "2 of 3 faulty adapters caught" in html and "GIVEN_MUTANT" in html and "DECOY_MUTANT" not in html
    assert cli_main(["report", str(results), "--mutation-score", str(tmp_path / "nope.json")]) == 2
    assert "no such mutation score file" in capsys.readouterr().err


def test_merge_keeps_attachments_and_takes_the_mutation_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = tmp_path / "a" / "results.json", tmp_path / "b" / "results.json"
    for p in (a, b):
        p.parent.mkdir()
        p.write_text(json.dumps(_full_results()))
    merged = merge_results([a, b])
    assert all(r["attachments"] for r in merged["records"])
    assert named_table.from_results(merged)
    score = tmp_path / "score.json"
    score.write_text(json.dumps({"caught": 1, "total": 1}))
    out = tmp_path / "m"
    assert cli_main(["report", "merge", str(a), str(b), "-o", str(out), "--mutation-score", str(score)]) == 0
    html = (out / "index.html").read_text()
    assert "1 of 1 faulty adapters caught" in html and 'id="named"' in html and 'id="contracts"' in html


def test_report_package_has_no_import_cycle():
    pkg = ROOT / "conformance" / "report"
    graph: dict[str, set[str]] = {}
    for f in pkg.glob("*.py"):
        deps = set()
        for node in ast.parse(f.read_text()).body:  # module-level imports only
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                deps.add(node.module.split(".")[0])
        graph[f.stem] = deps
    assert "cli" not in graph["merge"] and {"load"} <= graph["merge"] & graph["cli"]  # load_results lives in load.py

    def visit(node: str, stack: tuple[str, ...]) -> None:
        assert node not in stack, f"import cycle: {' -> '.join(stack + (node,))}"
        for dep in graph.get(node, ()):
            visit(dep, stack + (node,))

    for mod in graph:
        visit(mod, ())
