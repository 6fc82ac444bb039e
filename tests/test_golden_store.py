"""The golden store and ``conformance golden``: provenance, diff summaries, atomic updates, clear load errors.

In-process and numpy-only (fast): the CLI's ``main`` is called directly with ``--dir`` pointing at a temporary
directory; the faulty stream adapters are registered in place of ``numpy`` through ``registry._runtime``.
"""

from __future__ import annotations

import json
import os

import pytest
from conformance.backends import registry

from conformance import __version__
from conformance.cli import main
from conformance.goldens import fingerprints as fp
from conformance.goldens import store
from tests.faulty import stream_adapters

SPEC = "streams:numpy:cpu"


def _update(tmp_path, *extra: str) -> int:
    return main(["golden", "update", "--only", SPEC, "--dir", str(tmp_path), *extra])


def _only_file(tmp_path):
    (path,) = store.files_of(tmp_path, "streams")
    return path


@pytest.fixture
def numpy_golden(tmp_path, capsys):
    assert _update(tmp_path) == 0
    capsys.readouterr()
    return _only_file(tmp_path)


@pytest.fixture
def as_numpy(monkeypatch):
    """Register a faulty provider under the name ``numpy`` for this test only."""

    def use(providers):
        monkeypatch.setitem(registry._runtime, "numpy", providers[0])

    return use


def test_update_writes_schema_provenance_and_checksum(numpy_golden, capsys):
    doc = json.loads(numpy_golden.read_text())
    assert doc["schema"] == store.SCHEMA and doc["kind"] == "streams" and doc["suite_version"] == __version__
    prov = doc["provenance"]
    assert prov["generator"] == f"conformance golden update --only {SPEC}"
    assert prov["suite_version"] == __version__ and prov["seed"] == fp.GOLDEN_SEED
    assert {"numpy", "device"} <= set(prov["versions"]) and prov["date"].endswith("Z")
    assert {"python", "platform", "machine"} <= set(prov)
    assert doc["key"]["spec"] == "numpy:cpu" and doc["key"]["version"] == prov["versions"]["numpy"]
    assert numpy_golden.relative_to(numpy_golden.parents[3]).parts[:2] == ("streams", "numpy")
    entry = doc["entries"]["sample.uniform/float32"]
    assert len(entry["sha256"]) == 64 and len(entry["head"]) == fp.HEAD and entry["shape"] == [1024]
    assert entry["head_bits"][0].startswith("0x") and len(entry["head_bits"][0]) == 10
    assert doc["checksum"] == store.canonical_checksum(doc["entries"])
    assert store.load_file(numpy_golden).entries == doc["entries"]


def test_update_prints_a_diff_summary(numpy_golden, as_numpy, capsys):
    assert _update(numpy_golden.parents[3]) == 0
    out = capsys.readouterr().out
    assert "unchanged (28 entries); not rewritten" in out
    before = numpy_golden.read_text()
    as_numpy(stream_adapters.SKIPPED_DRAW)
    assert _update(numpy_golden.parents[3]) == 0
    out = capsys.readouterr().out
    assert "0 added, 24 changed, 4 unchanged, 0 removed" in out, out
    changed = next(line for line in out.splitlines() if line.strip().startswith("changed:"))
    assert "sample.uniform/float32" in changed and "module.Linear-32x31/float16/weight" in changed
    assert "trunc_normal" not in changed  # scipy's truncnorm draws through its own path: unchanged
    assert numpy_golden.read_text() != before


def test_new_version_file_is_compared_with_the_previous_version(numpy_golden, as_numpy, capsys):
    as_numpy(stream_adapters.NEWER_CHANGED)
    assert _update(numpy_golden.parents[3]) == 0
    out = capsys.readouterr().out
    assert "new file: 28 entries added" in out
    version = json.loads(numpy_golden.read_text())["key"]["version"]
    assert f"compared with numpy {version}: 0 added, 24 changed, 4 unchanged" in out
    assert f"changed since {version}: " in out
    assert len(store.files_of(numpy_golden.parents[3], "streams")) == 2


