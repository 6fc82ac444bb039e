"""What to fix first: defects ranked by effect, deviations grouped by kind, per backend. Reads records of
``results.json`` only (the fields :func:`conformance.stats.severity.judge_record` writes: ``severity``, ``kind``,
``magnitude``, ``explanation``); used by the HTML report's first screen and the terminal summary.

Ranking: exact defects first (non-finite output, NaN, identical draws, a crash: ``magnitude`` is ``None``), then
by ``magnitude`` (the effect in multiples of its defect threshold), largest first; ties by check id and dtype, so
the order is the same in every run.
"""

from __future__ import annotations

from collections import Counter, defaultdict

#: Outcomes whose record can carry a severity: failures, known failures and (deviations pass in the default tier)
#: passes.
_FAILING = ("failed", "error", "xfailed")


def _magnitude(record: dict) -> float | None:
    """The record's ``magnitude`` as a float; None (exact) when absent, null, NaN or not a number. Non-finite values
    travel in results.json as strings (``'inf'``) and are read as such."""
    value = record.get("magnitude")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        value = float(value)
    except ValueError:
        return None
    return None if value != value else value


def _key(record: dict) -> tuple:
    magnitude = _magnitude(record)
    return (0 if magnitude is None else 1, -(magnitude or 0.0), record["id"], record.get("dtype") or "")


def defects(records: list[dict]) -> dict[str, list[dict]]:
    """Backend -> its defect records (failed, error or known failure), ranked (see the module doc)."""
    out: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("severity") == "defect" and r["outcome"] in _FAILING:
            out[r["backend"]].append(r)
    return {b: sorted(rs, key=_key) for b, rs in sorted(out.items())}


def deviations(records: list[dict]) -> dict[str, list[tuple[str, int]]]:
    """Backend -> [(kind, count)] of its deviation records, largest group first."""
    out: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        if r.get("severity") == "deviation":
            out[r["backend"]][r.get("kind") or "other"] += 1
    return {b: sorted(c.items(), key=lambda kv: (-kv[1], kv[0])) for b, c in sorted(out.items())}


def effect_text(record: dict) -> str:
    """The record's effect in one short phrase: ``x3.2 its threshold`` or ``exact`` (a defect with no scale)."""
    magnitude = _magnitude(record)
    return "exact" if magnitude is None else f"{magnitude:.3g}x threshold"


def defect_line(record: dict) -> str:
    """One line of the ranking: check, dtype, kind, effect, explanation."""
    where = f"{record['id']} [{record.get('dtype') or '-'}]"
    known = " (known failure)" if record["outcome"] == "xfailed" else ""
    return f"{where} {record.get('kind') or 'defect'} ({effect_text(record)}){known}: {record.get('explanation', '')}"
