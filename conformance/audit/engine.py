"""The audit: every parameter and buffer of a built model against an init spec.

:func:`audit_snapshot` is framework-free: it reads a
:class:`~conformance.backends.base.ModelSnapshot` (plain numpy data)
and a reference snapshot of the same model built eagerly, and produces an :class:`AuditReport`. :func:`audit`
builds both snapshots through a backend adapter first.

Per parameter: the first matching rule's distribution, the full statistical battery
(:func:`conformance.stats.compare_distribution`; the power of its variance test is reported, since small
tensors have less), and exact checks for memory that init never wrote (the poison value written after
meta-device materialization, non-finite values, huge magnitudes, an all-zero tensor). A failing parameter is
then compared with the framework's own default for its module (the ``framework_defaults`` spec): if it
matches that instead, the init was not applied. Across layers: std against ``layer_id`` per rule, with a
fitted ``c / sqrt(layer_id + k)`` or constant, and a chi-square of the observed stds against the expected
ones. Model-wide: buffers equal a freshly built reference, tied weights still share storage, no two
parameters are bit-identical, every parameter matches a rule and every rule matches a parameter.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy import stats as st

from ..areas.init_schemes.fans import fans
from ..stats import Verdict, as_float64, compare_distribution, design
from ..stats import reference as R
from . import spec as S

#: Std error the reported power is computed against (a 10% std error).
POWER_STD_RATIO = 1.10
#: Power at which the minimal detectable std error is reported.
POWER_TARGET = 0.99
#: Beyond this many expected scales a value is "huge" (uninitialized memory, not a draw).
HUGE_SCALES = 1e4

#: Statuses of a tensor, worst last.
STATUSES = ("pass", "ignored", "mismatch", "framework_default", "uninitialized", "unmatched", "identical",
            "tie_broken", "buffer_mismatch")


class AuditError(ValueError):
    """The audit could not run: the factory failed, or the spec does not fit the model (message says which)."""


@dataclass
class TensorResult:
    """The verdict on one parameter or buffer."""

    name: str
    kind: str  # "parameter" | "buffer"
    status: str
    message: str
    shape: tuple[int, ...] = ()
    rule: str = ""
    rule_where: str = ""
    layer_id: int | None = None
    expected: dict[str, Any] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)
    power: dict[str, float] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status in ("pass", "ignored")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdicts"] = [v.to_dict() for v in self.verdicts]
        d["passed"] = self.passed
        return _clean(d)


@dataclass
class DepthFit:
    """std against layer_id for one rule: points, the fitted and the expected formula, and the verdict."""

    rule: str
    rule_where: str
    layers: list[int]
    observed_std: list[float]
    expected_std: list[float]
    stderr: list[float]
    n: list[int]
    fit: dict[str, Any]
    expected_fit: dict[str, Any]
    verdict: Verdict

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = self.verdict.to_dict()
        return _clean(d)


@dataclass
class AuditReport:
    """Everything the audit measured; :meth:`to_dict` is what ``audit.json`` holds."""

    spec: str
    spec_origin: str
    factory: str
    backend: str
    device_init: str
    init_method: str
    dtype: str
    seed: int | None
    alpha: float
    tensors: list[TensorResult]
    depth: list[DepthFit]
    model_checks: list[Verdict]
    config: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    spec_kind: str = "code"  # "code" (what the library's code does) | "intent" (what it says it intends)
    spec_sources: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (all(t.passed for t in self.tensors) and all(d.verdict.passed for d in self.depth)
                and all(v.passed for v in self.model_checks))

    def failures(self) -> list[str]:
        """One message per failure: tensors, depth profiles, model-wide checks."""
        out = [t.message for t in self.tensors if not t.passed]
        out += [d.verdict.message for d in self.depth if not d.verdict.passed]
        out += [v.message for v in self.model_checks if not v.passed]
        return out

    def by_name(self, name: str) -> TensorResult:
        for t in self.tensors:
            if t.name == name or name in t.aliases:
                return t
        raise KeyError(name)

    def verdicts(self) -> list[Verdict]:
        """Flat verdicts (each labelled with its tensor) for a conformance check's ``expect``."""
        out = []
        for t in self.tensors:
            for v in t.verdicts:
                v.observed.setdefault("what", t.name)
                out.append(v)
        out += [d.verdict for d in self.depth]
        out += list(self.model_checks)
        return out

    def to_dict(self) -> dict:
        return _clean({
            "spec": self.spec, "spec_origin": self.spec_origin, "spec_kind": self.spec_kind,
            "spec_sources": self.spec_sources, "factory": self.factory, "backend": self.backend,
            "device_init": self.device_init, "init_method": self.init_method, "dtype": self.dtype, "seed": self.seed,
            "alpha": self.alpha, "passed": self.passed, "config": self.config, "timings": self.timings,
            "notes": self.notes, "failures": self.failures(),
            "counts": {s: sum(t.status == s for t in self.tensors) for s in STATUSES},
            "tensors": [t.to_dict() for t in self.tensors],
            "depth": [d.to_dict() for d in self.depth],
            "model_checks": [v.to_dict() for v in self.model_checks],
        })


