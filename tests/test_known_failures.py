"""Known-failures file: parsing errors, matching, stale entries."""

from __future__ import annotations

import pytest

from conformance import known_failures as kf


def _write(tmp_path, text):
    path = tmp_path / "kf.toml"
    path.write_text(text)
    return path


def test_shipped_file_is_valid():
    entries = kf.load(kf.DEFAULT_PATH).entries
    assert all(e.reason and e.evidence for e in entries), "every shipped entry carries its evidence"


@pytest.mark.parametrize(("text", "needle"), [
    ("schema = 2\n", "schema must be 1"),
    ("schema = 1\n[[failure]]\ncheck='x'\nbackend='*'\n", "missing keys ['reason']"),
    ("schema = 1\n[[failure]]\ncheck='x'\nbackend='*'\nreason='r'\ncolour='red'\n", "unknown keys ['colour']"),
    ("schema = 1\n[[failure\n", "not valid TOML"),
])
def test_malformed_files_name_the_problem(tmp_path, text, needle):
    with pytest.raises(kf.KnownFailuresError, match=None) as info:
        kf.load(_write(tmp_path, text))
    assert needle in str(info.value) and "kf.toml" in str(info.value)


def test_stale_entries():
    known = kf.KnownFailures([kf.Entry(check="a/x", backend="torch:cpu", reason="r"),
                              kf.Entry(check="a/y", backend="torch:cpu", reason="r"),
                              kf.Entry(check="a/z", backend="jax:cpu", reason="r")])
    records = [{"check": "a/x", "backend": "torch:cpu", "dtype": "float32", "outcome": "xpassed"}]
    stale = known.stale(records, backends=["torch:cpu"])
    assert any("a/x" in s and "now passes" in s for s in stale)
    assert any("a/y" in s and "matches no check" in s for s in stale)
    assert not any("a/z" in s for s in stale)  # jax:cpu was not part of the run
    assert not any("matches no check" in s for s in known.stale(records, backends=["torch:cpu"], filtered=True))


def test_stale_lines_name_the_entry_and_what_to_do(tmp_path):
    path = _write(tmp_path, 'schema = 1\n[[failure]]\ncheck = ["a/x", "a/w"]\nbackend = "torch:cpu"\n'
                            'dtype = ["float16", "bfloat16"]\nreason = "r"\n'
                            '[[failure]]\ncheck = "a/y"\nbackend = "torch:cpu"\nreason = "r"\n')
    known = kf.load(path)
    records = [{"check": "a/x", "backend": "torch:cpu", "dtype": "float16", "outcome": "xpassed"},
               {"check": "a/w", "backend": "torch:cpu", "dtype": "bfloat16", "outcome": "xpassed"}]
    passing, unmatched = known.stale(records, backends=["torch:cpu"])
    assert passing.startswith("entry 1 (kf.toml:2): a/x (+1 more patterns) on torch:cpu dtype float16|bfloat16: ")
    assert "every matching check now passes (2 of 2); remove the entry" in passing
    assert unmatched.startswith("entry 2 (kf.toml:7): a/y on torch:cpu dtype *: matches no check in this run;")
    assert "correct its check/backend/dtype patterns or remove it" in unmatched
    assert all("\n" not in s for s in (passing, unmatched))


def test_sporadic_entry_is_not_stale_when_it_passes():
    known = kf.KnownFailures([kf.Entry(check="a/x", backend="torch:cpu", reason="r", sporadic=True)])
    records = [{"check": "a/x", "backend": "torch:cpu", "dtype": "float32", "outcome": "passed"}]
    assert known.stale(records, backends=["torch:cpu"]) == []


