"""The pytest plugin (entry point ``pytest11``): options, markers, backend parametrization,
skips with reasons, the report header, known failures and the results files.

It only acts on *conformance checks*: tests in ``conformance.suite`` or marked
``@pytest.mark.conformance`` that request the ``backend`` fixture. Other tests in a project
that has the plugin installed are untouched.

Good citizen: importing this module imports pytest and the standard library only. Until the run is a
conformance run (``--backend`` or ``--adapters`` given, or a conformance check collected or reported), no
framework, adapter, statistics or known-failures module is imported and nothing is printed: the header
is written when ``--backend`` is given, else once conformance checks were collected.

Options (also settable through the ``conformance run`` CLI):

``--backend SPEC``      repeatable; default: every available backend
``--conformance-seed N`` master seed (default :data:`conformance.seeding.DEFAULT_MASTER_SEED`)
``--report-dir DIR``    write ``DIR/results.json`` and ``DIR/index.html``
``--adapters MODULE``   import ``MODULE[:ATTR]`` and register the providers it exposes
``--known-failures F``  a TOML file of expected failures (default: the suite's own)
``--conformance-strict`` (``conformance run --strict``) exit 1 when a known failure now passes, a known-failures
                        entry is stale, or a backend asked for with ``--backend`` is unavailable; known failures
                        become strict xfails (``-o xfail_strict=True`` does the same for them alone)

Honest results: ``results.json`` carries ``status`` (``complete``, ``interrupted``, ``empty``; see
:mod:`conformance.results`), and the terminal summary and the report say it in their first line. A run that selects
no check writes nothing: the previous results, report and junit file stay as they were (the ``--junitxml`` file of a
run with ``--report-dir`` is written beside its final name and moved into place only when the run selected checks;
an interrupted run's junit file gains an error case saying so). ``--report-dir`` is validated before anything runs.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from pathlib import Path

import pytest

#: Floating dtypes a check runs in by default (the same tuple as ``conformance.backends.base.FLOAT_DTYPES``,
#: repeated here so that loading the plugin imports nothing heavy; tests/test_good_citizen.py checks they agree).
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
FRAMEWORK_MARKERS = ("torch", "numpy", "jax", "mlx", "candle")
DEVICE_MARKERS = ("cpu", "cuda", "mps", "gpu", "metal")
_STATE = pytest.StashKey[dict]()
META_PROPERTY = "conformance_meta"
TIMING_PROPERTY = "conformance_timing"
_KNOWN = pytest.StashKey[object]()
#: Same names as ``conformance.context``'s (kept literal so the plugin does not import it before it is needed;
#: tests/test_good_citizen.py checks they agree).
USER_PROPERTY = "conformance_verdicts"
ATTACHMENT_PROPERTY = "conformance_attachment"
_MARKER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "deep-learning backend conformance")
    group.addoption("--backend", action="append", default=[], metavar="SPEC",
                    help="backend to check, e.g. torch:cpu (repeatable; default: every available backend but the "
                         "reference adapters, see --with-reference)")
    group.addoption("--with-reference", action="store_true", default=False,
                    help="when no --backend is given, also run the reference adapters (numpy:cpu: the suite's own "
                         "control, which CI and the calibration run)")
    group.addoption("--conformance-seed", type=int, default=None, metavar="N",
                    help="master seed of the run (default 20251123)")
    group.addoption("--report-dir", default=None, metavar="DIR",
                    help="write DIR/results.json, DIR/junit-style summary and DIR/index.html")
    group.addoption("--adapters", action="append", default=[], metavar="MODULE[:ATTR]",
                    help="import MODULE and register its backend providers (attribute PROVIDERS by default)")
    group.addoption("--known-failures", default=None, metavar="FILE",
                    help="TOML file of known failures (default: the suite's own known_failures.toml)")
    group.addoption("--conformance-strict", action="store_true", default=False,
                    help="exit 1 when a known failure now passes, a known-failures entry is stale, or a requested "
                         "backend is unavailable (`conformance run --strict`)")
    group.addoption("--strict-tier", action="store_true", default=False,
                    help="the strict tier: deviations (conformance.stats.severity) fail too, and the checks marked "
                         "strict_tier (limits at +-inf) run; the default tier fails on defects only")


def register_marker(config: pytest.Config, name: str, what: str) -> None:
    """Register ``name`` as a marker (once), so ``--strict-markers`` accepts adapter and device names."""
    known = config.stash[_STATE].setdefault("markers", set())
    if name and name not in known:
        known.add(name)
        config.addinivalue_line("markers", f"{name}: {what}")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a conformance check parametrized over backends")
    config.addinivalue_line("markers", "dtypes(*names): dtypes a conformance check runs in")
    config.addinivalue_line("markers", "requires(*capabilities): backend capabilities the check needs")
    config.addinivalue_line("markers", "strict_tier: a stricter-tier check, run only with --strict-tier")
    _COLLECTED.clear()
    _SETUP_SECONDS.clear()
    state: dict = {"checks": 0, "records": [], "started": time.time(), "requested": [], "unavailable": {},
                   "specs": None, "left_out": [], "active": False, "header_shown": False}
    config.stash[_STATE] = state
    if not config.pluginmanager.has_plugin("conformance-deviations"):
        config.pluginmanager.register(_DeviationsPassKnownFailures(), "conformance-deviations")
    for name in FRAMEWORK_MARKERS:
        register_marker(config, name, f"checks run on the {name} framework")
    for name in DEVICE_MARKERS:
        register_marker(config, name, f"checks run on a {name} device")
    for name in _entry_point_names():  # names only: no adapter module is imported here
        register_marker(config, name, f"checks run on the {name} adapter")
    profile = _option(config, "hypothesis_profile")
    if profile:  # our profiles must exist before hypothesis's own plugin loads the one asked for
        from .areas.activations.hypothesis_profiles import register

        register()
    state["requested"] = list(config.getoption("backend") or [])
    report_dir = config.getoption("report_dir")
    if report_dir is not None and not hasattr(config, "workerinput"):
        from .harness.files import ReportDirError, prepare_report_dir

        try:
            state["report_dir"] = prepare_report_dir(report_dir)
        except ReportDirError as exc:
            raise pytest.UsageError(str(exc)) from None
        _stage_junit(config, state)
    if state["requested"] or config.getoption("adapters"):
        activate(config)


def _stage_junit(config: pytest.Config, state: dict) -> None:
    """Point pytest's ``--junitxml`` at a staging file beside its final name (moved into place at the end of a run
    that selected checks, see :func:`_finish_junit`), so a run that selects nothing leaves the old file as it was."""
    xmlpath = getattr(config.option, "xmlpath", None)
    if not xmlpath:
        return
    final = Path(os.path.expanduser(xmlpath)).absolute()
    staged = final.with_name(f".{final.name}.{os.getpid()}.partial")
    config.option.xmlpath = str(staged)
    state["junit"] = (final, staged)


def _option(config: pytest.Config, name: str):
    try:
        return config.getoption(name)
    except ValueError:  # the option belongs to a plugin that is not installed
        return None


def _entry_point_names() -> list[str]:
    import importlib.metadata

    return sorted({ep.name for ep in importlib.metadata.entry_points(group="conformance.backends")})


def activate(config: pytest.Config) -> dict:
    """Make this a conformance run (once): register ``--adapters`` modules, validate ``--backend`` specs, load the
    known failures. Raises :class:`pytest.UsageError` with the reason for a bad spec or file."""
    state = _state(config)
    if state["active"]:
        return state
    state["active"] = True
    from . import known_failures as kf
    from .backends import registry
    from .backends.base import ConformanceError
    from .seeding import DEFAULT_MASTER_SEED

    for module in config.getoption("adapters") or []:
        try:
            registry.load_adapter_module(module)
        except ConformanceError as exc:
            raise pytest.UsageError(str(exc)) from exc
    for provider in registry.providers().values():
        register_marker(config, provider.framework, f"checks run on the {provider.framework} adapter")
        for device in provider.devices:
            register_marker(config, device, f"checks run on a {device} device")
    for spec in state["requested"]:
        try:
            availability = registry.probe(spec)
        except ConformanceError as exc:
            raise pytest.UsageError(str(exc)) from exc
        if not availability.available:
            state["unavailable"][spec] = availability.reason
    state["filtered"] = bool(config.getoption("keyword") or config.getoption("markexpr"))
    state["strict"] = bool(_option(config, "conformance_strict"))
    state["seed"] = config.getoption("conformance_seed")
    if state["seed"] is None:
        state["seed"] = DEFAULT_MASTER_SEED
    path = config.getoption("known_failures")
    try:
        state["known"] = kf.load(Path(path) if path else kf.DEFAULT_PATH)
    except kf.KnownFailuresError as exc:
        raise pytest.UsageError(str(exc)) from exc
    return state


def _specs(config: pytest.Config) -> list[str]:
    """The backend specs of this run (computed once): ``--backend`` as given, else every available one except the
    reference adapters (:attr:`conformance.backends.base.Provider.reference`) unless ``--with-reference``; those
    left out are in ``state["left_out"]`` (the header says so)."""
    state = activate(config)
    if state["specs"] is None:
        from .backends import registry

        if state["requested"]:
            specs = list(dict.fromkeys(state["requested"]))
        else:
            specs = []
            providers = registry.providers()
            with_reference = bool(_option(config, "with_reference"))
            for info in registry.describe():
                provider = providers.get(info.spec.split(":", 1)[0])
                if info.available and getattr(provider, "reference", False) and not with_reference:
                    state["left_out"].append(info.spec)
                elif info.available:
                    specs.append(info.spec)
                elif not info.spec.endswith(":*"):
                    state["unavailable"].setdefault(info.spec, info.reason)
        state["specs"] = specs
    return state["specs"]


def _state(config: pytest.Config) -> dict:
    return config.stash[_STATE]


def _is_check(definition) -> bool:
    module = getattr(definition, "module", None)
    in_suite = module is not None and module.__name__.startswith("conformance.suite")
    return in_suite or definition.get_closest_marker("conformance") is not None


def _marks_for(config: pytest.Config, spec: str) -> list:
    framework, _, device = spec.partition(":")
    marks = []
    for name in (framework, device):
        if name and _MARKER_NAME.match(name):
            register_marker(config, name, f"checks run on {name}")
            marks.append(getattr(pytest.mark, name))
    return marks


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames or not _is_check(metafunc.definition):
        return
    config = metafunc.config
    specs = _specs(config)
    if "dtype" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("dtypes")
        dtypes = marker.args if marker else FLOAT_DTYPES
        params = [pytest.param(s, d, id=f"{s}-{d}", marks=_marks_for(config, s)) for s in specs for d in dtypes]
        metafunc.parametrize(("backend", "dtype"), params, indirect=True)
    else:
        params = [pytest.param(s, id=s, marks=_marks_for(config, s)) for s in specs]
        metafunc.parametrize("backend", params, indirect=True)


def check_id_of(item: pytest.Item) -> str:
    """``area/test_name[case]``: the node name without backend and dtype, stable across machines."""
    module = item.module.__name__.rsplit(".", 1)[-1].removeprefix("test_") if hasattr(item, "module") else "?"
    callspec = getattr(item, "callspec", None)
    name = getattr(item, "originalname", item.name)
    case = item.name[len(name):].strip("[]")
    if callspec is not None:
        prefix = callspec.params.get("backend", "")
        dtype = callspec.params.get("dtype")
        for part in (prefix, dtype):
            if part and (case == part or case.startswith(f"{part}-")):
                case = case[len(part):].lstrip("-")
    return f"{module}/{name}" + (f"[{case}]" if case else "")


def repro_command(item: pytest.Item, spec: str, seed: int) -> str:
    """A command that reruns this one check as it ran here, ready to paste: the backend, the master seed, the
    check's node name, and ``--adapters``, ``--known-failures`` and ``--strict-tier`` when the run used them."""
    config = item.config
    parts = ["conformance", "run", f"--backend={spec}", f"--seed={seed}"]
    parts += [f"--adapters={module}" for module in config.getoption("adapters") or []]
    known = config.getoption("known_failures")
    if known:
        parts.append(f"--known-failures={Path(known).absolute()}")
    if config.getoption("strict_tier"):
        parts.append("--strict-tier")
    parts += ["-k", item.name]
    return shlex.join(parts)


