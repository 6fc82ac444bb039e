"""``conformance report merge``: results from different machines and backends become one matrix;
duplicates and conflicts are flagged; bad inputs are refused before anything is written."""

from __future__ import annotations

import json

from .helpers import run_cli

SELECT = "eye-5x7 or (calculate_gain and relu)"


def _run(tmp_path, name, *backends, adapters=()):
    args = ["run", "-k", SELECT, "-q"]
    for a in adapters:
        args += ["--adapters", a]
    for b in backends:
        args += ["--backend", b]
    proc, results = run_cli(*args, report_dir=tmp_path / name)
    assert results is not None, proc.stdout[-2000:]
    return tmp_path / name / "results.json"


def test_merge_two_backends_into_one_matrix(tmp_path):
    a = _run(tmp_path, "linux-numpy", "numpy:cpu")
    b = _run(tmp_path, "box-faulty", "faulty-std:cpu", adapters=["tests.faulty.init_adapters"])
    c = _run(tmp_path, "again-numpy", "numpy:cpu")
    out = tmp_path / "merged"
    proc, _ = run_cli("report", "merge", str(a), str(b), str(c), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((out / "results.json").read_text())
    assert {r["backend"] for r in merged["records"]} == {"numpy:cpu", "faulty-std:cpu"}
    assert len(merged["machines"]) == 3 and all(m["environment"] for m in merged["machines"])
    assert merged["merge"]["duplicates"] and not merged["merge"]["conflicts"]  # same seed, same verdicts
    html = (out / "index.html").read_text()
    assert "numpy:cpu:float32" in html and "faulty-std:cpu:float32" in html and "Merged from 3 results files" in html
    # severity survives the merge: the tier and the counts of defects and deviations
    assert merged["tier"] == "default" and "What to fix first" in html
    for key, severity in (("defects", "defect"), ("deviations", "deviation")):
        assert merged["summary"][key] == sum(r["severity"] == severity for r in merged["records"])


def test_conflicting_records_are_flagged(tmp_path):
    a = _run(tmp_path, "a", "numpy:cpu")
    doc = json.loads(a.read_text())
    for r in doc["records"]:
        r["outcome"] = "failed"
    b = tmp_path / "b.json"
    b.write_text(json.dumps(doc))
    out = tmp_path / "m"
    proc, _ = run_cli("report", "merge", str(a), str(b), "-o", str(out))
    assert proc.returncode == 0
    assert "CONFLICT" in proc.stdout
    merged = json.loads((out / "results.json").read_text())
    assert len(merged["merge"]["conflicts"]) == len(doc["records"])


def test_merge_refuses_bad_input_and_writes_nothing(tmp_path):
    a = _run(tmp_path, "a", "numpy:cpu")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": 99, "records": []}))
    out = tmp_path / "m"
    proc, _ = run_cli("report", "merge", str(a), str(bad), "-o", str(out))
    # a malformed input is a usage error (exit 4), one line naming the file and the field
    assert proc.returncode == 4 and "schema 99" in proc.stderr and "bad.json" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()