def test_overbroad_names_the_passing_checks():
    known = kf.KnownFailures([kf.Entry(check="a/*", backend="torch:cpu", reason="r", index=3, where="kf.toml:9"),
                              kf.Entry(check="b/*", backend="torch:cpu", reason="r", sporadic=True)])
    records = [{"check": "a/x", "backend": "torch:cpu", "dtype": "float16", "outcome": "xfailed"},
               {"check": "a/x", "backend": "torch:cpu", "dtype": "float32", "outcome": "xpassed"},
               {"check": "a/y", "backend": "torch:cpu", "dtype": "float32", "outcome": "skipped"},
               {"check": "b/x", "backend": "torch:cpu", "dtype": "float16", "outcome": "xfailed"},
               {"check": "b/x", "backend": "torch:cpu", "dtype": "float32", "outcome": "xpassed"}]
    (line,) = known.overbroad(records)
    assert line.startswith("entry 3 (kf.toml:9): a/* on torch:cpu")
    assert "1 of its matching checks pass (a/x float32)" in line
    assert known.overbroad(records[:1]) == []  # all failing: not overbroad (and all passing is stale instead)


@pytest.mark.parametrize(("flags", "applies"), [
    (frozenset({"avx2", "avx512f", "avx512bw"}), True),
    (frozenset({"avx2"}), False),
    (None, False),  # flags unreadable (not Linux/macOS): conservatively not applied, the failure stays visible
])
def test_cpu_flags_condition(monkeypatch, flags, applies):
    monkeypatch.setattr(kf, "host_cpu_flags", lambda: flags)
    entry = kf.Entry(check="a/x", backend="torch:cpu", reason="r", cpu_flags=("avx512f", "avx512bw"))
    known = kf.KnownFailures([entry])
    assert entry.applies() is applies
    assert (known.match("a/x", "torch:cpu", "float32") is entry) is applies
    passing = [{"check": "a/x", "backend": "torch:cpu", "dtype": "float32", "outcome": "passed"}]
    # where the condition does not hold the entry is neither matched nor stale, even in an unfiltered run
    assert bool(known.stale(passing, backends=["torch:cpu"])) is applies
    assert bool(known.stale([], backends=["torch:cpu"])) is applies
    assert kf.Entry(check="a/x", backend="*", reason="r").applies()  # no condition: applies everywhere


def test_cpu_flags_loaded_and_labelled(tmp_path, monkeypatch):
    monkeypatch.setattr(kf, "host_cpu_flags", lambda: frozenset({"avx512f"}))
    path = _write(tmp_path, 'schema = 1\n[[failure]]\ncheck = "a/x"\nbackend = "*"\nreason = "r"\n'
                            'cpu_flags = ["avx512f"]\n')
    (entry,) = kf.load(path).entries
    assert entry.cpu_flags == ("avx512f",) and entry.applies() and "cpu_flags avx512f" in str(entry)


def test_parse_cpuinfo_keeps_flags_every_processor_has():
    text = ("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n")
    assert kf.parse_cpuinfo(text) == frozenset({"fpu", "avx2"})
    assert kf.parse_cpuinfo("processor : 0\nFeatures\t: fp asimd sve\n") == frozenset({"fp", "asimd", "sve"})
    assert kf.parse_cpuinfo("processor : 0\n") is None


def test_shipped_entries_do_not_overlap():
    """The first matching entry wins, so two shipped entries matching one (check, backend, dtype) would make the
    second's evidence unreachable for that combination: patterns are compared on the check ids they name."""
    entries = kf.load(kf.DEFAULT_PATH).entries
    dtypes = ["float16", "bfloat16", "float32", "float64", ""]
    for i, a in enumerate(entries):
        for b in entries[i + 1:]:
            for pattern in (a.check,) if isinstance(a.check, str) else a.check:
                if "*" in pattern or not kf._matches(b.check, pattern):
                    continue
                backend = a.backend.replace("*", "cpu")
                shared = [d for d in dtypes if kf._matches(a.dtype, d) and kf._matches(b.dtype, d)
                          and kf._matches(b.backend, backend)]
                assert not shared or a.cpu_flags != b.cpu_flags, f"{a} and {b} both match {pattern} {shared}"


def test_shipped_sporadic_entries_name_their_tests():
    """A sporadic entry passes in some runs; with ``tests`` such a run records ``passed`` instead of ``xpassed``,
    which ``--strict`` would fail. Machine-dependent entries use ``cpu_flags``, not ``sporadic``."""
    entries = kf.load(kf.DEFAULT_PATH).entries
    assert all(e.tests for e in entries if e.sporadic), [str(e) for e in entries if e.sporadic and not e.tests]
    assert not any(e.sporadic and e.cpu_flags for e in entries)
