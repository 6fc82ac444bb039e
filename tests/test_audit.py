"""The init audit on torch:cpu: reference models pass their specs, faulty models are caught and named."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from conformance.audit import SpecError, assert_init_matches, audit, loads_spec  # noqa: E402
from conformance.audit.engine import fit_depth  # noqa: E402
from conformance.audit.factory import FactoryError  # noqa: E402
from conformance.cli import main as cli_main  # noqa: E402

GPT2 = "conformance.backends.torch.models:gpt2"
LLAMA = "conformance.backends.torch.models:llama"
FAULTY = "tests.faulty.models:"
#: Small models keep this file fast; power stays well above what the faults need (printed per tensor).
SMALL_GPT2 = {"n_embd": 64, "vocab_size": 256, "block_size": 32}
SMALL_LLAMA = {"dim": 64, "vocab_size": 256, "max_seq_len": 32}


@pytest.mark.parametrize(("spec", "factory", "config", "device_init", "init"), [
    ("gpt2", GPT2, SMALL_GPT2, "meta", "auto"),
    ("nanogpt", GPT2, SMALL_GPT2, "eager", "auto"),
    ("torchtitan_llama3", LLAMA, SMALL_LLAMA, "meta", "auto"),
    ("torchtitan_llama3_no_depth_init", LLAMA, {**SMALL_LLAMA, "depth_init": False}, "eager", "auto"),
    ("olmo_mitchell", LLAMA, {**SMALL_LLAMA, "naming": "olmo"}, "eager", "auto"),
    ("olmo_normal", LLAMA, {**SMALL_LLAMA, "naming": "olmo", "scheme": "olmo_normal"}, "meta", "auto"),
    ("olmo_full_megatron", LLAMA, {**SMALL_LLAMA, "naming": "olmo", "scheme": "olmo_full_megatron"}, "eager", "auto"),
    ("litgpt_pretrain", LLAMA, {**SMALL_LLAMA, "naming": "litgpt"}, "meta", "auto"),
    ("torch_defaults", GPT2, {**SMALL_GPT2, "tie_embeddings": False}, "eager", "none"),
])
def test_reference_models_pass_their_specs(spec, factory, config, device_init, init):
    report = audit(factory, spec, device_init=device_init, init=init, config=config, seed=1)
    assert report.passed, "\n".join(report.failures())
    assert all(t.status == "pass" for t in report.tensors)
    assert report.init_method == ("none" if init == "none" else "init_weights")


def test_depth_profile_fits_the_torchtitan_formula():
    report = audit(LLAMA, "torchtitan_llama3", config={**SMALL_LLAMA, "n_layers": 6}, seed=2)
    wo = next(d for d in report.depth if "attention.wo" in d.rule_where)
    assert wo.expected_fit["model"] == "c / sqrt(layer_id + k)"
    assert wo.expected_fit["c"] == pytest.approx(0.02 / np.sqrt(2))
    assert wo.expected_fit["k"] == pytest.approx(1.0)
    best = wo.fit["best"]
    assert best["model"] == "c / sqrt(layer_id + k)"
    assert abs(best["k"] - 1.0) < 4 * best["k_stderr"] + 0.05
    w1 = next(d for d in report.depth if "w1" in d.rule_where)
    assert w1.fit["best"]["model"] == "constant"


def test_fit_depth_recovers_k_and_separates_off_by_one():
    layers = np.arange(8)
    c = 0.02 / np.sqrt(2)
    se = np.full(8, 1e-5)
    assert fit_depth(layers, c / np.sqrt(layers + 1), se)["best"]["k"] == pytest.approx(1.0, abs=1e-6)
    assert fit_depth(layers, c / np.sqrt(layers + 2), se)["best"]["k"] == pytest.approx(2.0, abs=1e-6)
    assert fit_depth(layers, np.full(8, c), se)["best"]["model"] == "constant"


# -- faulty models: each caught, with the parameter, the rule, expected and observed values in the message --------

def _failing(report, status):
    return [t for t in report.tensors if t.status == status]


def test_litgpt_reset_parameters_skipped_is_uninitialized():
    """LitGPT #1150: initialize_weights installs the init but reset_parameters is never called."""
    report = audit(FAULTY + "litgpt_reset_skipped", "litgpt_pretrain", device_init="meta", config=SMALL_LLAMA)
    assert not report.passed
    bad = _failing(report, "uninitialized")
    params = [t for t in report.tensors if t.kind == "parameter"]
    assert len(bad) == len(params)
    msg = report.by_name("transformer.h.0.attn.proj.weight").message
    assert "rule litgpt_pretrain.toml:10 (rule #1)" in msg and "expects N(0, 0.0" in msg
    assert "still hold the value written after meta-device materialization" in msg


