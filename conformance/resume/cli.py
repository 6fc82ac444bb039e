"""``conformance resume``: audit whether a training stack resumes bit-exactly.

Usage::

    conformance resume --list
    conformance resume NAME [--workers N] [--stateful-loader] [--dataset-randomness] [--stop-at K] [--steps N]
                            [--seed S] [--timeout T] [--json] [--report-dir DIR] [--keep DIR]
    conformance resume package.module:Class ...        (your own harness: conformance.resume.protocol; importable
                                                        from the current directory or PYTHONPATH)

Exit codes: 0 bit-exact, 1 diverged (or the stack is not deterministic, or a run crashed), 4 bad input (unknown
harness, bad option, an option the stack does not support, a harness that breaks the protocol), 5 the stack is not
installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "resume", help="does a training stack resume bit-exactly? (straight run vs interrupted + resumed run)",
        description="Run a training harness straight (A), interrupted after --stop-at steps with a checkpoint saved "
                    "the stack's documented way (B), and resumed from that checkpoint in a fresh process (C); "
                    "compare C with A step by step (batch, RNG states, dropout masks, loss, LR) and the final "
                    "parameters and optimizer state, bit for bit.")
    p.add_argument("harness", nargs="?", help="built-in harness name (see --list) or package.module:Class")
    p.add_argument("--list", action="store_true", help="list the built-in harnesses with their installed versions")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (default %(default)s)")
    p.add_argument("--stateful-loader", action="store_true",
                   help="use torchdata's StatefulDataLoader where the stack supports it")
    p.add_argument("--dataset-randomness", action="store_true",
                   help="the dataset draws random numbers in __getitem__ (as augmentation does)")
    p.add_argument("--stop-at", type=int, default=12, help="steps the interrupted run trains (default %(default)s)")
    p.add_argument("--steps", type=int, default=24, help="steps in all (default %(default)s; 8 batches per epoch)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for the three runs together")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON on stdout")
    p.add_argument("--report-dir", default=None, help="write DIR/resume/<run>.json and DIR/resume/index.html")
    p.add_argument("--matrix", action="store_true",
                   help="audit the named built-in harness (default: every one installed) under every option "
                        "combination (workers 0/2 x stateful loader x dataset randomness); write OUT/runs/LABEL.json")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="--matrix: only this built-in harness (repeatable; default: every one installed)")
    p.add_argument("--out", default="reports/resume", help="--matrix: output folder (default %(default)s)")
    p.add_argument("--label", default="local", help="--matrix: name of this environment's run file")
    p.add_argument("--readme", default=None,
                   help="--matrix: regenerate the findings table between the markers of this file from every run "
                        "file in OUT/runs")
    p.add_argument("--table-only", action="store_true", help="--matrix: only regenerate the table from OUT/runs")
    p.add_argument("--keep", default=None, metavar="DIR",
                   help="run in DIR and keep the checkpoints, traces and logs (default: a temporary directory)")
    p.set_defaults(func=run)


def _error(msg: str, code: int = 4) -> int:
    print(f"conformance resume: error: {msg}", file=sys.stderr)
    return code


def list_harnesses() -> int:
    from .harnesses import BUILTIN, missing, version_of

    print("built-in resume harnesses (conformance resume NAME; your own: package.module:Class)")
    for h in BUILTIN:
        why = missing(h)
        versions = ", ".join(f"{lib} {version_of(lib)}" for lib in h.libraries if version_of(lib))
        state = f"not available: {why}" if why else versions
        print(f"  {h.name:<12} {state}\n  {'':<12} {h.summary}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list:
        return list_harnesses()
    if args.matrix:
        return run_matrix(args)
    if not args.harness:
        return _error("name a harness (conformance resume --list shows the built-in ones) or use --list")
    from .harnesses import builtin, missing, resolve
    from .protocol import HarnessError, Options, Unsupported

    try:
        target = resolve(args.harness)
        options = Options(seed=args.seed, steps=args.steps, stop_at=args.stop_at, workers=args.workers,
                          stateful_loader=args.stateful_loader, dataset_randomness=args.dataset_randomness).validate()
    except (HarnessError, ValueError) as exc:
        return _error(str(exc))
    entry = builtin(args.harness)
    if entry is not None and missing(entry):
        print(f"{entry.name} SKIPPED: {missing(entry)}")
        return 5
    if entry is not None and args.stateful_loader and entry.stateful_loader:
        return _error(f"{entry.name} does not support --stateful-loader: {entry.stateful_loader}")
    from .runner import RunFailed, run_audit

    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    say(f"resume audit of {args.harness}: {options.label()}")
    tmp = None
    if args.keep:
        directory = Path(args.keep)
        if directory.exists() and any(directory.iterdir()):
            return _error(f"--keep {directory} is not empty; name a new or empty directory")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="conformance-resume-")
        directory = Path(tmp.name)
    try:
        result = run_audit(target, options, directory, args.timeout, progress=say)
    except (Unsupported, HarnessError) as exc:
        return _error(f"{args.harness}: {exc}")
    except RunFailed as exc:
        doc = {"harness": args.harness, "options": options.as_dict(), "bit_exact": False, "error": str(exc),
               "first_divergent_step": None, "diverged": []}
        print(json.dumps(doc, indent=1) if args.json else f"FAILED: {exc}")
        return 1
    finally:
        if tmp is not None:
            tmp.cleanup()
    result.harness = args.harness
    doc = result.as_dict()
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        _print(result)
    if args.report_dir:
        from .report import write

        paths = write(doc, Path(args.report_dir))
        say(f"wrote {', '.join(str(p) for p in paths)}")
    return 0 if result.verdict.bit_exact else 1


def _print(result) -> None:
    v = result.verdict
    versions = ", ".join(f"{k} {val}" for k, val in result.versions.items())
    print(f"{result.harness} ({versions}): {v.summary()}")
    for line in v.details[:8] + v.origin:
        print(f"  {line}")
    for w in result.warnings[:5]:
        print(f"  warning from the stack: {w['warning'][:300]}")
    for n in result.notes:
        print(f"  note: {n}")
    secs = ", ".join(f"{k} {s:.1f} s" for k, s in result.seconds.items())
    print(f"  runs: {secs}; checkpoint: {', '.join(result.checkpoint[:6]) or '(none)'}")


def _audit_doc(target: str, name: str, options, directory: Path, timeout: float, say,
               versions: dict | None = None) -> dict:
    """One audit as a result dict; an unsupported option or a crashed run is a dict that says so (with
    ``versions``: the runs' own record of them is lost)."""
    from .protocol import Unsupported
    from .runner import RunFailed, run_audit

    base = {"harness": name, "options": options.as_dict(), "label": options.label(), "bit_exact": False,
            "first_divergent_step": None, "diverged": [], "versions": versions or {}}
    try:
        result = run_audit(target, options, directory, timeout, progress=say)
    except Unsupported as exc:
        return {**base, "unsupported": str(exc)}
    except RunFailed as exc:
        return {**base, "error": str(exc)}
    result.harness = name
    return result.as_dict()


def run_matrix(args: argparse.Namespace) -> int:
    """Every option combination of the chosen built-in harnesses; run file, README table; exit 1 on UNREVIEWED."""
    import itertools
    import time

    from conformance.harness.files import atomic_write

    from . import findings
    from .harnesses import BUILTIN, builtin, missing, version_of
    from .protocol import HarnessError, Options

    out = Path(args.out)
    if not args.table_only:
        names = args.only + ([args.harness] if args.harness else [])
        unknown = [n for n in names if builtin(n) is None]
        if unknown:
            return _error(f"--matrix takes built-in harness names (conformance resume --list), not {unknown}")
        chosen = [builtin(n) for n in names] if names else list(BUILTIN)
        runnable = [h for h in chosen if not missing(h)]
        for h in chosen:
            if missing(h):
                print(f"{h.name} SKIPPED: {missing(h)}")
        stateful = (False, True) if version_of("torchdata") else (False,)
        if len(stateful) == 1:
            print("--stateful-loader combinations SKIPPED: torchdata is not installed (pip install torchdata)")
        combos = [Options(seed=args.seed, steps=args.steps, stop_at=args.stop_at, workers=w, stateful_loader=s,
                          dataset_randomness=d) for w, s, d in itertools.product((0, 2), stateful, (False, True))]
        audits, total, t0 = [], len(runnable) * len(combos), time.monotonic()
        for i, (h, options) in enumerate(((h, o) for h in runnable for o in combos), 1):
            started = time.monotonic()
            versions = {lib: (version_of(lib) or "?").split("+")[0] for lib in (*h.libraries, "torch")}
            if options.stateful_loader and h.stateful_loader:
                doc = {"harness": h.name, "options": options.as_dict(), "label": options.label(), "bit_exact": False,
                       "first_divergent_step": None, "diverged": [], "unsupported": h.stateful_loader,
                       "versions": versions}
            else:
                with tempfile.TemporaryDirectory(prefix="conformance-resume-") as tmp:
                    try:
                        doc = _audit_doc(h.target, h.name, options, Path(tmp), args.timeout, lambda _line: None,
                                         versions)
                    except HarnessError as exc:
                        return _error(f"{h.name}: {exc}")
            audits.append(doc)
            step = doc.get("first_divergent_step")
            print(f"[{i}/{total}] {h.name} ({options.label()}): {findings.verdict_of(doc)}"
                  f"{f' at step {step}' if step is not None else ''} [{time.monotonic() - started:.0f} s, "
                  f"{time.monotonic() - t0:.0f} s in all]", flush=True)
        measured = ", ".join(f"{lib} {version_of(lib)}" for lib in dict.fromkeys(
            ["torch", "torchdata"] + [lib for h in runnable for lib in h.libraries]) if version_of(lib))
        run = {"label": args.label, "measured": measured, "audits": audits}
        (out / "runs").mkdir(parents=True, exist_ok=True)
        path = out / "runs" / f"{args.label}.json"
        atomic_write(path, lambda f: f.write(json.dumps(run, indent=1).encode()))
        print(f"wrote {path}")
    try:
        runs = findings.load_runs(out / "runs")
        table = findings.rows(runs)
    except findings.FindingsError as exc:
        return _error(str(exc))
    text = findings.markdown(table, runs)
    if args.readme:
        try:
            findings.replace_readme(Path(args.readme), text)
        except findings.FindingsError as exc:
            return _error(str(exc))
        print(f"regenerated the resume findings table in {args.readme} ({len(table)} rows)")
    bad = [r for r in table if r.status in ("UNREVIEWED", "MISMATCH")]
    for r in bad:
        print(f"{r.status}: {r.stack} ({r.options}): {r.verdict} at {r.first_step}: {r.cause[:300]}")
    return 1 if bad else 0
