"""Hostile and malformed known-failures files: every bad key type is a one-line KnownFailuresError (a usage error,
exit 4, from ``conformance run``) naming the file, the entry, its line and the key, never an internal error."""

from __future__ import annotations

import pytest

from conformance import known_failures as kf

from .helpers import run_cli

HEAD = "schema = 1\n"
OK = 'check = "a/x"\nbackend = "torch:cpu"\nreason = "r"\n'


def _write(tmp_path, text):
    path = tmp_path / "hostile.toml"
    path.write_text(text)
    return path


def _error(tmp_path, text) -> str:
    with pytest.raises(kf.KnownFailuresError) as info:
        kf.load(_write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message and "hostile.toml" in message
    return message


# (entry body after [[failure]] + OK keys with the bad one replacing or adding, key, what the message says it must be)
BAD_VALUES = [
    ('check = 5\nbackend = "torch:cpu"\nreason = "r"\n', "check", "must be a non-empty pattern string", 3),
    ('check = []\nbackend = "torch:cpu"\nreason = "r"\n', "check", "non-empty array", 3),
    ('check = ["a", 1]\nbackend = "torch:cpu"\nreason = "r"\n', "check", "got array", 3),
    ('check = ""\nbackend = "torch:cpu"\nreason = "r"\n', "check", "non-empty pattern string", 3),
    ('check = "a"\nbackend = ["torch:cpu"]\nreason = "r"\n', "backend", "non-empty pattern string", 4),
    ('check = "a"\nbackend = "torch:cpu"\nreason = 1.5\n', "reason", "a non-empty string, got float 1.5", 5),
    ('check = "a"\nbackend = "torch:cpu"\nreason = "  "\n', "reason", "a non-empty string", 5),
    (OK + "dtype = 16\n", "dtype", "dtype pattern string or a non-empty array", 6),
    (OK + "dtype = []\n", "dtype", "non-empty array", 6),
    (OK + "evidence = [\"x\"]\n", "evidence", "must be a string, got array", 6),
    (OK + "upstream = {url = \"x\"}\n", "upstream", "must be a string, got table", 6),
    (OK + "tests = 5\n", "tests", "verdict test name or an array of them, got integer 5", 6),
    (OK + "tests = [\"support\", true]\n", "tests", "verdict test name", 6),
    (OK + "sporadic = \"yes\"\n", "sporadic", "a boolean (true or false), got string 'yes'", 6),
    (OK + "sporadic = 1\n", "sporadic", "a boolean", 6),
    (OK + "cpu_flags = true\n", "cpu_flags", "CPU flag name", 6),
    (OK + "cpu_flags = []\n", "cpu_flags", "non-empty array", 6),
    (OK + "cpu_flags = [\"AVX512F\"]\n", "cpu_flags", "lower-case", 6),
    (OK + "cpu_flags = [\"avx512f bw\"]\n", "cpu_flags", "lower-case", 6),
    (OK + "when = 1979-05-27\n", "when", "unknown keys ['when']", 6),
]


@pytest.mark.parametrize(("body", "key", "needle", "line"), BAD_VALUES)
def test_bad_key_type_names_file_entry_line_and_key(tmp_path, body, key, needle, line):
    text = HEAD + "[[failure]]\n" + OK + "\n[[failure]]\n" + body
    message = _error(tmp_path, text)
    assert "entry 2" in message and f"line {line + 5}" in message, message
    assert f"'{key}'" in message and needle in message, message


@pytest.mark.parametrize(("text", "needle"), [
    (HEAD + "failure = 5\n", "'failure' must be an array of tables ([[failure]] sections), got integer 5"),
    (HEAD + "failure = \"x\"\n", "'failure' must be an array of tables"),
    (HEAD + "[failure]\ncheck = \"x\"\n", "'failure' must be an array of tables ([[failure]] sections), got table"),
    (HEAD + "failure = [1, 2]\n", "entry 1: must be a table"),
    (HEAD + "failures = []\n", "unknown top-level keys ['failures']"),
    ("schema = \"1\"\n", "schema must be 1, got '1'"),
    ("", "schema must be 1, got None"),
])
def test_bad_top_level_structure(tmp_path, text, needle):
    assert needle in _error(tmp_path, text)


def test_inline_array_of_tables_is_accepted_without_line_numbers(tmp_path):
    path = _write(tmp_path, HEAD + 'failure = [{check = "a/x", backend = "*", reason = "r", tests = "support"}]\n')
    (entry,) = kf.load(path).entries
    assert entry.tests == ("support",) and entry.index == 1
    bad = HEAD + 'failure = [{check = "a/x", backend = "*", reason = "r", sporadic = "no"}]\n'
    message = _error(tmp_path, bad)
    assert "entry 1:" in message and "(line" not in message and "'sporadic'" in message


def test_header_inside_multiline_string_does_not_shift_lines(tmp_path):
    text = (HEAD + "[[failure]]\n" + OK + 'evidence = """\n[[failure]]\n"""\n'
            + "[[failure]]\n" + OK + "sporadic = 2\n")
    message = _error(tmp_path, text)
    assert "entry 2 (line 13)" in message and "'sporadic'" in message, message


def test_unknown_and_missing_keys_are_one_line(tmp_path):
    message = _error(tmp_path, HEAD + "[[failure]]\ncheck = 'x'\ncolour = 'red'\n")
    assert "entry 1 (line 4)" in message and "unknown keys ['colour']" in message
    assert "missing keys ['backend', 'reason']" in message and "allowed keys" in message


def test_valid_values_normalized(tmp_path):
    path = _write(tmp_path, HEAD + "[[failure]]\n" + OK + 'dtype = ["float16"]\ntests = "support"\n'
                  'cpu_flags = "avx512f"\nsporadic = false\n')
    (entry,) = kf.load(path).entries
    assert entry.dtype == ("float16",) and entry.tests == ("support",) and entry.cpu_flags == ("avx512f",)
    assert entry.where == "hostile.toml:2" and entry.index == 1


@pytest.mark.parametrize("bad", ["check = 5", "failure = 5", "tests = 5"])
def test_cli_turns_bad_file_into_usage_error(tmp_path, bad):
    text = HEAD + (bad + "\n" if bad.startswith("failure") else "[[failure]]\n" + OK.replace('check = "a/x"\n', "")
                   + bad + "\n" + ('check = "a/x"\n' if not bad.startswith("check") else ""))
    path = _write(tmp_path, text)
    proc, _ = run_cli("run", "--backend", "numpy:cpu", "-k", "nothing_matches", "--known-failures", str(path),
                      report_dir=tmp_path / "r")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-2000:]
    assert "INTERNALERROR" not in out and "Traceback" not in out
    (line,) = [ln for ln in out.splitlines() if "hostile.toml" in ln]
    key = bad.split(" ")[0]
    assert f"'{key}'" in line and "must be" in line


@pytest.mark.parametrize("text", ["schema = 1\nx = " + "[" * 3000 + "]" * 3000 + "\n",
                                  "schema = 1\n" + ".".join(["a"] * 20000) + " = 1\n",
                                  "schema = 1\n# " + "x" * (1 << 20) + "\n"],
                         ids=["nested-3000", "dotted-20000", "over-1MiB"])
def test_parser_bombs_are_one_line_errors(tmp_path, text):
    """Deep nesting (RecursionError inside tomllib), a dotted key of 20,000 parts (tomllib is quadratic in them) and
    an oversized file are refused with one line naming the file."""
    from conformance import known_failures as kf

    path = tmp_path / "bomb.toml"
    path.write_text(text)
    with pytest.raises(kf.KnownFailuresError) as info:
        kf.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
