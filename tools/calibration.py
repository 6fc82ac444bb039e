"""Calibration across master seeds: how often does the suite cry wolf on correct backends?

    python tools/calibration.py run --seeds 20                      # whole default suite, numpy:cpu + torch:cpu
    python tools/calibration.py run --seeds 20 --subset "init_schemes and float32"   # a subset (-k), faster
    python tools/calibration.py run --seeds 20 --strict-tier        # strict tier: each record judged in both tiers
    python tools/calibration.py summarize                           # -> reports/calibration.md and .json
    python tools/calibration.py summarize --readme README.md        # also the README section

``run`` calls ``conformance run --seed S --report-dir reports/calibration/S -n 2`` for each seed (known failures
honoured: they are expected failures, not alarms), then summarizes. ``summarize`` reads every
``reports/calibration/*/results.json``. ``nox -s calibration`` runs both (not part of the default CI).

A **false alarm** is a record with outcome ``failed`` or ``error`` on a correct backend (in a ``--strict-tier`` run
that is the strict tier's count; the default tier's is the alarms whose record is a defect,
:mod:`conformance.stats.severity`) (an ``xpassed`` known
failure is reported separately, not counted). An alarm that the *current* known-failures file explains (same check,
backend and dtype, and only verdict tests the entry names, each entry carrying its evidence) was a real deviation
found by the run and recorded since: it is listed with the entry and not counted as false; ``--no-reclassify``
counts it anyway. Each run states its own designed family-wise bound
(``summary.fwer_bound`` = statistical tests performed x alpha); under the design the number of runs with at least
one false alarm is at most Binomial(runs, bound) in distribution, and the summary prints the probability of seeing
as many or more.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: this checkout's conformance and tools, as the runs it starts use
    sys.path.insert(0, str(ROOT))

from conformance import known_failures as kf  # noqa: E402
from tools.readme_markers import replace_between  # noqa: E402

DEFAULT_ROOT = ROOT / "reports" / "calibration"
DEFAULT_BACKENDS = ("numpy:cpu", "torch:cpu")
FIRST_SEED = 1000


def seeds(n: int, first: int = FIRST_SEED) -> list[int]:
    return list(range(first, first + n))


def run_seed(seed: int, root: Path, subset: str | None, backends=DEFAULT_BACKENDS, workers: str = "2",
             timeout: float = 3600, strict_tier: bool = False) -> dict:
    out = root / str(seed)
    cmd = [sys.executable, "-m", "conformance", "run", "--seed", str(seed), "--report-dir", str(out), "-q"]
    if strict_tier:
        cmd.append("--strict-tier")
    for b in backends:
        cmd += ["--backend", b]
    if subset:
        cmd += ["-k", subset]
    if workers:  # "0" or "1": one process (conformance run's own default would be -n auto)
        cmd += ["-n", "0" if workers in ("0", "1") else workers]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    secs = time.perf_counter() - t0
    meta = {"seed": seed, "exit": proc.returncode, "wall_s": round(secs, 1), "subset": subset,
            "command": " ".join(shlex.quote("python" if c == sys.executable else c) for c in cmd)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration_run.json").write_text(json.dumps(meta, indent=1))
    return meta


def alarms(results: dict) -> list[dict]:
    """Failed or errored records (known failures run as xfail, so they are not among them)."""
    return [r for r in results["records"] if r["outcome"] in ("failed", "error")]


def explained_by(record: dict, known: kf.KnownFailures | None) -> kf.Entry | None:
    """The known-failures entry that covers this failed record (only its named verdict tests failed), if any."""
    if known is None or record["outcome"] != "failed":
        return None
    failed = {v["test"] for v in record.get("verdicts", []) if not v.get("passed", True)}
    entry = known.match(record["id"], record["backend"], record.get("dtype"))
    return entry if entry is not None and failed and entry.covers(failed) else None


def summarize(root: Path = DEFAULT_ROOT, known: kf.KnownFailures | None = None) -> dict:
    """Per-seed counts and the comparison with the design; ``known`` reclassifies alarms it explains."""
    per_seed = []
    for path in sorted(root.glob("*/results.json"), key=lambda p: (len(p.parent.name), p.parent.name)):
        res = json.loads(path.read_text())
        meta_path = path.parent / "calibration_run.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        s = res["summary"]
        alarm, since = [], []
        for r in alarms(res):
            entry = explained_by(r, known)
            item = {"id": r["id"], "backend": r["backend"], "dtype": r["dtype"], "outcome": r["outcome"],
                    "message": r["message"][:300]}
            if entry is None:
                alarm.append(item)
            else:
                since.append({**item, "known_failure": " ".join(entry.reason.split())[:160]})
        strict_run = res.get("tier") == "strict"
        # a strict-tier run judges both tiers: its default-tier alarms are the defects among its alarms
        default_alarms = [a for a, r in zip(alarm, [r for r in alarms(res) if explained_by(r, known) is None],
                                            strict=True) if r.get("severity", "defect") == "defect"]
        per_seed.append({
            "tier": "strict" if strict_run else "default",
            "false_alarms_default": len(default_alarms), "false_alarms_strict": len(alarm) if strict_run else None,
            "deviations": s.get("deviations"),
            "seed": res["seed"], "checks": s["total"], "passed": s["passed"], "skipped": s["skipped"],
            "known_failures": s["xfailed"], "known_now_passing": s["xpassed"],
            "false_alarms": len(alarm), "alarms": alarm, "known_since": len(since), "explained": since,
            "statistical_tests": s.get("statistical_tests", 0), "fwer_bound": s.get("fwer_bound", 0.0),
            "duration_s": res.get("duration"), "subset": meta.get("subset"), "wall_s": meta.get("wall_s"),
            "backends": sorted(res.get("backends", {}))})
    runs = len(per_seed)
    runs_with_alarm = sum(1 for p in per_seed if p["false_alarms"])
    bound = max((p["fwer_bound"] for p in per_seed), default=0.0)
    expected = sum(p["fwer_bound"] for p in per_seed)
    # P(X >= observed) for X ~ Binomial(runs, worst per-run bound): small means more alarms than designed
    p_more = float(stats.binom.sf(runs_with_alarm - 1, runs, bound)) if runs and runs_with_alarm else 1.0
    subsets = sorted({str(p["subset"]) for p in per_seed})
    return {"schema": 2, "runs": runs, "seeds": [p["seed"] for p in per_seed], "subsets": subsets,
            "reclassified_with": str(kf.DEFAULT_PATH.name) if known is not None else None,
            "checks_total": sum(p["checks"] for p in per_seed),
            "statistical_tests_total": sum(p["statistical_tests"] for p in per_seed),
            "false_alarms_total": sum(p["false_alarms"] for p in per_seed), "runs_with_false_alarm": runs_with_alarm,
            "tiers": sorted({p["tier"] for p in per_seed}),
            "false_alarms_default_total": sum(p["false_alarms_default"] for p in per_seed),
            "false_alarms_strict_total": sum(p["false_alarms_strict"] or 0 for p in per_seed
                                             if p["false_alarms_strict"] is not None),
            "strict_runs": sum(p["false_alarms_strict"] is not None for p in per_seed),
            "known_since_total": sum(p["known_since"] for p in per_seed),
            "designed_fwer": bound, "expected_runs_with_false_alarm": expected,
            "p_value_at_least_observed": p_more,
            "consistent_with_design": p_more > 1e-3,
            "wall_s_total": round(sum(p["wall_s"] or 0 for p in per_seed), 1), "per_seed": per_seed}


def markdown(doc: dict) -> str:
    lines = [f"Calibration: {doc['runs']} runs (master seeds {doc['seeds'][0] if doc['seeds'] else '-'}.."
             f"{doc['seeds'][-1] if doc['seeds'] else '-'}), selection {', '.join(doc['subsets']) or '-'} "
             "(None = the whole default suite), correct backends only.", "",
             "| seed | tier | checks | passed | skipped | known failures | deviations | false alarms (default tier) "
             "| false alarms (strict tier) | found, recorded since | statistical tests | designed FWER bound "
             "| wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in doc["per_seed"]:
        strict = "-" if p.get("false_alarms_strict") is None else p["false_alarms_strict"]
        lines.append(f"| {p['seed']} | {p.get('tier', 'default')} | {p['checks']} | {p['passed']} | {p['skipped']} | "
                     f"{p['known_failures']} | {p.get('deviations', '-')} | "
                     f"{p.get('false_alarms_default', p['false_alarms'])} | {strict} | {p.get('known_since', 0)} | "
                     f"{p['statistical_tests']} | {p['fwer_bound']:.2g} | {p['wall_s']} |")
    if doc.get("strict_runs"):
        lines += ["", f"Per tier: {doc['false_alarms_default_total']} default-tier false alarms (defects) and "
                      f"{doc['false_alarms_strict_total']} strict-tier false alarms (defects or deviations) in "
                      f"{doc['strict_runs']} runs with --strict-tier, which judge every record in both tiers."]
    lines += ["", f"**Total: {doc['false_alarms_total']} false alarms in {doc['checks_total']} checks "
                  f"({doc['statistical_tests_total']} statistical tests); {doc['runs_with_false_alarm']} of "
                  f"{doc['runs']} runs with any false alarm.** Designed family-wise bound per run: "
                  f"{doc['designed_fwer']:.2g} (expected runs with a false alarm at most "
                  f"{doc['expected_runs_with_false_alarm']:.2g}); P(at least the observed count | design) = "
                  f"{doc['p_value_at_least_observed']:.3g} -> "
                  + ("consistent with the design." if doc["consistent_with_design"] else "**more alarms than "
                                                                                        "designed.**")]
    if doc.get("known_since_total"):
        lines.append(f"Real deviations found by these runs and recorded since in `conformance/known_failures.toml` "
                     f"(with evidence), not false alarms: {doc['known_since_total']}.")
    for p in doc["per_seed"]:
        for a in p.get("explained", []):
            lines.append(f"- seed {p['seed']}: {a['id']} [{a['backend']} {a['dtype']}] {a['message']} "
                         f"(known failure: {a['known_failure']})")
    if doc["false_alarms_total"]:
        lines.append("False alarms:")
    for p in doc["per_seed"]:
        for a in p["alarms"]:
            lines.append(f"- seed {p['seed']}: {a['outcome']} {a['id']} [{a['backend']} {a['dtype']}] {a['message']}")
    return "\n".join(lines)


def write(doc: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps(doc, indent=1))
    (out / "calibration.md").write_text(markdown(doc) + "\n")


START, END = "<!-- calibration:start -->", "<!-- calibration:end -->"


def update_readme(readme: Path, body: str) -> bool:
    """Replace the text between this tool's README markers; returns True when the file changed."""
    return replace_between(readme, START, END, body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the suite under several master seeds, then summarize")
    r.add_argument("--seeds", type=int, default=20, help="number of master seeds (default 20)")
    r.add_argument("--first-seed", type=int, default=FIRST_SEED)
    r.add_argument("--subset", default=None, help="-k selection (default: the whole default suite)")
    r.add_argument("--backend", action="append", default=None, help="default numpy:cpu and torch:cpu")
    r.add_argument("-n", dest="workers", default="2")
    r.add_argument("--strict-tier", action="store_true",
                   help="run the strict tier: every record is then judged in both tiers (default: the default tier)")
    r.add_argument("--root", default=str(DEFAULT_ROOT), help="per-seed report dirs (default reports/calibration)")
    r.add_argument("--out", default=str(ROOT / "reports"), help="where calibration.md/.json go")
    s = sub.add_parser("summarize", help="summarize existing per-seed results")
    s.add_argument("--root", default=str(DEFAULT_ROOT))
    s.add_argument("--out", default=str(ROOT / "reports"))
    for sp in (r, s):
        sp.add_argument("--readme", default=None, help="also write the summary between the calibration markers")
        sp.add_argument("--no-reclassify", action="store_true",
                        help="count alarms the current known-failures file explains as false alarms too")
    args = p.parse_args(argv)
    root = Path(args.root)
    if args.cmd == "run":
        for seed in seeds(args.seeds, args.first_seed):
            meta = run_seed(seed, root, args.subset, tuple(args.backend or DEFAULT_BACKENDS), args.workers,
                            strict_tier=args.strict_tier)
            print(f"seed {seed}: exit {meta['exit']}, {meta['wall_s']} s", flush=True)
    doc = summarize(root, None if args.no_reclassify else kf.load(kf.DEFAULT_PATH))
    write(doc, Path(args.out))
    print(markdown(doc))
    if args.readme:
        print(("updated " if update_readme(Path(args.readme), markdown(doc)) else "unchanged ") + args.readme)
    return 0 if doc["consistent_with_design"] else 1


if __name__ == "__main__":
    sys.exit(main())