@pytest.fixture
def backend(request: pytest.FixtureRequest):
    """The adapter under test; skipped with the reason when it cannot run here."""
    from .backends import registry
    from .backends.base import BackendUnavailable

    spec = request.param
    try:
        adapter = registry.resolve(spec)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    needed = [c for marker in request.node.iter_markers("requires") for c in marker.args]
    for capability in dict.fromkeys(needed):
        if capability not in adapter.capabilities:
            pytest.skip(f"{spec} does not declare capability {capability!r}")
    return adapter


@pytest.fixture
def dtype(request: pytest.FixtureRequest, backend) -> str:
    """The dtype under test; skipped when the backend does not support it."""
    name = request.param
    if name not in backend.dtypes:
        pytest.skip(f"{backend.spec} does not support {name}")
    return name


@pytest.fixture
def conformance(request: pytest.FixtureRequest, backend):
    """Seeded context of one check (see :class:`conformance.context.CheckContext`)."""
    from .backends.base import UnsupportedOperation
    from .context import CheckContext

    item = request.node
    seed = activate(request.config)["seed"]
    dtype_name = item.callspec.params.get("dtype") if hasattr(item, "callspec") else None
    ctx = CheckContext(check_id_of(item), backend.spec, dtype_name, seed, repro_command(item, backend.spec, seed),
                       item.user_properties)
    ctx.known_failure = item.stash.get(_KNOWN, None)
    ctx.strict_tier = bool(request.config.getoption("strict_tier", False))
    try:
        backend.seed(ctx.seed)
    except UnsupportedOperation:
        pass  # checks that need seeding declare @requires("seed")
    return ctx


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    ours = any(k == META_PROPERTY for k, _ in item.user_properties)  # a guest in other runs: touch nothing else
    if ours:
        from .backends.base import adapter_seconds

        start = adapter_seconds()
    try:
        return (yield)
    except Exception as exc:
        from .backends.base import UnsupportedOperation

        if isinstance(exc, UnsupportedOperation):
            pytest.skip(f"unsupported: {exc}")
        raise
    finally:
        if ours:  # the framework's share of the call, for the run's profile (conformance.report.profile)
            item.user_properties.append((TIMING_PROPERTY, {"adapter": round(adapter_seconds() - start, 6)}))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    checks = [item for item in items if "backend" in getattr(getattr(item, "callspec", None), "params", {})
              and _is_check(item)]
    if not checks:
        return
    from .seeding import derive_seed

    state = activate(config)
    known = state["known"]
    for item in checks:
        callspec = item.callspec
        state["checks"] += 1
        check = check_id_of(item)
        spec, dtype_name = callspec.params["backend"], callspec.params.get("dtype")
        strict = item.get_closest_marker("strict_tier") is not None
        if strict and not config.getoption("strict_tier"):
            item.add_marker(pytest.mark.skip(reason="stricter tier: run with --strict-tier"))
        meta = {"check": check, "backend": spec, "dtype": dtype_name, "tier": "strict" if strict else "hard",
                "seed": derive_seed(state["seed"], check, spec, dtype_name or ""),
                "repro": repro_command(item, spec, state["seed"])}
        item.user_properties.append((META_PROPERTY, meta))
        entry = known.match(check, spec, dtype_name, strict_tier=bool(config.getoption("strict_tier")))
        if entry is not None:
            meta["known_failure"] = entry.describe()  # the whole evidence goes to the report, not the terminal
        if entry is not None and entry.tests:
            item.stash[_KNOWN] = entry  # decided at run time: only the listed verdicts may fail
        elif entry is not None:
            # strict only when asked (--strict); otherwise the ini's xfail_strict decides
            kwargs = {"strict": True} if state["strict"] else {}
            item.add_marker(pytest.mark.xfail(reason=entry.headline(), **kwargs))


