"""Verdicts of the named-initializer checks: one framework entry's draw against its documented law and against the
canonical (paper) law, and the report's table row for it (``conformance/suite/test_named_schemes.py``).

Every entry attaches one :class:`~conformance.report.attachments.NamedSchemeRow`; a framework without the scheme,
an entry the backend does not expose and an entry whose check raised attach a row saying so.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from conformance.areas.init_schemes import expect
from conformance.areas.init_schemes.spec import Expectation
from conformance.areas.named_schemes import spec as N
from conformance.report.attachments import NamedSchemeRow
from conformance.stats import Verdict


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
    row = NamedSchemeRow(
        scheme=scheme, weight_kind=kind, framework=backend.framework, backend=backend.spec, call=entry.label,
        family=entry.documented.family, formula=entry.documented.formula,
        canonical_family=canonical.law.family, canonical_formula=canonical.law.formula,
        shape=list(shape), fan_in=fan_in, fan_out=fan_out,
        documented=entry.documented.params(fan_in, fan_out), canonical=canonical.law.params(fan_in, fan_out),
        fitted=fit, documented_std=documented_std, canonical_std=canonical_std,
        std_ratio_vs_canonical=fit["std"] / canonical_std, std_ratio_vs_documented=fit["std"] / documented_std,
        docs_verdict="pass" if docs_ok else "FAIL",
        canonical_verdict="pass" if canon_ok else ("documented difference" if entry.convention else "FAIL"),
        convention=entry.convention, quote=entry.quote, source=entry.source, canonical_source=canonical.source,
    )
    conformance.attach(row)
    ok = docs_ok and (canon_ok or bool(entry.convention))
    message = (f"{backend.framework} {entry.label} on {kind} {tuple(shape)} (fan_in {fan_in}, fan_out {fan_out}): "
               f"drew {entry.documented.family} with std {fit['std']:.6g} (canonical {canonical_std:.6g}, ratio "
               f"{row.std_ratio_vs_canonical:.4f}; documented {documented_std:.6g}); docs {row.docs_verdict}"
               + (f" ({', '.join(failing)})" if failing else "") + f", canonical {row.canonical_verdict}")
    verdicts.append(Verdict("named_scheme", ok, message, n=x.size, expected={"rule": f"{doc_rule}; {can_rule}"}))
    return verdicts


def missing_row(backend, scheme: str, kind: str, note: str, call: str = "") -> NamedSchemeRow:
    """A table row for a (scheme, kind, framework entry) that drew nothing, with the reason."""
    return NamedSchemeRow(scheme=scheme, weight_kind=kind, framework=backend.framework, backend=backend.spec,
                          call=call, shape=list(N.SHAPES[kind]), note=note)


def check_scheme(backend, dtype, conformance, scheme: str, kind: str) -> list[Verdict]:
    """Every verdict of the backend's initializer(s) named ``scheme`` on weight ``kind``; skips (after attaching
    the row that says why) when the framework has no such initializer."""
    entries = N.entries_for(scheme, backend.framework)
    if not entries:
        reason = N.missing_reason(scheme, backend.framework)
        conformance.attach(missing_row(backend, scheme, kind, reason))
        pytest.skip(reason)
    available = set(backend.named_schemes())
    verdicts: list[Verdict] = []
    for entry in entries:
        if entry.call not in available:
            verdicts.append(Verdict("available", False, f"{backend.spec} does not expose {entry.call}, which the "
                                    f"spec documents ({entry.source})", n=0))
            conformance.attach(missing_row(backend, scheme, kind, verdicts[-1].message, entry.label))
            continue
        try:
            verdicts += check_entry(backend, dtype, conformance, scheme, kind, entry)
        except Exception as exc:
            conformance.attach(missing_row(backend, scheme, kind, f"{type(exc).__name__}: {exc}", entry.label))
            raise
    return verdicts