def test_init_noop_under_empty_init_is_framework_default():
    report = audit(FAULTY + "init_noop_empty_init", "gpt2", config=SMALL_GPT2)
    assert not report.passed
    t = report.by_name("transformer.h.1.attn.c_attn.weight")
    assert t.status == "framework_default"
    assert "expects N(0, 0.02^2)" in t.message and "observed mean" in t.message
    assert "matches the framework default U[-0.125, 0.125)" in t.message and "init was not applied" in t.message
    assert report.by_name("transformer.wte.weight").status == "framework_default"  # Linear default via the tie


def test_depth_formula_off_by_one_is_caught_and_fitted():
    report = audit(FAULTY + "depth_off_by_one", "torchtitan_llama3", config=SMALL_LLAMA, seed=3)
    assert not report.passed
    t = report.by_name("layers.0.attention.wo.weight")
    assert t.status == "mismatch"
    assert "torchtitan_llama3.toml:27 (rule #3)" in t.message and "TN(0, 0.0141421^2" in t.message
    assert t.observed["std"] == pytest.approx(0.01, rel=0.05)
    fit = next(d for d in report.depth if "feed_forward.w[23]" in d.rule_where)
    assert not fit.verdict.passed
    assert fit.fit["best"]["k"] == pytest.approx(2.0, abs=0.3)
    assert "expected 0.014142 / sqrt(layer_id + 1)" in fit.verdict.message


def test_missing_residual_scaling_is_caught():
    report = audit(FAULTY + "residual_scaling_missing", "gpt2", config=SMALL_GPT2)
    bad = _failing(report, "mismatch")
    assert {t.name for t in bad} == {f"transformer.h.{i}.{m}.c_proj.weight" for i in range(4) for m in ("attn", "mlp")}
    assert "expects N(0, 0.00707107^2) [std = initializer_range / sqrt(2 * n_layers)" in bad[0].message
    assert bad[0].observed["std"] == pytest.approx(0.02, rel=0.05)


def test_absolute_truncation_bounds_are_caught():
    report = audit(FAULTY + "trunc_bounds_absolute", "torchtitan_llama3", config=SMALL_LLAMA)
    t = report.by_name("output.weight")
    assert t.status == "mismatch"
    assert "[support]" in t.message and "values outside [-0.375, 0.375]" in t.message
    assert [x.name for x in report.tensors if not x.passed] == ["output.weight"]


def test_rope_buffer_left_uninitialized_after_meta():
    """torchtitan #3775: the non-persistent RoPE buffer is not recomputed after to_empty."""
    report = audit(FAULTY + "rope_not_recomputed", "torchtitan_llama3", device_init="meta", config=SMALL_LLAMA)
    t = report.by_name("freqs_cis")
    assert t.status == "buffer_mismatch"
    assert "non-persistent buffer" in t.message and "differ from a freshly built model's buffer" in t.message
    assert [x.name for x in report.tensors if not x.passed] == ["freqs_cis"]
    assert audit(FAULTY + "rope_not_recomputed", "torchtitan_llama3", config=SMALL_LLAMA).passed  # eager is fine


def test_tie_lost_after_meta_and_identical_layers():
    report = audit(FAULTY + "tie_lost_after_meta", "gpt2", device_init="meta", config=SMALL_GPT2)
    assert {t.name for t in report.tensors if t.status == "tie_broken"} == {"lm_head.weight", "transformer.wte.weight"}
    report = audit(FAULTY + "reseeded_layers", "torchtitan_llama3", config=SMALL_LLAMA)
    assert report.by_name("layers.2.attention.wq.weight").status == "identical"
    assert any(v.test == "identical" and not v.passed for v in report.model_checks)


