"""The zoo machinery without any real library: runner statuses (pass, finding, fail, error, unavailable) on our own
reference and faulty models, the findings table across versions, the README block, the CLI's --list, NAME and
realworld commands and their exit codes."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

pytest.importorskip("torch")

from conformance.audit import zoo  # noqa: E402
from conformance.audit.spec import load  # noqa: E402
from conformance.audit.zoo import findings as F  # noqa: E402
from conformance.audit.zoo.runner import run_entry  # noqa: E402
from conformance.cli import main as cli_main  # noqa: E402

GPT2 = "conformance.backends.torch.models:gpt2"


def ours_gpt2(**config):
    """Our GPT-2 built as a library's users build it: constructed, then initialized (eager zoo mode runs no init)."""
    from conformance.backends.torch.models import gpt2

    model = gpt2(**config)
    model.init_weights()
    return model


SMALL_GPT2 = {"n_embd": 64, "vocab_size": 256, "block_size": 32}
#: Our own GPT-2 judged as a zoo factory: the gpt2 spec is its code; an "intent" that wants no residual scaling.
OURS = zoo.ZooFactory("ours-gpt2", "torch", "tests.test_zoo_realworld:ours_gpt2", "gpt2", "our GPT-2",
                      config=SMALL_GPT2, device_init=("eager", "meta"), init="init_weights",
                      upstream="https://example.invalid/ours")
INTENT = """
[spec]
name = "ours_intent"
kind = "intent"
code = "gpt2"
sources = ["example/ours@0000000000000000000000000000000000000000 model.py: the docstring says no residual scaling"]
[[rule]]
pattern = "*.c_proj.weight"
dist = "normal"
std = 0.02
source = "model.py L1"
[[rule]]
pattern = "*.bias"
dist = "zeros"
optional = true
source = "model.py L2"
[[rule]]
pattern = "re:(ln_\\\\d|ln_f)\\\\.weight$"
dist = "ones"
source = "model.py L3"
[[rule]]
pattern = "*.weight"
dist = "normal"
std = 0.02
source = "model.py L4"
[[tie]]
names = ["transformer.wte.weight", "lm_head.weight"]
"""


@pytest.fixture(scope="module")
def intent_spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "ours_intent.toml"
    path.write_text(INTENT)
    assert load(str(path)).kind == "intent"
    return str(path)


def test_reference_model_passes_as_a_zoo_factory():
    run = run_entry(OURS)
    assert run.status == "pass", [m for r in run.reports for m in r.failures()]
    assert [r.device_init for r in run.reports] == ["eager", "meta"]
    assert run.version  # torch's installed version


def test_intent_that_the_code_does_not_follow_is_a_finding(intent_spec):
    run = run_entry(dataclasses.replace(OURS, intent=intent_spec))
    assert run.status == "finding"
    assert all(r.passed for r in run.code_reports())
    failing = {t.name for r in run.intent_reports() for t in r.tensors if not t.passed}
    assert failing and all(n.endswith("c_proj.weight") for n in failing), failing


def test_faulty_model_fails_its_code_spec():
    faulty = dataclasses.replace(OURS, name="faulty", build="tests.faulty.models:residual_scaling_missing",
                                 device_init=("meta",))
    run = run_entry(faulty)
    assert run.status == "fail"
    failing = {t.name for r in run.reports for t in r.tensors if not t.passed}
    assert failing and all(n.endswith("c_proj.weight") for n in failing)


def test_missing_library_is_unavailable_with_the_reason_and_a_raising_build_is_an_error():
    run = run_entry(dataclasses.replace(OURS, library="no-such-library-xyz"))
    assert run.status == "unavailable" and "no-such-library-xyz is not installed" in run.reason
    run = run_entry(dataclasses.replace(OURS, build="tests.faulty.models:raising_factory"))
    assert run.status == "error" and "RuntimeError: cannot build" in run.reason
    run = run_entry(OURS, modes=("meta",))
    assert [r.device_init for r in run.reports] == ["meta"]
    run = run_entry(dataclasses.replace(OURS, device_init=("eager",)), modes=("meta",))
    assert run.status == "error" and "not built in meta mode" in run.reason


def _run(version: str, failing: list[str], kind: str = "code") -> dict:
    tensors = [{"name": n, "status": "mismatch", "expected": "N(0, 0.02^2)", "observed": "std 0.03 (+50.0%)",
                "evidence": "n = 4096, p = 0 (variance)", "message": ""} for n in failing]
    return {"schema": 1, "kind": "conformance-realworld-run", "label": version, "torch": "2.13.0", "entries": [{
        "name": "lib-model", "library": "lib", "version": version, "status": "fail" if failing else "pass",
        "upstream": "https://github.com/o/lib", "reports": [
            {"spec_kind": kind, "device_init": "eager", "failing": tensors, "model_failures": []}]}]}


