"""``conformance report``: render ``index.html`` again from a ``results.json`` (no re-run), or merge several.

    conformance report [RESULTS] [-o DIR] [--mutation-score FILE]
    conformance report merge A.json B.json [...] -o DIR [--mutation-score FILE]
    conformance report summary [RESULTS] [--readme README.md]
    conformance report profile [RESULTS]           where the run's time went (per area, check kind, backend)

The report is built from the results file(s) and the files named here only. A results file that is not valid JSON,
of another schema or with a missing or bad field is one line on stderr naming the file and the field, and exit
status 4 (a usage error, as for ``conformance run``); other errors (a missing file) go to the CLI's handler (2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..harness.files import atomic_write
from .load import MalformedResults, load_mutation_score, load_results, load_resume_audits

#: Exit status of ``conformance report`` for a malformed results file.
EXIT_MALFORMED = 4


def _render(args: argparse.Namespace) -> int:
    from .html import render_html

    results = load_results(Path(args.results))
    mutation = load_mutation_score(Path(args.mutation_score)) if args.mutation_score else None
    out = Path(args.output) if args.output else Path(args.results).parent
    atomic_write(out / "index.html", render_html(results, mutation_score=mutation, resume=load_resume_audits(out)))
    status = "" if results["status"] == "complete" else f", {results['status'].upper()} run"
    print(f"wrote {out / 'index.html'} ({len(results['records'])} records{status})")
    return 0


def _summary(args: argparse.Namespace) -> int:
    """Print the cross-framework summary table, or replace the README's block with it."""
    from . import frameworks_summary as fs
    from .readme import replace_block

    results = load_results(Path(args.results[0] if args.results else "reports/results.json"))
    body = fs.table(results)
    if not args.readme:
        print(body)
        return 0
    readme = Path(args.readme)
    text = replace_block(readme.read_text(encoding="utf-8"), body, fs.BEGIN, fs.END)
    atomic_write(readme, text)
    print(f"wrote the cross-framework summary ({len(fs.backends_in(results))} backends) into {readme}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    """Print where the run's time went (:mod:`conformance.report.profile`), or replace the README's block with it."""
    from . import profile as pf
    from .readme import replace_block

    path = Path(args.results[0] if args.results else "reports/results.json")
    results = load_results(path)
    body = pf.markdown(pf.profile(results, workers=int(results.get("workers") or 1)),
                       title=f"Profile of {path} ({len(results['records'])} records)")
    if not args.readme:
        print(body)
        return 0
    readme = Path(args.readme)
    atomic_write(readme, replace_block(readme.read_text(encoding="utf-8"), body, pf.BEGIN, pf.END))
    print(f"wrote the profile of {path} into {readme}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="render index.html from results.json, or merge results from several machines",
                       description="Render the HTML report again from a results file without re-running checks "
                                   "(`conformance report [RESULTS] [-o DIR]`), or merge results files produced on "
                                   "different machines into one matrix "
                                   "(`conformance report merge A.json B.json -o DIR`), or print the cross-framework "
                                   "summary table (`conformance report summary [RESULTS] [--readme README.md]`), or "
                                   "show where a run's time went (`conformance report profile [RESULTS]`). "
                                   "The report reads only the files named here.")
    p.add_argument("results", nargs="*", default=["reports/results.json"],
                   help="results file (default %(default)s); after 'merge': two or more results files")
    p.add_argument("-o", "--output", default=None, help="output directory (default: beside the results file)")
    p.add_argument("--mutation-score", default=None, metavar="FILE",
                   help="add the mutation score section from this file (written by tools/mutation_score.py)")
    p.add_argument("--readme", default=None, metavar="FILE",
                   help="with 'summary': replace the README's frameworks-summary block in FILE instead of printing")
    p.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return _dispatch_checked(args)
    except MalformedResults as exc:
        print(f"conformance report: error: {exc}", file=sys.stderr)
        return EXIT_MALFORMED


def _dispatch_checked(args: argparse.Namespace) -> int:
    if args.results and args.results[0] == "merge":
        from .merge import merge_cmd

        args.results = args.results[1:]
        if not args.output:
            raise ValueError("report merge needs -o DIR")
        return merge_cmd(args)
    if args.results and args.results[0] == "summary":
        args.results = args.results[1:]
        if len(args.results) > 1:
            raise ValueError("report summary takes one results file")
        return _summary(args)
    if args.results and args.results[0] == "profile":
        args.results = args.results[1:]
        if len(args.results) > 1:
            raise ValueError("report profile takes one results file")
        return _profile(args)
    if args.readme:
        raise ValueError("--readme goes with 'conformance report summary' or 'conformance report profile'")
    if len(args.results) != 1:
        raise ValueError("give one results file to render (or 'merge' followed by several)")
    args.results = args.results[0]
    return _render(args)
