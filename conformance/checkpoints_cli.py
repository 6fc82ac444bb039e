"""``conformance checkpoint``: check checkpoint files without running code in them.

``conformance checkpoint verify FILE... [--expect FIELD=VALUE ...]``
    One line per file: ``OK   path  (container, N tensors, model M, seed S, spec ..., torch X)`` or
    ``STATUS path: reason`` with STATUS one of CORRUPT (truncated, malformed, a tensor whose sha256 differs from the
    provenance, naming it), UNSAFE (the pickle names a global outside the weights-only allowlist, e.g. os.system;
    found statically, the file is not loaded), MISSING, NO-PROVENANCE (a plain state dict: its bytes and origin
    cannot be checked, so it does not verify), MISMATCH (a field differs from --expect), UNKNOWN FORMAT, UNCHECKED
    (a torch.save file while torch is not installed; safetensors files need neither torch nor safetensors),
    UNREADABLE. ``--expect seed=11 --expect versions.torch=2.13.0`` also requires those provenance values (VALUE is
    read as JSON when it parses, else as a string).

Exit codes: 0 every file verified, 1 at least one did not, 3 internal error, 4 usage error (no FILE, malformed
--expect).
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_OK, EXIT_INVALID, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 3, 4


def parse_expect(values: list[str] | None) -> dict:
    """``["seed=11", "versions.torch=2.13.0"]`` -> ``{"seed": 11, "versions": {"torch": "2.13.0"}}``."""
    out: dict = {}
    for item in values or []:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--expect {item!r}: expected FIELD=VALUE (e.g. seed=11, versions.torch=2.13.0)")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        field, _, lib = name.partition(".")
        if lib:
            if field != "versions":
                raise ValueError(f"--expect {item!r}: only versions.LIBRARY takes a dotted name")
            out.setdefault("versions", {})[lib] = raw
        else:
            out[field] = value
    return out


def _verify(args: argparse.Namespace) -> int:
    if not args.files:
        print("conformance checkpoint verify: error: no FILE given", file=sys.stderr)
        return EXIT_USAGE
    try:
        expect = parse_expect(args.expect)
    except ValueError as exc:
        print(f"conformance checkpoint verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from conformance.harness.checkpoint_verify import verify_file

    code = EXIT_OK
    for path in args.files:
        try:
            finding = verify_file(path, expect)
        except Exception as exc:  # noqa: BLE001 - one line per file, whatever happens
            print(f"ERROR {path}: internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            code = EXIT_INTERNAL
            continue
        print(finding.line(), flush=True)
        if not finding.ok and code == EXIT_OK:
            code = EXIT_INVALID
    return code


def register(sub) -> None:
    c = sub.add_parser("checkpoint", help="verify checkpoint files (integrity, provenance) without running code",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    csub = c.add_subparsers(dest="checkpoint_command", required=True, metavar="ACTION")
    ve = csub.add_parser("verify", help="check digests, provenance and safety of checkpoint files",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ve.add_argument("files", nargs="*", metavar="FILE", help="torch.save (.pt) or safetensors files")
    ve.add_argument("--expect", action="append", default=[], metavar="FIELD=VALUE",
                    help="provenance value the file must carry (seed=11, init=..., versions.torch=2.13.0; repeatable)")
    ve.set_defaults(func=_verify)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience: python -m conformance.checkpoints_cli
    from .cli import main as cli_main

    return cli_main(["checkpoint", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
