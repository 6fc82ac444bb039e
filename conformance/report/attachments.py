"""Typed attachments: what a check hands to the report beside its verdicts.

Contract: a check creates one of the dataclasses below and hands it to
:meth:`conformance.context.CheckContext.attach` (a verdict-producing function puts it in
``Verdict.attachments`` instead, and :meth:`~conformance.context.CheckContext.expect` attaches it).
``results.json`` stores every record's attachments as ``{name: attachment.to_dict()}``; each dict carries
``kind`` and ``version``. The report decodes them with :func:`decode` and builds its plots, activation error
maps, seed-contract table, named-initializer table and model-init audits from them alone: it never reads a
verdict's free ``observed`` keys for these and never parses a check id. An attachment whose kind or version this
suite does not know, or whose fields do not match its kind, decodes to :class:`Unreadable` and the report lists
it with the reason instead of dropping it.

Changing an attachment's fields means a new ``VERSION``. Framework-free: plain JSON values, no numpy needed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar


class AttachmentError(ValueError):
    """A dict is not a valid attachment of the kind and version asked for."""


def _plain(value: Any) -> Any:
    """JSON-friendly copy: numpy scalars become Python numbers, non-finite floats their repr (like verdicts)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_NONFINITE = ("nan", "inf", "-inf")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_ok(annotation: str, value: Any) -> bool:
    """Whether ``value`` (from JSON) fits a field annotated ``annotation`` (``list[float]``, ``int | None``, ...):
    containers by their type only, a float also as an int or as the repr of a non-finite float, an int also as an
    integral float."""
    for alt in (a.strip() for a in annotation.split("|")):
        base = alt.split("[", 1)[0]
        if (base == "Any" or (base == "None" and value is None) or (base == "list" and isinstance(value, list))
                or (base == "dict" and isinstance(value, dict)) or (base == "str" and isinstance(value, str))
                or (base == "bool" and isinstance(value, bool))
                or (base in ("int", "float") and isinstance(value, int) and not isinstance(value, bool))
                or (base == "int" and isinstance(value, float) and value.is_integer())
                or (base == "float" and (isinstance(value, float) or value in _NONFINITE))):
            return True
    return False


