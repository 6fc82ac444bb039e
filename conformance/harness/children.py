"""Fresh interpreters that build an adapter by spec, optionally seed it, draw, and print a digest.

Contract
--------
* :func:`run_children` starts one child per seed at once (:func:`conformance.harness.processes.start`:
  ``sys.executable -c ...``, each in its own session, stdout/stderr captured); a child that has not
  finished when the timeout expires is killed (its whole process group) and reported as hung. Nothing
  raises: every child yields a :class:`ChildResult` whose ``message`` says what happened (exit status,
  timeout, unparsable output) and carries the tail of its stderr.
* The child resolves its adapter through :func:`conformance.backends.registry.resolve` after registering the
  ``--adapters`` modules it was given, so third-party and faulty adapters run in children too. It
  sees ``CONFORMANCE_CHILD=1`` in its environment and the parent's ``sys.path`` (``PYTHONPATH``).
* What a child draws is :func:`stream_digest`: the same recipe in the parent gives the same digest
  for the same seed (used to compare parent and children).
* The timeout is ``CONFORMANCE_CHILD_TIMEOUT`` seconds when set, else :data:`DEFAULT_TIMEOUT`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field

from . import processes

CHILD_ENV = processes.CHILD_ENV
TIMEOUT_ENV = "CONFORMANCE_CHILD_TIMEOUT"
DEFAULT_TIMEOUT = 120.0
RESULT_MARK = "CONFORMANCE-CHILD-RESULT "
STDERR_TAIL = 2000

_CHILD_CODE = "from conformance.harness.children import child_main; child_main()"


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
    """Entry of a child: ``argv[1]`` is JSON ``{spec, adapters, seed}``; prints one result line."""
    args = json.loads(sys.argv[1])
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


def run_children(spec: str, seeds: list[int | None], adapters: list[str] | tuple[str, ...] = (),
                 timeout: float | None = None) -> list[ChildResult]:
    """Start one child per entry of ``seeds`` at once (``None``: the child does not seed); never raises.

    All children share one deadline, ``timeout`` seconds after the first start.
    """
    timeout = default_timeout() if timeout is None else timeout
    count = len(seeds)
    procs, results = [], []
    start = time.monotonic()
    for i, seed in enumerate(seeds):
        args = json.dumps({"spec": spec, "adapters": list(adapters), "seed": seed})
        try:
            procs.append(processes.start(["-c", _CHILD_CODE, args]))
        except OSError as exc:
            procs.append(None)
            results.append(ChildResult(i, False, message=f"child {i + 1}/{count} could not start: {exc!r}"))
    try:
        for i, proc in enumerate(procs):
            if proc is not None:
                ended = processes.wait(proc, start + timeout, started=start)
                results.append(_result(i, count, spec, seeds[i], ended, timeout))
    finally:
        for proc in procs:
            if proc is not None:
                processes.stop(proc)
    return sorted(results, key=lambda r: r.index)


def _result(i: int, count: int, spec: str, seed: int | None, ended: processes.Exit, timeout: float) -> ChildResult:
    who = f"child {i + 1}/{count} ({spec}, " + ("unseeded" if seed is None else f"seed {seed}") + ")"
    rc, seconds = ended.returncode, ended.seconds
    stderr = _tail(ended.stderr)
    if ended.timed_out:
        return ChildResult(i, False, returncode=rc, timed_out=True, seconds=seconds, stderr=stderr,
                           message=f"{who} {ended.describe(timeout)}; stderr: {stderr or '(empty)'}")
    if rc != 0:
        return ChildResult(i, False, returncode=rc, seconds=seconds, stderr=stderr,
                           message=f"{who} {ended.describe()} after {seconds:.1f} s; stderr: {stderr or '(empty)'}")
    line = next((ln for ln in reversed(ended.stdout.splitlines()) if ln.startswith(RESULT_MARK)), None)
    try:
        payload = json.loads(line[len(RESULT_MARK):]) if line else None
    except json.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict) or "digest" not in payload:
        return ChildResult(i, False, returncode=rc, seconds=seconds, stderr=stderr,
                           message=f"{who} exited 0 but printed no result line; stdout: "
                                   f"{_tail(ended.stdout) or '(empty)'}; stderr: {stderr or '(empty)'}")
    return ChildResult(i, True, payload, rc, False, seconds, stderr, f"{who} finished in {seconds:.1f} s")


def _tail(text: str) -> str:
    return processes.tail(text, STDERR_TAIL)
