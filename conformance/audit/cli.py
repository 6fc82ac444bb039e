"""``conformance audit FACTORY --spec NAME_OR_FILE``: audit a model's init against a spec.

Exit codes: 0 every audited backend passed; 1 at least one failure; 4 bad input (a factory that does not
import or raises, a spec with an error, a malformed --config); 5 no requested backend could run.
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
    p.add_argument("factory", help="package.module:callable returning the model, e.g. "
                                    "conformance.backends.torch.models:llama")
    p.add_argument("--spec", required=True, help="built-in spec name or a TOML file")
    p.add_argument("--backend", action="append", default=[], metavar="SPEC", help="backend (repeatable; torch:cpu)")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the factory (repeatable; ints, floats, true/false, strings)")
    p.add_argument("--device-init", choices=("eager", "meta", "both"), default="eager",
                   help="build on the device, or on the meta device + to_empty + init (default %(default)s)")
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
    from .engine import audit
    from .factory import FactoryError, parse_config, resolve
    from .spec import SpecError, load

    for module in args.adapters:
        registry.load_adapter_module(module)
    try:
        config = parse_config(args.config)
        spec = load(args.spec)
        factory = resolve(args.factory)
    except (FactoryError, SpecError) as exc:
        print(f"conformance audit: error: {_one_line(exc)}", file=sys.stderr)
        return 4
    backends = args.backend or ["torch:cpu"]
    modes = ("eager", "meta") if args.device_init == "both" else (args.device_init,)
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
