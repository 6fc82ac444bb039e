"""The three runs of a resume audit, each in a fresh interpreter, and their verdict (framework-free).

Contract
--------
:func:`run_audit` starts the straight (A), interrupted (B) and resumed (C) runs of a harness at once with
:func:`conformance.harness.processes.start` (C waits for B's checkpoint before it builds anything). Their stdout
and stderr go to ``<mode>.out`` / ``<mode>.err`` in the run directory. A run that fails, or outlives the shared
deadline, is killed with its process group, the others are stopped, and :class:`RunFailed` carries the run's
name, how it ended and its stderr tail. Nothing is left running when it returns or raises. The result holds the
:class:`~conformance.resume.compare.Verdict` and what the runs said about themselves (versions, notes, seconds
since the start, the files of B's checkpoint, and the stack's warnings with the runs that emitted each: those only
the resumed run emitted come first, as they are what the stack says about resuming).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.harness import processes

from . import child
from .compare import Verdict, judge, load_trace
from .protocol import HarnessError, Options, Unsupported

#: Characters of a failed run's stderr kept in the error.
STDERR_TAIL = 2500
MODES = ("straight", "interrupt", "resume")
LABELS = {"straight": "A (straight)", "interrupt": "B (interrupted)", "resume": "C (resumed)"}


class RunFailed(RuntimeError):
    """A run crashed, timed out or broke the protocol: the message names it, how it ended and its stderr tail."""


@dataclass
class AuditResult:
    harness: str
    options: Options
    verdict: Verdict
    versions: dict[str, str] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    checkpoint: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"harness": self.harness, "versions": self.versions, "options": self.options.as_dict(),
                "label": self.options.label(),
                **self.verdict.as_dict(), "warnings": self.warnings, "notes": self.notes, "seconds": self.seconds,
                "checkpoint": self.checkpoint}


_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")


def _exception_line(stderr: str) -> str:
    """The last line naming an exception (``_pickle.UnpicklingError: ...``), else the last non-empty line (cut)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    named = [ln for ln in lines if _EXCEPTION.match(ln)]
    return (named or lines or [""])[-1][:400]


def _refused(returncode: int | None, stderr: Path) -> None:
    """Raise :class:`Unsupported` / :class:`HarnessError` with the run's own message when it exited saying so."""
    for code, prefix, exc in ((child.EXIT_UNSUPPORTED, child.UNSUPPORTED_PREFIX, Unsupported),
                              (child.EXIT_HARNESS_ERROR, child.HARNESS_ERROR_PREFIX, HarnessError)):
        if returncode == code:
            text = stderr.read_text(errors="replace") if stderr.exists() else ""
            lines = [ln[len(prefix):] for ln in text.splitlines() if ln.startswith(prefix)]
            raise exc(lines[-1] if lines else f"the harness exited with status {code}")


def run_audit(harness: str, options: Options, directory: Path, timeout: float = 600.0,
              progress: Callable[[str], None] | None = None) -> AuditResult:
    """A, B and C of ``harness`` (a ``module:Class``) under ``options`` in ``directory``; see the module docs."""
    say = progress or (lambda _line: None)
    directory = Path(directory)
    (directory / "checkpoint").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + timeout
    procs, files = {}, []
    try:
        for mode in MODES:
            args = json.dumps({"mode": mode, "dir": str(directory), "harness": harness,
                               "options": options.as_dict(), "wait_s": timeout})
            out, err = open(directory / f"{mode}.out", "w"), open(directory / f"{mode}.err", "w")
            files += [out, err]
            procs[mode] = processes.start(["-m", "conformance.resume.child", args], stdout=out, stderr=err,
                                          env={"OMP_NUM_THREADS": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
                                               "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"})
        say(f"  started A, B and C ({harness}; {options.label()})")
        seconds = {}
        for mode in ("interrupt", "straight", "resume"):
            ended = processes.wait(procs[mode], deadline, started)
            _refused(ended.returncode, directory / f"{mode}.err")
            if ended.timed_out or ended.returncode != 0:
                tail = processes.tail_file(directory / f"{mode}.err", STDERR_TAIL)
                last = _exception_line(tail)
                raise RunFailed(f"run {LABELS[mode]} of {harness} {ended.describe(timeout)}"
                                f"{f': {last}' if last else ''}; stderr: {tail or '(empty)'}")
            seconds[mode] = round(ended.seconds, 2)
            say(f"  {LABELS[mode]} finished in {ended.seconds:.1f} s")
    finally:
        for proc in procs.values():
            processes.stop(proc)
        for f in files:
            f.close()
    a, b, c = (load_trace(directory, m) for m in MODES)
    verdict = judge(a, b, c, options)
    warnings: dict[str, dict] = {}  # the ones only the resumed run emitted first: what the stack says on resume
    for mode, t in zip(MODES, (a, b, c), strict=True):
        for w in t.meta.get("warnings", []):
            warnings.setdefault(w["warning"], {**w, "runs": []})["runs"].append(mode)
    ordered = sorted(warnings.values(), key=lambda w: w["runs"] != ["resume"])
    notes = [n for t in (a, b, c) for n in t.meta.get("notes", [])]
    return AuditResult(harness, options, verdict, a.meta.get("versions", {}), ordered, list(dict.fromkeys(notes)),
                       seconds, b.meta.get("checkpoint", []))