# -- bad input -----------------------------------------------------------------------------------------------------

def test_factory_that_raises_is_named():
    with pytest.raises(FactoryError, match=r"factory 'tests.faulty.models:raising_factory' failed on torch:cpu.*"
                                           r"RuntimeError: cannot build"):
        audit(FAULTY + "raising_factory", "gpt2")


def test_pattern_matching_nothing_and_unmatched_parameters():
    spec = loads_spec("""
[[rule]]
pattern = "*.c_proj.weight"
dist = "normal"
std = "0.02 / sqrt(2 * n_layer)"

[[rule]]
pattern = "encoder.*.weight"
dist = "normal"
std = 0.02
""", origin="partial.toml")
    report = audit(GPT2, spec, config=SMALL_GPT2)
    unused = [v for v in report.model_checks if v.test == "rule_unused"]
    assert len(unused) == 1 and "partial.toml:7 (rule #2) 'encoder.*.weight'" in unused[0].message
    unmatched = _failing(report, "unmatched")
    assert "transformer.wte.weight" in {t.name for t in unmatched}
    assert "matches no rule of spec 'partial'" in unmatched[0].message


def test_unknown_variable_names_rule_and_parameter():
    spec = loads_spec('[[rule]]\npattern = "*"\ndist = "normal"\nstd = "0.02 / sqrt(n_blocks)"\n', origin="u.toml")
    with pytest.raises(SpecError, match=r"u\.toml:1 \(rule #1\).*unknown variable n_blocks.*parameter "):
        audit(GPT2, spec, config=SMALL_GPT2)


def test_assert_init_matches_helper():
    assert assert_init_matches(GPT2, spec="gpt2", config=SMALL_GPT2).passed
    with pytest.raises(AssertionError, match=r"transformer\.h\.0\.attn\.c_proj\.weight: mismatch"):
        assert_init_matches(FAULTY + "residual_scaling_missing", spec="gpt2", config=SMALL_GPT2)


# -- CLI -----------------------------------------------------------------------------------------------------------

def _cli(capsys, *args):
    code = cli_main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_audit_writes_json_and_fails_on_faulty(tmp_path, capsys):
    code, out, err = _cli(capsys, "audit", FAULTY + "depth_off_by_one", "--spec", "torchtitan_llama3", "--config",
                          "dim=64", "--config", "vocab_size=256", "--report-dir", str(tmp_path))
    assert code == 1, err
    assert "layers.0.attention.wo.weight" in out and "mismatch" in out
    doc = json.loads((tmp_path / "audit.json").read_text())
    assert doc["schema_version"] == 1 and doc["passed"] is False
    assert doc["depth_plot"] and {"layers", "observed_std", "expected_std", "fit"} <= set(doc["depth_plot"][0])
    assert any("layers.0.attention.wo.weight" in f for f in doc["reports"][0]["failures"])
    code, out, err = _cli(capsys, "audit", GPT2, "--spec", "gpt2", "--config", "n_embd=64", "--device-init", "both",
                          "--failing-only")
    assert code == 0, out + err
    assert out.count("PASS") == 2


def test_cli_bad_input_exit_codes(tmp_path, capsys):
    code, _, err = _cli(capsys, "audit", "no_such_pkg:factory", "--spec", "gpt2")
    assert code == 4 and "could not be imported" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\npattern = "*"\ndist = "laplace"\nstd = 1\n')
    code, _, err = _cli(capsys, "audit", GPT2, "--spec", str(bad))
    assert code == 4 and f"{bad}:1 (rule #1): unknown distribution 'laplace'" in err
    code, _, err = _cli(capsys, "audit", FAULTY + "raising_factory", "--spec", "gpt2")
    assert code == 4 and "RuntimeError: cannot build" in err
    code, _, err = _cli(capsys, "audit", GPT2, "--spec", "gpt2", "--backend", "nope:cpu")
    assert code == 4


def test_hf_transformers_path_or_skip():
    pytest.importorskip("transformers", reason="transformers is not installed: the Hugging Face path is optional")
    report = audit("conformance.backends.torch.models:hf_causal_lm", "gpt2", init="none",
                   config={"model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 2, "vocab_size": 256,
                           "n_positions": 64})
    assert report.passed, "\n".join(report.failures())
