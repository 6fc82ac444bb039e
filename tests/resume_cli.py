"""Running ``conformance resume`` as a user does, for the tests of the real-stack harnesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def run_resume(harness: str, *args: str, timeout: float = 500) -> tuple[int, dict | None, str]:
    """``python -m conformance resume HARNESS ARGS`` offline from the checkout: exit code, the JSON on stdout (with
    ``--json``; None otherwise) and stderr."""
    proc = subprocess.run([sys.executable, "-m", "conformance", "resume", harness, *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout, env={**os.environ, **OFFLINE})
    doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
    return proc.returncode, doc, proc.stderr
