"""Audit zoo factories: build each one the library's own way, judge it by its code spec and its intent spec.

:func:`run_entry` is the contract: one :class:`ZooRun` per factory, whose ``status`` is

* ``pass``: every build mode matches the code spec and, where there is one, the intent spec;
* ``finding``: the code spec passes but the intent spec does not: the library does what its code says and not what
  it says it intends. A finding about the library, not a failure of the build;
* ``fail``: the code spec fails: the library no longer does what the spec read from its code says (a change
  between versions), or the spec is wrong. Either way someone has to look;
* ``error``: the factory could not be built (the message names the cause);
* ``unavailable``: the library is missing or does not import (the reason says which and what to install).

Each build mode (``eager``: built as users build it; ``meta``: on the meta device, ``to_empty``, poisoned, then the
library's own init) is audited separately; the intent spec is judged on the same snapshot as the code spec, so a
finding is never a different draw. Nothing here imports a framework: builds go through the backend adapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from conformance.backends.base import BackendUnavailable, UnsupportedOperation

from .. import spec as S
from ..engine import AuditReport, build_snapshots, judge
from ..factory import FactoryError
from . import ZooFactory, availability

#: Statuses of a zoo run, best first.
STATUSES = ("pass", "finding", "fail", "error", "unavailable")


@dataclass
class ZooRun:
    """The verdict on one factory: status, the audit reports (code and intent, per build mode) and timings."""

    entry: ZooFactory
    version: str | None
    status: str
    reason: str = ""
    reports: list[AuditReport] = field(default_factory=list)
    seconds: float = 0.0

    def code_reports(self) -> list[AuditReport]:
        return [r for r in self.reports if r.spec_kind == "code"]

    def intent_reports(self) -> list[AuditReport]:
        return [r for r in self.reports if r.spec_kind == "intent"]

    def to_dict(self) -> dict:
        e = self.entry
        return {
            "name": e.name, "library": e.library, "version": self.version, "summary": e.summary,
            "upstream": e.upstream, "spec": e.spec, "intent": e.intent, "build": e.build, "init": e.init,
            "device_init": list(e.device_init), "config": dict(e.config), "status": self.status,
            "reason": self.reason, "seconds": round(self.seconds, 3),
            "reports": [r.to_dict() for r in self.reports],
        }


def _status(reports: list[AuditReport]) -> str:
    if not all(r.passed for r in reports if r.spec_kind == "code"):
        return "fail"
    if not all(r.passed for r in reports if r.spec_kind == "intent"):
        return "finding"
    return "pass"


def run_entry(entry: ZooFactory, *, backend: str = "torch:cpu", modes: tuple[str, ...] | None = None,
              seed: int = 0, adapter=None, progress: Callable[[str], None] | None = None) -> ZooRun:
    """Build and audit ``entry`` in each of ``modes`` (default: every mode the library supports)."""
    t0 = time.perf_counter()
    avail = availability(entry, probe=True)
    if not avail.available:
        return ZooRun(entry, avail.version, "unavailable", avail.reason, seconds=time.perf_counter() - t0)
    code = S.load(entry.spec)
    intent = S.load(entry.intent) if entry.intent else None
    reports: list[AuditReport] = []
    for mode in modes or entry.device_init:
        if mode not in entry.device_init:
            return ZooRun(entry, avail.version, "error", f"{entry.name} is not built in {mode} mode by its library "
                          f"(modes: {', '.join(entry.device_init)})", seconds=time.perf_counter() - t0)
        init = "none" if mode == "eager" else entry.init
        try:
            snap, reference, timings, where = build_snapshots(
                entry.build, backend=backend, device_init=mode, init=init, config=dict(entry.config), seed=seed,
                adapter=adapter)
        except FactoryError as exc:
            return ZooRun(entry, avail.version, "error", str(exc), reports, time.perf_counter() - t0)
        except (BackendUnavailable, UnsupportedOperation) as exc:
            return ZooRun(entry, avail.version, "unavailable", f"backend {backend}: {exc}", reports,
                          time.perf_counter() - t0)
        for spec in (code, intent) if intent else (code,):
            report = judge(snap, reference, spec, timings, factory=entry.name, backend=where, seed=seed)
            reports.append(report)
        if progress:
            progress(f"  {entry.name} {mode}: " + ", ".join(
                f"{r.spec_kind} {'PASS' if r.passed else 'FAIL'}" for r in reports[-(2 if intent else 1):])
                + f" ({time.perf_counter() - t0:.1f} s)")
    return ZooRun(entry, avail.version, _status(reports), "", reports, time.perf_counter() - t0)
