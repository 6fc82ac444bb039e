"""One run of a resume audit, in a fresh interpreter: ``python -m conformance.resume.child JSON``.

``JSON`` is ``{"mode", "dir", "harness", "options", "wait_s"}``. The run builds the harness (``module:Class``,
constructed with no arguments), hands it a :class:`~conformance.resume.record.Run` and writes
``trace-<mode>.npz``/``.json`` into ``dir``. The interrupted run checks that it saved something under
``dir/checkpoint`` and then writes the ``READY`` marker there; the resumed run waits for that marker (at most
``wait_s`` seconds) before it builds anything, so it may start at the same time as the others. Python warnings
and WARNING+ log records the stack emits are listed in the JSON sidecar (message and where, once each). The straight
run gets a checkpoint folder of its own (``dir/checkpoint-straight``), so a stack that saves on a schedule never
writes where the interrupted run saves.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from pathlib import Path

#: Written into the checkpoint directory once the interrupted run has saved and returned.
READY = "READY"
#: Exit statuses (and stderr line prefixes) by which a run says the harness refused an option or broke the protocol.
EXIT_UNSUPPORTED, EXIT_HARNESS_ERROR = 64, 65
UNSUPPORTED_PREFIX, HARNESS_ERROR_PREFIX = "resume-harness-unsupported: ", "resume-harness-error: "


def _wait_ready(directory: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not (directory / READY).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no complete checkpoint appeared in {directory} within {seconds:g} s "
                             "(the interrupted run failed or is still running)")
        time.sleep(0.05)


#: Loggers of the stacks that do not propagate to the root logger (transformers) or log on their own.
STACK_LOGGERS = ("", "transformers", "accelerate", "lightning", "lightning.pytorch", "lightning.fabric",
                 "pytorch_lightning", "litgpt", "torchtitan")


class _Seen(logging.Handler):
    def __init__(self, seen: dict[str, str]):
        super().__init__(logging.WARNING)
        self.seen = seen

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.levelname} ({record.name}): {record.getMessage()}"
        except Exception:  # noqa: BLE001 - a malformed log call must not break the run
            return
        self.seen.setdefault(text[:500], f"{record.pathname}:{record.lineno}")


def _capture_warnings(seen: dict[str, str]) -> None:
    """Python warnings and WARNING+ log records of the stacks' loggers, once each (message -> where)."""
    handler = _Seen(seen)
    for name in STACK_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    shown = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        text = f"{category.__name__}: {message}"
        seen.setdefault(text[:500], f"{filename}:{lineno}")
        shown(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning


def main(argv: list[str] | None = None) -> int:
    from conformance.harness.files import atomic_write

    from .harnesses import load_harness, versions_of
    from .protocol import Options

    args = json.loads((argv if argv is not None else sys.argv[1:])[0])
    mode, directory = args["mode"], Path(args["dir"])
    ckpt = directory / "checkpoint"
    options = Options(**args["options"])
    if mode == "resume":  # build nothing before the checkpoint exists: the restore must do all the work
        _wait_ready(ckpt, float(args.get("wait_s", 600)))
    seen: dict[str, str] = {}
    _capture_warnings(seen)
    from .protocol import HarnessError, Unsupported

    try:
        cls = load_harness(args["harness"])
        from .record import Run  # imports torch: after the harness module, which may set up its stack first

        # the straight run saves (if its stack saves on a schedule) into a folder of its own, never into B's
        run = Run(mode, options, ckpt if mode != "straight" else directory / "checkpoint-straight")
        harness = cls()
        started = time.monotonic()
        harness.train(run)
    except Unsupported as exc:
        print(f"{UNSUPPORTED_PREFIX}{exc}", file=sys.stderr)
        return EXIT_UNSUPPORTED
    except HarnessError as exc:
        print(f"{HARNESS_ERROR_PREFIX}{exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    saved: list[str] = []
    if mode == "interrupt":
        saved = sorted(str(p.relative_to(ckpt)) for p in ckpt.rglob("*") if p.is_file())[:50]
        if not saved:
            raise SystemExit(f"the interrupted run saved nothing under {ckpt}: the harness must save there")
        atomic_write(ckpt / READY, lambda f: f.write(b"interrupted run saved"))
    run.write(directory, mode, {"harness": args["harness"], "versions": versions_of(harness),
                                "seconds": round(time.monotonic() - started, 3), "checkpoint": saved,
                                "warnings": [{"warning": k, "where": v} for k, v in seen.items()]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
