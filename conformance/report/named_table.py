"""The named-initializer table (scheme x framework) built from ``results.json`` records.

Its only input is the ``named_scheme_row`` attachments (:class:`~conformance.report.attachments.NamedSchemeRow`)
of the records, whatever their check ids: the named-scheme check attaches one row per framework entry it drew,
and one row with the reason for each (scheme, weight kind, framework) that drew nothing (no such initializer,
not exposed, the check raised). :func:`rows` collects them in a stable order with the record's outcome, so the
table shows what a framework lacks as well as what it draws. :func:`as_text` renders a plain-text table (for the
terminal and tests); the HTML report renders the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from .attachments import NamedSchemeRow, of_record

COLUMNS = ("scheme", "kind", "framework", "call", "family", "formula", "fitted_std", "canonical_std", "ratio",
           "excess_kurtosis", "docs_verdict", "canonical_verdict", "convention", "source")


def table_row(attachment: NamedSchemeRow, record: dict) -> dict:
    """One table row: the attachment's numbers and the outcome of the record that carries it."""
    r = attachment
    drawn = r.drawn
    return {"scheme": r.scheme, "kind": r.weight_kind, "framework": r.framework, "backend": r.backend,
            "call": r.call, "family": r.family, "formula": r.formula,
            "fitted_std": r.fitted.get("std") if drawn else None, "canonical_std": r.canonical_std,
            "ratio": r.std_ratio_vs_canonical, "excess_kurtosis": r.fitted.get("excess_kurtosis") if drawn else None,
            "docs_verdict": r.docs_verdict if drawn else record.get("outcome", ""),
            "canonical_verdict": r.canonical_verdict if drawn else record.get("outcome", ""),
            "convention": r.convention, "source": r.source, "note": r.quote if drawn else r.note,
            "outcome": record.get("outcome", ""), "fan_in": r.fan_in, "fan_out": r.fan_out}


def rows(records: Iterable[dict]) -> list[dict]:
    """One row per ``named_scheme_row`` attachment, sorted by (scheme, kind, framework, backend, call)."""
    out = [table_row(att, rec) for rec in records for _, att in of_record(rec) if isinstance(att, NamedSchemeRow)]
    out.sort(key=lambda r: (r["scheme"], r["kind"], r["framework"], r["backend"], r["call"]))
    return out


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def display(table: list[dict], columns: tuple[str, ...] = COLUMNS) -> list[dict]:
    """The rows as the HTML report shows them: column titles with spaces, formatted values."""
    return [{c.replace("_", " "): _fmt(r.get(c)) for c in columns} for r in table]


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
