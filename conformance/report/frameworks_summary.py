"""The cross-framework summary of the README, built from a run's ``results.json`` (never written by hand).

One row per backend that ran: what its initializers named He normal, Glorot uniform and LeCun normal draw on a
dense ``(384, 256)`` float32 weight (the named-scheme rows: the call, the family and the fitted std over the
paper's), what its default ``Linear(300, 4000).weight`` draws in float32 (the module-defaults record: the law the
suite holds the framework to and the fitted std over torch's ``U(-1/sqrt(300), 1/sqrt(300))``), and its 16-bit
sampling law (``normal(0, 1)`` and ``uniform(0, 1)`` in bfloat16 and float16 against the float64 law rounded to the
dtype: ``ok`` or the verdicts that failed with their effect sizes; a framework without a sampler of its own shows its
default ``Linear`` weight's 16-bit law instead).

``conformance report summary reports/results.json`` prints the table; ``--readme README.md`` replaces the block
between :data:`BEGIN` and :data:`END` in place (atomically). Nothing here knows a framework: every cell comes from
the records.
"""

from __future__ import annotations

import math

#: README markers of the generated block.
BEGIN = "<!-- frameworks-summary:begin -->"
END = "<!-- frameworks-summary:end -->"

#: Named schemes shown, in column order (canonical keys of ``conformance.areas.named_schemes.spec.CANONICAL``).
SCHEMES = ("he_normal", "glorot_uniform", "lecun_normal")
KIND = "dense"
LINEAR = "module_defaults/test_random_default[Linear-weight-in_features300-out_features4000]"
LINEAR_IN = 300
#: Sampling checks of the 16-bit law column, by short name.
SAMPLING = {"normal": "init_schemes/test_random_scheme[normal-0_1]",
            "uniform": "init_schemes/test_random_scheme[uniform-0_1]"}
SIXTEEN = (("bfloat16", "bf16"), ("float16", "f16"))

#: Effect keys shown after a failing verdict's name, with their format.
_EFFECTS = {"chi2_per_dof": "x{:.3g}", "shift_in_std": "{:+.3g} std", "std_ratio": "std x{:.4f}",
            "tail_ratio": "tail x{:.3g}"}


def _named_rows(results: dict, backend: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for rec in results["records"]:
        if rec["backend"] != backend:
            continue
        row = (rec.get("attachments") or {}).get("named_scheme_row")
        if row and row.get("weight_kind") == KIND and row.get("scheme") in SCHEMES:
            out.setdefault(row["scheme"], []).append(row)
    return out


def _named_cell(rows: list[dict]) -> str:
    """The default call's draw (the row whose call has no arguments, else the first)."""
    if not rows:
        return "-"
    row = next((r for r in rows if r.get("call", "").endswith("()")), rows[0])
    if row.get("note") and not row.get("fitted"):
        return f"none ({row['note'].split(':')[0]})" if row.get("call") else "none"
    ratio = row.get("std_ratio_vs_canonical")
    cell = f"`{row['call']}`: {row.get('family', '?')}"
    if isinstance(ratio, (int, float)):
        cell += f", std x{ratio:.3f}"
    if row.get("docs_verdict") == "FAIL":
        cell += " (**differs from its docs**)"
    return cell


def _record(results: dict, check: str, backend: str, dtype: str) -> dict | None:
    for rec in results["records"]:
        if rec["id"] == check and rec["backend"] == backend and rec["dtype"] == dtype:
            return rec
    return None


def _verdict(rec: dict, test: str) -> dict | None:
    return next((v for v in rec.get("verdicts", []) if v["test"] == test), None)


def _linear_cell(results: dict, backend: str) -> str:
    rec = _record(results, LINEAR, backend, "float32")
    if rec is None:
        return "-"
    if rec["outcome"] == "skipped":
        return "skipped"
    var = _verdict(rec, "variance")
    rule = (var or {}).get("expected", {}).get("rule", "")
    law = rule.rsplit(": ", 1)[-1] if rule else "?"
    cell = law
    observed = (var or {}).get("observed", {}).get("std")
    if isinstance(observed, (int, float)):
        cell += f", std x{observed / math.sqrt(1.0 / (3.0 * LINEAR_IN)):.3f} of torch's"
    return cell + _outcome_note(rec)


def _outcome_note(rec: dict) -> str:
    failed = [v for v in rec.get("verdicts", []) if not v["passed"]]
    if rec["outcome"] == "passed" and not failed:
        return ""
    names = ", ".join(_verdict_text(v) for v in failed) or rec["outcome"]
    return f" ({'known failure' if rec['outcome'] == 'xfailed' else rec['outcome'].upper()}: {names})"


def _verdict_text(v: dict) -> str:
    effects = [fmt.format(v["effect"][k]) for k, fmt in _EFFECTS.items()
               if isinstance((v.get("effect") or {}).get(k), (int, float))]
    return v["test"] + (f" {effects[0]}" if effects else "")


def _sampling_cell(results: dict, backend: str) -> str:
    """The 16-bit law of the framework's sampler; for a framework without one (Flax and Equinox draw their layers
    through ``jax.random``), that of its default ``Linear`` weight in bfloat16 and float16."""
    parts, ran = _law_parts(results, backend, SAMPLING)
    if not ran:
        linear, ran = _law_parts(results, backend, {"Linear": LINEAR})
        parts = linear if ran else parts
    return "; ".join(parts) or "-"


def _law_parts(results: dict, backend: str, checks: dict[str, str]) -> tuple[list[str], bool]:
    """One ``"bf16 normal: ok"`` part per (check, 16-bit dtype) recorded, and whether any of them ran."""
    parts, ran = [], False
    for short, check in checks.items():
        for dtype, label in SIXTEEN:
            rec = _record(results, check, backend, dtype)
            if rec is None:
                continue
            if rec["outcome"] == "skipped":
                parts.append(f"{label} {short}: skipped")
                continue
            ran = True
            failed = [v for v in rec.get("verdicts", []) if not v["passed"]]
            if not failed and rec["outcome"] == "passed":
                parts.append(f"{label} {short}: ok")
            else:
                parts.append(f"{label} {short}: " + (", ".join(_verdict_text(v) for v in failed) or rec["outcome"]))
    return parts, ran


def backends_in(results: dict) -> list[str]:
    """Backends with at least one record that ran (not only skips), in the order of ``results['backends']``."""
    ran = {r["backend"] for r in results["records"] if r["outcome"] != "skipped"}
    order = [b["spec"] if isinstance(b, dict) else b for b in results.get("backends", [])]
    return [b for b in order if b in ran] + sorted(ran - set(order))


def table(results: dict) -> str:
    """The summary as a Markdown table."""
    head = ("| backend | He normal | Glorot uniform | LeCun normal | default `Linear(300, 4000).weight` | "
            "16-bit sampling law (vs the float64 law rounded) |")
    lines = [head, "|" + "---|" * 6]
    for backend in backends_in(results):
        named = _named_rows(results, backend)
        cells = [backend] + [_named_cell(named.get(s, [])) for s in SCHEMES]
        cells += [_linear_cell(results, backend), _sampling_cell(results, backend)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    seed = results.get("seed")
    lines.append("")
    lines.append(f"Generated by `conformance report summary --readme README.md` from a run with master seed {seed} "
                 f"({results.get('created', '?')}). Named schemes: the framework's initializer of that name with its "
                 "default arguments on a dense (384, 256) float32 weight, std over the paper's; `Linear`: the law the "
                 "suite holds the framework to, from its own docs or source.")
    return "\n".join(lines)