def _clean(x):
    return Verdict("x", True, "", observed={"v": x}).to_dict()["observed"]["v"]


# -- expected distributions ----------------------------------------------------------------------------------------

class _CachedMoments(R.ContinuousReference):
    """A reference whose moments are computed once (scipy's truncnorm recomputes them on every call)."""

    @cached_property
    def mean(self) -> float:
        return float(self.dist.mean())

    @cached_property
    def var(self) -> float:
        return float(self.dist.var())

    @cached_property
    def mu4(self) -> float:
        kurt = float(self.dist.stats(moments="k"))
        return (kurt + 3.0) * self.var**2


_REFERENCES: dict[tuple, R.ContinuousReference] = {}


def _cached(ref: R.ContinuousReference) -> R.ContinuousReference:
    key = (ref.name, ref.support)
    if key not in _REFERENCES:
        if len(_REFERENCES) > 4096:
            _REFERENCES.clear()
        cached = _CachedMoments(ref.name, ref.dist, ref.support)
        with np.errstate(all="ignore"):
            var = cached.var
            fine = (math.isfinite(cached.mean) and var > 0 and math.isfinite(var * var) and var * var > 0
                    and math.isfinite(cached.mu4) and cached.std + abs(cached.mean) > 0)
        if not fine:  # a std of 1e-300 or 1e200: the checks divide by var**2 and the scale
            raise ValueError(f"{ref.name} cannot be checked in float64: its variance {var:.3g} or fourth moment "
                             "overflows or underflows; give a scale between 1e-70 and 1e70")
        _REFERENCES[key] = cached
    return _REFERENCES[key]


@dataclass
class Expected:
    """A rule evaluated for one parameter: a continuous reference or an exact constant."""

    rule: S.Rule
    values: dict[str, float]
    reference: R.ContinuousReference | None = None
    constant: float | None = None
    sigma: float | None = None  # the formula's std (before truncation), for depth fits

    def describe(self) -> str:
        if self.constant is not None:
            return f"{self.constant:g}" if self.rule.dist == "constant" else f"{self.rule.dist} ({self.constant:g})"
        return self.reference.name

    @property
    def scale(self) -> float:
        if self.constant is not None:
            return max(abs(self.constant), 1.0)
        return self.reference.std + abs(self.reference.mean)


def expected_for(rule: S.Rule, env: dict[str, float]) -> Expected:
    """The distribution ``rule`` prescribes in ``env`` (raises :class:`SpecError` naming the rule)."""
    v = rule.evaluate(env)
    try:
        if rule.dist == "normal":
            return Expected(rule, v, _cached(R.normal(v.get("mean", 0.0), v["std"])), sigma=v["std"])
        if rule.dist == "trunc_normal":
            mean, std = v.get("mean", 0.0), v["std"]
            if "cutoff" in v:
                a, b = mean - v["cutoff"] * std, mean + v["cutoff"] * std
            else:
                a, b = v.get("a", -2.0), v.get("b", 2.0)
            return Expected(rule, v, _cached(R.trunc_normal(mean, std, a, b)), sigma=std)
        if rule.dist == "uniform":
            a, b = (-v["bound"], v["bound"]) if "bound" in v else (v["a"], v["b"])
            ref = _cached(R.uniform(a, b))
            return Expected(rule, v, ref, sigma=ref.std)
    except (ValueError, ArithmeticError) as exc:
        raise S.SpecError(f"{rule.where}: {exc} (values {v})") from None
    return Expected(rule, v, constant={"zeros": 0.0, "ones": 1.0}.get(rule.dist, v.get("value")))


def _formula_note(rule: S.Rule, values: dict[str, float], env: dict[str, float]) -> str:
    parts = []
    for key, formula in rule.params.items():
        try:
            float(formula.text)
            continue
        except ValueError:
            pass
        used = ", ".join(f"{n}={env[n]:g}" for n in sorted(formula.names) if n in env)
        parts.append(f"{key} = {formula.text} = {values[key]:.6g}" + (f" with {used}" if used else ""))
    return "; ".join(parts)


# -- per-tensor checks ---------------------------------------------------------------------------------------------

def _power(ref: R.ContinuousReference, n: int, alpha: float) -> dict[str, float]:
    kurt = ref.mu4 / ref.var**2
    z_a = float(st.norm.isf(alpha / 2))
    delta = (z_a + float(st.norm.isf(1 - POWER_TARGET))) * math.sqrt((kurt - 1) / max(n, 1))
    return {"std_10pct": design.power_std(n, POWER_STD_RATIO, kurt, alpha),
            "min_detectable_std_error": math.sqrt(1 + delta) - 1}