def test_verify_reports_same_version_change_as_a_problem(numpy_golden, as_numpy, capsys):
    assert main(["golden", "verify", "--only", SPEC, "--dir", str(numpy_golden.parents[3])]) == 0
    assert "OK: 28 entries match" in capsys.readouterr().out
    as_numpy(stream_adapters.SKIPPED_DRAW)
    assert main(["golden", "verify", "--only", SPEC, "--dir", str(numpy_golden.parents[3])]) == 1
    out = capsys.readouterr().out
    assert "CHANGED within numpy" in out and "first difference at index 5" in out
    as_numpy(stream_adapters.NEWER_CHANGED)
    assert main(["golden", "verify", "--only", SPEC, "--dir", str(numpy_golden.parents[3])]) == 0
    assert "changed since" in (out := capsys.readouterr().out) and "note streams numpy:cpu" in out


# -- atomic updates -------------------------------------------------------------------------------------------------
def _no_temp_files(directory):
    return not [p for p in directory.rglob("*") if p.name.endswith(".tmp")]


def test_failure_while_computing_leaves_the_old_file(numpy_golden, as_numpy, monkeypatch, capsys):
    before = numpy_golden.read_bytes()
    as_numpy(stream_adapters.SKIPPED_DRAW)  # the update would change 24 entries...
    calls = {"n": 0}
    real = fp.fingerprint

    def flaky(x):
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("injected failure mid-update")
        return real(x)

    monkeypatch.setattr(fp, "fingerprint", flaky)
    assert _update(numpy_golden.parents[3]) == 2  # ...but fails on the 20th fingerprint
    assert "injected failure mid-update" in capsys.readouterr().err
    assert numpy_golden.read_bytes() == before and _no_temp_files(numpy_golden.parents[3])


def test_failure_while_writing_leaves_the_old_file(numpy_golden, as_numpy, monkeypatch, capsys):
    before = numpy_golden.read_bytes()
    as_numpy(stream_adapters.SKIPPED_DRAW)

    def broken_replace(src, dst):
        raise OSError("injected: disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    assert _update(numpy_golden.parents[3]) == 2
    assert "disk full" in capsys.readouterr().err
    assert numpy_golden.read_bytes() == before and _no_temp_files(numpy_golden.parents[3])


def test_nothing_is_written_when_a_later_backend_fails(tmp_path, monkeypatch, capsys):
    """Two-phase: the numpy file is computed first, the second backend then fails: no file appears at all."""

    class Broken(stream_adapters.SkippedDraw):
        """Crashes on every draw."""

        def sample(self, *args, **kwargs):
            raise RuntimeError("injected: second backend crashed")

    from tests.faulty.common import providers

    monkeypatch.setitem(registry._runtime, "broken-stream", providers(broken_stream=Broken)[0])
    code = main(["golden", "update", "--only", "streams", "--backend", "numpy:cpu", "--backend",
                 "broken-stream:cpu", "--dir", str(tmp_path)])
    assert code == 2 and "second backend crashed" in capsys.readouterr().err
    assert store.files_of(tmp_path, "streams") == []


# -- load errors ----------------------------------------------------------------------------------------------------
def _rewrite(path, mutate):
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda p: p.write_text(p.read_text()[:500]), "is corrupt: not valid JSON"),
    (lambda p: p.write_text("[1, 2]"), "is corrupt: no 'schema' field"),
    (lambda p: _rewrite(p, lambda d: d["entries"]["sample.uniform/float32"].update(sha256="0" * 64)),
     "do not match their checksum"),
    (lambda p: _rewrite(p, lambda d: d.pop("entries")), "field 'entries' is missing"),
], ids=["truncated", "not-a-golden", "hand-edited", "missing-field"])
def test_corrupt_file_error_names_file_and_remedy(numpy_golden, damage, expected):
    damage(numpy_golden)
    with pytest.raises(store.GoldenError) as info:
        store.load_file(numpy_golden)
    msg = str(info.value)
    assert str(numpy_golden) in msg and expected in msg
    assert f"git checkout -- {numpy_golden}" in msg and "conformance golden update --only streams:numpy:cpu" in msg