def header_lines(config: pytest.Config) -> list[str]:
    """The conformance header: master seed, design, and every backend's versions or reason."""
    from .backends import registry
    from .stats import design

    state = activate(config)
    lines = [f"conformance: master seed {state['seed']}; designed family-wise false-alarm rate {design.FWER:g} "
             f"(alpha {design.ALPHA:g} per test, budget {design.TEST_BUDGET} tests); n = {design.DEFAULT_N:,} "
             "per distribution check"]
    for spec in _specs(config):
        if spec in state["unavailable"]:
            continue
        try:
            versions = registry.resolve(spec).versions()
            lines.append(f"  backend {spec}: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        except Exception as exc:  # noqa: BLE001 - the header must not crash the run
            lines.append(f"  backend {spec}: cannot start: {exc}")
    for spec, reason in state["unavailable"].items():
        lines.append(f"  backend {spec}: UNAVAILABLE - {reason}")
    for spec in state["left_out"]:
        lines.append(f"  backend {spec}: not run - the suite's reference adapter (--with-reference or --backend "
                     f"{spec} runs it)")
    return lines


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = _state(config)
    if not state["requested"]:
        return []  # written after collection, and only if conformance checks were collected
    state["header_shown"] = True
    return header_lines(config)


def pytest_collection_finish(session: pytest.Session) -> None:
    state = _state(session.config)
    if state["header_shown"] or not state["checks"]:
        return
    state["header_shown"] = True
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in header_lines(session.config):
            reporter.write_line(line)


ERROR_PROPERTY = "conformance_error"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Readable failures of conformance checks: a failed check's report is its verdict block (verdicts, seed, repro:
    no traceback of our own frames); a check that raises one of our errors (a golden file, a checkpoint, an adapter
    contract) shows the error's text; any other exception keeps its traceback, and its text is recorded."""
    report = yield
    if call.excinfo is None or not report.failed or not any(k == META_PROPERTY for k, _ in item.user_properties):
        return report
    exc = call.excinfo.value
    from .context import CheckFailed

    text = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}".rstrip(": ")
    report.user_properties.append((ERROR_PROPERTY, text))
    if isinstance(exc, CheckFailed) or _is_ours(exc):
        meta = next(v for k, v in item.user_properties if k == META_PROPERTY)
        if not isinstance(exc, CheckFailed):
            text = (f"{meta['check']} on {meta['backend']} {meta['dtype'] or ''}".rstrip()
                    + f" ({report.when}): {text}\n  seed {meta['seed']}; repro: {meta['repro']}")
        report.longrepr = text
    return report


