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
