"""The result of one statistical or exact test: what was tested, the numbers, and whether it passed.

A :class:`Verdict` is plain data (JSON-serialisable through :meth:`Verdict.to_dict`) so
that it can travel from an xdist worker to the controller and into ``results.json``. Data for the
report (a distribution plot, an activation error map) travels beside it in :attr:`Verdict.attachments`
(typed, :mod:`conformance.report.attachments`), which ``to_dict`` leaves out: the check context
attaches them to the record.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.report.attachments import Attachment


def _clean(value: Any) -> Any:
    """Make numpy scalars and non-finite floats JSON-friendly."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass
class Verdict:
    """One test's outcome.

    ``test`` names the test (``"ks"``, ``"chi2"``, ``"mean"``, ``"variance"``, ``"support"``,
    ``"tail_lower"``, ...). ``pvalue`` and ``alpha`` are ``None`` for exact checks.
    ``effect`` is the effect size in the units users reason in (``std_ratio``,
    ``shift_in_std``, ``ks_distance``). ``message`` is one line quoting the rule.
    ``attachments`` are typed report data about this verdict (not part of :meth:`to_dict`).
    """

    test: str
    passed: bool
    message: str
    n: int = 0
    statistic: float | None = None
    pvalue: float | None = None
    alpha: float | None = None
    effect: dict[str, float] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    #: ``"defect"`` or ``"deviation"`` once a failing verdict was judged (:mod:`conformance.stats.severity`).
    severity: str | None = None
    attachments: list[Attachment] = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return _clean({f.name: getattr(self, f.name) for f in fields(self) if f.name != "attachments"})

    @property
    def is_statistical(self) -> bool:
        return self.alpha is not None
