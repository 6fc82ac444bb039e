"""The per-check context handed to suite tests as the ``conformance`` fixture.

Contract: a check seeds nothing itself; the context seeds the backend with the derived
seed before the test body runs. Every verdict a check produces goes through
:meth:`CheckContext.expect`, which records it (for ``results.json``) and fails the check with
all failing verdicts' messages and a repro command. Data for the report goes through
:meth:`CheckContext.attach` as typed attachments (:mod:`conformance.report.attachments`); attachments
a verdict carries (a distribution plot, an activation error map) are attached by ``expect``.

What an adapter hands back is checked once, where it leaves the adapter
(:func:`conformance.backends.base.guard_outputs`): ``None``, a scalar, a list or an array of the wrong shape or
dtype fails the running check at once with the failed verdict ``adapter_output`` naming the call and what came
back. :meth:`CheckContext.draw` and :meth:`CheckContext.moments` also refuse, at the first call, a sampler that
returns anything but a non-empty numpy array of numbers (verdict ``sampler_output``), instead of calling it once per
element until they have their million values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .backends.base import AdapterOutputError, describe_value, observe_output_errors
from .report.attachments import Attachment
from .seeding import derive_seed
from .stats import design
from .stats.moments import Moments
from .stats.severity import DEFECT, judge
from .stats.verdict import Verdict

USER_PROPERTY = "conformance_verdicts"
RULE_ADAPTER_OUTPUT = ("adapter methods return numpy.ndarray of the requested shape and dtype "
                       "(conformance.backends.interface, 'Rules for every method')")
RULE_SAMPLER_OUTPUT = "a sampler returns a non-empty numpy array of numbers on every call"
ATTACHMENT_PROPERTY = "conformance_attachment"


class CheckFailed(AssertionError):
    """A conformance check failed; the message lists every failing verdict."""


class CheckContext:
    """Seed, alpha and sample size of one check on one backend and dtype, and its verdicts."""

    def __init__(self, check_id: str, spec: str, dtype: str | None, master_seed: int, repro: str,
                 user_properties: list | None = None):
        self.check_id = check_id
        self.spec = spec
        self.dtype = dtype
        self.master_seed = master_seed
        self.seed = derive_seed(master_seed, check_id, spec, dtype or "")
        self.alpha = design.ALPHA
        self.n = design.DEFAULT_N
        self.repro = repro
        self.verdicts: list[Verdict] = []
        #: A known-failures entry restricted to some verdict tests (``tests = [...]``), set by the plugin.
        self.known_failure = None
        #: ``--strict-tier``: deviations fail the check too (set by the plugin).
        self.strict_tier = False
        self._user_properties = user_properties if user_properties is not None else []
        self._attachment_names: set[str] = set()
        # the newest context is the running check's: an adapter's bad output becomes its failed verdict
        observe_output_errors(self._adapter_output_failed)

    def _adapter_output_failed(self, error: AdapterOutputError) -> None:
        """Record ``error`` (an adapter returned what its contract forbids) as a failed verdict and fail the check."""
        self.expect(Verdict("adapter_output", False, str(error), observed={"call": error.call, "returned": error.got},
                            expected={**error.expected, "rule": RULE_ADAPTER_OUTPUT}))

    def _sampled(self, what: str, fn: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
        """``fn``, refusing at once any output but a non-empty numpy array of numbers (a failed verdict)."""

        def checked() -> np.ndarray:
            part = fn()
            if (isinstance(part, np.ndarray) and part.ndim > 0 and part.size
                    and (part.dtype.kind in "biuf" or part.dtype.name == "bfloat16")):
                return part
            got = describe_value(part)
            self.expect(Verdict("sampler_output", False,
                                f"{self.spec} {what}: the sampler returned {got}; expected a non-empty numpy array of "
                                "numbers (each call adds its elements to the sample)",
                                observed={"returned": got}, expected={"type": "numpy.ndarray",
                                                                      "rule": RULE_SAMPLER_OUTPUT}))
            raise AssertionError("unreachable: expect() raises on a failed verdict")  # pragma: no cover

        return checked

    def draw(self, fn: Callable[[], np.ndarray], n: int | None = None) -> np.ndarray:
        """Call ``fn`` until at least ``n`` elements were drawn; return exactly ``n`` as a flat array.

        Anything but a non-empty numpy array of numbers from ``fn`` fails the check at the first call."""
        want = self.n if n is None else n
        sampler = self._sampled("draw()", fn)
        parts, total = [], 0
        while total < want:
            part = sampler().ravel()
            parts.append(part)
            total += part.size
        return np.concatenate(parts)[:want]

    def moments(self, fn: Callable[[], np.ndarray], n: int, centre: float) -> Moments:
        """Stream ``n`` values of ``fn`` into :class:`Moments` about ``centre`` (one output held at a time).

        Anything but a non-empty numpy array of numbers from ``fn`` fails the check at the first call."""
        return Moments.stream(self._sampled("moments()", fn), n, centre)

    def attach(self, attachment: Attachment, name: str | None = None) -> str:
        """Hand a typed attachment (:mod:`conformance.report.attachments`) to the report; never a verdict.

        It is stored in the record's ``attachments`` under ``name`` (default: its kind; ``-2``, ``-3``, ... are
        appended when the name is taken) as ``attachment.to_dict()``. Returns the name used.
        """
        if not isinstance(attachment, Attachment):
            raise TypeError(f"attach() takes a typed attachment from conformance.report.attachments, got "
                            f"{type(attachment).__name__}")
        base = name or attachment.kind
        chosen, i = base, 1
        while chosen in self._attachment_names:
            i += 1
            chosen = f"{base}-{i}"
        self._attachment_names.add(chosen)
        self._user_properties.append((ATTACHMENT_PROPERTY, {chosen: attachment.to_dict()}))
        return chosen

    def expect(self, verdicts: Verdict | list[Verdict], label: str = "") -> None:
        """Record ``verdicts`` (each failing one judged a defect or a deviation) and raise :class:`CheckFailed` if
        any failed at the run's tier: a defect in the default tier, any failure with ``--strict-tier``."""
        batch = [verdicts] if isinstance(verdicts, Verdict) else list(verdicts)
        if not batch:
            raise ValueError("expect() called with no verdicts: a check must assert something")
        for v in batch:
            if label:
                v.observed.setdefault("what", label)
            for attachment in v.attachments:
                self.attach(attachment.bound_to(v.test, str(v.observed.get("what", ""))))
        for v in batch:
            if not v.passed and v.severity is None:
                v.severity = judge(v.to_dict(), self.dtype).severity
        self.verdicts.extend(batch)
        self._user_properties.append((USER_PROPERTY, [v.to_dict() for v in batch]))
        # the default tier fails on defects; deviations are recorded and fail only with --strict-tier
        failed = [v for v in batch if not v.passed and (self.strict_tier or v.severity == DEFECT)]
        if failed and self.known_failure is not None and self.known_failure.covers({v.test for v in failed}):
            import pytest

            pytest.xfail(f"{self.known_failure.describe()} Failed here: "
                         + "; ".join(f"[{v.test}] {v.message}" for v in failed))
        if failed:
            rule = failed[0].expected.get("rule", "")
            lines = [f"{self.check_id} on {self.spec} {self.dtype or ''}".rstrip() + (f" ({label})" if label else "")]
            if rule:
                lines.append(f"  rule: {rule}")
            lines += [f"  [{v.test}] {v.message}" for v in failed]
            lines.append(f"  seed {self.seed} (master {self.master_seed}); repro: {self.repro}")
            raise CheckFailed("\n".join(lines))
