"""Child interpreters: the one way the suite starts, waits for, kills and describes them.

Used by :mod:`conformance.harness.children` (the ``processes`` checks), the torch resume harness
(:mod:`conformance.backends.torch.resume`) and the torch.distributed ranks
(:mod:`conformance.backends.torch.distributed`).

Contract
--------
* :func:`start` runs ``sys.executable *args`` in its own session (``start_new_session=True``: its own process
  group, so a kill reaches everything it started) with :func:`child_env`: the parent's environment plus
  ``CONFORMANCE_CHILD=1`` and ``PYTHONPATH`` = the parent's ``sys.path`` (ahead of any ``PYTHONPATH`` already set),
  so the child imports what the parent imports (``--adapters`` modules, ``tests.faulty``, an uninstalled checkout).
  stdout and stderr are captured as text unless files are given.
* :func:`wait` waits until a ``time.monotonic()`` deadline; a child still running then is killed (its whole
  process group) and what it wrote is collected for at most :data:`KILL_GRACE` seconds more. It never raises for
  the child's sake: the :class:`Exit` says what happened. :func:`wait_all` polls several children at once and
  stops at the first failure (after letting the others report) or at the deadline.
* :func:`kill` SIGKILLs the process group (falling back to the process alone) and never raises; :func:`stop` kills
  a child that still runs and reaps it.
* :func:`tail` / :func:`tail_file`: the last :data:`STDERR_TAIL` characters (``...`` in front when cut);
  :func:`tail_file` reads only the end of the file.
* :func:`describe`: how a child ended, in one line (``exited with status 3``, ``was killed by signal 9 (SIGKILL)``,
  ``did not finish within its 20 s timeout and was killed``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Set to ``"1"`` in every child's environment.
CHILD_ENV = "CONFORMANCE_CHILD"
#: Characters of stderr kept by default.
STDERR_TAIL = 2000
#: Seconds allowed to collect a killed child's output (a grandchild outside its group could hold the pipe open).
KILL_GRACE = 10.0
NO_OUTPUT_AFTER_KILL = "(no output could be collected after the kill)"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` + ``CONFORMANCE_CHILD=1`` + ``PYTHONPATH`` (the parent's ``sys.path`` first) + ``extra``."""
    env = dict(os.environ)
    env[CHILD_ENV] = "1"
    path = [p for p in sys.path if p]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.update(extra or {})
    return env


def start(args: Sequence[str], *, env: Mapping[str, str] | None = None, stdout=subprocess.PIPE,
          stderr=subprocess.PIPE) -> subprocess.Popen:
    """``sys.executable *args`` in a new session with :func:`child_env` (``env``: extra variables)."""
    return subprocess.Popen([sys.executable, *args], stdout=stdout, stderr=stderr, text=True, env=child_env(env),
                            start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the child's process group (it was started in its own session), else the child alone; never raises."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:  # already gone, or not a group leader we may signal
        with contextlib.suppress(OSError):
            proc.kill()


def stop(proc: subprocess.Popen) -> None:
    """Kill ``proc`` (its group) if it still runs, then reap it and close its pipes (waiting at most KILL_GRACE)."""
    if proc.poll() is None:
        kill(proc)
    with contextlib.suppress(subprocess.TimeoutExpired, OSError, ValueError):
        proc.communicate(timeout=KILL_GRACE)


@dataclass
class Exit:
    """How a child ended: its status (negative: killed by that signal), whether the deadline killed it, its output
    and the seconds since ``started`` (see :func:`wait`)."""

    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float

    def describe(self, timeout: float | None = None) -> str:
        return describe(self.returncode, self.timed_out, timeout)


def wait(proc: subprocess.Popen, deadline: float, started: float | None = None) -> Exit:
    """Collect ``proc``'s output until the ``time.monotonic()`` ``deadline``; kill its group if it is still running.

    ``seconds`` of the result counts from ``started`` (default: when this call began).
    """
    started = time.monotonic() if started is None else started
    timed_out = False
    try:
        out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
        kill(proc)
        try:
            out, err = proc.communicate(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            out, err = "", NO_OUTPUT_AFTER_KILL
    return Exit(proc.returncode, timed_out, out or "", err or "", time.monotonic() - started)


def wait_all(procs: Sequence[subprocess.Popen], deadline: float, *, settle: float = 0.5,
             interval: float = 0.05) -> list[int | None]:
    """Poll ``procs`` until all exited, one exited non-zero, or the ``time.monotonic()`` deadline passed.

    After a failure the others get ``settle`` seconds to notice and report. Whatever still runs then is killed
    (:func:`stop`). Returns each child's exit status as it was before the kill: ``None`` for those still running.
    """
    while True:
        codes = [proc.poll() for proc in procs]
        if all(c == 0 for c in codes):
            return codes
        failed = any(c not in (None, 0) for c in codes)
        if failed or time.monotonic() > deadline:
            if failed:
                time.sleep(settle)
                codes = [proc.poll() for proc in procs]
            for proc in procs:
                stop(proc)
            return codes
        time.sleep(interval)


def tail(text: str | None, limit: int = STDERR_TAIL) -> str:
    """The last ``limit`` characters of ``text`` (stripped), ``...`` in front when cut; ``""`` when empty."""
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def tail_file(path: str | os.PathLike, limit: int = STDERR_TAIL) -> str:
    """:func:`tail` of a file's end (at most ``4 * limit`` bytes are read); ``""`` when it cannot be read."""
    try:
        with open(Path(path), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4 * limit))
            data = f.read()
    except OSError:
        return ""
    return tail(data.decode("utf-8", errors="replace"), limit)


def describe(returncode: int | None, timed_out: bool = False, timeout: float | None = None) -> str:
    """One line: ``did not finish within its T s timeout and was killed``, ``was killed by signal 9 (SIGKILL)``,
    ``exited with status 3`` or ``is still running``."""
    if timed_out:
        within = f" within its {timeout:g} s timeout" if timeout is not None else " before its deadline"
        return f"did not finish{within} and was killed"
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            name = f" ({signal.Signals(-returncode).name})"
        except ValueError:
            name = ""
        return f"was killed by signal {-returncode}{name}"
    return f"exited with status {returncode}"
