"""Prove the wheel: build it, check what it holds, install it into a fresh virtual environment outside the checkout,
run a smoke selection and `conformance golden verify` there, and show that an unrelated pytest project in that
environment sees nothing of the plugin.

    python tools/wheel_check.py [--work DIR] [--keep] [--repeats N]

Exit status 0 when every step passed. Timings of the unrelated project (median of N runs with and without the
plugin) are measured and printed, not asserted (speed is measured, never asserted; the benchmark session keeps
them too).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints-cpu.txt"
#: The smoke selection: activations (silu, exhaustive float16 and the float64 sweep), one random init scheme, one
#: module default, the seed and RNG-state checks of one producer and the golden streams.
SMOKE = ("silu or (random_scheme and normal-0_1 and float32 and not moments) or (random_default and Linear) "
         "or (reseed_reproduces and sample-normal) or golden_streams")
#: What the wheel must carry besides code.
REQUIRED_DATA = (
    "conformance/goldens/data/activations/manifest.json",
    "conformance/goldens/data/activations/exhaustive_float16.npz",
    "conformance/goldens/data/activations/sweep_float64.npz",
    "conformance/known_failures.toml",
    "conformance/run.ini",
    "conformance/audit/specs/gpt2.toml",
)
REQUIRED_PREFIXES = ("conformance/goldens/data/streams/", "conformance/goldens/data/model_init/",
                     "conformance/report/templates/", "conformance/backends/")


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True,
        timeout: float = 1800) -> subprocess.CompletedProcess:
    print("$ " + " ".join(cmd), f"(in {cwd})", flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n")
        raise SystemExit(f"FAILED (exit {proc.returncode}): {' '.join(cmd)}")
    return proc


def build_wheel(dist: Path) -> Path:
    step("build the wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(ROOT)],
        cwd=ROOT)
    wheels = sorted(dist.glob("dl_conformance-*.whl"))
    if not wheels:
        raise SystemExit("FAILED: no wheel was built")
    return wheels[-1]


def check_contents(wheel: Path) -> None:
    step(f"contents of {wheel.name}")
    names = zipfile.ZipFile(wheel).namelist()
    top = sorted({n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))})
    print(f"top-level import packages: {top}")
    if top != ["conformance"]:
        raise SystemExit(f"FAILED: the wheel must install exactly one top-level package, conformance; got {top}")
    missing = [f for f in REQUIRED_DATA if f not in names]
    missing += [p + "*" for p in REQUIRED_PREFIXES if not any(n.startswith(p) for n in names)]
    if missing:
        raise SystemExit(f"FAILED: the wheel lacks {missing}")
    golden = [n for n in names if n.startswith("conformance/goldens/data/") and not n.endswith(".py")]
    print(f"golden data files: {len(golden)}; {len(names)} files in all")


def fresh_env(where: Path, wheel: Path) -> Path:
    step(f"fresh virtual environment in {where}")
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS), str(wheel)], cwd=where.parent)
    return python


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "CONFORMANCE_GOLDEN_DIR", "VIRTUAL_ENV")}
    return env


def smoke(python: Path, work: Path) -> None:
    step("smoke selection on numpy:cpu, from outside the checkout")
    out = work / "smoke-report"
    conformance = python.parent / "conformance"
    proc = run([str(conformance), "run", "--backend", "numpy:cpu", "-k", SMOKE, "--report-dir", str(out), "-q"],
               cwd=work, env=clean_env(), check=False)
    print("\n".join(proc.stdout.splitlines()[-8:]))
    results = json.loads((out / "results.json").read_text())
    s = results["summary"]
    where = {r["nodeid"].split("::")[0] for r in results["records"]}
    if proc.returncode != 0 or s["failed"] or s["error"] or not s["passed"]:
        raise SystemExit(f"FAILED: smoke run exit {proc.returncode}, summary {s}")
    silu = [r for r in results["records"] if r["id"].startswith("activations/") and "silu" in r["id"]
            and r["outcome"] == "passed"]
    if not silu:
        raise SystemExit("FAILED: no activation check passed (is the golden activation data in the wheel?)")
    print(f"smoke: {s['passed']} passed, {s['skipped']} skipped, {s['xfailed']} known failures; "
          f"{len(silu)} silu activation checks passed; test files {sorted(where)}")
    installed = run([str(python), "-c", "import conformance, sys; print(conformance.__file__)"], cwd=work,
                    env=clean_env()).stdout.strip()
    if Path(installed).resolve().is_relative_to(ROOT.resolve()):  # not a substring test: /tmp/wh vs /tmp/wheelcheck
        raise SystemExit(f"FAILED: the smoke run imported the checkout ({installed}), not the wheel")
    print(f"conformance imported from {installed}")


def golden_verify(python: Path, work: Path) -> None:
    step("conformance golden verify (installed)")
    proc = run([str(python.parent / "conformance"), "golden", "verify", "--backend", "numpy:cpu"], cwd=work,
               env=clean_env(), check=False)
    print("\n".join(proc.stdout.splitlines()[-6:]))
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit("FAILED: golden verify")


def unrelated_project(python: Path, work: Path, repeats: int) -> None:
    step("an unrelated one-test pytest project in the same environment")
    project = work / "unrelated"
    project.mkdir()
    (project / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    base = [str(python), "-m", "pytest", "-p", "no:cacheprovider"]

    def lines(proc):
        return [ln.split(" in ")[0] for ln in proc.stdout.splitlines()
                if not ln.startswith(("plugins:", "rootdir:", "platform "))]

    with_plugin = run(base, cwd=project, env=clean_env())
    without = run(base + ["-p", "no:conformance"], cwd=project, env=clean_env())
    ours = [ln for ln in with_plugin.stdout.splitlines() if "conformance" in ln.lower() and
            not ln.startswith(("plugins:", "rootdir:"))]  # the temporary folder's name holds the word
    if ours or lines(with_plugin) != lines(without):
        print(with_plugin.stdout, without.stdout, sep="\n---\n")
        raise SystemExit(f"FAILED: the plugin printed in an unrelated project: {ours}")
    print("output identical with and without the plugin (apart from the plugins: line and the timing)")

    def timed(args):
        t0 = time.perf_counter()
        run(args, cwd=project, env=clean_env())
        return time.perf_counter() - t0

    on = [timed(base) for _ in range(repeats)]
    off = [timed(base + ["-p", "no:conformance"]) for _ in range(repeats)]
    ratio = statistics.median(on) / statistics.median(off)
    print(f"wall time, median of {repeats}: {statistics.median(on):.2f} s with the plugin, "
          f"{statistics.median(off):.2f} s with -p no:conformance: ratio {ratio:.2f} (target at most 1.3)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="working directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--repeats", type=int, default=5, help="timing repetitions of the unrelated project")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="wheelcheck-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        wheel = build_wheel(work / "dist")
        check_contents(wheel)
        python = fresh_env(work / "venv", wheel)
        smoke(python, work)
        golden_verify(python, work)
        unrelated_project(python, work, args.repeats)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print("\nwheel check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
