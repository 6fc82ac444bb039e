"""The named-initializer table (scheme x framework) built from ``results.json`` records.

Each ``named_schemes/test_named_scheme`` record carries one ``named_scheme`` verdict per framework entry whose
``observed["named_scheme"]`` is a row (see :mod:`conformance.suite.test_named_schemes`). :func:`rows` collects
them in a stable order and adds rows for skipped (scheme, framework) pairs with the skip reason, so the table
shows what a framework lacks as well as what it draws. :func:`as_text` renders a plain-text table (for the
terminal and tests); the HTML report renders the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CHECK_PREFIX = "named_schemes/test_named_scheme"
COLUMNS = ("scheme", "kind", "framework", "call", "family", "formula", "fitted_std", "canonical_std", "ratio",
           "excess_kurtosis", "docs_verdict", "canonical_verdict", "convention", "source")


def _case(check_id: str) -> tuple[str, str]:
    """(scheme, kind) from ``named_schemes/test_named_scheme[<scheme>-<kind>]``."""
    m = re.search(r"\[(.+)-([^-\]]+)\]$", check_id)
    return (m.group(1), m.group(2)) if m else (check_id, "")


def rows(records: Iterable[dict]) -> list[dict]:
    """One row per (scheme, kind, backend, framework entry); skipped pairs get one row with the reason."""
    out = []
    for rec in records:
        if not rec.get("id", "").startswith(CHECK_PREFIX):
            continue
        scheme, kind = _case(rec["id"])
        found = [v["observed"]["named_scheme"] for v in rec.get("verdicts", [])
                 if v.get("test") == "named_scheme" and "named_scheme" in v.get("observed", {})]
        if not found:
            out.append({"scheme": scheme, "kind": kind, "framework": rec["backend"].split(":")[0],
                        "backend": rec["backend"], "call": "", "family": "", "formula": "", "fitted_std": None,
                        "canonical_std": None, "ratio": None, "excess_kurtosis": None,
                        "docs_verdict": rec["outcome"], "canonical_verdict": rec["outcome"], "convention": "",
                        "source": "", "note": rec.get("message", ""), "outcome": rec["outcome"]})
            continue
        for r in found:
            out.append({"scheme": r["scheme"], "kind": r["kind"], "framework": r["framework"], "backend": r["backend"],
                        "call": r["call"], "family": r["family"], "formula": r["formula"],
                        "fitted_std": r["fitted"]["std"], "canonical_std": r["canonical_std"],
                        "ratio": r["std_ratio_vs_canonical"], "excess_kurtosis": r["fitted"]["excess_kurtosis"],
                        "docs_verdict": r["docs_verdict"], "canonical_verdict": r["canonical_verdict"],
                        "convention": r["convention"], "source": r["source"], "note": r["quote"],
                        "outcome": rec["outcome"], "fan_in": r["fan_in"], "fan_out": r["fan_out"]})
    out.sort(key=lambda r: (r["scheme"], r["kind"], r["framework"], r["backend"], r["call"]))
    return out


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def as_text(table: list[dict], columns: tuple[str, ...] = COLUMNS[:-2]) -> str:
    """A fixed-width text rendering of :func:`rows`."""
    cells = [[_fmt(r.get(c)) for c in columns] for r in table]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def from_results(results: dict) -> list[dict]:
    """:func:`rows` of a loaded ``results.json``."""
    return rows(results.get("records", []))
