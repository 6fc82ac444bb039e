"""Model init audit: does every parameter of a built model follow its declared init spec?

Python API::

    from conformance.audit import audit, assert_init_matches, InitSpec, Rule, load_spec
    report = audit("conformance.backends.torch.models:llama", "torchtitan_llama3", device_init="meta")
    assert report.passed, "\\n".join(report.failures())
    assert_init_matches(my_factory, spec="gpt2", config={"n_layer": 4})      # in a user's own test suite

Specs are TOML files (see :mod:`conformance.audit.spec` for the format) or built from Python with
:meth:`InitSpec.make` / :meth:`Rule.make`. The CLI is ``conformance audit`` (:mod:`conformance.audit.cli`).
"""

from __future__ import annotations

from .engine import AuditError, AuditReport, DepthFit, TensorResult, audit, audit_snapshot
from .factory import FactoryError
from .formula import FormulaError
from .spec import InitSpec, Rule, SpecError, builtin_names
from .spec import load as load_spec
from .spec import loads as loads_spec

__all__ = [
    "AuditError", "AuditReport", "DepthFit", "FactoryError", "FormulaError", "InitSpec", "Rule", "SpecError",
    "TensorResult", "assert_init_matches", "audit", "audit_snapshot", "builtin_names", "load_spec", "loads_spec",
]


class InitMismatch(AssertionError):
    """Raised by :func:`assert_init_matches`; the message lists every failing parameter with rule and numbers."""


def assert_init_matches(model_or_factory, spec="gpt2", *, backend: str = "torch:cpu", device_init: str = "eager",
                        init: str = "auto", config: dict | None = None, seed: int | None = 0,
                        dtype: str = "float32", **kwargs) -> AuditReport:
    """Audit and raise :class:`InitMismatch` (an ``AssertionError``) naming every failing parameter.

    ``model_or_factory``: a built model, a callable returning one, or ``"package.module:callable"``;
    ``config`` (or extra keyword arguments) go to the factory. Returns the report when everything passed.
    """
    report = audit(model_or_factory, spec, backend=backend, device_init=device_init, init=init,
                   config={**(config or {}), **kwargs}, seed=seed, dtype=dtype)
    if not report.passed:
        lines = [f"init audit of {report.factory} against spec {report.spec!r} ({report.spec_origin}) on "
                 f"{report.backend}, {report.device_init} init ({report.init_method}): "
                 f"{len(report.failures())} failure(s)"]
        lines += [f"  - {m}" for m in report.failures()]
        raise InitMismatch("\n".join(lines))
    return report
