"""Speed of the suite, measured on this machine (the `bench` nox session; numbers are measured, never asserted).

    python tools/speed.py profile                 # serial torch:cpu run -> where its time goes (reports/bench/)
    python tools/speed.py targets                 # torch:cpu default run; every CPU backend one after another
    python tools/speed.py targets --quickstart    # ... and the README quick start from a fresh clone of HEAD
    python tools/speed.py targets --readme README.md   # also write the README's speed table
    python tools/speed.py profile --readme README.md   # also write the README's profile block

``profile`` runs ``conformance run --backend torch:cpu -n 0`` (one process, so the seconds add up) and prints
:func:`conformance.report.profile.markdown` of its results: per area, per check kind, draw vs check vs setup, and
the harness (start-up, collection, report writing: the process's wall time minus the checks' time). ``targets``
times what a user runs, with the default options (``-n auto``): ``conformance run --backend torch:cpu``, then every
available CPU backend of ``conformance backends`` in its own ``conformance run``, one after another (the Keras
backends cannot share a process), and with ``--quickstart`` the README's first command in a fresh clone (fresh nox
environments, installs included). Results: ``reports/bench/speed.json`` and, with ``--readme``, the table between
the README's speed-targets markers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: this checkout's conformance and tools
    sys.path.insert(0, str(ROOT))

from conformance.report import profile as pf  # noqa: E402
from conformance.report.load import load_results  # noqa: E402
from tools.readme_markers import replace_between  # noqa: E402

OUT = ROOT / "reports" / "bench"
BEGIN, END = "<!-- speed-targets:begin -->", "<!-- speed-targets:end -->"
#: The issue's targets, in seconds.
TARGETS = {"torch": 60.0, "every_cpu_backend": 240.0, "quickstart": 480.0}
#: The CPU backends the issue's "every CPU backend, ~16 min" was measured on, before tinygrad, Keras, Flax, Equinox.
MAINSTREAM = ("torch:cpu", "jax:cpu", "mlx:cpu", "candle:cpu")


def timed(cmd: list[str], cwd: Path = ROOT, env: dict | None = None) -> tuple[float, int, str]:
    """Run ``cmd``; (wall seconds, exit status, the last lines of its output). Progress goes to stderr."""
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    secs = time.perf_counter() - t0
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    print(f"  {secs:.1f} s, exit {proc.returncode}: {tail.splitlines()[-1] if tail else ''}", file=sys.stderr)
    return secs, proc.returncode, tail


def conformance_run(spec: str, report_dir: Path, *options: str) -> dict:
    secs, rc, tail = timed([sys.executable, "-m", "conformance", "run", "--backend", spec, "--report-dir",
                            str(report_dir), "-q", *options])
    results = load_results(report_dir / "results.json") if (report_dir / "results.json").is_file() else {}
    return {"spec": spec, "wall_s": round(secs, 1), "exit": rc, "run_s": results.get("duration"),
            "workers": results.get("workers"), "summary": results.get("summary", {}), "tail": tail}


def cpu_backends() -> list[str]:
    """Available CPU specs of ``conformance backends --json``, the reference adapter first."""
    out = subprocess.run([sys.executable, "-m", "conformance", "backends", "--json"], capture_output=True, text=True,
                         check=True).stdout
    # a Keras backend after the first is unavailable in *this* process only: it runs in its own `conformance run`
    specs = [r["spec"] for r in json.loads(out) if r["spec"].endswith(":cpu")
             and (r["available"] or "in a separate `conformance run" in (r["reason"] or ""))]
    return sorted(specs, key=lambda s: (not s.startswith("numpy"), s))


def cmd_profile(args: argparse.Namespace) -> int:
    out = Path(args.out) / "profile-torch-serial"
    run = conformance_run("torch:cpu", out, "-n", "0")
    results = load_results(out / "results.json")
    p = pf.profile(results, workers=1)
    body = pf.markdown(p, title=f"`conformance run --backend torch:cpu -n 0`: {run['wall_s']:.1f} s of process "
                                f"wall time, of which {run['wall_s'] - (results['duration'] or 0):.1f} s before "
                                "the first and after the last check (start-up, writing results.json, junit.xml "
                                "and index.html).")
    (Path(args.out) / "profile.md").write_text(body + "\n")
    print(body)
    if args.readme:
        replace_between(Path(args.readme), pf.BEGIN, pf.END, body)
    return 0 if run["exit"] == 0 else 1


def cmd_targets(args: argparse.Namespace) -> int:
    out = Path(args.out)
    torch = conformance_run("torch:cpu", out / "torch-default")
    each = [conformance_run(spec, out / f"each-{spec.replace(':', '-')}") for spec in cpu_backends()]
    measured = {"torch": torch, "every_cpu_backend": {"runs": each,
                                                      "wall_s": round(sum(r["wall_s"] for r in each), 1)},
                "cpus": os.cpu_count(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.quickstart:
        measured["quickstart"] = quickstart()
    (out / "speed.json").write_text(json.dumps(measured, indent=1))
    table = targets_table(measured)
    print(table)
    if args.readme:
        replace_between(Path(args.readme), BEGIN, END, table)
    return 0 if all(r["exit"] == 0 for r in [torch, *each]) else 1


def quickstart() -> dict:
    """The README's first command in a fresh clone of HEAD (new nox environments, empty pip and JAX caches: every
    install and every compilation counted)."""
    with tempfile.TemporaryDirectory(prefix="quickstart-") as tmp:
        clone = Path(tmp) / "suite"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        # a fresh machine: no pip wheel cache and no JAX compilation cache (both live under XDG_CACHE_HOME)
        env = {**os.environ, "CI": "true", "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        env.pop("CONFORMANCE_JAX_CACHE", None)
        secs, rc, tail = timed([sys.executable, "-m", "nox", "-s", "conformance"], cwd=clone, env=env)
    return {"wall_s": round(secs, 1), "exit": rc, "tail": tail, "command": "python3 -m nox -s conformance"}


def targets_table(m: dict) -> str:
    """The README table: what, measured, target."""
    torch, every = m["torch"], m["every_cpu_backend"]
    rows = [("`conformance run --backend torch:cpu` (default suite, `-n auto`)", torch["wall_s"], TARGETS["torch"]),
            (f"every CPU backend ({len(every['runs'])}: " + ", ".join(r["spec"] for r in every["runs"])
             + "), one `conformance run` each, one after another", every["wall_s"], TARGETS["every_cpu_backend"])]
    four = [r for r in every["runs"] if r["spec"] in MAINSTREAM]
    if len(four) == len(MAINSTREAM):
        rows.insert(2, ("of which torch, JAX, MLX and Candle (the frameworks of the issue's 16-minute measurement)",
                        sum(r["wall_s"] for r in four), TARGETS["every_cpu_backend"]))
    if "quickstart" in m:
        rows.append(("README quick start from a fresh clone, installs included (`python3 -m nox -s conformance`)",
                     m["quickstart"]["wall_s"], TARGETS["quickstart"]))
    lines = [f"Measured {m['created']} on {m['cpus']} CPUs by `python tools/speed.py targets` (the `bench` session).",
             "", "| what | measured | target |", "|---|---:|---:|"]
    lines += [f"| {what} | {secs:.0f} s | {target:.0f} s |" for what, secs, target in rows]
    lines += ["", "| backend | seconds | checks run |", "|---|---:|---:|"]
    lines += [f"| {r['spec']} | {r['wall_s']:.0f} | {r['summary'].get('total', 0) - r['summary'].get('skipped', 0)} |"
              for r in every["runs"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("profile", help="where a serial torch:cpu run's time goes")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--readme", default=None, metavar="FILE", help="write the profile into FILE's speed-profile block")
    t = sub.add_parser("targets", help="the issue's speed targets, measured")
    t.add_argument("--out", default=str(OUT))
    t.add_argument("--quickstart", action="store_true", help="also time the README quick start in a fresh clone")
    t.add_argument("--readme", default=None, metavar="FILE", help="write the table into FILE's speed-targets block")
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    return cmd_profile(args) if args.cmd == "profile" else cmd_targets(args)


if __name__ == "__main__":
    sys.exit(main())