def test_findings_show_a_regression_with_its_version_range_and_review_state():
    runs = [_run("1.0", []), _run("1.1", ["h.0.proj.weight", "h.1.proj.weight"]), _run("1.2", ["h.3.proj.weight"])]
    rows = F.findings(runs, known=[])
    assert len(rows) == 1
    row = rows[0]
    assert row.parameter == "h.*.proj.weight"
    assert row.failing == {"1.1", "1.2"} and row.passing == {"1.0"}
    assert row.verdict == "UNREVIEWED regression: passes at 1.0, fails at 1.1, 1.2"
    known = F.load_known('[[finding]]\nfactory = "lib-*"\nparameter = "h.*.proj.weight"\nkind = "code"\n'
                         'confirmed = "https://github.com/o/lib/blob/abc/m.py#L3"\n')
    row = F.findings(runs, known=known)[0]
    assert row.verdict.endswith("(confirmed in upstream code)") and row.link.endswith("#L3")
    table = F.markdown(F.findings(runs, known=known), runs)
    assert "| lib | 1.1, 1.2 | lib-model (eager) | `h.*.proj.weight` |" in table and "[code](https://" in table
    assert "Measured at: lib 1.0, 1.1, 1.2" in table


def test_an_intent_row_is_dropped_where_the_code_spec_already_fails():
    run = _run("1.0", ["h.0.proj.weight"])
    run["entries"][0]["reports"].append({**run["entries"][0]["reports"][0], "spec_kind": "intent"})
    rows = F.findings([run], known=[])
    assert [(r.kind, r.parameter) for r in rows] == [("code", "h.*.proj.weight")]


def test_readme_block_and_findings_file_errors():
    text = f"a\n{F.BEGIN}\nold\n{F.END}\nb\n"
    assert F.replace_block(text, "new") == f"a\n{F.BEGIN}\nnew\n{F.END}\nb\n"
    with pytest.raises(F.FindingsError, match="exactly one"):
        F.replace_block("no markers", "x")
    with pytest.raises(F.FindingsError, match="confirmed must be a link"):
        F.load_known('[[finding]]\nfactory = "a"\nparameter = "b"\nkind = "code"\nconfirmed = "trust me"\n')
    with pytest.raises(F.FindingsError, match="unknown key"):
        F.load_known('[[finding]]\nfactory = "a"\nparameter = "b"\nkind = "code"\nconfirmed = "https://x"\nx = 1\n')
    assert isinstance(F.load_known(), list)  # the packaged file parses


def test_every_builtin_zoo_spec_cites_a_commit_and_every_rule_a_source():
    specs = {e.spec for e in zoo.catalogue()} | {e.intent for e in zoo.catalogue() if e.intent}
    for name in sorted(specs):
        spec = load(name)
        code_sources = [s for s in spec.sources if re.match(r"[\w.-]+/[\w.-]+@\S+ \S+", s)]
        assert code_sources, f"{name}: sources must cite owner/repo@commit path"
        cited = re.compile(r"[\w.-]+/[\w.-]+(@\S+|#\d+| PR #\d+)|arXiv:|https://")
        vague = [s for s in spec.sources if not cited.search(s)]
        assert not vague, f"{name}: a source that cites no commit, issue, paper or link: {vague}"
        assert all(r.source for r in spec.rules), f"{name}: every rule needs a source"
        if spec.kind == "intent":
            assert load(spec.code).kind == "code"


def _cli(capsys, *argv):
    code = cli_main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_list_names_and_errors(capsys, monkeypatch):
    code, out, _ = _cli(capsys, "audit", "--list")
    assert code == 0 and "name" in out.splitlines()[0] and "factories from" in out
    entries = zoo.catalogue()
    assert len(entries) >= 15 and len({e.library for e in entries}) >= 4
    code, _, err = _cli(capsys, "audit", "no-such-factory")
    assert code == 4 and "no zoo factory 'no-such-factory'" in err
    code, _, err = _cli(capsys, "audit", GPT2)
    assert code == 4 and "needs --spec" in err
    monkeypatch.setattr(zoo, "catalogue", lambda: [OURS, dataclasses.replace(OURS, name="gone", library="nope-xyz")])
    code, out, _ = _cli(capsys, "audit", "gone")
    assert code == 5 and "nope-xyz is not installed" in out
    code, out, _ = _cli(capsys, "audit", "ours-gpt2", "--device-init", "eager")
    assert code == 0 and "ours-gpt2 (torch" in out and "PASS" in out


