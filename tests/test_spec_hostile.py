"""Hostile and malformed init specs: every one is refused at once with one line naming the file and line.

The cases that used to hang or exhaust memory (``floor(10) ** floor(1e9)``, 50,000 nested minus signs, a dotted
key of 100,000 parts) run in a fresh interpreter with a timeout, as a hang guard only: no test asserts a time.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance.audit import InitSpec, Rule, SpecError, load_spec, loads_spec
from conformance.audit.engine import expected_for
from conformance.audit.formula import FUNCTIONS, MAX_DEPTH, MAX_LENGTH, FormulaError, parse

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 120  # a fresh interpreter imports scipy and torch: slow on a busy two-core machine
RULE = '[[rule]]\npattern = "*"\ndist = "normal"\nstd = {}\n'

#: Formulas that once took minutes to hours, or raised MemoryError/RecursionError with an empty message.
HOSTILE_FORMULAS = {
    "floor_pow_3e7": "floor(10) ** floor(3e7)",
    "floor_pow_1e9": "floor(10) ** floor(1e9)",
    "ceil_pow": "ceil(9.5) ** ceil(1e9)",
    "pow_tower": "10 ** 10 ** 10",
    "unary_50000": "-" * 50_000 + "1",
    "unary_999": "-" * 999 + "1",
    "not_chain": "not " * 240 + "1",
    "sum_chain": "1+" * 400 + "1",
    "big_literal": "9" * 900,
    "overflow_mul": "1e300 * 1e300",
}


def _one_line(msg: str) -> str:
    """``msg``, checked to be one line that says what is wrong and then what to do."""
    assert msg and "\n" not in msg and "\r" not in msg and "; " in msg, msg
    return msg


# -- the evaluator -----------------------------------------------------------------------------------------------

def test_floor_and_ceil_return_floats():
    assert all(type(FUNCTIONS[f](2.5)) is float for f in ("floor", "ceil"))
    assert parse("floor(2.7) + ceil(0.2)").evaluate({}) == 3.0
    assert parse("floor(n / 2)").evaluate({"n": 7}) == 3.0


@pytest.mark.parametrize("text, fragment", [
    ("1e308 * 10", "beyond the limit"),
    ("exp(1000)", "OverflowError"),
    ("(-1) ** 0.5", "negative number to a fractional power"),
    ("(-8) ** (1 / 3)", "negative number to a fractional power"),
    ("2 ** 5000", "exponent"),
    ("0.5 ** -5000", "exponent"),
    ("log(0)", "math domain error"),
    ("1 / 0", "ZeroDivisionError"),
    ("1e200 * 1e200", "beyond the limit"),
    ("min(1)", "at least 2"),
    ("sqrt()", "takes 1"),
    ("floor(1, 2)", "takes 1"),
    ("sqrt(x=4)", "positional arguments only"),
    ("x.real", "Attribute is not allowed"),
    ("x[0]", "Subscript is not allowed"),
    ("'a' * 9", "only numeric constants"),
    ("[1] * 9", "List is not allowed"),
    ("[x for x in y]", "ListComp is not allowed"),
    ("(y := 2)", "NamedExpr is not allowed"),
    ("lambda: 1", "Lambda is not allowed"),
    ("f'{x}'", "JoinedStr is not allowed"),
    ("sqrt(*x)", "Starred is not allowed"),
    ("__import__('os')", "unknown function"),
    ("(1).__class__", "Attribute is not allowed"),
    ("1j", "only numeric constants"),
    ("\x00", "null bytes"),
    ("(" * 300 + "1" + ")" * 300, "too many nested parentheses"),
    ("1" + " " * (MAX_LENGTH + 1), "longer than"),
])
def test_formula_limits_and_whitelist(text, fragment):
    with pytest.raises(FormulaError) as info:
        parse(text).evaluate({"x": 1.0, "y": 2.0})
    assert fragment in _one_line(str(info.value))


@pytest.mark.parametrize("value, fragment", [
    (math.inf, "not finite"), (math.nan, "not finite"), (10**400, "larger than"), ("olmo", "not a number"),
    ([1, 2], "not a number"), (1e301, "beyond the limit"),
])
def test_variables_must_be_finite_numbers(value, fragment):
    with pytest.raises(FormulaError, match=fragment) as info:
        parse("2 * n").evaluate({"n": value})
    _one_line(str(info.value))


def test_bounded_exponents_with_variables_fail_at_evaluation():
    f = parse("floor(x) ** floor(y)")
    assert f.evaluate({"x": 10, "y": 3}) == 1000.0
    with pytest.raises(FormulaError, match=r"exponent .* is 3e\+07, beyond the limit"):
        f.evaluate({"x": 10, "y": 3e7})


def test_depth_limit_allows_real_formulas():
    nested = "(" * 40 + "x" + ")" * 40
    assert parse(nested).evaluate({"x": 2}) == 2.0
    assert parse(" + ".join(["x"] * (MAX_DEPTH - 4))).evaluate({"x": 1}) == MAX_DEPTH - 4
    assert parse(0.02).evaluate({}) == 0.02 and parse(True).evaluate({}) == 1.0
    with pytest.raises(FormulaError, match="not finite"):
        parse(math.inf)


def test_constant_formulas_fail_when_parsed():
    with pytest.raises(FormulaError, match="cannot be evaluated"):
        parse("log(0) + 1")
    assert parse("1 if x else log(0)").evaluate({"x": 1}) == 1.0  # only the branch taken is evaluated


def test_hostile_formulas_fail_fast_in_a_fresh_interpreter():
    script = textwrap.dedent("""
        import json, sys
        from conformance.audit.formula import FormulaError, parse
        out = {}
        for name, text in json.loads(sys.argv[1]).items():
            try:
                parse(text).evaluate({})
                out[name] = "accepted"
            except FormulaError as exc:
                out[name] = str(exc)
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(HOSTILE_FORMULAS)], cwd=ROOT,
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, msg in out.items():
        assert msg != "accepted", name
        _one_line(msg)
    assert "exponent" in out["floor_pow_3e7"] and "exponent" in out["floor_pow_1e9"]
    assert f"longer than {MAX_LENGTH}" in out["unary_50000"]
    assert f"more than {MAX_DEPTH} levels" in out["unary_999"] and "levels" in out["not_chain"]


