"""Machine-readable results: ``results.json`` (schema :data:`SCHEMA`) built from collected
test reports (written, with the HTML report beside it, by :mod:`conformance.results_files`).

Record fields: ``id, backend, dtype, outcome`` (passed/failed/skipped/xfailed/xpassed/error),
``pvalue`` (smallest of the check's statistical tests), ``statistic`` and ``effect`` (of the
decisive test: the first failing one, else the one with the smallest p-value), ``n``, ``seed``,
``repro``, ``message``, ``nodeid``, ``duration``, every ``verdicts`` entry (a failing one carries ``severity``),
``severity`` (``"defect"``, ``"deviation"`` or null when nothing failed; a deviation alone leaves the outcome
``passed`` in the default tier), ``kind``, ``magnitude`` (the effect in multiples of its defect threshold, null for an
exact defect) and ``explanation`` of the worst failing verdict (:func:`conformance.stats.severity.judge_record`), and
``timing``: ``setup`` and ``call``
seconds of the check and ``adapter``, the part of the call spent inside the adapter's methods (the framework's
work; the rest of the call is the check's own: references, statistics, child processes). Records written before
``timing`` existed have ``{}``.

Top level: ``tier`` is ``"default"`` or ``"strict"`` (``--strict-tier``); ``summary`` counts ``defects`` and
``deviations`` (records). ``duration`` is the run's wall time in seconds and ``workers`` the processes that ran the
checks (1 without pytest-xdist). ``status`` is ``"complete"`` (every selected check ran), ``"interrupted"`` (the
run stopped early: Ctrl-C, SIGINT/SIGTERM, ``-x``/``--maxfail``, a collection error; the records are partial and
``interrupted`` says why) or ``"empty"`` (no check was selected: such results are never written, so the previous
report stays). ``strict`` is
``{"enabled": bool, "violations": [str]}``: what ``--strict`` turns into a failure (known failures that now pass,
stale entries, requested backends that are unavailable). A file without ``status`` predates the field and reads as
``"complete"``.
"""

from __future__ import annotations

import os
import platform
import time

from . import __version__
from .harness.host import cpu_model
from .stats import design
from .stats.severity import judge_record

SCHEMA = 1
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
STATUSES = ("complete", "interrupted", "empty")


def _decisive(verdicts: list[dict]) -> dict | None:
    failing = sorted((v for v in verdicts if not v["passed"]), key=lambda v: v.get("severity") != "defect")
    if failing:
        return failing[0]
    stat = [v for v in verdicts if v.get("pvalue") is not None]
    return min(stat, key=lambda v: v["pvalue"]) if stat else (verdicts[0] if verdicts else None)


def make_record(raw: dict) -> dict:
    verdicts = raw["verdicts"]
    decisive = _decisive(verdicts)
    pvalues = [v["pvalue"] for v in verdicts if v.get("pvalue") is not None]
    if raw["outcome"] in ("passed", "xpassed") and decisive is not None and not decisive["passed"]:
        message = f"deviation (fails only with --strict-tier): [{decisive['test']}] {decisive['message']}"
    elif raw["outcome"] in ("passed", "xpassed"):
        message = f"{len(verdicts)} tests passed" + (f"; smallest p={min(pvalues):.3g}" if pvalues else "")
    elif raw["outcome"] in ("failed", "xfailed") and decisive is not None and not decisive["passed"]:
        message = f"[{decisive['test']}] {decisive['message']}"
    elif raw.get("error"):
        message = raw["error"].strip().splitlines()[0]
    else:
        message = raw["longrepr"].strip().splitlines()[-1] if raw["longrepr"].strip() else raw["outcome"]
    return {
        "id": raw["check"], "backend": raw["backend"], "dtype": raw["dtype"], "tier": raw.get("tier", "hard"),
        "outcome": raw["outcome"],
        "pvalue": min(pvalues) if pvalues else None,
        "statistic": decisive.get("statistic") if decisive else None,
        "effect": decisive.get("effect", {}) if decisive else {},
        "n": max((v.get("n", 0) for v in verdicts), default=0),
        "seed": raw["seed"], "repro": raw["repro"], "message": message, "nodeid": raw["nodeid"],
        "duration": round(raw["duration"], 4), "verdicts": verdicts,
        "detail": raw["longrepr"] if raw["outcome"] in ("failed", "error", "xfailed") else "",
        "known_failure": raw.get("known_failure", ""),
        "attachments": raw.get("attachments", {}),
        "timing": raw.get("timing", {}),
        **judge_record(verdicts, raw["outcome"], raw["dtype"], raw.get("error", "") or (
            raw["longrepr"] if raw["outcome"] in ("failed", "error", "xfailed") else "")),
    }


