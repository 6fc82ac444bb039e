"""``conformance hf-scan``: the spec-free init scan over the installed transformers' causal-LM families.

Prints one line per family as it is done (covered with its findings, or skipped with the reason), then a summary:
families covered, skipped by reason, findings per check, the statistical tests and their false-alarm bound. With
``--report-dir`` writes ``hf_scan.json`` atomically. Nothing is downloaded (``HF_HUB_OFFLINE=1`` for the run).

Exit codes: 0 every covered family clean; 1 at least one finding; 4 bad input (an unknown ``--family``, a
non-positive ``--max-params``); 5 nothing could run (transformers or torch missing, or every family skipped).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "hf-scan", help="spec-free init scan of every Hugging Face causal-LM family",
        description="Build each causal-LM family of the installed transformers from a shrunk config (no download) "
                    "and check, without any spec: (a) parameters left at the torch module default although the "
                    "model's _init_weights defines an init, (b) parameters never written after from_config or the "
                    "meta-device path, (c) bit-identical parameters, (d) declared ties not aliased, (e) "
                    "non-persistent buffers that differ from a fresh model after the meta path.")
    p.add_argument("--family", action="append", default=[], metavar="NAME",
                   help="model_type to scan (repeatable; default: every family of MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)")
    p.add_argument("--report-dir", default=None, help="write hf_scan.json here")
    p.add_argument("--max-params", type=int, default=2_000_000,
                   help="skip a family still larger than this after shrinking (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of every build (default %(default)s)")
    p.add_argument("--verbose", action="store_true", help="also print the notes of each family")
    p.set_defaults(func=run)


def _print_result(result, verbose: bool) -> None:
    print(result.line(), flush=True)
    for f in result.findings:
        print(f"    {f.line()}", flush=True)
    if verbose:
        for note in result.notes:
            print(f"    note: {note}", flush=True)


def run(args: argparse.Namespace) -> int:
    from . import hf_scan

    if args.max_params is not None and args.max_params <= 0:
        print(f"conformance hf-scan: error: --max-params must be positive, got {args.max_params}", file=sys.stderr)
        return 4
    ok, version, reason = hf_scan.environment()
    if not ok:
        print(f"conformance hf-scan: nothing could run: {reason}", file=sys.stderr)
        return 5
    known = hf_scan.families()
    unknown = [f for f in args.family if f not in known]
    if unknown:
        print(f"conformance hf-scan: error: unknown famil{'y' if len(unknown) == 1 else 'ies'} "
              f"{', '.join(map(repr, unknown))}; transformers {version} has {len(known)} causal-LM families "
              f"(e.g. {', '.join(known[:5])})", file=sys.stderr)
        return 4
    names = list(dict.fromkeys(args.family)) or known
    print(f"hf-scan: {len(names)} famil{'y' if len(names) == 1 else 'ies'} of transformers {version}, "
          f"seed {args.seed}, at most {args.max_params:,} parameters each", flush=True)
    report = hf_scan.scan(names, seed=args.seed, max_params=args.max_params,
                          progress=lambda r: _print_result(r, args.verbose))
    print()
    print("\n".join(report.summary_lines()))
    if args.report_dir:
        from ..harness.files import atomic_write

        path = atomic_write(Path(args.report_dir) / "hf_scan.json", json.dumps(report.to_dict(), indent=1))
        print(f"wrote {path}")
    if not report.covered:
        print("conformance hf-scan: nothing could run: every family was skipped", file=sys.stderr)
        return 5
    return 1 if report.findings else 0
