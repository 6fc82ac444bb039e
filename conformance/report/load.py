"""Reading the files the report is built from: a results file and the optional files named on the command line.

The report reads nothing else (no file found by convention in the working directory): ``render_html`` takes
loaded data, and ``conformance report`` loads exactly the paths it was given.

:func:`normalise` is the one validation of a results document (``load_results`` and ``render_html`` both call it):
the fields the report reads are checked for presence and type, and a document that fails raises
:class:`MalformedResults`, one line naming the source and the missing or bad field (``conformance report`` exits 4
on it). Optional fields get their defaults, so the template never meets a missing key: a file without ``status``
predates the field and reads as ``"complete"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..results import OUTCOMES, SCHEMA, STATUSES


class MalformedResults(ValueError):
    """A results document the report cannot read: invalid JSON, another schema, a missing or mistyped field."""


_NONFINITE = ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


def _read_json(path: Path, missing: str, invalid: str = "", error: type[ValueError] = ValueError) -> object:
    """The JSON in ``path``; a missing file is a ``ValueError`` naming it and what to do, an unparsable one
    ``error``."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not valid JSON (not UTF-8 text: {exc.reason}){invalid}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc}){invalid}") from None


def _show(value: Any) -> str:
    """A short one-line rendering of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    """Type checks with messages naming the source and the field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str, context: str = "") -> MalformedResults:
        return MalformedResults(f"{self.source}: {where}: {problem}" + (f" ({context})" if context else ""))

    def get(self, obj: dict, key: str, where: str, kind: str, default: Any = ..., context: str = "") -> Any:
        """``obj[key]`` checked against ``kind``; ``default`` (when given) for an absent key or None where allowed."""
        path = f"{where}.{key}" if where else key
        if key not in obj:
            if default is ...:
                raise self.fail(path, "missing field", context)
            return default
        value = obj[key]
        ok, value = _convert(kind, value)
        if not ok:
            raise self.fail(path, f"expected {_KINDS[kind]}, got {_show(obj[key])}", context)
        return value


_KINDS = {"str": "a string", "str?": "a string or null", "int": "an integer", "int?": "an integer or null",
          "num?": "a number or null", "bool": "true or false", "dict": "an object", "dict?": "an object or null",
          "list": "a list", "any": "any value"}


def _convert(kind: str, value: Any) -> tuple[bool, Any]:
    """(whether ``value`` is of ``kind``, the value as the report uses it)."""
    if value is None and kind.endswith("?"):
        return True, None
    base = kind.rstrip("?")
    if base == "any":
        return True, value
    if base == "str":
        return isinstance(value, str), value
    if base == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if base == "num":
        if isinstance(value, str):  # non-finite floats travel as their repr ('nan', 'inf'); kept as written
            return value.strip().lower() in _NONFINITE, value
        return isinstance(value, (int, float)) and not isinstance(value, bool), value
    if base == "bool":
        return isinstance(value, bool), value
    if base == "dict":
        return isinstance(value, dict), value
    if base == "list":
        return isinstance(value, list), value
    raise AssertionError(kind)


def _verdict(c: _Checker, v: Any, where: str, context: str) -> dict:
    if not isinstance(v, dict):
        raise c.fail(where, f"expected an object, got {_show(v)}", context)
    out = dict(v)
    out["test"] = c.get(v, "test", where, "str", context=context)
    out["passed"] = c.get(v, "passed", where, "bool", context=context)
    out["message"] = c.get(v, "message", where, "str?", "", context) or ""
    for key in ("pvalue", "alpha", "statistic"):
        out[key] = c.get(v, key, where, "num?", None, context)
    out["n"] = c.get(v, "n", where, "int?", 0, context) or 0
    for key in ("effect", "observed", "expected"):
        out[key] = c.get(v, key, where, "dict?", {}, context) or {}
    return out


def _record(c: _Checker, r: Any, where: str) -> dict:
    if not isinstance(r, dict):
        raise c.fail(where, f"expected a record object, got {_show(r)}")
    context = f"record {_show(r['id'])}" if isinstance(r.get("id"), str) else ""
    out = dict(r)
    out["id"] = c.get(r, "id", where, "str")
    if not out["id"]:
        raise c.fail(f"{where}.id", "empty check id")
    out["backend"] = c.get(r, "backend", where, "str", context=context)
    context = f"record {_show(out['id'])} on {out['backend']}"
    outcome = c.get(r, "outcome", where, "str", context=context)
    if outcome not in OUTCOMES:
        raise c.fail(f"{where}.outcome", f"{_show(outcome)} is not one of {', '.join(OUTCOMES)}", context)
    out["dtype"] = c.get(r, "dtype", where, "str?", None, context) or None
    verdicts = c.get(r, "verdicts", where, "list", [], context)
    out["verdicts"] = [_verdict(c, v, f"{where}.verdicts[{i}]", context) for i, v in enumerate(verdicts)]
    for key, default in (("message", ""), ("repro", ""), ("detail", ""), ("known_failure", ""), ("nodeid", ""),
                         ("tier", "hard")):
        out[key] = c.get(r, key, where, "str?", default, context) or default
    for key in ("pvalue", "statistic", "duration"):
        out[key] = c.get(r, key, where, "num?", None, context)
    out["n"] = c.get(r, "n", where, "int?", 0, context) or 0
    out["seed"] = c.get(r, "seed", where, "any", None, context)
    out["effect"] = c.get(r, "effect", where, "dict?", {}, context) or {}
    out["attachments"] = c.get(r, "attachments", where, "dict?", {}, context) or {}
    timing = c.get(r, "timing", where, "dict?", {}, context) or {}
    out["timing"] = {key: c.get(timing, key, f"{where}.timing", "num?", 0.0, context) or 0.0
                     for key in ("setup", "call", "adapter") if key in timing}
    return out