def _in_dtype(value: float, x: np.ndarray) -> np.ndarray:
    return np.asarray(value).astype(x.dtype) if x.dtype.kind in "fc" else np.asarray(value)


def _memory_checks(x: np.ndarray, expected: Expected, poison: float | None, what: str) -> list[Verdict]:
    """Exact checks for memory init never wrote: poison left in place, non-finite, huge, all zero."""
    out = []
    flat = np.asarray(x).ravel()
    n = flat.size
    if poison is not None and flat.dtype.kind in "fc":
        p = _in_dtype(poison, flat)
        hit = (flat.real == p.real) if flat.dtype.kind == "c" else (flat == p)
        k = int(hit.sum())
        out.append(Verdict("poison", k == 0,
                           f"{k} of {n} elements still hold the value written after meta-device materialization "
                           f"({float(np.real(p)):.4g}): init never wrote them" if k else
                           f"no element holds the materialization poison ({n} elements)",
                           n=n, observed={"poisoned": k}))
    if flat.dtype.kind not in "fc" or n == 0:
        return out
    xf = np.abs(flat.astype(np.complex128 if flat.dtype.kind == "c" else np.float64))
    nonfinite = int((~np.isfinite(xf)).sum())
    if nonfinite:
        out.append(Verdict("finite", False, f"{nonfinite} of {n} elements are non-finite", n=n,
                           observed={"nonfinite": nonfinite}))
    finite = xf[np.isfinite(xf)]
    scale = expected.scale if expected is not None else 1.0
    big = float(finite.max()) if finite.size else 0.0
    if big > HUGE_SCALES * scale:
        out.append(Verdict("huge", False, f"max |x| = {big:.4g} is {big / scale:.3g} times the expected scale "
                           f"{scale:.4g}: uninitialized memory, not a draw", n=n, observed={"max_abs": big}))
    if expected is not None and (expected.constant is None or expected.constant != 0) and n > 1 and big == 0:
        out.append(Verdict("all_zero", False, f"all {n} elements are 0 where {expected.describe()} is expected: "
                           "uninitialized (zeroed) memory or a skipped init", n=n))
    return out


def _exact_verdict(x: np.ndarray, expected: Expected, dtype: str) -> Verdict:
    from ..stats.grids import numpy_dtype

    want = float(np.asarray(expected.constant, dtype=numpy_dtype(dtype)).astype(np.float64)) \
        if dtype in ("float16", "bfloat16", "float32", "float64") else expected.constant
    xf = as_float64(x)
    bad = xf != want
    k = int(bad.sum())
    if not k:
        return Verdict("exact", True, f"all {xf.size} elements equal {want:g}", n=xf.size)
    first = int(np.argmax(bad))
    return Verdict("exact", False, f"{k} of {xf.size} elements differ from {want:g} (first at flat index {first}: "
                   f"{xf[first]:.6g}; mean {np.nanmean(xf):.4g}, std {np.nanstd(xf):.4g})",
                   n=xf.size, observed={"mismatches": k, "mean": float(np.nanmean(xf)), "std": float(np.nanstd(xf))},
                   expected={"value": want})


def _battery(x: np.ndarray, expected: Expected, dtype: str, alpha: float) -> list[Verdict]:
    if expected.constant is not None:
        return [_exact_verdict(x, expected, dtype)]
    return compare_distribution(x, expected.reference, dtype, alpha)


def _observed(x: np.ndarray) -> dict[str, float]:
    xf = as_float64(x)
    finite = xf[np.isfinite(xf)]
    if not finite.size:
        return {"n": int(xf.size), "finite": 0}
    return {"n": int(xf.size), "mean": float(finite.mean()), "std": float(finite.std()),
            "min": float(finite.min()), "max": float(finite.max()), "zeros": int((finite == 0).sum())}


def _per_parameter(name: str, x: np.ndarray, snapshot, spec: S.InitSpec) -> dict[str, float]:
    out: dict[str, float] = {"numel": float(np.asarray(x).size), "ndim": float(np.asarray(x).ndim)}
    shape = snapshot.weight_shapes.get(name)
    if shape is None and np.asarray(x).ndim >= 2:
        shape = tuple(np.asarray(x).shape)
    if shape is not None:
        out["fan_in"], out["fan_out"] = (float(f) for f in fans(shape))
    layer = spec.layer_id(name)
    if layer is not None:
        out["layer_id"] = float(layer)
    return out


def _dtype_of(x: np.ndarray, default: str) -> str:
    name = np.asarray(x).dtype.name
    return name if name in ("float16", "bfloat16", "float32", "float64") else default


