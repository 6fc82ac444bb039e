"""Fresh interpreters that build an adapter by spec, optionally seed it, draw, and print a digest.

Contract
--------
* :func:`run_children` starts one child per seed at once (``sys.executable -c ...``), each in its own
  session, with stdout/stderr captured; a child that has not finished when the timeout expires is
  killed (its whole process group) and reported as hung. Nothing raises: every child yields a
  :class:`ChildResult` whose ``message`` says what happened (exit status, timeout, unparsable
  output) and carries the tail of its stderr.
* The child resolves its adapter through :func:`conformance.backends.registry.resolve` after registering the
  ``--adapters`` modules it was given, so third-party and faulty adapters run in children too. It
  sees ``CONFORMANCE_CHILD=1`` in its environment and the parent's ``sys.path``.
* What a child draws is :func:`stream_digest`: the same recipe in the parent gives the same digest
  for the same seed (used to compare parent and children).
* The timeout is ``CONFORMANCE_CHILD_TIMEOUT`` seconds when set, else :data:`DEFAULT_TIMEOUT`.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

CHILD_ENV = "CONFORMANCE_CHILD"
TIMEOUT_ENV = "CONFORMANCE_CHILD_TIMEOUT"
DEFAULT_TIMEOUT = 120.0
RESULT_MARK = "CONFORMANCE-CHILD-RESULT "
STDERR_TAIL = 2000

_CHILD_CODE = "from conformance.subprocess_runner import child_main; child_main()"


@dataclass
class ChildResult:
    """What one child did. ``ok`` means it exited 0 and printed a parsable result."""

    index: int
    ok: bool
    payload: dict = field(default_factory=dict)
    returncode: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    stderr: str = ""
    message: str = ""

    @property
    def digest(self) -> str | None:
        return self.payload.get("digest") if self.ok else None


def default_timeout() -> float:
    """``CONFORMANCE_CHILD_TIMEOUT`` if set (seconds), else :data:`DEFAULT_TIMEOUT`."""
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def stream_digest(backend) -> dict:
    """Draw a fixed recipe from ``backend``'s global stream and summarize it.

    Recipe: ``sample("uniform", (256,), "float32")``, ``sample("normal", (256,), "float32")`` and
    ``module_params("Linear", "float32", in_features=16, out_features=16)`` (weight then bias);
    the digest is the sha256 of their bytes in that order. ``head`` holds the first uniform values and
    ``bias`` the first bias values, for the report.
    """
    import numpy as np

    u = np.asarray(backend.sample("uniform", (256,), "float32"))
    n = np.asarray(backend.sample("normal", (256,), "float32"))
    params = backend.module_params("Linear", "float32", in_features=16, out_features=16)
    h = hashlib.sha256()
    for part in (u, n, params["weight"], params.get("bias", np.empty(0, np.float32))):
        h.update(np.ascontiguousarray(part).tobytes())
    return {"digest": h.hexdigest(), "head": [float(v) for v in u[:3]],
            "bias": [float(v) for v in np.asarray(params.get("bias", []))[:2]]}


def child_main() -> None:
    """Entry of a child: ``argv[1]`` is JSON ``{spec, adapters, seed, sys_path}``; prints one result line."""
    args = json.loads(sys.argv[1])
    for entry in reversed(args.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    from conformance.backends import registry

    for module in args.get("adapters", []):
        registry.load_adapter_module(module)
    backend = registry.resolve(args["spec"])
    if args.get("seed") is not None:
        backend.seed(int(args["seed"]))
    out = stream_digest(backend)
    out["pid"] = os.getpid()
    sys.stdout.write(RESULT_MARK + json.dumps(out) + "\n")
    sys.stdout.flush()


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's own process group (it was started in a new session), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        proc.kill()


def _tail(text: str) -> str:
    text = (text or "").strip()
    return text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:]


def run_children(spec: str, seeds: list[int | None], adapters: list[str] | tuple[str, ...] = (),
                 timeout: float | None = None) -> list[ChildResult]:
    """Start one child per entry of ``seeds`` at once (``None``: the child does not seed); never raises.

    All children share one deadline, ``timeout`` seconds after the first start.
    """
    timeout = default_timeout() if timeout is None else timeout
    env = {**os.environ, CHILD_ENV: "1"}
    count = len(seeds)
    procs, results = [], []
    start = time.monotonic()
    for i, seed in enumerate(seeds):
        args = json.dumps({"spec": spec, "adapters": list(adapters), "seed": seed,
                           "sys_path": [p for p in sys.path if p]})
        try:
            procs.append(subprocess.Popen([sys.executable, "-c", _CHILD_CODE, args], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, env=env, start_new_session=True))
        except OSError as exc:
            procs.append(None)
            results.append(ChildResult(i, False, message=f"child {i + 1}/{count} could not start: {exc!r}"))
    for i, proc in enumerate(procs):
        if proc is None:
            continue
        left = max(0.1, start + timeout - time.monotonic())
        timed_out = False
        try:
            out, err = proc.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            try:
                out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                out, err = "", "(no output could be collected after the kill)"
        seconds = time.monotonic() - start
        results.append(_result(i, count, spec, seeds[i], proc.returncode, timed_out, seconds, timeout, out, err))
    return sorted(results, key=lambda r: r.index)


def _result(i: int, count: int, spec: str, seed: int | None, rc: int | None, timed_out: bool, seconds: float,
            timeout: float, out: str, err: str) -> ChildResult:
    who = f"child {i + 1}/{count} ({spec}, " + ("unseeded" if seed is None else f"seed {seed}") + ")"
    stderr = _tail(err)
    if timed_out:
        return ChildResult(i, False, returncode=rc, timed_out=True, seconds=seconds, stderr=stderr,
                           message=f"{who} did not finish within its {timeout:g} s timeout and was killed; "
                                   f"stderr: {stderr or '(empty)'}")
    if rc != 0:
        how = f"was killed by signal {-rc}" if rc is not None and rc < 0 else f"exited with status {rc}"
        return ChildResult(i, False, returncode=rc, seconds=seconds, stderr=stderr,
                           message=f"{who} {how} after {seconds:.1f} s; stderr: {stderr or '(empty)'}")
    line = next((ln for ln in reversed((out or "").splitlines()) if ln.startswith(RESULT_MARK)), None)
    try:
        payload = json.loads(line[len(RESULT_MARK):]) if line else None
    except json.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict) or "digest" not in payload:
        return ChildResult(i, False, returncode=rc, seconds=seconds, stderr=stderr,
                           message=f"{who} exited 0 but printed no result line; stdout: {_tail(out) or '(empty)'}; "
                                   f"stderr: {stderr or '(empty)'}")
    return ChildResult(i, True, payload, rc, False, seconds, stderr, f"{who} finished in {seconds:.1f} s")
