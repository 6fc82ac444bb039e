"""Named initializers across frameworks: does "he_normal" draw what He et al. define, and what the docs say?

For each canonical scheme (:data:`conformance.specs.named_schemes.CANONICAL`) and each weight kind (a non-square
dense layer, a convolution), every initializer of the framework under test that carries that name
(:data:`~conformance.specs.named_schemes.ENTRIES`) is called with its default arguments through
:meth:`conformance.backends.base.Backend.named_init`, n = 1e6 values are drawn, and the *same* draw is compared twice:

* ``docs:*`` verdicts against the framework's documented law (quoted, with its source) -- a failure here is a
  failure of the framework;
* ``canonical:*`` verdicts against the paper's definition. Where the framework's docs declare a different
  convention (e.g. JAX's truncated he_normal, MLX's gain of 1), the canonical verdicts are recorded with
  ``observed["convention"]`` and ``observed["canonical_passed"]`` and do not fail the check; instead the check
  requires that the declared difference is really observed (``canonical_difference``).

Each entry adds one ``named_scheme`` verdict whose ``observed["named_scheme"]`` is a row of the report's
table (family, formula, fitted std vs canonical, both verdicts): see :mod:`conformance.named_table`.
Float32 only: the question is which formula a name means; dtype behaviour is covered by ``init_schemes``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from conformance import expect
from conformance.specs import named_schemes as N
from conformance.specs.init_schemes import Expectation
from conformance.stats import Verdict

pytestmark = [pytest.mark.requires("named_init"), pytest.mark.dtypes("float32")]


def _tag(verdicts: list[Verdict], against: str, entry: N.Entry) -> list[Verdict]:
    for v in verdicts:
        v.test = f"{against}:{v.test}"
        v.observed["against"] = against
        v.observed["entry"] = entry.label
    return verdicts


def _fit(x: np.ndarray) -> dict:
    x = np.asarray(x, dtype=np.float64)
    return {"std": float(x.std()), "mean": float(x.mean()), "max_abs": float(np.abs(x).max()),
            "excess_kurtosis": float(st.kurtosis(x))}


def check_entry(backend, dtype, conformance, scheme: str, kind: str, entry: N.Entry) -> list[Verdict]:
    """Every verdict of one framework entry on one weight kind (nothing raised)."""
    shape = N.SHAPES[kind]
    fan_in, fan_out = N.fans_of(shape)
    canonical = N.CANONICAL[scheme]
    x = conformance.draw(lambda: backend.named_init(entry.call, shape, dtype, **entry.params))
    doc_rule = f"{backend.framework} {entry.label}, documented: {entry.documented.formula} ({entry.source})"
    can_rule = f"canonical {scheme}: {canonical.law.formula} ({canonical.source})"
    docs = _tag(expect.distribution(x, Expectation(entry.documented.reference(fan_in, fan_out), doc_rule), dtype,
                                    conformance.alpha), "docs", entry)
    canon = _tag(expect.distribution(x, Expectation(canonical.law.reference(fan_in, fan_out), can_rule), dtype,
                                     conformance.alpha), "canonical", entry)
    docs_ok = all(v.passed for v in docs)
    canon_ok = all(v.passed for v in canon)
    verdicts = docs + canon
    if entry.convention:
        for v in canon:
            v.observed["convention"] = entry.convention
            v.observed["canonical_passed"] = v.passed
            v.passed = True
        verdicts.append(Verdict(
            "canonical_difference", not canon_ok,
            f"{entry.label}: documented convention difference from canonical {scheme} "
            + ("observed" if not canon_ok else "declared but NOT observed (the spec's convention note is stale)")
            + f": {entry.convention}", n=x.size,
            observed={"convention": entry.convention, "canonical_passed": canon_ok}))
    fit = _fit(x)
    canonical_std = canonical.law.std(fan_in, fan_out)
    documented_std = entry.documented.std(fan_in, fan_out)
    failing = [v.test for v in docs if not v.passed]
    row = {
        "scheme": scheme, "framework": backend.framework, "backend": backend.spec, "kind": kind,
        "shape": list(shape), "fan_in": fan_in, "fan_out": fan_out, "call": entry.label,
        "family": entry.documented.family, "formula": entry.documented.formula,
        "canonical_family": canonical.law.family, "canonical_formula": canonical.law.formula,
        "documented": entry.documented.params(fan_in, fan_out), "canonical": canonical.law.params(fan_in, fan_out),
        "fitted": fit, "documented_std": documented_std, "canonical_std": canonical_std,
        "std_ratio_vs_canonical": fit["std"] / canonical_std, "std_ratio_vs_documented": fit["std"] / documented_std,
        "docs_verdict": "pass" if docs_ok else "FAIL",
        "canonical_verdict": "pass" if canon_ok else ("documented difference" if entry.convention else "FAIL"),
        "convention": entry.convention, "quote": entry.quote, "source": entry.source,
        "canonical_source": canonical.source,
    }
    ok = docs_ok and (canon_ok or bool(entry.convention))
    message = (f"{backend.framework} {entry.label} on {kind} {tuple(shape)} (fan_in {fan_in}, fan_out {fan_out}): "
               f"drew {entry.documented.family} with std {fit['std']:.6g} (canonical {canonical_std:.6g}, ratio "
               f"{row['std_ratio_vs_canonical']:.4f}; documented {documented_std:.6g}); docs {row['docs_verdict']}"
               + (f" ({', '.join(failing)})" if failing else "") + f", canonical {row['canonical_verdict']}")
    verdicts.append(Verdict("named_scheme", ok, message, n=x.size, observed={"named_scheme": row},
                            expected={"rule": f"{doc_rule}; {can_rule}"}))
    return verdicts


@pytest.mark.parametrize("kind", list(N.SHAPES))
@pytest.mark.parametrize("scheme", list(N.CANONICAL))
def test_named_scheme(backend, dtype, conformance, scheme, kind):
    """The framework's initializer(s) named ``scheme``: documented law (must hold) and canonical law (may differ
    only where the docs declare it)."""
    entries = N.entries_for(scheme, backend.framework)
    if not entries:
        pytest.skip(N.missing_reason(scheme, backend.framework))
    available = set(backend.named_schemes())
    verdicts: list[Verdict] = []
    for entry in entries:
        if entry.call not in available:
            verdicts.append(Verdict("available", False, f"{backend.spec} does not expose {entry.call}, which the "
                                    f"spec documents ({entry.source})", n=0))
            continue
        verdicts += check_entry(backend, dtype, conformance, scheme, kind, entry)
    conformance.expect(verdicts, f"named {scheme} ({kind})")