def check_parameter(name: str, x: np.ndarray, snapshot, spec: S.InitSpec, defaults: S.InitSpec | None,
                    alpha: float) -> TensorResult:
    """Every check of one parameter (see the module docs)."""
    module_type = snapshot.module_types.get(name)
    shape = tuple(np.asarray(x).shape)
    layer = spec.layer_id(name)
    rule = spec.rule_for(name, module_type)
    if rule is None:
        msg = (f"{name} ({module_type or '?'}, shape {shape}) matches no rule of spec {spec.name!r} "
               f"({spec.origin}); add a rule or an ignore pattern")
        return TensorResult(name, "parameter", "unmatched", msg, shape, layer_id=layer,
                            observed=_observed(x), verdicts=[Verdict("rule", False, msg)])
    env = spec.environment(snapshot.config, _per_parameter(name, x, snapshot, spec))
    try:
        expected = expected_for(rule, env)
    except S.SpecError as exc:
        lacking = [k for k in S.PER_PARAMETER if k not in env]
        hint = f"; it has no {', '.join(lacking)}" if lacking else ""
        raise S.SpecError(f"{exc} (parameter {name}{hint})") from None
    dtype = _dtype_of(x, snapshot.dtype)
    verdicts = _memory_checks(x, expected, snapshot.poison, name)
    uninit = any(not v.passed for v in verdicts)
    verdicts += _battery(x, expected, dtype, alpha)
    for v in verdicts:
        v.expected.setdefault("rule", f"{rule.where}: {expected.describe()}")
    observed = _observed(x)
    note = _formula_note(rule, expected.values, env)
    exp = {"distribution": expected.describe(), "formula": rule.describe(), "evaluated": note}
    if expected.reference is not None:
        exp.update(mean=expected.reference.mean, std=expected.reference.std, sigma=expected.sigma,
                   kurtosis=expected.reference.mu4 / expected.reference.var**2)
    else:
        exp.update(value=expected.constant)
    power = _power(expected.reference, int(np.asarray(x).size), alpha) if expected.reference is not None else {}
    failed = [v for v in verdicts if not v.passed]
    status = "pass"
    default_note = ""
    if failed:
        status = "uninitialized" if uninit else "mismatch"
        if not uninit and defaults is not None:
            status, default_note = _default_status(name, x, snapshot, defaults, dtype, alpha, expected, status)
    elif defaults is not None:
        default_note = _indistinguishable(name, x, snapshot, defaults, expected)
        exp["equals_framework_default"] = bool(default_note)
    msg = _message(name, status, rule, expected, note, observed, failed, default_note)
    return TensorResult(name, "parameter", status, msg, shape, rule.describe(), rule.where, layer, exp, observed,
                        power, verdicts=verdicts)


def _default_expected(name, x, snapshot, defaults: S.InitSpec) -> Expected | None:
    drule = defaults.rule_for(name, snapshot.module_types.get(name))
    if drule is None:
        return None
    try:
        return expected_for(drule, defaults.environment(snapshot.config, _per_parameter(name, x, snapshot, defaults)))
    except S.SpecError:
        return None


def _same(a: Expected, b: Expected) -> bool:
    if a.constant is not None or b.constant is not None:
        return a.constant == b.constant
    return a.reference.name == b.reference.name


def _default_status(name, x, snapshot, defaults, dtype, alpha, expected, status) -> tuple[str, str]:
    """Does a failing parameter match its module's framework default (any alias's module, for tied ones)?"""
    names = [name] + sorted(n for g in snapshot.tied if name in g for n in g if n != name)
    for alias in names:
        dexp = _default_expected(alias, x, snapshot, defaults)
        if dexp is None or _same(dexp, expected):
            continue
        if all(v.passed for v in _battery(x, dexp, dtype, alpha)):
            owner = snapshot.module_types.get(alias)
            via = f" via the tied {alias}" if alias != name else ""
            return "framework_default", (f"it matches the framework default {dexp.describe()} ({owner}{via}, "
                                         f"{dexp.rule.where}) instead: the init was not applied")
    return status, ""


def _indistinguishable(name, x, snapshot, defaults, expected) -> str:
    dexp = _default_expected(name, x, snapshot, defaults)
    if dexp is not None and _same(dexp, expected):
        return "the spec equals the framework default here, so a skipped init cannot be seen on this parameter"
    return ""


