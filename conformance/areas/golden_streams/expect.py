"""Verdicts of the golden checks: freshly computed fingerprints against the golden of the backend's version.

Outcomes (see ``conformance/suite/test_golden_streams.py``):

* golden of the **same** framework version and device: any difference fails, naming the first differing index and
  both values (or the first differing block) and the environment fields that differ from the golden's provenance;
* only a golden of **another** version: equal passes ("unchanged since VERSION"); different is reported as an
  expected failure "stream changed since VERSION" with the command that accepts it - visible in the summary and
  the report, but not failing the run, because a framework is free to change its streams between releases;
* no golden for this framework and device at all, or no entry for this case: skipped with the exact command that
  creates it;
* a golden file that does not validate (corrupt, unknown schema, newer suite): the check fails with that message.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from conformance.context import CheckFailed
from conformance.goldens import fingerprints as fp
from conformance.goldens import store
from conformance.stats.verdict import Verdict

_IGNORED_ENV = {"threads"}


@cache
def _lookup(key: store.GoldenKey, directory: Path) -> store.Lookup:
    return store.lookup(key, directory)


def _env_changes(golden: store.GoldenFile, backend) -> str:
    recorded = golden.provenance.get("versions", {})
    now = {k: str(v) for k, v in backend.versions().items()}
    diffs = [f"{k} {recorded.get(k)} -> {now.get(k)}" for k in sorted(set(recorded) | set(now))
             if k not in _IGNORED_ENV and recorded.get(k) != now.get(k)]
    return ("; environment differs from the golden's: " + ", ".join(diffs)) if diffs else ""


def judge(conformance, kind: str, backend, got: dict[str, dict], arrays: dict[str, np.ndarray],
          what: str = "stream") -> None:
    """Compare ``got`` (fingerprints by entry name) with the applicable golden; record the verdict (see module doc)."""
    key = store.key_of(kind, backend)
    try:
        found = _lookup(key, store.default_dir().resolve())
    except store.GoldenError as exc:
        pytest.fail(str(exc), pytrace=False)
    golden = found.exact or found.other
    if golden is None:
        pytest.skip(found.missing_reason())
    known = [n for n in got if n in golden.entries]
    if not known:
        pytest.skip(f"golden {golden.path} has no entry {', '.join(got)}; create it with `{found.command}`")
    changed = {n: d for n in known if (d := fp.compare(golden.entries[n], got[n], arrays[n])) is not None}
    version = golden.key.version
    rule = (f"{what} pinned by golden {golden.path.name} of {key.framework} {version} on {golden.key.device_label}"
            f" (seed {fp.GOLDEN_SEED}, written {golden.provenance.get('date', '?')})")
    n = sum(math.prod(got[k]["shape"]) for k in known)
    observed = {"sha256": {k: got[k]["sha256"] for k in known}, "changed": sorted(changed)}
    expected = {"rule": rule, "golden": str(golden.path), "golden_version": version,
                "sha256": {k: golden.entries[k]["sha256"] for k in known}}
    if not changed:
        msg = f"{len(known)} {what} fingerprint(s) equal the golden of {key.framework} {version}"
        if not found.exact:
            msg += f" (unchanged since {version}; no golden for {key.version} yet: `{found.command}`)"
        conformance.expect(Verdict(f"golden_{kind}", True, msg, n=n, observed=observed, expected=expected))
        return
    detail = "; ".join(f"{name}: {why}" for name, why in list(changed.items())[:3])
    more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
    if found.exact:
        msg = (f"{what} changed within {key.framework} {key.version} on {key.device_label}: {len(changed)} of "
               f"{len(known)} differ - {detail}{more}{_env_changes(golden, backend)}")
        conformance.expect(Verdict(f"golden_{kind}", False, msg, n=n, observed=observed, expected=expected))
        return
    msg = (f"{what} changed since {version} ({key.framework} {key.version} now): {detail}{more}; accept the new "
           f"{what} with `{found.command}`")
    try:
        conformance.expect(Verdict(f"golden_{kind}", False, msg, n=n, observed=observed, expected=expected))
    except CheckFailed:
        pytest.xfail(msg)
