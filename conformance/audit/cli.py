"""``conformance audit FACTORY --spec NAME_OR_FILE``, ``conformance audit ZOO_NAME``, ``conformance audit --list``.

``FACTORY`` is ``package.module:callable``; ``ZOO_NAME`` one of the built-in real-library factories
(:mod:`conformance.audit.zoo`), audited in every build mode its library supports with its code spec and, where the
library states a different intent, its intent spec too (``--spec`` overrides the code spec).

Exit codes: 0 every audited backend passed the code spec (an intent spec that fails is printed as a FINDING about
the library and does not change the exit code); 1 at least one failure of the code spec; 4 bad input (a factory that
does not import or raises, an unknown zoo name, a spec with an error, a malformed --config); 5 nothing could run (no
requested backend, or the zoo factory's library is missing: the reason is printed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "audit", help="audit a model's parameter init against an init spec",
        description="Build FACTORY(**config) on each backend (package.module:callable), check every parameter and "
                    "buffer against the init spec, print a per-parameter table and write REPORT_DIR/audit.json "
                    "(and audit_depth.png with matplotlib). Built-in specs: " + _builtins() + ".")
    p.add_argument("factory", nargs="?", help="package.module:callable returning the model, e.g. "
                   "conformance.backends.torch.models:llama, or a zoo name (see --list), e.g. hf-llama")
    p.add_argument("--spec", help="built-in spec name or a TOML file (required for package.module:callable; a zoo "
                   "name has its own)")
    p.add_argument("--list", action="store_true", help="list the built-in real-library factories (library, installed "
                   "version, default specs) and exit")
    p.add_argument("--probe", action="store_true", help="with --list: import each library to show broken installs "
                   "(slower)")
    p.add_argument("--backend", action="append", default=[], metavar="SPEC", help="backend (repeatable; torch:cpu)")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the factory (repeatable; ints, floats, true/false, strings)")
    p.add_argument("--device-init", choices=("eager", "meta", "both"), default=None,
                   help="build on the device, or on the meta device + to_empty + init (default eager; a zoo name: "
                        "every mode its library supports)")
    p.add_argument("--init-method", default="auto",
                   help="model method run after construction: auto, init_weights, reset_parameters, none, ...")
    p.add_argument("--dtype", default="float32", help="dtype of the model (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed before building (default %(default)s)")
    p.add_argument("--report-dir", default=None, help="write audit.json (and audit_depth.png) here")
    p.add_argument("--adapters", action="append", default=[], metavar="MODULE[:ATTR]")
    p.add_argument("--failing-only", action="store_true", help="print only failing rows of the table")
    p.set_defaults(func=run)


def _builtins() -> str:
    from .spec import builtin_names

    try:
        return ", ".join(builtin_names())
    except Exception:  # noqa: BLE001 - help text only
        return "see conformance/audit/specs"


def _one_line(exc: Exception) -> str:
    """The message of ``exc`` on one line, whatever a user-supplied name in it contained."""
    return " ".join(str(exc).splitlines()) or type(exc).__name__


def run(args: argparse.Namespace) -> int:
    from conformance.backends import registry
    from conformance.backends.base import BackendUnavailable, UnknownBackendError, UnsupportedOperation

    from . import report as rep
    from . import zoo
    from .engine import audit
    from .factory import FactoryError, parse_config, resolve
    from .spec import SpecError, load

    if args.list:
        from .zoo.listing import listing

        print(listing(probe=args.probe))
        return 0
    if not args.factory:
        print("conformance audit: error: give a FACTORY (package.module:callable with --spec, or a zoo name) or "
              "--list", file=sys.stderr)
        return 4
    for module in args.adapters:
        registry.load_adapter_module(module)
    if zoo.is_name(args.factory):
        return _run_zoo(args)
    if not args.spec:
        print(f"conformance audit: error: {args.factory} needs --spec NAME_OR_FILE (built-in: {_builtins()})",
              file=sys.stderr)
        return 4
    try:
        config = parse_config(args.config)
        spec = load(args.spec)
        factory = resolve(args.factory)
    except (FactoryError, SpecError) as exc:
        print(f"conformance audit: error: {_one_line(exc)}", file=sys.stderr)
        return 4
    backends = args.backend or ["torch:cpu"]
    device_init = args.device_init or "eager"
    modes = ("eager", "meta") if device_init == "both" else (device_init,)
    reports, skipped = [], {}
    for spec_name in backends:
        try:
            backend = registry.resolve(spec_name)
        except UnknownBackendError as exc:
            print(f"conformance audit: error: {_one_line(exc)}", file=sys.stderr)
            return 4
        except BackendUnavailable as exc:
            skipped[spec_name] = str(exc)
            print(f"backend {spec_name} SKIPPED: {exc}")
            continue
        for mode in modes:
            try:
                report = audit(factory, spec, device_init=mode, init=args.init_method, config=config,
                               seed=args.seed, dtype=args.dtype, adapter=backend)
            except UnsupportedOperation as exc:
                skipped[f"{spec_name} {mode}"] = str(exc)
                print(f"backend {spec_name} ({mode}) SKIPPED: {exc}")
                continue
            except (FactoryError, SpecError) as exc:
                print(f"conformance audit: error: {_one_line(exc)}", file=sys.stderr)
                return 4
            report.factory = args.factory
            reports.append(report)
            print(rep.table(report, failing_only=args.failing_only))
            print()
    if args.report_dir:
        out = Path(args.report_dir)
        path = rep.write_json(reports, out / "audit.json", skipped)
        png = rep.plot_depth(reports, out / "audit_depth.png")
        print(f"wrote {path}" + (f" and {png}" if png else " (no depth plot: matplotlib missing or no depth data)"))
    if not reports:
        return 5
    return 0 if all(r.passed for r in reports) else 1


def _run_zoo(args: argparse.Namespace) -> int:
    """``conformance audit ZOO_NAME``: the factory in each of its modes, by its code spec and its intent spec."""
    import dataclasses

    from . import report as rep
    from . import zoo
    from .factory import FactoryError, parse_config
    from .spec import SpecError, load
    from .zoo.runner import run_entry

    try:
        entry = zoo.get(args.factory)
        overrides = parse_config(args.config)
        if args.spec:
            load(args.spec)
    except (zoo.ZooError, FactoryError, SpecError) as exc:
        print(f"conformance audit: error: {_one_line(exc)}", file=sys.stderr)
        return 4
    if overrides or args.spec:
        entry = dataclasses.replace(entry, config={**entry.config, **overrides}, spec=args.spec or entry.spec)
    if args.device_init in (None, "both"):
        modes = entry.device_init
    else:
        modes = (args.device_init,)
    if args.init_method != "auto" or args.dtype != "float32" or len(args.backend) > 1:
        print("conformance audit: error: a zoo factory is built its library's way on one backend in float32; "
              "--init-method, --dtype and a second --backend apply to package.module:callable factories only",
              file=sys.stderr)
        return 4
    print(f"{entry.name}: {entry.summary} [{entry.library}]")
    run = run_entry(entry, backend=(args.backend or ["torch:cpu"])[0], modes=modes, seed=args.seed,
                    progress=print)
    if run.status == "unavailable":
        print(f"{entry.name} SKIPPED: {run.reason}")
        return 5
    if run.status == "error":
        print(f"conformance audit: error: {_one_line(Exception(run.reason))}", file=sys.stderr)
        return 4
    for report in run.reports:
        print(rep.table(report, failing_only=args.failing_only))
        print()
    verdicts = {"pass": "PASS: matches its code spec" + (" and its intent spec" if entry.intent else ""),
                "finding": f"FINDING: matches the code spec {entry.spec} but not the intent spec {entry.intent} "
                           "(the library does not do what it says it intends; see the intent rows above)",
                "fail": f"FAIL: does not match the code spec {entry.spec} (the library changed since the spec was "
                        "read from its code, or the spec is wrong: see the sources it cites)"}
    print(f"{entry.name} ({entry.library} {run.version}): {verdicts[run.status]} [{run.seconds:.1f} s]")
    if args.report_dir:
        from pathlib import Path

        out = Path(args.report_dir)
        path = rep.write_json(run.reports, out / "audit.json", {})
        print(f"wrote {path}")
    return 1 if run.status == "fail" else 0