def _message(name, status, rule, expected, note, observed, failed, default_note) -> str:
    head = f"{name}: {status}; rule {rule.where} expects {expected.describe()}"
    if note:
        head += f" [{note}]"
    if "std" in observed:
        obs = f"observed mean {observed['mean']:.4g}, std {observed['std']:.4g}"
        if expected.reference is not None and expected.reference.std > 0:
            obs += f" ({(observed['std'] / expected.reference.std - 1) * 100:+.1f}% std)"
        obs += f", range [{observed['min']:.4g}, {observed['max']:.4g}], n={observed['n']}"
    else:
        obs = f"observed no finite value in {observed['n']}"
    parts = [head, obs]
    if failed:
        parts.append("failed: " + "; ".join(f"[{v.test}] {v.message}" for v in failed[:4])
                     + (f"; and {len(failed) - 4} more" if len(failed) > 4 else ""))
    if default_note:
        parts.append(default_note)
    return "; ".join(parts)


# -- buffers, ties, identical tensors, unmatched rules ------------------------------------------------------------

def check_buffer(name: str, x: np.ndarray, snapshot, reference) -> TensorResult:
    """A buffer equals the same buffer of a freshly built model (and holds no materialization poison)."""
    shape = tuple(np.asarray(x).shape)
    verdicts = _memory_checks(x, None, snapshot.poison, name)
    persistent = snapshot.persistent.get(name, True)
    kind = "persistent" if persistent else "non-persistent"
    if reference is not None and name in reference.buffers:
        want = np.asarray(reference.buffers[name])
        got = np.asarray(x)
        if got.shape != want.shape:
            verdicts.append(Verdict("buffer", False, f"shape {got.shape}, freshly built {want.shape}"))
        else:
            if got.dtype.kind in "fc":
                w = want.astype(np.complex128 if want.dtype.kind == "c" else np.float64)
                g = got.astype(w.dtype)
                close = np.isclose(g, w, rtol=1e-5, atol=1e-6) | (np.isnan(g) & np.isnan(w))
                worst = float(np.nanmax(np.abs(g - w))) if g.size else 0.0
            else:
                close = got == want
                worst = float(np.sum(~close))
            k = int((~close).sum())
            verdicts.append(Verdict("buffer", k == 0,
                                    f"equals the freshly built model's buffer ({got.size} elements)" if not k else
                                    f"{k} of {got.size} elements differ from a freshly built model's buffer "
                                    f"(max |diff| {worst:.4g}): the {kind} buffer was not recomputed after "
                                    f"{snapshot.device_init} init", n=got.size,
                                    observed={"mismatches": k, "max_abs_diff": worst}))
    elif reference is not None:
        verdicts.append(Verdict("buffer", True, "not present in a freshly built model (created by init)"))
    failed = [v for v in verdicts if not v.passed]
    status = "buffer_mismatch" if failed else "pass"
    msg = f"{name}: {kind} buffer, shape {shape}: " + ("; ".join(v.message for v in failed) if failed else "as built")
    return TensorResult(name, "buffer", status, msg, shape, rule="fresh build", verdicts=verdicts,
                        observed={"n": int(np.asarray(x).size), "persistent": persistent})


def _digest(x: np.ndarray) -> str:
    a = np.ascontiguousarray(x)
    return hashlib.sha256(str(a.shape).encode() + a.view(np.uint8).tobytes()).hexdigest()


def check_ties(snapshot, reference, spec: S.InitSpec) -> list[Verdict]:
    groups = {}
    for g in snapshot.tied:
        for n in g:
            groups[n] = g
    want: list[tuple[frozenset[str], str]] = []
    for names in spec.tied:
        if all(n in snapshot.params for n in names):
            want.append((frozenset(names), f"spec {spec.origin}"))
    if reference is not None:
        want += [(g, "a freshly built model") for g in reference.tied if all(n in snapshot.params for n in g)]
    out, seen = [], set()
    for names, why in want:
        if names in seen:
            continue
        seen.add(names)
        first = sorted(names)[0]
        together = groups.get(first, frozenset([first]))
        missing = sorted(names - together)
        if missing:
            out.append(Verdict("tied", False, f"{' and '.join(sorted(names))} are tied in {why} but no longer share "
                               f"storage after {snapshot.device_init} init ({', '.join(missing)} has its own "
                               "storage): re-tie after materialization", observed={"names": sorted(names)}))
        else:
            out.append(Verdict("tied", True, f"{' and '.join(sorted(names))} share storage", observed={
                "names": sorted(names)}))
    return out


def check_identical(results: dict[str, TensorResult], snapshot) -> list[Verdict]:
    """Two distinct, random-ruled parameters that are bit-identical (a reused seed, a copied layer)."""
    alias = {n: min(g) for g in snapshot.tied for n in g}
    by_digest: dict[str, list[str]] = {}
    for name, x in snapshot.params.items():
        r = results.get(name)
        if r is None or r.status in ("ignored", "unmatched") or "std" not in r.expected or np.asarray(x).size < 2:
            continue
        if alias.get(name, name) != name:
            continue
        if np.all(np.asarray(x) == np.asarray(x).ravel()[0]):
            continue
        by_digest.setdefault(_digest(np.asarray(x)), []).append(name)
    out = []
    for names in by_digest.values():
        if len(names) > 1:
            msg = (f"{len(names)} parameters are bit-identical: {', '.join(names)} (a seed reused per layer, or one "
                   "layer copied into the others)")
            out.append(Verdict("identical", False, msg, observed={"names": names}))
            for n in names:
                _restatus(results[n], "identical", f"bit-identical to {', '.join(m for m in names if m != n)}")
    return out


