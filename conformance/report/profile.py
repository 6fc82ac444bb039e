"""Where a run's time goes, from its ``results.json`` alone: per area, per check kind and per backend.

Every record carries ``timing`` (:mod:`conformance.results`): ``setup`` (fixtures: building the adapter on first
use, seeding), ``call`` (the check) and ``adapter`` (the part of the call spent inside the adapter's methods, i.e.
the framework drawing or evaluating). The columns are

``draw``     seconds inside the adapter (the framework's own work);
``check``    the rest of the call: references, statistics, child processes the check starts;
``setup``    fixture time;
``harness``  what the run cost beyond its checks: the run's wall time times the workers minus the checks' time
             (interpreter and framework start-up, collection, xdist, writing results.json and the report). Only
             a whole-run figure: it belongs to no record.

Records written before ``timing`` existed count their ``duration`` as ``check``. :func:`profile` returns the
numbers, :func:`markdown` the tables the bench session prints and writes into the README.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

#: README markers of the generated profile block.
BEGIN = "<!-- speed-profile:begin -->"
END = "<!-- speed-profile:end -->"


@dataclass
class Bucket:
    """Seconds of a group of records."""

    checks: int = 0
    draw: float = 0.0
    check: float = 0.0
    setup: float = 0.0

    @property
    def total(self) -> float:
        return self.draw + self.check + self.setup

    def add(self, record: dict) -> None:
        t = record.get("timing") or {}
        call = float(t.get("call", record.get("duration") or 0.0) if t else record.get("duration") or 0.0)
        adapter = min(float(t.get("adapter", 0.0)), call)
        self.checks += 1
        self.draw += adapter
        self.check += call - adapter
        self.setup += float(t.get("setup", 0.0))


@dataclass
class Profile:
    """A run's time by area, check kind and backend, plus the whole run's wall time and harness share."""

    wall: float
    workers: int
    total: Bucket = field(default_factory=Bucket)
    areas: dict[str, Bucket] = field(default_factory=dict)
    kinds: dict[str, Bucket] = field(default_factory=dict)
    backends: dict[str, Bucket] = field(default_factory=dict)
    slowest: list[tuple[float, str]] = field(default_factory=list)

    @property
    def harness(self) -> float:
        """Wall time times workers, minus the checks' own time (never negative)."""
        return max(self.wall * self.workers - self.total.total, 0.0)


def kind_of(check_id: str) -> str:
    """``init_schemes/test_random_scheme[normal-0_1]`` -> ``init_schemes/test_random_scheme``."""
    return check_id.split("[", 1)[0]


def area_of(check_id: str) -> str:
    return check_id.split("/", 1)[0]


def profile(results: dict, workers: int = 1, top: int = 15) -> Profile:
    """The :class:`Profile` of ``results`` (a loaded ``results.json``) run with ``workers`` processes."""
    areas: dict[str, Bucket] = defaultdict(Bucket)
    kinds: dict[str, Bucket] = defaultdict(Bucket)
    backends: dict[str, Bucket] = defaultdict(Bucket)
    total = Bucket()
    slow = []
    for rec in results["records"]:
        if rec.get("outcome") == "skipped" and not rec.get("timing"):
            continue
        for bucket in (total, areas[area_of(rec["id"])], kinds[kind_of(rec["id"])], backends[rec["backend"]]):
            bucket.add(rec)
        one = Bucket()
        one.add(rec)
        slow.append((one.total, f"{rec['id']} [{rec['backend']} {rec.get('dtype') or ''}]".replace(" ]", "]")))
    slow.sort(reverse=True)
    return Profile(wall=float(results.get("duration") or 0.0), workers=max(int(workers), 1), total=total,
                   areas=dict(areas), kinds=dict(kinds), backends=dict(backends), slowest=slow[:top])


def _row(name: str, b: Bucket, whole: float) -> str:
    share = 100.0 * b.total / whole if whole else 0.0
    return (f"| {name} | {b.checks} | {b.total:.1f} | {share:.0f}% | {b.draw:.1f} | {b.check:.1f} | "
            f"{b.setup:.1f} |")


def markdown(p: Profile, title: str = "", kinds: int = 12) -> str:
    """The profile as Markdown: the whole run, per backend, per area, the costliest check kinds and checks."""
    head = "| {} | checks | seconds | share | draw | check | setup |\n|---|---:|---:|---:|---:|---:|---:|"
    whole = p.total.total + p.harness
    lines = [title] if title else []
    lines += [f"Wall time {p.wall:.1f} s with {p.workers} worker(s); checks {p.total.total:.1f} s "
              f"(draw {p.total.draw:.1f}, check {p.total.check:.1f}, setup {p.total.setup:.1f}); harness "
              f"{p.harness:.1f} s (start-up, collection, workers, writing the results and the report).", ""]
    lines += [head.format("backend")]
    lines += [_row(name, b, whole) for name, b in sorted(p.backends.items(), key=lambda kv: -kv[1].total)]
    lines += ["", head.format("area")]
    lines += [_row(name, b, whole) for name, b in sorted(p.areas.items(), key=lambda kv: -kv[1].total)]
    lines += ["", head.format(f"check kind (the {kinds} costliest)")]
    lines += [_row(name, b, whole) for name, b in sorted(p.kinds.items(), key=lambda kv: -kv[1].total)[:kinds]]
    if p.slowest:
        lines += ["", "| slowest checks | seconds |", "|---|---:|"]
        lines += [f"| {name} | {sec:.2f} |" for sec, name in p.slowest]
    return "\n".join(lines)
