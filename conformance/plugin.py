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
"""

from __future__ import annotations

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
_KNOWN = pytest.StashKey[object]()
#: Same names as ``conformance.context``'s (kept literal so the plugin does not import it before it is needed;
#: tests/test_good_citizen.py checks they agree).
USER_PROPERTY = "conformance_verdicts"
ATTACHMENT_PROPERTY = "conformance_attachment"
_MARKER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "deep-learning backend conformance")
    group.addoption("--backend", action="append", default=[], metavar="SPEC",
                    help="backend to check, e.g. torch:cpu (repeatable; default: every available backend)")
    group.addoption("--conformance-seed", type=int, default=None, metavar="N",
                    help="master seed of the run (default 20251123)")
    group.addoption("--report-dir", default=None, metavar="DIR",
                    help="write DIR/results.json, DIR/junit-style summary and DIR/index.html")
    group.addoption("--adapters", action="append", default=[], metavar="MODULE[:ATTR]",
                    help="import MODULE and register its backend providers (attribute PROVIDERS by default)")
    group.addoption("--known-failures", default=None, metavar="FILE",
                    help="TOML file of known failures (default: the suite's own known_failures.toml)")
    group.addoption("--strict-tier", action="store_true", default=False,
                    help="also run the stricter tier (checks marked strict_tier, e.g. limits at +-inf); "
                         "reported separately from the hard requirements")


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
    state: dict = {"checks": 0, "records": [], "started": time.time(), "requested": [], "unavailable": {},
                   "specs": None, "active": False, "header_shown": False}
    config.stash[_STATE] = state
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
    if state["requested"] or config.getoption("adapters"):
        activate(config)


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
    """The backend specs of this run (computed once): ``--backend`` as given, else every available one."""
    state = activate(config)
    if state["specs"] is None:
        from .backends import registry

        if state["requested"]:
            specs = list(dict.fromkeys(state["requested"]))
        else:
            specs = []
            for info in registry.describe():
                if info.available:
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
    return (f"conformance run --backend {spec} --seed {seed} -k {shlex.quote(item.name)}")


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
    try:
        backend.seed(ctx.seed)
    except UnsupportedOperation:
        pass  # checks that need seeding declare @requires("seed")
    return ctx


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        return (yield)
    except Exception as exc:
        from .backends.base import UnsupportedOperation

        if isinstance(exc, UnsupportedOperation):
            pytest.skip(f"unsupported: {exc}")
        raise


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
        entry = known.match(check, spec, dtype_name)
        if entry is not None and entry.tests:
            item.stash[_KNOWN] = entry  # decided at run time: only the listed verdicts may fail
        elif entry is not None:
            item.add_marker(pytest.mark.xfail(reason=entry.describe(), strict=False))


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


def _outcome(report: pytest.TestReport) -> str | None:
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
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
    outcome = _outcome(report)
    if outcome is None:
        return
    verdicts = [v for k, vs in report.user_properties if k == USER_PROPERTY for v in vs]
    attachments = {name: data for k, d in report.user_properties if k == ATTACHMENT_PROPERTY
                   for name, data in d.items()}
    _COLLECTED.append({**meta, "nodeid": report.nodeid, "outcome": outcome, "when": report.when,
                       "duration": report.duration, "verdicts": verdicts, "longrepr": _short_repr(report),
                       "known_failure": getattr(report, "wasxfail", "") or "", "attachments": attachments})


_COLLECTED: list[dict] = []


def _short_repr(report: pytest.TestReport) -> str:
    if report.passed:
        return ""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = getattr(report, "longreprtext", "") or str(report.longrepr or "")
    # object reprs in tracebacks carry memory addresses: scrubbed so that two runs with one seed write equal files
    return re.sub(r" at 0x[0-9a-fA-F]+>", " at 0x...>", text)[-4000:]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if not state["checks"] and not _COLLECTED and not state["requested"]:
        return  # not a conformance run: stay silent
    from .results import build_results
    from .stats import design

    _specs(config)
    results = build_results(_COLLECTED, state, config)
    state["results"] = results
    tr = terminalreporter
    tr.section("conformance summary")
    s = results["summary"]
    tr.write_line(f"checks: {s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped, "
                  f"{s['xfailed']} known failures, {s['xpassed']} known failures now passing, {s['error']} errors")
    tr.write_line(f"statistical tests: {s['statistical_tests']} at alpha {design.ALPHA:g} each -> family-wise "
                  f"false-alarm bound {s['fwer_bound']:.2g} (designed {design.FWER:g})")
    if s["statistical_tests"] > design.TEST_BUDGET:
        tr.write_line(f"WARNING: {s['statistical_tests']} tests exceed the budget of {design.TEST_BUDGET}", red=True)
    for spec, reason in state["unavailable"].items():
        tr.write_line(f"backend {spec} SKIPPED: {reason}", yellow=True)
    for stale in results.get("stale_known_failures", []):
        tr.write_line(f"known-failure entry matched nothing or now passes: {stale}", yellow=True)
    for rec in results["records"]:
        if rec["outcome"] in ("failed", "error"):
            tr.write_line(f"FAILED {rec['id']} [{rec['backend']} {rec['dtype'] or ''}] {rec['message']}", red=True)
            tr.write_line(f"    repro: {rec['repro']}")
    report_dir = config.getoption("report_dir")
    if report_dir:
        from .results import write_results

        paths = write_results(results, Path(report_dir))
        tr.write_line("reports: " + ", ".join(str(p) for p in paths))
