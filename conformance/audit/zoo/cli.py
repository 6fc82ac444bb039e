"""``conformance realworld``: audit every zoo factory available here and merge the runs into a report.

Exit codes: 0 every available factory matched its code spec, or each failure is one confirmed in the upstream code
(``findings.toml``; intent findings are reported, never failures); 1 a build error, or a code-spec failure that no
confirmed finding explains (UNREVIEWED: read the upstream code, then confirm it or fix the spec); 4 bad input (an
unknown library or factory name, a malformed run file, a README without the findings markers); 5 nothing could run
(no selected library installed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "realworld", help="audit the real-library model zoo installed here and write reports/realworld/",
        description="Audit every zoo factory whose library is installed (conformance audit --list), write "
                    "OUT/runs/LABEL.json, then merge every run in OUT/runs into OUT/results.json and OUT/index.html "
                    "(and, with --readme, regenerate the README's findings table).")
    p.add_argument("--label", default="local", help="name of this environment's run file (default %(default)s; the "
                   "nox session uses <group>-<pinned|latest|older>)")
    p.add_argument("--library", action="append", default=[], help="only factories of this library (repeatable)")
    p.add_argument("--factory", action="append", default=[], help="only this zoo factory (repeatable)")
    p.add_argument("--out", default="reports/realworld", help="report folder (default %(default)s)")
    p.add_argument("--readme", default=None, help="regenerate the findings table between the markers of this file")
    p.add_argument("--no-hf-scan", action="store_true", help="skip the spec-free Hugging Face family scan")
    p.add_argument("--merge-only", action="store_true", help="only merge the run files already in OUT/runs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from . import catalogue
    from .findings import FindingsError
    from .realworld import merge, run_all

    out = Path(args.out)
    if not args.merge_only:
        entries = catalogue()
        libs = {e.library for e in entries}
        names = {e.name for e in entries}
        bad = [x for x in args.library if x not in libs] + [x for x in args.factory if x not in names]
        if bad:
            print(f"conformance realworld: error: unknown library or factory {', '.join(bad)}; known libraries: "
                  f"{', '.join(sorted(libs))} (`conformance audit --list` names the factories)", file=sys.stderr)
            return 4
        if args.readme and not Path(args.readme).is_file():
            print(f"conformance realworld: error: --readme {args.readme}: no such file", file=sys.stderr)
            return 4
        path, runs = run_all(out, label=args.label, libraries=args.library or None, names=args.factory or None,
                             seed=args.seed, hf_scan=not args.no_hf_scan)
        counts = {s: sum(r.status == s for r in runs) for s in ("pass", "finding", "fail", "error", "unavailable")}
        print(f"wrote {path}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    try:
        doc = merge(out, Path(args.readme) if args.readme else None)
    except FindingsError as exc:
        print(f"conformance realworld: error: {exc}", file=sys.stderr)
        return 4
    from .html import headline

    print(f"wrote {out / 'results.json'} and {out / 'index.html'}: {headline(doc)}"
          + (f"; regenerated the findings table in {args.readme}" if args.readme else ""))
    if args.merge_only:
        return 0
    if all(r.status == "unavailable" for r in runs):
        return 5
    errors = [r for r in runs if r.status == "error"]
    mine = {(r.entry.name, r.version) for r in runs}
    unreviewed = [f for f in doc["findings"] if not f["reviewed"] and f["kind"] != "intent"
                  and any((f["model"], v) in mine for v in f["failing"])]
    for r in errors:
        print(f"ERROR {r.entry.name}: {r.reason}")
    for f in unreviewed:
        print(f"UNREVIEWED {f['model']} {f['parameter']} ({', '.join(f['failing'])}): {f['verdict']}")
    return 1 if errors or unreviewed else 0