class Attachment:
    """Base of every attachment kind: ``KIND`` and ``VERSION`` name the schema of :meth:`to_dict`."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 0

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def version(self) -> int:
        return self.VERSION

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.KIND, "version": self.VERSION}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = _plain(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """The attachment ``data`` describes; :class:`AttachmentError` when kind, version or fields differ."""
        if not isinstance(data, dict):
            raise AttachmentError(f"an attachment is a JSON object, got {type(data).__name__}")
        if data.get("kind") != cls.KIND:
            raise AttachmentError(f"kind {data.get('kind')!r} is not {cls.KIND!r}")
        if data.get("version") != cls.VERSION:
            raise AttachmentError(f"{cls.KIND} version {data.get('version')!r}; this suite reads version "
                                  f"{cls.VERSION}")
        body = {k: v for k, v in data.items() if k not in ("kind", "version")}
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(body) - set(known))
        required = sorted(n for n, f in known.items()
                          if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        missing = [n for n in required if n not in body]
        if unknown or missing:
            raise AttachmentError(f"{cls.KIND} version {cls.VERSION}: "
                                  + "; ".join(([f"unknown fields {unknown}"] if unknown else [])
                                              + ([f"missing fields {missing}"] if missing else [])))
        mistyped = [f"{name} is {_show(value)}, not {known[name].type}" for name, value in body.items()
                    if not _type_ok(str(known[name].type), value)]
        if mistyped:
            raise AttachmentError(f"{cls.KIND} version {cls.VERSION}: " + "; ".join(mistyped))
        return cls(**body)

    def bound_to(self, test: str, what: str = "") -> Attachment:
        """A copy naming the verdict test (and label) it illustrates, for kinds with ``test``/``what`` fields
        still empty (set by :meth:`CheckContext.expect` for attachments carried by verdicts)."""
        names = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        changes = {k: v for k, v in (("test", test), ("what", what)) if k in names and v and not getattr(self, k)}
        return dataclasses.replace(self, **changes) if changes else self  # type: ignore[type-var]


@dataclass
class DistributionPlot(Attachment):
    """Samples against their reference, compactly (:func:`conformance.stats.summary.plot_summary`): quantiles
    at ``probs`` (sample and reference), a histogram over ``edges`` with observed and expected counts, and the
    reference CDF at ``cdf_x``. ``test`` is the goodness-of-fit verdict it illustrates (``ks``, ``chi2``, ...)."""

    KIND: ClassVar[str] = "distribution_plot"
    VERSION: ClassVar[int] = 1

    reference: str
    probs: list[float]
    sample_q: list[float]
    ref_q: list[float]
    edges: list[float]
    observed: list[int]
    expected: list[float]
    cdf_x: list[float]
    cdf_y: list[float]
    test: str = ""
    what: str = ""


@dataclass
class ActivationErrorMap(Attachment):
    """Error in ulp of ``function``'s ``output`` (``value``/``grad``) in ``dtype`` at a subsample of inputs ``x``;
    ``nan_x`` are inputs whose result was not finite. ``test`` is the verdict (``ulp``, ``finite``)."""

    KIND: ClassVar[str] = "activation_error_map"
    VERSION: ClassVar[int] = 1

    function: str
    output: str
    dtype: str
    x: list[float]
    err: list[float]
    nan_x: list[float] = field(default_factory=list)
    test: str = ""
    what: str = ""


@dataclass
class SeedContract(Attachment):
    """A documented seed/RNG behaviour a backend declares (``contract`` names it, e.g. ``unseeded``; the
    ``statement``, its ``source`` and declared ``value``) and what the check observed (``behaviour``;
    ``consistent`` whether the observation agrees with the declared value, None when not judged)."""

    KIND: ClassVar[str] = "seed_contract"
    VERSION: ClassVar[int] = 1

    contract: str
    statement: str
    source: str
    value: str
    behaviour: str
    consistent: bool | None = None


@dataclass
class NamedSchemeRow(Attachment):
    """One row of the named-initializer table: what ``framework``'s initializer ``call`` named ``scheme`` draws
    on a ``weight_kind`` (``dense``, ``conv2d``) weight, against its docs and the paper. A row with an empty
    ``fitted`` drew nothing; ``note`` says why (the framework has no such initializer, it is not exposed, the
    check raised)."""

    KIND: ClassVar[str] = "named_scheme_row"
    VERSION: ClassVar[int] = 1

    scheme: str
    weight_kind: str
    framework: str
    backend: str
    call: str = ""
    family: str = ""
    formula: str = ""
    canonical_family: str = ""
    canonical_formula: str = ""
    shape: list[int] = field(default_factory=list)
    fan_in: int | None = None
    fan_out: int | None = None
    documented: dict[str, Any] = field(default_factory=dict)
    canonical: dict[str, Any] = field(default_factory=dict)
    #: std, mean, max_abs, excess_kurtosis of the draw; empty when nothing was drawn.
    fitted: dict[str, float] = field(default_factory=dict)
    documented_std: float | None = None
    canonical_std: float | None = None
    std_ratio_vs_canonical: float | None = None
    std_ratio_vs_documented: float | None = None
    docs_verdict: str = ""
    canonical_verdict: str = ""
    convention: str = ""
    quote: str = ""
    source: str = ""
    canonical_source: str = ""
    note: str = ""

    @property
    def drawn(self) -> bool:
        return bool(self.fitted)


@dataclass
class ModelInitAudit(Attachment):
    """A model-init audit (:mod:`conformance.audit`) as the report shows it: one row per tensor (``name, kind,
    status, rule, rule_where, layer_id, expected, observed, message``) and the std-against-depth fits (``rule,
    layers, observed_std, expected_std, stderr, fit, expected_fit``)."""

    KIND: ClassVar[str] = "model_init_audit"
    VERSION: ClassVar[int] = 1

    spec: str
    factory: str
    device_init: str
    counts: dict[str, int]
    tensors: list[dict[str, Any]]
    depth: list[dict[str, Any]] = field(default_factory=list)


#: Every kind the report reads, by ``KIND``.
KINDS: dict[str, type[Attachment]] = {cls.KIND: cls for cls in (DistributionPlot, ActivationErrorMap, SeedContract,
                                                                 NamedSchemeRow, ModelInitAudit)}


@dataclass(frozen=True)
class Unreadable:
    """An attachment the report cannot read: its name, the kind and version it claims, and why."""

    name: str
    kind: Any
    version: Any
    reason: str


def decode(name: str, data: Any) -> Attachment | Unreadable:
    """The typed attachment stored as ``data`` under ``name``, or :class:`Unreadable` with the reason."""
    kind = data.get("kind") if isinstance(data, dict) else None
    version = data.get("version") if isinstance(data, dict) else None
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return Unreadable(name, kind, version, f"unknown attachment kind {kind!r} (this suite reads "
                                               f"{', '.join(sorted(KINDS))})")
    try:
        return cls.from_dict(data)
    except (AttachmentError, TypeError) as exc:
        return Unreadable(name, kind, version, str(exc))


def of_record(record: dict) -> list[tuple[str, Attachment | Unreadable]]:
    """Every attachment of a ``results.json`` record, decoded, in stored order."""
    return [(name, decode(name, data)) for name, data in (record.get("attachments") or {}).items()]