def environment() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count()}


def strict_violations(records: list[dict], stale: list[str], requested: list[str], unavailable: dict) -> list[str]:
    """What ``--strict`` fails a run for: known failures that now pass (``xpassed``), stale known-failure entries, and
    backends asked for with ``--backend`` that cannot run here."""
    out = [f"known failure now passes: {r['id']} on {r['backend']} {r['dtype'] or ''}".rstrip()
           + "; narrow or remove its known-failures entry" for r in records if r["outcome"] == "xpassed"]
    out += [f"stale known-failure entry: {s}" for s in stale]
    out += [f"requested backend {spec} is unavailable: {unavailable[spec]}" for spec in dict.fromkeys(requested)
            if spec in unavailable]
    return out


def workers_of(config) -> int:
    """Processes that ran the checks: pytest-xdist's worker count (it resolves ``-n auto`` to a number), else 1."""
    n = getattr(getattr(config, "option", None), "numprocesses", None)
    return n if isinstance(n, int) and n > 0 else 1


def build_results(collected: list[dict], state: dict, config=None, status: str = "complete",
                  interrupted: str = "") -> dict:
    """The results of a run from the plugin's collected reports and state (``specs``, ``unavailable``, ``seed``,
    ``started``, ``known``, ``requested``, ``strict``); ``status`` is one of :data:`STATUSES` and ``interrupted`` says
    why a run stopped early."""
    from conformance.backends import registry

    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")

    records = [make_record(r) for r in collected]
    records.sort(key=lambda r: (r["id"], r["backend"], r["dtype"] or ""))
    counts = {k: sum(r["outcome"] == k for r in records) for k in OUTCOMES}
    n_stat = sum(1 for r in records for v in r["verdicts"] if v.get("alpha") is not None)
    backends = {}
    for spec in state["specs"]:
        if spec in state["unavailable"]:
            backends[spec] = {"available": False, "reason": state["unavailable"][spec]}
            continue
        try:
            adapter = registry.resolve(spec)
            backends[spec] = {"available": True, "versions": adapter.versions(),
                              "dtypes": sorted(adapter.dtypes), "capabilities": sorted(adapter.capabilities),
                              "contracts": {k: vars(c) for k, c in adapter.contracts.items()}}
        except Exception as exc:  # noqa: BLE001
            backends[spec] = {"available": False, "reason": str(exc)}
    for spec, reason in state["unavailable"].items():
        backends.setdefault(spec, {"available": False, "reason": reason})
    strict_tier = bool(config.getoption("strict_tier", False)) if config is not None else False
    stale = state["known"].in_tier(strict_tier).stale(
        collected, state["specs"], state.get("filtered", False) or status != "complete") if "known" in state else []
    violations = strict_violations(records, stale, state.get("requested", []), state["unavailable"])
    return {
        "schema": SCHEMA,
        "status": status,
        "interrupted": interrupted,
        "strict": {"enabled": bool(state.get("strict")), "violations": violations},
        "suite_version": __version__,
        "seed": state["seed"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration": round(time.time() - state["started"], 2),
        "workers": workers_of(config),
        "environment": environment(),
        "design": design.summary(),
        "backends": backends,
        "tier": "strict" if strict_tier else "default",
        "summary": {**counts, "total": len(records), "statistical_tests": n_stat, "fwer_bound": n_stat * design.ALPHA,
                    "defects": sum(r["severity"] == "defect" for r in records),
                    "deviations": sum(r["severity"] == "deviation" for r in records)},
        "stale_known_failures": stale,
        "records": records,
    }