def test_cli_realworld_writes_runs_results_html_and_readme(tmp_path, capsys, monkeypatch, intent_spec):
    monkeypatch.setattr(zoo, "catalogue", lambda: [dataclasses.replace(OURS, intent=intent_spec)])
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{F.BEGIN}\n{F.END}\n")
    code, out, _ = _cli(capsys, "realworld", "--out", str(tmp_path / "rw"), "--readme", str(readme), "--label", "t",
                        "--no-hf-scan")
    assert code == 0, out  # a finding against intent is not a failure
    doc = json.loads((tmp_path / "rw" / "results.json").read_text())
    assert doc["findings"] and all(f["kind"] == "intent" for f in doc["findings"])
    assert "UNREVIEWED finding" in readme.read_text() and "c_proj.weight" in readme.read_text()
    html = (tmp_path / "rw" / "index.html").read_text()
    assert "<title>Real-world init audit:" in html and "c_proj.weight</code>" in html and "UNREVIEWED" in html
    code, _, err = _cli(capsys, "realworld", "--library", "nope", "--out", str(tmp_path / "rw"))
    assert code == 4 and "unknown library" in err
    (tmp_path / "rw" / "runs" / "bad.json").write_text("{")
    code, _, err = _cli(capsys, "realworld", "--merge-only", "--out", str(tmp_path / "rw"))
    assert code == 4 and "bad.json: not a readable run file" in err


def _scan_run(version: str, families: dict[str, str]) -> dict:
    return {"schema": 1, "kind": "conformance-realworld-run", "label": version, "torch": "2.13.0", "entries": [],
            "hf_scan": {"transformers": version, "covered_families": ["a", "b", "c"], "findings": [
                {"family": fam, "check": check, "title": "t", "path": "meta", "names": ["x.0.w"], "message": "m"}
                for fam, check in families.items()]}}


def test_one_confirmed_cause_over_many_models_is_one_line_limited_by_version_and_check():
    runs = [_scan_run("4.1", {"a": "b", "b": "b", "c": "a"}), _scan_run("5.0", {})]
    known = F.load_known('[[finding]]\nfactory = "hf-scan/*"\nparameter = "*"\nkind = "scan"\ncheck = "b | e"\n'
                         'versions = "4.*"\nconfirmed = "https://github.com/o/t/blob/v4.1/m.py#L1"\n')
    rows = F.findings(runs, known=known)
    by_model = {r.model: r for r in rows}
    assert by_model["hf-scan/a"].known is not None and by_model["hf-scan/c"].known is None  # check a: not this cause
    assert by_model["hf-scan/a"].passing == {"5.0"}
    table = F.markdown(rows, runs)
    assert "| transformers | 4.1 | 2 models: hf-scan/a, hf-scan/b (meta) |" in table
    assert "UNREVIEWED" in table  # hf-scan/c stays on its own line, unconfirmed
    known5 = F.load_known('[[finding]]\nfactory = "hf-scan/*"\nparameter = "*"\nkind = "scan"\nversions = "5.*"\n'
                          'confirmed = "https://x"\n')
    assert all(r.known is None for r in F.findings(runs, known=known5))


def test_cli_realworld_is_red_only_for_unreviewed_code_failures(tmp_path, capsys, monkeypatch):
    faulty = dataclasses.replace(OURS, name="faulty", build="tests.faulty.models:residual_scaling_missing",
                                 device_init=("meta",))
    monkeypatch.setattr(zoo, "catalogue", lambda: [faulty])
    out_dir = str(tmp_path / "rw")
    code, out, _ = _cli(capsys, "realworld", "--out", out_dir, "--no-hf-scan")
    assert code == 1 and "UNREVIEWED faulty transformer.h.*.attn.c_proj.weight" in out
    confirmed = F.load_known('[[finding]]\nfactory = "faulty"\nparameter = "*"\nkind = "code"\n'
                             'confirmed = "https://github.com/o/r/blob/abc/m.py#L1"\n')
    monkeypatch.setattr(F, "load_known", lambda: confirmed)
    code, out, _ = _cli(capsys, "realworld", "--out", out_dir, "--no-hf-scan")
    assert code == 0 and "UNREVIEWED" not in out