def normalise(data: Any, source: str = "results") -> dict:
    """A checked copy of a results document with every optional field the report reads filled in; the input is not
    changed. :class:`MalformedResults` (one line: ``source``, the field, what is wrong) when it is not readable."""
    c = _Checker(str(source))
    if not isinstance(data, dict):
        raise c.fail("top level", f"expected a JSON object, got {type(data).__name__}")
    if "schema" not in data:
        raise c.fail("schema", "missing field (not a results file?)")
    if data["schema"] != SCHEMA:
        raise MalformedResults(f"{source}: results schema {data['schema']!r}, this version of the suite reads "
                               f"schema {SCHEMA}")
    out = dict(data)
    records = c.get(data, "records", "", "list")
    out["records"] = [_record(c, r, f"records[{i}]") for i, r in enumerate(records)]
    status = c.get(data, "status", "", "str?", "complete") or "complete"
    if status not in STATUSES:
        raise c.fail("status", f"{_show(status)} is not one of {', '.join(STATUSES)}")
    out["status"] = status
    out["interrupted"] = c.get(data, "interrupted", "", "str?", "") or ""
    strict = c.get(data, "strict", "", "dict?", None)
    if strict is not None:
        violations = c.get(strict, "violations", "strict", "list", [])
        bad = [v for v in violations if not isinstance(v, str)]
        if bad:
            raise c.fail("strict.violations", f"expected a list of strings, got {_show(bad[0])}")
        strict = {**strict, "enabled": c.get(strict, "enabled", "strict", "bool", False), "violations": violations}
    out["strict"] = strict
    for key in ("environment", "design", "backends"):
        out[key] = c.get(data, key, "", "dict?", {}) or {}
    for spec, info in out["backends"].items():
        if not isinstance(info, dict):
            raise c.fail(f"backends[{spec!r}]", f"expected an object, got {_show(info)}")
    for key in ("suite_version", "created"):
        out[key] = c.get(data, key, "", "str?", None)
    out["duration"] = c.get(data, "duration", "", "num?", None)
    out["workers"] = c.get(data, "workers", "", "int?", 1) or 1
    out["seed"] = c.get(data, "seed", "", "any", None)
    stale = c.get(data, "stale_known_failures", "", "list", [])
    out["stale_known_failures"] = [str(s) for s in stale]
    counts = {k: sum(r["outcome"] == k for r in out["records"]) for k in OUTCOMES}
    n_stat = sum(1 for r in out["records"] for v in r["verdicts"] if v["alpha"] is not None)
    alpha = out["design"].get("alpha_per_test")
    fwer = n_stat * alpha if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) else None
    summary = {**counts, "total": len(out["records"]), "statistical_tests": n_stat, "fwer_bound": fwer}
    given = c.get(data, "summary", "", "dict?", {}) or {}
    for key in given:
        kind = "num?" if key == "fwer_bound" else "int?" if key in summary else "any"
        value = c.get(given, key, "summary", kind)
        if value is not None:
            summary[key] = value
    out["summary"] = summary
    return out


def load_results(path: Path) -> dict:
    """Read and :func:`normalise` a results file; a missing file is a ``ValueError``, a corrupt one, one of another
    schema or with a missing or bad field a :class:`MalformedResults`, each one line naming the file."""
    data = _read_json(path, "no such results file (run `conformance run` first)",
                      "; re-run `conformance run` to regenerate it", error=MalformedResults)
    return normalise(data, str(path))


def load_mutation_score(path: Path) -> dict:
    """Read a mutation score document (``tools/mutation_score.py`` writes ``reports/mutation_score.json``)."""
    data = _read_json(path, "no such mutation score file (run `python tools/mutation_score.py`)")
    if not isinstance(data, dict) or "caught" not in data or "total" not in data:
        raise ValueError(f"{path}: not a mutation score document (no 'caught'/'total')")
    return data


def load_resume_audits(report_dir: Path) -> list[dict]:
    """The resume audits written by ``conformance resume --report-dir DIR`` (``DIR/resume/*.json``), each with
    ``label`` (its options in one line), ``verdict`` and ``command`` added, sorted by harness and options. A file
    that is not a resume audit is shown as a row saying so (never a crash of the report)."""
    from conformance.resume.protocol import Options

    rows = []
    for path in sorted((Path(report_dir) / "resume").glob("*.json")):
        try:
            doc = json.loads(path.read_text())
            opts = Options(**doc["options"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            rows.append({"harness": path.name, "label": "", "verdict": "unreadable", "bit_exact": False,
                         "error": f"{path}: not a resume audit ({type(exc).__name__}: {exc})", "command": ""})
            continue
        flags = [f"--workers {opts.workers}", f"--stop-at {opts.stop_at}", f"--steps {opts.steps}",
                 f"--seed {opts.seed}"] + (["--stateful-loader"] if opts.stateful_loader else []) + \
            (["--dataset-randomness"] if opts.dataset_randomness else [])
        verdict = ("error" if doc.get("error") else "not deterministic" if doc.get("deterministic") is False
                   else "bit-exact" if doc.get("bit_exact") else "diverged")
        rows.append({**doc, "label": opts.label(), "verdict": verdict,
                     "command": f"conformance resume {doc.get('harness', '?')} {' '.join(flags)}"})
    return sorted(rows, key=lambda r: (str(r.get("harness")), r["label"]))