def _restatus(result: TensorResult, status: str, why: str) -> None:
    result.message = result.message.replace(f"{result.name}: {result.status};", f"{result.name}: {status};", 1)
    result.message += f"; {why}"
    result.status = status


def check_rules_used(spec: S.InitSpec, used: set[int]) -> list[Verdict]:
    out = []
    for rule in spec.rules:
        if rule.index not in used and not rule.optional:
            out.append(Verdict("rule_unused", False, f"rule {rule.where} ({rule.describe()}) matches no parameter "
                               "of the model (mark it optional = true if that is expected)"))
    return out


# -- depth ---------------------------------------------------------------------------------------------------------

def _wls(xs, ys, ws):
    X = np.column_stack([xs, np.ones_like(xs)])
    W = np.diag(ws)
    cov = np.linalg.pinv(X.T @ W @ X)
    beta = cov @ X.T @ W @ ys
    return beta, cov


def fit_depth(layers, scale, se) -> dict[str, Any]:
    """Fit ``scale = c / sqrt(layer_id + k)`` (linear in 1/scale^2) and a constant; report the better one."""
    L = np.asarray(layers, float)
    s = np.asarray(scale, float)
    e = np.maximum(np.asarray(se, float), 1e-12 * np.maximum(s, 1e-300))
    y = 1 / s**2
    ey = 2 * e / s**3
    (a, b), cov = _wls(L, y, 1 / ey**2)
    w = 1 / e**2
    c_const = float(np.sum(w * s) / np.sum(w))
    chi_const = float(np.sum(((s - c_const) / e) ** 2))
    out: dict[str, Any] = {"constant": {"c": c_const, "chi2": chi_const,
                                        "max_rel_residual": float(np.max(np.abs(s / c_const - 1)))}}
    if a > 0 and np.all(L + b / a > 0):
        c, k = 1 / math.sqrt(a), b / a
        pred = c / np.sqrt(L + k)
        var_k = cov[1, 1] / a**2 + b**2 * cov[0, 0] / a**4 - 2 * b * cov[0, 1] / a**3
        out["inverse_sqrt"] = {"c": c, "k": k, "k_stderr": math.sqrt(max(var_k, 0.0)),
                               "chi2": float(np.sum(((s - pred) / e) ** 2)),
                               "max_rel_residual": float(np.max(np.abs(s / pred - 1)))}
    slope_z = a / math.sqrt(cov[0, 0]) if cov[0, 0] > 0 else (math.inf if a > 0 else 0.0)
    if "inverse_sqrt" in out and slope_z > 3:
        best = dict(out["inverse_sqrt"], model="c / sqrt(layer_id + k)")
        best["formula"] = f"{best['c']:.5g} / sqrt(layer_id + {best['k']:.3g})"
    else:
        best = dict(out["constant"], model="constant")
        best["formula"] = f"{best['c']:.5g}"
    out["best"] = best
    return out


def _exact_fit(layers, scale) -> dict[str, Any]:
    L = np.asarray(layers, float)
    s = np.asarray(scale, float)
    if np.allclose(s, s[0], rtol=1e-9):
        return {"model": "constant", "c": float(s[0]), "formula": f"{s[0]:.5g}"}
    y = 1 / s**2
    a, b = np.polyfit(L, y, 1)
    c, k = 1 / math.sqrt(a), b / a
    exact = np.allclose(c / np.sqrt(L + k), s, rtol=1e-6)
    return {"model": "c / sqrt(layer_id + k)" if exact else "other", "c": c, "k": k,
            "formula": f"{c:.5g} / sqrt(layer_id + {k:.3g})" + ("" if exact else " (approximate)")}


