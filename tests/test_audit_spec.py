"""Init specs: formulas, the TOML format, built-in specs, and errors that name the file, line and problem."""

from __future__ import annotations

import math

import pytest

from conformance.audit import InitSpec, Rule, SpecError, builtin_names, load_spec, loads_spec
from conformance.audit.factory import FactoryError, parse_config, resolve
from conformance.audit.formula import FormulaError, parse


def test_formula_arithmetic_and_functions():
    f = parse("0.02 / sqrt(2 * (layer_id + 1))")
    assert f.names == {"layer_id"}
    assert f.evaluate({"layer_id": 3}) == pytest.approx(0.02 / math.sqrt(8))
    assert parse("dim ** -0.5").evaluate({"dim": 64}) == 0.125
    assert parse("1 if depth_init else 0.5").evaluate({"depth_init": 0}) == 0.5
    assert parse(0.02).evaluate({}) == 0.02


@pytest.mark.parametrize("text", ["__import__('os')", "x.attr", "[1, 2]", "'a'", "lambda: 1", "f(1)", "a[0]"])
def test_formula_rejects_code(text):
    with pytest.raises(FormulaError):
        parse(text)


def test_formula_errors_name_the_problem():
    with pytest.raises(FormulaError, match="syntax error"):
        parse("0.02 / (")
    with pytest.raises(FormulaError, match="unknown variable n_layer"):
        parse("0.02 / n_layer").evaluate({"n_layers": 4})
    with pytest.raises(FormulaError, match="cannot be evaluated"):
        parse("10 ** 10 ** 10").evaluate({})


GOOD = """
[spec]
name = "mine"

[variables]
n_layers = "n_layer"

[[rule]]
pattern = "*.c_proj.weight"
dist = "normal"
std = "0.02 / sqrt(2 * n_layers)"

[[rule]]
pattern = "re:\\\\.bias$"
dist = "zeros"
"""


def test_toml_spec_parses_and_matches():
    spec = loads_spec(GOOD, origin="mine.toml")
    assert spec.name == "mine"
    assert spec.rule_for("transformer.h.0.attn.c_proj.weight").index == 1
    assert spec.rule_for("transformer.h.0.attn.c_proj.bias").dist == "zeros"
    assert spec.rule_for("lm_head.weight") is None
    assert spec.rules[0].line == 8
    env = spec.environment({"n_layer": 4})
    assert spec.rules[0].evaluate(env)["std"] == pytest.approx(0.02 / math.sqrt(8))


def test_toml_syntax_error_names_file_and_line():
    with pytest.raises(SpecError, match=r"^bad\.toml:3: TOML syntax error.*line 3"):
        loads_spec('[spec]\nname = "x"\n[[rule]\npattern = "a"\n', origin="bad.toml")


def test_unknown_distribution_names_line():
    text = GOOD.replace('dist = "zeros"', 'dist = "gaussian"')
    with pytest.raises(SpecError, match=r"mine\.toml:13 \(rule #2\): unknown distribution 'gaussian'"):
        loads_spec(text, origin="mine.toml")


def test_bad_formula_and_parameters_name_the_rule():
    with pytest.raises(SpecError, match=r"x\.toml:11 \(rule #1\): std: syntax error"):  # the line of std
        loads_spec(GOOD.replace('"0.02 / sqrt(2 * n_layers)"', '"0.02 / sqrt(2 * "'), origin="x.toml")
    with pytest.raises(SpecError, match="normal takes no parameter bound"):
        Rule.make("*", "normal", std=1, bound=2)
    with pytest.raises(SpecError, match="either absolute bounds"):
        Rule.make("*", "trunc_normal", std=1, a=-2, b=2, cutoff=3)
    with pytest.raises(SpecError, match="normal needs std"):
        Rule.make("*", "normal")


def test_unknown_variable_at_evaluation_names_rule():
    spec = loads_spec(GOOD.replace("0.02 / sqrt(2 * n_layers)", "0.02 / sqrt(2 * depth)"), origin="v.toml")
    with pytest.raises(SpecError, match=r"v\.toml:8 \(rule #1\).*unknown variable depth"):
        spec.rules[0].evaluate(spec.environment({"n_layer": 4}))


def test_python_api():
    spec = InitSpec.make("api", [{"pattern": "*.weight", "dist": "normal", "std": "init_std"},
                                 Rule.make("*.bias", "zeros", index=2)], defaults={"init_std": 0.02})
    assert spec.rule_for("a.weight").evaluate(spec.environment({}))["std"] == 0.02


def test_builtin_specs_load_and_cite_their_sources():
    names = builtin_names()
    for required in ("gpt2", "nanogpt", "torchtitan_llama3", "torchtitan_llama3_no_depth_init", "olmo_mitchell",
                     "olmo_normal", "olmo_full_megatron", "litgpt_pretrain", "torch_defaults"):
        assert required in names
    for name in names:
        spec = load_spec(name)
        assert spec.sources, f"{name} cites no source"
        if name != "torch_defaults":
            assert any("@" in s for s in spec.sources), f"{name} cites no commit"


def test_unknown_spec_name_lists_builtins(tmp_path):
    with pytest.raises(SpecError, match="built-in: .*gpt2"):
        load_spec("no_such_spec")
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(str(tmp_path / "missing.toml"))


def test_factory_resolution_errors():
    assert callable(resolve("conformance.backends.torch.models:gpt2"))
    with pytest.raises(FactoryError, match="module 'no_such_pkg.mod' could not be imported: ModuleNotFoundError"):
        resolve("no_such_pkg.mod:f")
    with pytest.raises(FactoryError, match="has no attribute 'nope'"):
        resolve("conformance.backends.torch.models:nope")
    with pytest.raises(FactoryError, match="not of the form"):
        resolve("conformance.backends.torch.models")
    assert parse_config(["n_layer=4", "bias=false", "naming=olmo", "x=0.5"]) == {
        "n_layer": 4, "bias": False, "naming": "olmo", "x": 0.5}
    with pytest.raises(FactoryError, match="expected key=value"):
        parse_config(["oops"])
