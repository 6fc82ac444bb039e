"""``conformance report``: render ``index.html`` again from a ``results.json`` (no re-run)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .results import SCHEMA, atomic_write


def load_results(path: Path) -> dict:
    """Read a results file; a clear error names the file when it is missing, corrupt or of another schema."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such results file (run `conformance run` first)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); re-run `conformance run` to regenerate it") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else None
        raise ValueError(f"{path}: results schema {got!r}, this version of the suite reads schema {SCHEMA}")
    return data


def _render(args: argparse.Namespace) -> int:
    from .report import render_html

    results = load_results(Path(args.results))
    out = Path(args.output) if args.output else Path(args.results).parent
    atomic_write(out / "index.html", render_html(results))
    print(f"wrote {out / 'index.html'} ({len(results['records'])} records)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="render index.html from results.json, or merge results from several machines",
                       description="Render the HTML report again from a results file without re-running checks "
                                   "(`conformance report [RESULTS] [-o DIR]`), or merge results files produced on "
                                   "different machines into one matrix "
                                   "(`conformance report merge A.json B.json -o DIR`).")
    p.add_argument("results", nargs="*", default=["reports/results.json"],
                   help="results file (default %(default)s); after 'merge': two or more results files")
    p.add_argument("-o", "--output", default=None, help="output directory (default: beside the results file)")
    p.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    if args.results and args.results[0] == "merge":
        from .merge import _merge_cmd

        args.results = args.results[1:]
        if not args.output:
            raise ValueError("report merge needs -o DIR")
        return _merge_cmd(args)
    if len(args.results) != 1:
        raise ValueError("give one results file to render (or 'merge' followed by several)")
    args.results = args.results[0]
    return _render(args)
