"""Run the conformance CLI in a fresh interpreter and read its results.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, report_dir: Path | None = None, timeout: float = 600) -> tuple[subprocess.CompletedProcess,
                                                                                       dict | None]:
    """``python -m conformance <args> [--report-dir DIR]`` from the repo root; returns (process, results)."""
    cmd = [sys.executable, "-m", "conformance", *args]
    if report_dir is not None:
        cmd[4:4] = ["--report-dir", str(report_dir)] if args and args[0] == "run" else []
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    results = None
    if report_dir is not None and (report_dir / "results.json").exists():
        results = json.loads((report_dir / "results.json").read_text())
    return proc, results


def records(results: dict, check: str | None = None, backend: str | None = None, dtype: str | None = None) -> list:
    return [r for r in results["records"] if (check is None or r["id"] == check)
            and (backend is None or r["backend"] == backend) and (dtype is None or r["dtype"] == dtype)]


def failed_tests(record: dict) -> set[str]:
    """Names of the verdicts that failed in one record."""
    return {v["test"] for v in record["verdicts"] if not v["passed"]}