def depth_profiles(results: dict[str, TensorResult], snapshot, alpha: float) -> list[DepthFit]:
    """Per rule that spans >= 2 layers: pooled std per layer vs the expected std, and the fits."""
    groups: dict[str, dict[int, list[str]]] = {}
    for name, r in results.items():
        if r.layer_id is None or "std" not in r.expected or r.status in ("unmatched", "ignored", "uninitialized"):
            continue
        groups.setdefault(r.rule_where, {}).setdefault(r.layer_id, []).append(name)
    for where in list(groups):  # a rule whose parameters in one layer expect different stds: one profile per role
        per_layer = groups[where]
        if any(len({round(results[n].expected["std"], 12) for n in names}) > 1 for names in per_layer.values()):
            del groups[where]
            for names in per_layer.values():
                for n in names:
                    role = re.sub(r"(?<=\.)\d+(?=\.)", "*", n)
                    groups.setdefault(f"{where} [{role}]", {}).setdefault(results[n].layer_id, []).append(n)
    out = []
    for where, per_layer in groups.items():
        if len(per_layer) < 2:
            continue
        layers = sorted(per_layer)
        obs, exp, se, ns = [], [], [], []
        for layer in layers:
            names = per_layer[layer]
            xs = np.concatenate([as_float64(snapshot.params[n]) for n in names])
            xs = xs[np.isfinite(xs)]
            r0 = results[names[0]]
            mean, sd = r0.expected["mean"], r0.expected["std"]
            kurt = r0.expected.get("kurtosis", 3.0)
            n = max(xs.size, 1)
            s_obs = float(np.sqrt(np.mean((xs - mean) ** 2))) if xs.size else float("nan")
            # report in the formula's units: divide out truncation (std of TN(sigma) / sigma)
            sigma = r0.expected.get("sigma", sd)
            factor = sigma / sd if sd > 0 else 1.0
            obs.append(s_obs * factor)
            exp.append(sigma)
            se.append(sigma * math.sqrt((kurt - 1) / (4 * n)))
            ns.append(int(xs.size))
        obs_a, exp_a, se_a = np.array(obs), np.array(exp), np.array(se)
        if not np.all(np.isfinite(obs_a)) or np.any(obs_a <= 0):
            fit = {"best": {"model": "none", "formula": "no fit: non-finite or zero std"}}
        else:
            fit = fit_depth(layers, obs_a, se_a)
        exp_fit = _exact_fit(layers, exp_a)
        chi2 = float(np.sum(((obs_a - exp_a) / se_a) ** 2)) if np.all(np.isfinite(obs_a)) else math.inf
        p = float(st.chi2.sf(chi2, len(layers))) if math.isfinite(chi2) else 0.0
        rule_text = results[per_layer[layers[0]][0]].rule
        msg = (f"std vs depth for rule {where} ({rule_text}): observed {fit['best']['formula']}"
               + (f" (k = {fit['best']['k']:.3g} +- {fit['best']['k_stderr']:.2g})" if "k" in fit["best"] else "")
               + f", expected {exp_fit['formula']}; worst layer "
               + f"{layers[int(np.argmax(np.abs(obs_a / exp_a - 1)))]} at "
               + f"{(np.max(np.abs(obs_a / exp_a - 1))) * 100:.1f}% off; chi-square {chi2:.1f} on {len(layers)} "
               + f"layers, p={p:.3g}")
        verdict = Verdict("depth_profile", p > alpha, msg, n=int(sum(ns)), statistic=chi2, pvalue=p, alpha=alpha,
                          observed={"what": where, "fit": fit["best"]}, expected={"fit": exp_fit})
        out.append(DepthFit(rule_text, where, layers, obs, exp, se, ns, fit, exp_fit, verdict))
    return out


# -- entry points -------------------------------------------------------------------------------------------------

def audit_snapshot(snapshot, spec: S.InitSpec | str, reference=None, *, alpha: float = design.ALPHA,
                   factory: str = "", backend: str = "", seed: int | None = None) -> AuditReport:
    """Audit a built model (a ``ModelSnapshot``) against ``spec``; ``reference`` is the same
    model built eagerly without init (its buffers and ties are what a correct build has)."""
    with np.errstate(all="ignore"):
        return _audit_snapshot(snapshot, spec, reference, alpha=alpha, factory=factory, backend=backend, seed=seed)