class _DeviationsPassKnownFailures:
    """In the default tier a known failure whose check failed only with deviations is ``passed`` (its record carries
    ``severity = "deviation"`` and the entry), not ``xpassed``: the deviation the entry documents is still there.
    Registered by :func:`pytest_configure` as its own plugin, an outer wrapper of pytest's xfail handling."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        if (report.when == "call" and report.passed and hasattr(report, "wasxfail")
                and not item.config.getoption("strict_tier", False)):
            failing = [v for k, vs in item.user_properties if k == USER_PROPERTY for v in vs if not v["passed"]]
            if failing and all(v.get("severity") == "deviation" for v in failing):
                del report.wasxfail
        return report


def _is_ours(exc: BaseException) -> bool:
    """Errors the suite raises with a message meant for people (golden files, checkpoints, adapter contracts)."""
    return any(cls.__module__.startswith("conformance.") and cls.__name__.endswith(("Error", "Unavailable",
                                                                                     "Corrupt", "Checkpoint"))
               for cls in type(exc).__mro__ if cls not in (Exception, BaseException))


def _outcome(report: pytest.TestReport) -> str | None:
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
        if report.failed and str(report.longrepr).startswith("[XPASS(strict)]"):
            return "xpassed"  # a known failure that passed under --strict or xfail_strict: failed the run, said so
        return report.outcome
    if report.skipped:
        return "xfailed" if hasattr(report, "wasxfail") else "skipped"
    if report.failed:
        return "error"
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    meta = next((v for k, v in report.user_properties if k == META_PROPERTY), None)
    if meta is None:
        return
    if report.when == "setup":
        _SETUP_SECONDS[report.nodeid] = report.duration
    outcome = _outcome(report)
    if outcome is None:
        return
    adapter = next((v["adapter"] for k, v in report.user_properties if k == TIMING_PROPERTY), 0.0)
    timing = {"setup": round(_SETUP_SECONDS.pop(report.nodeid, 0.0), 6),
              "call": round(report.duration, 6) if report.when == "call" else 0.0, "adapter": adapter}
    verdicts = [v for k, vs in report.user_properties if k == USER_PROPERTY for v in vs]
    attachments = {name: data for k, d in report.user_properties if k == ATTACHMENT_PROPERTY
                   for name, data in d.items()}
    error = next((v for k, v in report.user_properties if k == ERROR_PROPERTY), "")
    known = meta.get("known_failure", "") if outcome in ("xfailed", "xpassed") else ""
    _COLLECTED.append({**meta, "nodeid": report.nodeid, "outcome": outcome, "when": report.when,
                       "duration": report.duration, "verdicts": verdicts, "longrepr": _short_repr(report),
                       "error": _scrub(error),
                       "known_failure": known or getattr(report, "wasxfail", "") or "", "attachments": attachments,
                       "timing": timing})


_COLLECTED: list[dict] = []
#: Setup seconds of checks whose record is still to come (from the call or teardown report).
_SETUP_SECONDS: dict[str, float] = {}


def _short_repr(report: pytest.TestReport) -> str:
    if report.passed:
        return ""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = getattr(report, "longreprtext", "") or str(report.longrepr or "")
    return _scrub(text)[-4000:]


def _scrub(text: str) -> str:
    """Object reprs carry memory addresses: scrubbed so that two runs with one seed write equal files."""
    return re.sub(r" at 0x[0-9a-fA-F]+>", " at 0x...>", text)


def run_status(session: pytest.Session, exitstatus: int) -> tuple[str, str]:
    """``(status, why)`` of a finished run: ``empty`` when no check was selected, ``interrupted`` when it stopped
    early (Ctrl-C or SIGTERM, ``-x``/``--maxfail``, errors during collection), else ``complete``."""
    stopped = session.shouldfail or session.shouldstop
    if int(exitstatus) == int(pytest.ExitCode.INTERRUPTED) or stopped:
        why = stopped if isinstance(stopped, str) else "Ctrl-C, SIGINT or SIGTERM"
        return "interrupted", why
    if not _COLLECTED:
        return "empty", "no check was selected"
    return "complete", ""


def _is_conformance_run(config: pytest.Config) -> bool:
    state = _state(config)
    return bool(state["checks"] or _COLLECTED or state["requested"])


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Build the results (once, on the controller), write them unless the run was empty, and apply ``--strict``."""
    config = session.config
    state = _state(config)
    if hasattr(config, "workerinput") or not _is_conformance_run(config):
        _finish_junit(config, state, "none")
        return
    from .results import build_results

    _specs(config)
    status, why = run_status(session, exitstatus)
    results = build_results(_COLLECTED, state, config, status=status, interrupted=why)
    state["results"] = results
    state["written"] = []
    if status != "empty" and state.get("report_dir") is not None:
        from .results_files import write_results

        state["written"] = write_results(results, state["report_dir"])
    _finish_junit(config, state, status, results)
    if state["strict"] and results["strict"]["violations"] and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _write_ranking(tr, results: dict) -> None:
    """What to fix first: per backend its defects ranked by effect (one line each), then its deviations counted by
    kind (:mod:`conformance.report.triage`)."""
    from .report import triage

    ranked, grouped = triage.defects(results["records"]), triage.deviations(results["records"])
    s = results["summary"]
    strict = results.get("tier") == "strict"
    tr.write_line(f"severity: {s.get('defects', 0)} defects, {s.get('deviations', 0)} deviations"
                  + ("" if strict else " (deviations fail only with --strict-tier)"))
    for spec in sorted(set(ranked) | set(grouped)):
        records = ranked.get(spec, [])
        tr.write_line(f"{spec}: {len(records)} defects" + (", ranked by effect:" if records else ""), bold=True)
        for rec in records:
            tr.write_line(f"  DEFECT {triage.defect_line(rec)}"[:400], red=rec["outcome"] != "xfailed",
                          yellow=rec["outcome"] == "xfailed")
        if spec in grouped:
            tr.write_line("  deviations: " + ", ".join(f"{kind} x{count}" for kind, count in grouped[spec]))


