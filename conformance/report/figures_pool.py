"""Drawing the report's figures, in worker processes when there are enough of them to pay for starting workers.

A figure is described by a :class:`FigureJob`: the name of a function of :mod:`conformance.report.plots` and its
arguments, plain data (typed attachments, numbers, strings) that travels to another process. :func:`draw_all` draws
a list of jobs and returns their results in the same order, serially or in a process pool; either way each result is
what :func:`draw` returns for its job in this process, so the report is the same bytes however it was drawn.

Contract:

* ``CONFORMANCE_REPORT_JOBS`` (environment) sets the number of worker processes; ``0`` or ``1`` draws serially in
  this process. Unset: the CPUs this process may use (:func:`os.sched_getaffinity`, else :func:`os.cpu_count`).
* Fewer than :data:`MIN_PARALLEL` jobs are drawn serially (starting a worker and importing matplotlib there costs
  about a second of CPU); at most one worker per :data:`JOBS_PER_WORKER` jobs is started. A process that is itself
  a multiprocessing child starts no pool.
* Workers come from a ``forkserver`` (``spawn`` where there is none), never a bare ``fork`` of this process, which may
  hold threads of a framework. When a pool cannot start or breaks, the jobs without a result are drawn serially.
* A job whose figure cannot be drawn (``Exception`` in the drawing function) gives ``(None, "Type: message")``; it
  never stops the others.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

#: The environment variable that sets the number of worker processes (0 or 1: serial).
JOBS_ENV = "CONFORMANCE_REPORT_JOBS"
#: Fewer jobs than this are drawn serially.
MIN_PARALLEL = 8
#: At most one worker per this many jobs.
JOBS_PER_WORKER = 4
#: The drawing functions of :mod:`conformance.report.plots` a job may name.
KINDS = ("distribution_figure", "error_map_figure", "depth_figure")


class FigureJob(NamedTuple):
    """``plots.<kind>(*args, **dict(kwargs))``: one figure of the report."""

    kind: str
    args: tuple
    kwargs: tuple[tuple[str, Any], ...] = ()


Result = tuple["str | None", str]


def draw(job: FigureJob) -> Result:
    """``(data URI, "")`` for ``job``, or ``(None, "ExceptionType: message")`` when its figure cannot be drawn."""
    if job.kind not in KINDS:
        raise ValueError(f"unknown figure kind {job.kind!r}")
    from . import plots

    try:
        return getattr(plots, job.kind)(*job.args, **dict(job.kwargs)), ""
    except Exception as exc:  # noqa: BLE001 - a bad attachment costs its plot, never the report
        return None, f"{type(exc).__name__}: {exc}"


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers_for(n_jobs: int, cpus: int | None = None) -> int:
    """How many worker processes draw ``n_jobs`` figures (0: serially, in this process)."""
    if cpus is None:
        setting = os.environ.get(JOBS_ENV, "").strip()
        try:
            cpus = int(setting) if setting else available_cpus()
        except ValueError:
            raise ValueError(f"{JOBS_ENV}={setting!r} is not a number of processes") from None
    if n_jobs < MIN_PARALLEL or cpus < 2 or _in_child():
        return 0
    workers = min(cpus, n_jobs // JOBS_PER_WORKER)
    return workers if workers >= 2 else 0


def _in_child() -> bool:
    """Whether this process is itself a multiprocessing child, or one importing its parent's main module (a script
    that renders a report without an ``if __name__ == "__main__"`` guard): it starts no pool of its own."""
    return multiprocessing.parent_process() is not None or bool(getattr(multiprocessing.current_process(),
                                                                        "_inheriting", False))


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _warm() -> None:
    """A worker's initializer: import matplotlib and the plots once, before the first job."""
    from . import plots  # noqa: F401


def draw_all(jobs: Sequence[FigureJob], workers: int | None = None) -> list[Result]:
    """:func:`draw` of every job, in the order given; ``workers`` overrides :func:`workers_for` (0: serially)."""
    jobs = list(jobs)
    for job in jobs:
        if job.kind not in KINDS:
            raise ValueError(f"unknown figure kind {job.kind!r}")
    if workers is None:
        workers = workers_for(len(jobs))
    results: list[Result] = []
    if workers >= 2 and len(jobs) > 1:
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_warm) as pool:
                for result in pool.map(draw, jobs, chunksize=1):
                    results.append(result)
        except (BrokenProcessPool, OSError, ImportError, NotImplementedError, RuntimeError):
            pass  # no pool here (a sandbox without semaphores, a frozen interpreter): the rest serially
    return results + [draw(job) for job in jobs[len(results):]]