@pytest.mark.parametrize("schema", [0, "1", None, 1.5])
def test_unknown_schema_is_refused(numpy_golden, schema):
    _rewrite(numpy_golden, lambda d: d.update(schema=schema))
    with pytest.raises(store.GoldenError, match=r"unknown schema version") as info:
        store.load_file(numpy_golden)
    assert str(numpy_golden) in str(info.value)


def test_newer_schema_says_upgrade(numpy_golden):
    _rewrite(numpy_golden, lambda d: d.update(schema=store.SCHEMA + 1, suite_version="7.0.0"))
    with pytest.raises(store.GoldenError) as info:
        store.load_file(numpy_golden)
    msg = str(info.value)
    assert str(numpy_golden) in msg and f"has schema {store.SCHEMA + 1}" in msg
    assert "Upgrade dl-conformance to 7.0.0 or newer" in msg


def test_file_from_a_newer_suite_is_refused_and_not_overwritten(numpy_golden, capsys):
    _rewrite(numpy_golden, lambda d: d.update(suite_version="99.1.0"))
    with pytest.raises(store.GoldenError) as info:
        store.load_file(numpy_golden)
    msg = str(info.value)
    assert str(numpy_golden) in msg and "written by dl-conformance 99.1.0, newer than this one" in msg
    assert "Upgrade dl-conformance to 99.1.0 or newer" in msg
    before = numpy_golden.read_bytes()
    assert _update(numpy_golden.parents[3]) == 2 and numpy_golden.read_bytes() == before
    assert "newer than this one" in capsys.readouterr().err
    assert _update(numpy_golden.parents[3], "--force") == 0
    assert json.loads(numpy_golden.read_text())["suite_version"] == __version__


def test_corrupt_file_is_a_verify_problem(numpy_golden, capsys):
    numpy_golden.write_text("{")
    assert main(["golden", "verify", "--only", "streams", "--backend", "numpy:cpu", "--dir",
                 str(numpy_golden.parents[3])]) == 1
    assert "is corrupt: not valid JSON" in capsys.readouterr().out


def test_unknown_kind_is_a_usage_error(tmp_path, capsys):
    assert main(["golden", "update", "--only", "nonsense", "--dir", str(tmp_path)]) == 2
    assert "unknown golden kind 'nonsense'; known: streams, model_init, activations" in capsys.readouterr().err


def test_never_pickle():
    import inspect

    from conformance import goldens

    sources = [inspect.getsource(m) for m in (store, fp, goldens)]
    assert not any("pickle" in s.replace("never pickle", "").replace("Never pickle", "") for s in sources)


def test_model_init_refactor_is_caught(tmp_path, monkeypatch, capsys):
    """LitGPT #1150 in miniature: init_weights becomes a no-op; the per-parameter fingerprints name the damage."""
    pytest.importorskip("torch")
    from conformance.backends.torch import models

    only = ["--only", "model_init:torch:cpu", "--dir", str(tmp_path)]
    assert main(["golden", "update", *only]) == 0
    assert "new file: 82 entries added" in capsys.readouterr().out
    real = models.gpt2

    def gpt2_without_init(**config):
        model = real(**config)
        model.init_weights = lambda: None
        return model

    monkeypatch.setattr(models, "gpt2", gpt2_without_init)
    assert main(["golden", "verify", *only]) == 1
    out = capsys.readouterr().out
    assert "FAIL model_init torch:cpu" in out and "CHANGED within torch" in out
    assert "gpt2/transformer.h.0.attn.c_proj.weight: first difference at index 0" in out
    assert "llama-torchtitan/" not in out  # the other reference models are untouched
