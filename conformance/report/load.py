"""Reading the files the report is built from: a results file and the optional files named on the command line.

The report reads nothing else (no file found by convention in the working directory): ``render_html`` takes
loaded data, and ``conformance report`` loads exactly the paths it was given.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..results import SCHEMA


def load_results(path: Path) -> dict:
    """Read a results file; a clear error names the file when it is missing, corrupt or of another schema."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such results file (run `conformance run` first)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); re-run `conformance run` to regenerate it") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else None
        raise ValueError(f"{path}: results schema {got!r}, this version of the suite reads schema {SCHEMA}")
    return data


def load_mutation_score(path: Path) -> dict:
    """Read a mutation score document (``tools/mutation_score.py`` writes ``reports/mutation_score.json``)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such mutation score file (run `python tools/mutation_score.py`)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "caught" not in data or "total" not in data:
        raise ValueError(f"{path}: not a mutation score document (no 'caught'/'total')")
    return data