# -- the spec schema ---------------------------------------------------------------------------------------------

MALFORMED = {
    # name: (toml, line, fragment)
    "spec_int": ("spec = 5\n" + RULE.format(0.02), 1, "'spec' must be a table"),
    "spec_name_int": ('[spec]\nname = 3\n' + RULE.format(0.02), 2, "name must be a non-empty string"),
    "spec_sources_str": ('[spec]\nname = "x"\nsources = "a"\n' + RULE.format(0.02), 3, "sources must be a list"),
    "spec_unknown_key": ('[spec]\nnmae = "x"\n' + RULE.format(0.02), 2, "unknown key 'nmae' in [spec]"),
    "dist_list": ('[[rule]]\npattern = "*"\ndist = ["normal"]\nstd = 0.02\n', 3, "'dist' must be a string"),
    "dist_unknown": ('[[rule]]\npattern = "*"\ndist = "laplace"\n', 1, "unknown distribution 'laplace'"),
    "pattern_int": ('[[rule]]\npattern = 3\ndist = "zeros"\n', 2, "'pattern' must be a non-empty string"),
    "pattern_regex": ('[[rule]]\npattern = "re:(("\ndist = "zeros"\n', 2, "bad regular expression"),
    "module_int": (RULE.format(0.02) + "module = 7\n", 5, "'module' must be a module class name"),
    "module_list_int": (RULE.format(0.02) + "module = [1]\n", 5, "'module' must be a module class name"),
    "optional_str": (RULE.format(0.02) + 'optional = "yes"\n', 5, "'optional' must be true or false"),
    "source_list": (RULE.format(0.02) + 'source = ["a"]\n', 5, "'source' must be a string"),
    "note_int": (RULE.format(0.02) + "note = 1\n", 5, "'note' must be a string"),
    "param_list": (RULE.format("[0.02]"), 4, "a formula must be a number or a non-empty string"),
    "param_table": (RULE.format("{a = 1}"), 4, "a formula must be a number or a non-empty string"),
    "param_date": (RULE.format("1979-05-27"), 4, "a formula must be a number or a non-empty string"),
    "param_inf": (RULE.format("inf"), 4, "not finite"),
    "param_unknown": (RULE.format(0.02) + "bound = 1\n", 5, "normal takes no parameter bound"),
    "rule_missing": ('[spec]\nname = "x"\n', None, "needs at least one [[rule]]"),
    "rule_int": ("rule = 5\n", 1, "'rule' must be an array of tables"),
    "rule_of_ints": ("rule = [1, 2]\n", 1, "every rule must be a table"),
    "rule_no_dist": ('[[rule]]\npattern = "*"\n', 1, "missing 'dist'"),
    "variables_list": ("variables = [1]\n" + RULE.format(0.02), 1, "'variables' must be a table"),
    "variable_table": ("[variables.x]\ny = 1\n" + RULE.format(0.02), 1, "variable x: a formula must be"),
    "variable_floor": ('[variables]\nx = "floor(10) ** floor(1e9)"\n' + RULE.format(0.02), 2, "exponent"),
    "defaults_list": ("defaults = [1]\n" + RULE.format(0.02), 1, "'defaults' must be a table"),
    "default_str": ('[defaults]\nx = "a"\n' + RULE.format(0.02), 2, "default x must be a number"),
    "default_bool": ("[defaults]\nx = true\n" + RULE.format(0.02), 2, "default x must be a number"),
    "default_nan": ("[defaults]\nx = nan\n" + RULE.format(0.02), 2, "not finite"),
    "tie_str": ('tie = "a"\n' + RULE.format(0.02), 1, "'tie' must be an array of tables"),
    "tie_names_int": ("[[tie]]\nnames = [1, 2]\n" + RULE.format(0.02), 2, "needs names = [at least two"),
    "tie_one_name": ('[[tie]]\nnames = ["a"]\n' + RULE.format(0.02), 2, "needs names = [at least two"),
    "tie_no_names": ('[[tie]]\nname = ["a", "b"]\n' + RULE.format(0.02), 2, "unknown key 'name' in [[tie]]"),
    "ignore_int": ("ignore = 3\n" + RULE.format(0.02), 1, "'ignore' must be a list of name patterns"),
    "ignore_regex": ('ignore = ["re:(("]\n' + RULE.format(0.02), 1, "bad regular expression"),
    "layer_regex_int": ("layer_regex = 3\n" + RULE.format(0.02), 1, "'layer_regex' must be a regular expression"),
    "layer_regex_bad": ('layer_regex = "(("\n' + RULE.format(0.02), 1, "bad regular expression"),
    "layer_regex_nogroup": ('layer_regex = "\\\\d+"\n' + RULE.format(0.02), 1, "has no group"),
    "unknown_top": ("colour = 1\n" + RULE.format(0.02), 1, "unknown top-level key 'colour'"),
    "key_after_table": ('[spec]\nname = "x"\n' + RULE.format(0.02) + 'layer_regex = "(\\\\d+)"\n', 7,
                        "takes no parameter layer_regex"),
    "toml_syntax": ('[spec]\nname = "x"\n[[rule]\n', 3, "TOML syntax error"),
    "deep_arrays": ("ignore = " + "[" * 5000 + "]" * 5000 + "\n" + RULE.format(0.02), 1, "nested more than"),
    "deep_inline": ("x = " + "{a=" * 5000 + "1" + "}" * 5000 + "\n" + RULE.format(0.02), 1, "nested more than"),
    "dotted_key": ("a" + ".a" * 1000 + " = 1\n" + RULE.format(0.02), 1, "dots outside strings"),
    "dotted_header": ("[a" + ".a" * 1000 + "]\n" + RULE.format(0.02), 1, "dots outside strings"),
    "formula_50000": (RULE.format('"' + "-" * 50_000 + '1"'), 4, "longer than"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_spec_names_file_and_line(name):
    text, line, fragment = MALFORMED[name]
    with pytest.raises(SpecError) as info:
        loads_spec(text, origin=f"{name}.toml")
    msg = _one_line(str(info.value))
    where = re.escape(f"{name}.toml") + (f":{line}" if line else "") + r"( \(rule #\d+\))?: "
    assert re.match(where, msg), msg
    assert fragment in msg, msg
    assert "; " in msg, f"no advice after the problem: {msg}"


def test_rule_line_is_found_past_strings_that_look_like_tables():
    text = ('[spec]\nname = "x"\ndescription = """\n[[rule]]\npattern = 1\n"""\n'
            'sources = [\n  "[[rule]]",\n]\n' + RULE.format('"0.02 / "'))
    with pytest.raises(SpecError, match=r"^s\.toml:13 \(rule #1\): std: syntax error"):
        loads_spec(text, origin="s.toml")
    spec = loads_spec(text.replace('"0.02 / "', "0.02"), origin="s.toml")
    assert spec.rules[0].line == 10


def test_python_api_checks_types_too():
    with pytest.raises(SpecError, match="'dist' must be a string"):
        Rule.make("*", ["normal"], std=1)
    with pytest.raises(SpecError, match="'module' must be"):
        Rule.make("*", "zeros", module=[3])
    with pytest.raises(SpecError, match="'optional' must be true or false"):
        Rule.make("*", "zeros", optional="no")
    with pytest.raises(SpecError, match="default x must be a number"):
        InitSpec.make("api", [Rule.make("*", "zeros")], defaults={"x": "a"})
    with pytest.raises(SpecError, match="variable v: .*exponent"):
        InitSpec.make("api", [Rule.make("*", "zeros")], variables={"v": "floor(10) ** floor(1e9)"})


def test_layer_regex_matching_no_number_is_a_spec_error():
    spec = loads_spec('layer_regex = "(?:^|\\\\.)(\\\\w+)\\\\."\n' + RULE.format("0.02"), origin="l.toml")
    with pytest.raises(SpecError, match=r"^l\.toml: layer_regex .* matched 'transformer'.*not a layer number"):
        spec.layer_id("transformer.h.0.weight")
    optional = loads_spec('layer_regex = "layers\\\\.(\\\\d+)?"\n' + RULE.format("0.02"), origin="o.toml")
    assert optional.layer_id("layers.x") is None and optional.layer_id("layers.7.w") == 7


@pytest.mark.parametrize("std", ["1e-300", "1e200"])
def test_scales_float64_cannot_check_are_spec_errors(std):
    spec = loads_spec(RULE.format(f'"{std}"'), origin="x.toml")
    with pytest.raises(SpecError, match=r"^x\.toml:1 \(rule #1\).*cannot be checked in float64") as info:
        expected_for(spec.rules[0], spec.environment({}))
    _one_line(str(info.value))


def test_unreadable_spec_files(tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[spec]\nname = "caf\xe9"\n' + RULE.format(0.02).encode())
    with pytest.raises(SpecError, match=r"latin1\.toml:2: not UTF-8 text"):
        load_spec(str(bad))
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(SpecError, match=r"folder\.toml: not a regular file"):
        load_spec(str(folder))
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(str(tmp_path / "missing.toml"))
    with pytest.raises(SpecError, match="not a regular file"):
        load_spec("/dev/zero")


def test_oversized_spec_is_refused_before_parsing(tmp_path):
    from conformance.audit.spec import MAX_SPEC_CHARS

    text = RULE.format(0.02) + "#" * MAX_SPEC_CHARS
    with pytest.raises(SpecError, match=r"^big\.toml: \d+ characters, more than the limit") as info:
        loads_spec(text, origin="big.toml")
    _one_line(str(info.value))
    huge = tmp_path / "huge.toml"
    huge.write_text("#" * (4 * MAX_SPEC_CHARS + 10))
    with pytest.raises(SpecError, match="larger than"):
        load_spec(str(huge))


def test_builtin_specs_still_load_with_their_lines():
    spec = load_spec("torchtitan_llama3")
    assert spec.rules[2].line == 27 and spec.variable_lines == {"d_model": 10, "depth_std": 11}


# -- the command line --------------------------------------------------------------------------------------------

CLI_CASES = {
    "floor": (RULE.format('"floor(10) ** floor(3e7)"'), 4, "exponent"),
    "unary": (RULE.format('"' + "-" * 50_000 + '1"'), 4, "longer than"),
    "spec5": ("spec = 5\n" + RULE.format(0.02), 1, "'spec' must be a table"),
    "distlist": ('[[rule]]\npattern = "*"\ndist = ["normal"]\nstd = 0.02\n', 3, "'dist' must be a string"),
    "dotted": ("a" + ".a" * 100_000 + " = 1\n" + RULE.format(0.02), 1, "dots outside strings"),
}


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_cli_refuses_hostile_specs_in_one_line(tmp_path, name):
    text, line, fragment = CLI_CASES[name]
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "audit", "conformance.backends.torch.models:gpt2",
                           "--spec", str(path), "--config", "n_layer=1", "--config", "n_embd=32"],
                          cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S)
    err = proc.stderr.strip()
    assert proc.returncode == 4, (proc.returncode, err[-2000:])
    assert len(err.splitlines()) == 1, err[-2000:]
    assert err.startswith(f"conformance audit: error: {path}:{line}"), err
    assert fragment in err and "; " in err, err
