"""Audit output: the per-tensor table, ``audit.json`` and the std-versus-depth plot (``audit_depth.png``)."""

from __future__ import annotations

import json
from pathlib import Path

from ..harness.files import atomic_write
from .engine import AuditReport

SCHEMA_VERSION = 1


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table(report: AuditReport, failing_only: bool = False) -> str:
    """A fixed-width table: one row per parameter/buffer, then the depth fits and model-wide failures."""
    verdict = "PASS" if report.passed else "FAIL"
    counts = {}
    for t in report.tensors:
        counts[t.status] = counts.get(t.status, 0) + 1
    head = (f"{report.backend} {report.device_init} init ({report.init_method}), {report.factory}, spec "
            f"{report.spec} ({report.spec_origin}): {verdict} - " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    width = max([len(t.name) for t in report.tensors] + [4])
    width = min(width, 48)
    lines = [head, f"{'name':<{width}}  {'rule':<5} {'expected':<34} {'obs. std':>10} {'d std':>8} {'n':>8} "
                   f"{'power':>6}  status"]
    for t in report.tensors:
        if failing_only and t.passed:
            continue
        rule = t.rule_where.split("(rule ")[-1].split(")")[0] if t.rule_where else "-"
        exp = t.expected.get("distribution", t.rule or "")
        std = t.observed.get("std")
        estd = t.expected.get("std")
        d = f"{(std / estd - 1) * 100:+.1f}%" if std is not None and estd else ""
        power = f"{t.power['std_10pct']:.3f}" if t.power else ""
        lines.append(f"{_short(t.name, width):<{width}}  {rule:<5} {_short(exp, 34):<34} "
                     f"{'' if std is None else f'{std:.4g}':>10} {d:>8} {t.observed.get('n', 0):>8} {power:>6}  "
                     f"{t.status}")
    if report.depth:
        lines.append("std vs depth (in the formula's units, truncation divided out):")
        for fit in report.depth:
            mark = "ok  " if fit.verdict.passed else "FAIL"
            lines.append(f"  {mark} {fit.verdict.message}")
    for v in report.model_checks:
        if not v.passed:
            lines.append(f"  FAIL [{v.test}] {v.message}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    lines.append("power: of the variance test against a 10% std error at alpha "
                 f"{report.alpha:g} (small tensors have less; min detectable error per tensor in audit.json)")
    failures = report.failures()
    if failures:
        lines.append(f"{len(failures)} failure(s):")
        lines += [f"  - {m}" for m in failures]
    return "\n".join(lines)


def write_json(reports: list[AuditReport], path: Path, skipped: dict[str, str] | None = None) -> Path:
    """``audit.json``: schema version, every report (tensors, verdicts, depth plot data) and skipped backends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"schema_version": SCHEMA_VERSION, "passed": all(r.passed for r in reports) and bool(reports),
           "reports": [r.to_dict() for r in reports], "skipped": skipped or {},
           "depth_plot": [
               {"backend": r.backend, "device_init": r.device_init, "rule": d.rule_where, "layers": d.layers,
                "observed_std": d.observed_std, "expected_std": d.expected_std, "stderr": d.stderr,
                "fit": d.fit.get("best", {}), "expected_fit": d.expected_fit, "passed": d.verdict.passed}
               for r in reports for d in r.depth]}
    atomic_write(path, json.dumps(doc, indent=1, default=str))
    return path


def plot_depth(reports: list[AuditReport], path: Path) -> Path | None:
    """``audit_depth.png``: observed std per layer (error bars), expected and fitted curves; None without
    matplotlib or without depth data."""
    fits = [(r, d) for r in reports for d in r.depth]
    if not fits:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return None
    n = len(fits)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, (r, d) in zip(axes.ravel(), fits, strict=False):
        L = np.asarray(d.layers, float)
        ax.errorbar(L, d.observed_std, yerr=np.asarray(d.stderr) * 3, fmt="o", label="observed (3 s.e.)")
        ax.plot(L, d.expected_std, "k-", label=f"expected {d.expected_fit.get('formula', '')}")
        best = d.fit.get("best", {})
        grid = np.linspace(L.min(), L.max(), 50)
        if best.get("model") == "c / sqrt(layer_id + k)":
            ax.plot(grid, best["c"] / np.sqrt(grid + best["k"]), "r--", label=f"fit {best['formula']}")
        elif best.get("model") == "constant":
            ax.plot(grid, np.full_like(grid, best["c"]), "r--", label=f"fit {best['formula']}")
        ax.set_title(_short(f"{'ok' if d.verdict.passed else 'FAIL'} {d.rule} [{r.device_init}]", 60), fontsize=8)
        ax.set_xlabel("layer_id")
        ax.set_ylabel("std")
        ax.legend(fontsize=6)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=90))
    plt.close(fig)
    return path
