"""Reading the files the report is built from: a results file and the optional files named on the command line.

The report reads nothing else (no file found by convention in the working directory): ``render_html`` takes
loaded data, and ``conformance report`` loads exactly the paths it was given.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..results import SCHEMA


def _read_json(path: Path, missing: str, invalid: str = "") -> object:
    """The JSON in ``path``; a missing or unparsable file is a ``ValueError`` naming it and what to do."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: {missing}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}){invalid}") from None


def load_results(path: Path) -> dict:
    """Read a results file; a clear error names the file when it is missing, corrupt or of another schema."""
    data = _read_json(path, "no such results file (run `conformance run` first)",
                      "; re-run `conformance run` to regenerate it")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else None
        raise ValueError(f"{path}: results schema {got!r}, this version of the suite reads schema {SCHEMA}")
    return data


def load_mutation_score(path: Path) -> dict:
    """Read a mutation score document (``tools/mutation_score.py`` writes ``reports/mutation_score.json``)."""
    data = _read_json(path, "no such mutation score file (run `python tools/mutation_score.py`)")
    if not isinstance(data, dict) or "caught" not in data or "total" not in data:
        raise ValueError(f"{path}: not a mutation score document (no 'caught'/'total')")
    return data