def _audit_snapshot(snapshot, spec, reference, *, alpha, factory, backend, seed) -> AuditReport:
    t0 = time.perf_counter()
    spec = S.load(spec)
    defaults = None
    # an intent spec is judged against what the library says, not against a skipped init: "matches the framework
    # default instead" would misname an init that ran and chose that value
    if snapshot.framework_defaults and spec.kind == "code":
        try:
            defaults = S.load(snapshot.framework_defaults)
        except S.SpecError:
            defaults = None
    results: dict[str, TensorResult] = {}
    alias_of = {n: sorted(g)[0] for g in snapshot.tied for n in g}
    used: set[int] = set()
    for name, x in snapshot.params.items():
        if spec.ignored(name):
            results[name] = TensorResult(name, "parameter", "ignored", f"{name}: ignored by the spec",
                                         tuple(np.asarray(x).shape))
            continue
        rule = spec.rule_for(name, snapshot.module_types.get(name))
        if rule is not None:
            used.add(rule.index)
        results[name] = check_parameter(name, x, snapshot, spec, defaults, alpha)
        if alias_of.get(name, name) != name:
            results[name].aliases = sorted(g for g in snapshot.tied if name in g)[0] - {name}
            results[name].aliases = sorted(results[name].aliases)
    model_checks = check_identical(results, snapshot)
    model_checks += check_ties(snapshot, reference, spec)
    for v in model_checks:
        if v.test == "tied" and not v.passed:
            for n in v.observed["names"]:
                if n in results and results[n].status == "pass":
                    _restatus(results[n], "tie_broken", v.message)
    model_checks += check_rules_used(spec, used)
    for name, x in snapshot.buffers.items():
        if spec.ignored(name):
            continue
        results[name] = check_buffer(name, x, snapshot, reference)
    depth = depth_profiles(results, snapshot, alpha)
    notes = []
    same = [r.name for r in results.values() if r.expected.get("equals_framework_default")]
    if same:
        notes.append(f"{len(same)} parameters have a spec equal to the framework default, so a skipped init cannot "
                     f"be seen on them: {', '.join(same[:6])}" + (" ..." if len(same) > 6 else ""))
    report = AuditReport(spec.name, spec.origin, factory, backend, snapshot.device_init, snapshot.init_method,
                         snapshot.dtype, seed, alpha, list(results.values()), depth, model_checks,
                         config=dict(snapshot.config), notes=notes, spec_kind=spec.kind,
                         spec_sources=list(spec.sources))
    report.timings["audit_s"] = time.perf_counter() - t0
    return report


def build_snapshots(factory, *, backend: str = "torch:cpu", device_init: str = "eager", init: str = "auto",
                    config: dict | None = None, seed: int | None = 0, dtype: str = "float32", adapter=None):
    """Build ``factory(**config)`` on ``backend`` as ``device_init`` says, and a fresh eager build without init (the
    reference whose buffers and ties a correct build has; ``None`` when it cannot be built).

    Returns ``(snapshot, reference, timings, backend_spec)``. A factory that raises is a :class:`FactoryError` naming
    the factory, the backend, the mode and the cause."""
    from conformance.backends import registry
    from conformance.backends.base import UnsupportedOperation

    from .factory import FactoryError, name_of, resolve

    label = name_of(factory)
    fn = resolve(factory) if isinstance(factory, str) else factory
    b = adapter if adapter is not None else registry.resolve(backend)
    b.require("models")
    config = dict(config or {})
    t0 = time.perf_counter()
    if seed is not None:
        b.seed(seed)
    try:
        snap = b.build_model(fn, device_init=device_init, init=init, dtype=dtype, **config)
    except (UnsupportedOperation, FactoryError, S.SpecError):
        raise
    except Exception as exc:  # noqa: BLE001 - name the factory and the cause
        raise FactoryError(f"factory {label!r} failed on {b.spec} ({device_init} init, config {config}): "
                           f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}") from exc
    t1 = time.perf_counter()
    reference = None
    if callable(fn) and snap.device_init != "given":
        try:
            reference = b.build_model(fn, device_init="eager", init="none", dtype=dtype, **config)
        except Exception:  # noqa: BLE001 - no reference: buffers and ties are then only checked against the spec
            reference = None
    t2 = time.perf_counter()
    return snap, reference, {"build_s": t1 - t0, "reference_s": t2 - t1}, b.spec


def audit(factory, spec: S.InitSpec | str, *, backend: str = "torch:cpu", device_init: str = "eager",
          init: str = "auto", config: dict | None = None, seed: int | None = 0, dtype: str = "float32",
          alpha: float = design.ALPHA, adapter=None) -> AuditReport:
    """Build ``factory(**config)`` on ``backend`` and audit it against ``spec`` (a built-in name, a TOML path or an
    :class:`InitSpec`). ``factory``: a callable, ``"package.module:callable"`` or an already built model."""
    from .factory import name_of

    spec_obj = S.load(spec)
    snap, reference, timings, where = build_snapshots(factory, backend=backend, device_init=device_init, init=init,
                                                      config=config, seed=seed, dtype=dtype, adapter=adapter)
    return judge(snap, reference, spec_obj, timings, alpha=alpha, factory=name_of(factory), backend=where, seed=seed)


def judge(snap, reference, spec: S.InitSpec | str, timings: dict, *, alpha: float = design.ALPHA, factory: str = "",
          backend: str = "", seed: int | None = None) -> AuditReport:
    """:func:`audit_snapshot` plus the build timings and the note on a missing reference."""
    report = audit_snapshot(snap, spec, reference, alpha=alpha, factory=factory, backend=backend, seed=seed)
    report.timings.update(timings)
    if reference is None:
        report.notes.append("no freshly built reference: buffers were only checked for poison and non-finite values")
    return report