def _finish_junit(config: pytest.Config, state: dict, status: str, results: dict | None = None) -> None:
    """Move the staged junit file into place (marked when the run was interrupted or broke ``--strict``), or drop it
    when the run selected nothing, so the previous file stays."""
    staged_pair = state.pop("junit", None)
    if staged_pair is None:
        return
    final, staged = staged_pair
    if not staged.exists():
        return
    if status == "empty":
        staged.unlink()
        xml = _junit_plugin(config)
        if xml is not None and hasattr(xml, "logfile"):  # its "generated xml file" line says what happened
            xml.logfile = f"none: no check was selected, {final} left as it was"
        return
    if status == "none":  # not a conformance run: pytest's file, untouched
        os.replace(staged, final)
    else:
        from .harness.junit import mark_junit

        notes = []
        if status == "interrupted":
            notes.append(("interrupted", f"run interrupted: {results['interrupted']}; the results are partial"))
        if results["strict"]["enabled"]:
            notes += [("strict", v) for v in results["strict"]["violations"]]
        mark_junit(staged, final, status, notes)
    xml = _junit_plugin(config)
    if xml is not None and hasattr(xml, "logfile"):
        xml.logfile = str(final)  # "generated xml file: ..." names the file that exists


def _junit_plugin(config: pytest.Config):
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pytest moved it: the summary line names the staging file, nothing else changes
        return None
    return config.stash.get(xml_key, None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config):
    """The conformance summary, after pytest's own sections (it wraps them): status first, counts, the failing
    checks (one line and a repro each; their blocks are above), known failures counted, ``--strict`` violations."""
    result = yield
    state = _state(config)
    results = state.get("results")
    if results is None:
        return result
    from .stats import design

    tr = terminalreporter
    s = results["summary"]
    counts = (f"{s['passed']} passed, {s['failed']} failed, {s['error']} errors, {s['skipped']} skipped, "
              f"{s['xfailed']} known failures, {s['xpassed']} known failures now passing")
    status = results["status"]
    if status == "interrupted":
        title, colour = f"conformance: INTERRUPTED - partial results ({results['interrupted']}): {counts}", "red"
    elif status == "empty":
        title, colour = "conformance: EMPTY - no check was selected; previous reports left as they were", "yellow"
    else:
        bad = s["failed"] + s["error"] or (state["strict"] and results["strict"]["violations"])
        title, colour = f"conformance: {'FAILED' if bad else 'PASSED'} - complete run: {counts}", \
            "red" if bad else "green"
    tr.section("conformance summary")
    tr.write_line(title, **{colour: True, "bold": True})
    tr.write_line(f"statistical tests: {s['statistical_tests']} at alpha {design.ALPHA:g} each -> family-wise "
                  f"false-alarm bound {s['fwer_bound']:.2g} (designed {design.FWER:g})")
    if s["statistical_tests"] > design.TEST_BUDGET:
        tr.write_line(f"WARNING: {s['statistical_tests']} tests exceed the budget of {design.TEST_BUDGET}", red=True)
    for spec, reason in state["unavailable"].items():
        tr.write_line(f"backend {spec} SKIPPED: {reason}", yellow=True)
    if s["xfailed"]:
        tr.write_line(f"{s['xfailed']} known failures (expected; their evidence is in the report and "
                      f"{Path(state['known'].source).name})")
    for stale in results.get("stale_known_failures", []):
        tr.write_line(f"stale known-failure entry: {stale}", yellow=True)
    for rec in results["records"]:
        if rec["outcome"] in ("failed", "error"):
            tr.write_line(f"FAILED {rec['id']} [{rec['backend']} {rec['dtype'] or ''}] {rec['message']}".replace(
                " ]", "]"), red=True)
            tr.write_line(f"    repro: {rec['repro']}")
    _write_ranking(tr, results)
    strict = results["strict"]
    if strict["enabled"]:
        for line in strict["violations"]:
            tr.write_line(f"STRICT: {line}", red=True)
        tr.write_line(f"--strict: {len(strict['violations'])} violations" if strict["violations"]
                      else "--strict: no violations", red=bool(strict["violations"]))
    elif strict["violations"]:
        tr.write_line(f"({len(strict['violations'])} findings would fail --strict)", yellow=True)
    if state.get("written"):
        tr.write_line("reports: " + ", ".join(str(p) for p in state["written"]))
    return result
