"""Spec-free init scan of Hugging Face ``transformers`` models: five checks that need no init spec.

Statistics and verdicts only: no framework is imported here. The models are built by
:mod:`conformance.backends.torch.hf_probe`, which hands over an ``HFProbe`` of numpy arrays and
:class:`~conformance.backends.base.ModelSnapshot` objects (its docstring says exactly how each is built).

The checks (``CHECKS``), each on the model built as users build it (``eager``: ``from_config``) and, where it says
so, on the library's meta-device path (``meta``: meta build, ``to_empty``, poison, ``init_weights()``):

``a`` torch default left in place (eager). For each parameter *role* (the name with layer indices replaced by
    ``*``, pooled over layers), the values ``from_config`` gave are compared with what the model's own
    ``_init_weights`` writes (``model_draws``) and with the module's own default (``default_draws``: constructor,
    i.e. torch ``reset_parameters``). Elements ``_init_weights`` writes with a deterministic value (equal in
    every draw: ones, zeros, ``log(arange)``) must equal it exactly (``rtol`` :data:`BUFFER_RTOL`; no statistics).
    Elements it writes at random: two-sample Kolmogorov-Smirnov test of eager against ``_init_weights``
    (``scipy.stats.ks_2samp``, asymptotic p-value); a rejection is a finding, labelled "left at the module
    default" when eager is not rejected against the default, else "matches neither". Elements ``_init_weights``
    never writes: a finding when their value is random (it differs between two builds with different seeds: a
    torch default the model's init does not replace); deterministic values (ones, zeros, ``log(arange)``) are the
    module's design and not flagged ("not touched by design"; check b still sees them if the meta path leaves
    them unwritten).
``b`` never written: an eager or meta parameter element equal to the poison value, non-finite, or larger in
    magnitude than :data:`HUGE` (uninitialized memory); a buffer element equal to the poison (eager: any buffer;
    meta: persistent buffers, the non-persistent ones are check ``e``). A meta path that raises is a finding too.
``c`` bit-identical parameters: distinct (non-aliased) parameters with the same bytes, in eager and in meta.
    Constant tensors and deterministic ones (equal across seeds) are ignored, and so are declared ties (check d).
``d`` ties: every ``{target: source}`` the model declares (``_tied_weights_keys`` expanded, plus output -> input
    embeddings when ``tie_word_embeddings``) must share storage after ``from_config`` and after the meta path.
``e`` non-persistent buffers (rotary ``inv_freq``, ``embed_scale``, masks) after the meta path must equal those of
    a freshly built model: same shape and dtype, values within ``rtol`` :data:`BUFFER_RTOL` (integers exactly).

False alarms: only check ``a`` is statistical. Its one test per role (eager versus ``_init_weights``) compares two
independent samples of the same procedure when the model is correct, so it rejects with probability at most
``alpha``; the other KS tests only label a finding. ``alpha`` is :data:`conformance.stats.design.ALPHA`
(``FWER / TEST_BUDGET`` = 1e-3 / 10,000 = 1e-7): a scan with at most ``TEST_BUDGET`` role tests raises a false
alarm with probability at most ``FWER`` (Bonferroni); the report counts the tests and prints ``tests * alpha``.
Both samples are position-matched (the same layers and tensors, ``draws`` copies on the reference side), so each is
a stratified sample of the same mixture: the spread of its empirical CDF is at most that of an i.i.d. sample and
the asymptotic KS p-value is conservative. Roles with fewer than :data:`MIN_VALUES` values are not tested (noted).
The KS distance a test detects is ``sqrt(-ln(alpha/2)/2) * sqrt(1/m + 1/n)`` (0.055 for m = 4,096 eager values and
n = 8,192 reference values; 0.31 for 128 and 256). The distance between the library's usual ``normal(0, 0.02)``
and torch's Linear default ``kaiming_uniform(a=sqrt(5))`` is 0.40, 0.32, 0.26, 0.20 at fan-in 16, 64, 128, 256 (the
shrunk models' widths); it is smallest, 0.057, near fan-in 833 where both have std 0.02. Checks b-e are exact.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from ..stats.design import ALPHA, FWER, TEST_BUDGET

if TYPE_CHECKING:  # pragma: no cover
    from conformance.backends.base import ModelSnapshot
    from conformance.backends.torch.hf_probe import HFProbe

SCHEMA_VERSION = 1
#: The checks, in report order, and what each finds.
CHECKS: dict[str, str] = {
    "a": "parameter left at the torch module default although the model defines its own init",
    "b": "parameter or buffer never written (poison, non-finite or garbage)",
    "c": "bit-identical parameters",
    "d": "declared tie not aliased",
    "e": "non-persistent buffer differs from a fresh model after the meta path",
}
#: Fewest eager values of a role for the two-sample test.
MIN_VALUES = 64
#: A parameter element larger than this in magnitude is garbage (no init scheme writes such a value).
HUGE = 1e6
#: Relative tolerance of check e on floating buffers (recomputation may round differently in the last bits).
BUFFER_RTOL = 1e-5


@dataclass
class Finding:
    """One problem: which check, on which build path, which tensors, a one-line message, the numbers."""

    check: str
    path: str  # "eager" (from_config) or "meta"
    names: list[str]
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"[{self.check}] {self.path}: {self.message}"


@dataclass
class FamilyResult:
    """The scan of one family (or model): covered with findings, or skipped with a precise reason."""

    family: str
    status: str  # "covered" | "skipped"
    reason: str = ""
    stage: str = ""
    model_class: str = ""
    n_params: int = 0
    findings: list[Finding] = field(default_factory=list)
    tests: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    shrunk: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(CHECKS, 0)
        for f in self.findings:
            out[f.check] += 1
        return out

    def flagged(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    def line(self) -> str:
        if self.status == "skipped":
            return f"skipped  {self.family}: {self.reason}"
        counts = self.counts()
        what = "clean" if not self.findings else "findings " + " ".join(f"{k}={v}" for k, v in counts.items() if v)
        cls = self.model_class.rsplit(".", 1)[-1]
        return f"covered  {self.family} ({cls}, {self.n_params:,} params, {self.seconds:.1f} s): {what}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["counts"] = self.counts()
        return _jsonable(d)


@dataclass
class ScanReport:
    """Every family's result and the run's design numbers."""

    families: list[FamilyResult]
    transformers: str | None = None
    seed: int = 0
    max_params: int | None = None
    alpha: float = ALPHA
    seconds: float = 0.0

    @property
    def covered(self) -> list[FamilyResult]:
        return [f for f in self.families if f.status == "covered"]

    @property
    def skipped(self) -> list[FamilyResult]:
        return [f for f in self.families if f.status == "skipped"]

    @property
    def tests(self) -> int:
        return sum(f.tests for f in self.families)

    @property
    def findings(self) -> list[tuple[str, Finding]]:
        return [(r.family, f) for r in self.families for f in r.findings]

    def skip_reasons(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.skipped:
            out.setdefault(r.stage or "other", []).append(r.family)
        return out

    def summary_lines(self) -> list[str]:
        lines = [f"{len(self.covered)} families covered, {len(self.skipped)} skipped"
                 + (f" (transformers {self.transformers})" if self.transformers else "")]
        for stage, fams in sorted(self.skip_reasons().items(), key=lambda kv: -len(kv[1])):
            lines.append(f"  skipped, {stage}: {len(fams)} ({', '.join(fams)})")
        for check, title in CHECKS.items():
            hits = [(fam, f) for fam, f in self.findings if f.check == check]
            fams = sorted({fam for fam, _ in hits})
            lines.append(f"  check {check} ({title}): {len(hits)} finding(s) in {len(fams)} famil"
                         f"{'y' if len(fams) == 1 else 'ies'}" + (f": {', '.join(fams)}" if fams else ""))
        bound = self.tests * self.alpha
        lines.append(f"  statistical tests (check a): {self.tests} at alpha {self.alpha:g} each; false-alarm "
                     f"bound {bound:.2g} (design FWER {FWER:g} for up to {TEST_BUDGET} tests)")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({
            "schema_version": SCHEMA_VERSION, "transformers": self.transformers, "seed": self.seed,
            "max_params": self.max_params, "alpha": self.alpha, "fwer": FWER, "test_budget": TEST_BUDGET,
            "tests": self.tests, "seconds": self.seconds, "checks": CHECKS,
            "covered": len(self.covered), "skipped": len(self.skipped), "skip_reasons": self.skip_reasons(),
            "findings_per_check": {c: sum(1 for _, f in self.findings if f.check == c) for c in CHECKS},
            "families": [f.to_dict() for f in self.families]})


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# -- helpers -----------------------------------------------------------------------------------------------------

_INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)")


def role(name: str) -> str:
    """``model.layers.3.mlp.up_proj.weight`` -> ``model.layers.*.mlp.up_proj.weight`` (experts too)."""
    return _INDEX.sub("*", name)


def _f64(a) -> np.ndarray:
    return np.asarray(a).astype(np.float64).ravel()


def _is_float(a) -> bool:
    return np.asarray(a).dtype.kind == "f" or str(np.asarray(a).dtype) == "bfloat16"


def _poisoned(x: np.ndarray, poison: float) -> np.ndarray:
    """Elements that are the poison or derived from it (non-finite or of the poison's magnitude)."""
    return ~np.isfinite(x) | (np.abs(x) >= abs(poison) / 1e8)


def _primary(snap: ModelSnapshot) -> list[str]:
    """Parameter names with one name per tied group (the first in sorted order)."""
    drop = set()
    for group in snap.tied:
        drop |= set(sorted(group)[1:])
    return [n for n in snap.params if n not in drop]


def _aliased(snap: ModelSnapshot, a: str, b: str) -> bool:
    return any(a in g and b in g for g in snap.tied)


def _ks(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    res = stats.ks_2samp(x, y, method="asymp")
    return float(res.statistic), float(res.pvalue)


def ks_critical(m: int, n: int, alpha: float = ALPHA) -> float:
    """The KS distance the two-sample test detects at ``alpha`` (asymptotic)."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt(1 / m + 1 / n)


def _stat(x: np.ndarray) -> dict[str, float]:
    return {"n": int(x.size), "mean": float(x.mean()) if x.size else 0.0, "std": float(x.std()) if x.size else 0.0}


# -- check a -----------------------------------------------------------------------------------------------------

def _at_default(obs: np.ndarray, obs2: np.ndarray, default: list[np.ndarray], alpha: float) -> bool:
    """Whether ``obs`` (``obs2``: the same build with the next seed) looks like the module default: equal to a
    deterministic default, or random and not rejected against the default draws by KS (a label, not a verdict)."""
    if not default:
        return False
    if all(np.array_equal(d, default[0]) for d in default[1:]):
        return bool(np.array_equal(obs, default[0]))
    return bool(np.any(obs != obs2)) and _ks(obs, np.concatenate(default))[1] > alpha


def check_default_init(probe: HFProbe, alpha: float = ALPHA) -> tuple[list[Finding], int, list[str]]:
    """Check a (see the module docs): ``(findings, statistical tests run, notes)``."""
    snap, snap2 = probe.eager, probe.eager2
    roles: dict[str, list[str]] = {}
    for name in _primary(snap):
        if _is_float(snap.params[name]):
            roles.setdefault(role(name), []).append(name)
    findings, notes, tests = [], [], 0
    for r, names in roles.items():
        obs = np.concatenate([_f64(snap.params[n]) for n in names])
        obs2 = np.concatenate([_f64(snap2.params[n]) for n in names])
        model = [np.concatenate([_f64(d[n]) for n in names]) for d in probe.model_draws]
        default = [np.concatenate([_f64(d[n]) for n in names]) for d in probe.default_draws]
        if not model:
            continue
        broken = _poisoned(obs, probe.poison)  # never written in eager: check b's
        untouched = np.logical_or.reduce([_poisoned(m, probe.poison) for m in model])
        u = untouched & ~broken
        if u.any():
            random = bool(np.any(obs[u] != obs2[u]))
            if random:
                d_u = np.concatenate([d[u] for d in default])
                ev = {"role": r, "untouched_elements": int(u.sum()), "observed": _stat(obs[u]),
                      "default": _stat(d_u)}
                msg = (f"{r}: {int(u.sum())} element(s) stay at the module default (random: std "
                       f"{obs[u].std():.4g}); the model's _init_weights never writes them")
                if obs[u].size >= MIN_VALUES:
                    dist, p = _ks(obs[u], d_u)
                    ev.update(ks_vs_default=dist, p_vs_default=p)
                    msg += f" (KS vs the module default {dist:.3g}, p={p:.3g})"
                findings.append(Finding("a", "eager", names, msg, ev))
            else:
                notes.append(f"a: {r}: {int(u.sum())} deterministic element(s) not written by _init_weights "
                             "(module design, not flagged)")
        t = ~untouched & ~broken
        o_t = obs[t]
        if not o_t.size:
            continue
        if len(model) > 1 and all(np.array_equal(m[t], model[0][t]) for m in model[1:]):
            # _init_weights writes a deterministic value (ones, zeros, log(arange)): compare exactly, no test
            want = model[0][t]
            if np.allclose(o_t, want, rtol=BUFFER_RTOL, atol=0.0, equal_nan=True):
                continue
            kind = ("left at the module default" if _at_default(o_t, obs2[t], [d[t] for d in default], alpha)
                    else "differs from _init_weights")
            bad = int(np.sum(~np.isclose(o_t, want, rtol=BUFFER_RTOL, atol=0.0, equal_nan=True)))
            findings.append(Finding("a", "eager", names, f"{r}: {kind}: {bad} of {o_t.size} element(s) differ from "
                                    f"the deterministic value _init_weights writes (max abs diff "
                                    f"{float(np.max(np.abs(o_t - want))):.4g})",
                                    {"role": r, "differing": bad, "n": int(o_t.size), "observed": _stat(o_t),
                                     "init_weights": _stat(want), "exact": True}))
            continue
        if o_t.size < MIN_VALUES:
            notes.append(f"a: {r}: {o_t.size} values < {MIN_VALUES}, not tested")
            continue
        m_t = np.concatenate([m[t] for m in model])
        dist, p = _ks(o_t, m_t)
        tests += 1
        if p > alpha:
            continue
        d_t = np.concatenate([d[t] for d in default])
        d_od, p_od = _ks(o_t, d_t)
        d_md, p_md = _ks(m_t, d_t)
        at_default = p_od > alpha
        kind = "left at the module default" if at_default else "matches neither _init_weights nor the default"
        ev = {"role": r, "observed": _stat(o_t), "init_weights": _stat(m_t), "default": _stat(d_t),
              "ks_vs_init_weights": dist, "p_vs_init_weights": p, "ks_vs_default": d_od, "p_vs_default": p_od,
              "ks_init_weights_vs_default": d_md, "p_init_weights_vs_default": p_md, "alpha": alpha,
              "ks_critical": ks_critical(o_t.size, m_t.size, alpha)}
        msg = (f"{r}: {kind}: from_config std {o_t.std():.4g} vs _init_weights std {m_t.std():.4g} (KS {dist:.3g}, "
               f"p={p:.3g}) and module default std {d_t.std():.4g} (KS {d_od:.3g}, p={p_od:.3g}), n={o_t.size}")
        findings.append(Finding("a", "eager", names, msg, ev))
    return findings, tests, notes


# -- check b -----------------------------------------------------------------------------------------------------

def _unwritten(snap: ModelSnapshot, path: str, poison: float, buffers: Iterable[str]) -> list[Finding]:
    out = []
    for name in _primary(snap):
        a = snap.params[name]
        if not _is_float(a):
            continue
        x = _f64(a)
        n_poison = int(np.sum(x == poison))
        nonfinite = int(np.sum(~np.isfinite(x)))
        huge = int(np.sum(np.isfinite(x) & (np.abs(x) > HUGE) & (x != poison)))
        if n_poison or nonfinite or huge:
            parts = [f"{k} {v}" for k, v in (("poison", n_poison), ("non-finite", nonfinite),
                                               (f"|x|>{HUGE:g}", huge)) if v]
            out.append(Finding("b", path, [name], f"{name}: {', '.join(parts)} of {x.size} element(s) never "
                               "written", {"poison": n_poison, "nonfinite": nonfinite, "huge": huge, "n": x.size}))
    for name in buffers:
        a = snap.buffers[name]
        if not _is_float(a):
            continue
        x = _f64(a)
        n_poison = int(np.sum(x == poison))
        if n_poison:
            kind = "persistent " if snap.persistent.get(name, True) else ""
            out.append(Finding("b", path, [name], f"{kind}buffer {name}: {n_poison} of {x.size} element(s) still "
                               "the poison (never written)", {"poison": n_poison, "n": x.size}))
    return out


def check_unwritten(probe: HFProbe) -> list[Finding]:
    """Check b (see the module docs)."""
    found = _unwritten(probe.eager, "eager", probe.poison, probe.eager.buffers)
    if probe.meta is None:
        found.append(Finding("b", "meta", [], f"the meta-device path fails: {probe.meta_error}",
                             {"error": probe.meta_error}))
        return found
    persistent = [n for n in probe.meta.buffers if probe.meta.persistent.get(n, True)]
    return found + _unwritten(probe.meta, "meta", probe.poison, persistent)


# -- check c -----------------------------------------------------------------------------------------------------

def _identical(snap: ModelSnapshot, path: str, probe: HFProbe) -> list[Finding]:
    ref, ref2 = probe.eager, probe.eager2
    groups: dict[tuple, list[str]] = {}
    for name in _primary(snap):
        a = np.asarray(snap.params[name])
        if a.size < 2 or name not in ref.params or name not in ref2.params:
            continue
        flat = a.ravel()
        if np.all(flat == flat[0]) or (_is_float(a) and _poisoned(_f64(a), probe.poison).any()):
            continue  # constant, or never written (check b)
        if np.array_equal(np.asarray(ref.params[name]), np.asarray(ref2.params[name])):
            continue  # deterministic by construction: equal across seeds, so equal across layers by design
        groups.setdefault((a.dtype.str, a.shape, a.tobytes()), []).append(name)
    ties = {frozenset(kv) for kv in probe.expected_ties.items()}
    out = []
    for names in groups.values():
        if len(names) < 2:
            continue
        if len(names) == 2 and frozenset(names) in ties:
            continue  # a declared tie that is copied instead of aliased: check d
        shape = tuple(np.asarray(snap.params[names[0]]).shape)
        out.append(Finding("c", path, sorted(names), f"{len(names)} distinct parameters hold bit-identical random "
                           f"values {shape}: {', '.join(sorted(names))}", {"shape": list(shape)}))
    return out


def check_identical(probe: HFProbe) -> list[Finding]:
    """Check c (see the module docs)."""
    found = _identical(probe.eager, "eager", probe)
    if probe.meta is not None:
        found += _identical(probe.meta, "meta", probe)
    return found


# -- check d -----------------------------------------------------------------------------------------------------

def _ties(snap: ModelSnapshot, path: str, ties: dict[str, str], config_only: Iterable[str] = ()) -> list[Finding]:
    out, config_only = [], set(config_only)
    for target, source in ties.items():
        how = ("config.tie_word_embeddings only: no _tied_weights_keys names it" if target in config_only
               else "_tied_weights_keys")
        if target not in snap.params or source not in snap.params:
            missing = [n for n in (target, source) if n not in snap.params]
            out.append(Finding("d", path, [target, source], f"declared tie {target} -> {source} names no "
                               f"parameter {', '.join(missing)}", {"missing": missing}))
            continue
        if _aliased(snap, target, source):
            continue
        a, b = np.asarray(snap.params[target]), np.asarray(snap.params[source])
        same = a.shape == b.shape and np.array_equal(a, b)
        state = "bit-identical copies" if same else "different values"
        out.append(Finding("d", path, [target, source], f"{target} is declared tied to {source} ({how}) but they "
                           f"do not share storage ({state})", {"equal_values": bool(same), "declared_by": how,
                                                               "shapes": [list(a.shape), list(b.shape)]}))
    return out


def check_ties(probe: HFProbe) -> list[Finding]:
    """Check d (see the module docs)."""
    found = _ties(probe.eager, "eager", probe.expected_ties, probe.config_only_ties)
    if probe.meta is not None:
        found += _ties(probe.meta, "meta", probe.expected_ties, probe.config_only_ties)
    return found


# -- check e -----------------------------------------------------------------------------------------------------

def check_buffers(probe: HFProbe) -> list[Finding]:
    """Check e (see the module docs)."""
    if probe.meta is None:
        return []
    fresh, meta, out = probe.eager, probe.meta, []
    for name, want in fresh.buffers.items():
        if fresh.persistent.get(name, True):
            continue
        if name not in meta.buffers:
            out.append(Finding("e", "meta", [name], f"non-persistent buffer {name} is missing after the meta path"))
            continue
        want, got = np.asarray(want), np.asarray(meta.buffers[name])
        if want.shape != got.shape or want.dtype != got.dtype:
            out.append(Finding("e", "meta", [name], f"non-persistent buffer {name}: {got.dtype}{list(got.shape)} "
                               f"after the meta path, {want.dtype}{list(want.shape)} fresh"))
            continue
        if _is_float(want):
            w, g = _f64(want), _f64(got)
            ok = np.isclose(g, w, rtol=BUFFER_RTOL, atol=0.0, equal_nan=True)
        else:
            w, g = want.ravel(), got.ravel()
            ok = w == g
        if ok.all():
            continue
        bad = int((~ok).sum())
        ev = {"differing": bad, "n": int(ok.size)}
        msg = f"non-persistent buffer {name}: {bad} of {ok.size} element(s) differ from a fresh model"
        if _is_float(want):
            poison = int(np.sum(g == probe.poison))
            fin = ~ok & np.isfinite(g) & np.isfinite(w)
            rel = float(np.max(np.abs(g[fin] - w[fin]) / np.maximum(np.abs(w[fin]), 1e-30))) if fin.any() else None
            ev.update(poison=poison, max_rel_diff=rel)
            msg += f" ({poison} still the poison: not recomputed)" if poison else f" (max rel. diff {rel:.3g})"
        out.append(Finding("e", "meta", [name], msg, ev))
    return out


# -- driving -----------------------------------------------------------------------------------------------------

def scan_probe(probe: HFProbe, alpha: float = ALPHA) -> FamilyResult:
    """Run the five checks on one probe."""
    t0 = time.perf_counter()
    a, tests, notes = check_default_init(probe, alpha)
    findings = a + check_unwritten(probe) + check_identical(probe) + check_ties(probe) + check_buffers(probe)
    return FamilyResult(family=probe.name, status="covered", model_class=probe.model_class,
                        n_params=probe.n_params, findings=findings, tests=tests, notes=notes,
                        seconds=sum(probe.seconds.values()) + time.perf_counter() - t0, shrunk=probe.shrunk)


def scan_model(cls, config, *, name: str = "", seed: int = 0, max_params: int | None = None,
               alpha: float = ALPHA) -> FamilyResult:
    """Scan any ``PreTrainedModel`` class built from ``config`` (a skip is a ``skipped`` result)."""
    from conformance.backends.torch import hf_probe

    t0 = time.perf_counter()
    try:
        probe = hf_probe.probe(cls, config, name=name or cls.__name__, seed=seed, max_params=max_params)
    except hf_probe.ProbeSkip as exc:
        return FamilyResult(family=name or cls.__name__, status="skipped", reason=str(exc), stage=exc.stage,
                            seconds=time.perf_counter() - t0)
    return scan_probe(probe, alpha)


def scan_family(model_type: str, *, seed: int = 0, max_params: int | None = None,
                alpha: float = ALPHA) -> FamilyResult:
    """Shrink, build and scan one causal-LM family of the installed transformers."""
    from conformance.backends.torch import hf_probe

    t0 = time.perf_counter()
    try:
        probe = hf_probe.probe_family(model_type, seed=seed, max_params=max_params)
    except hf_probe.ProbeSkip as exc:
        return FamilyResult(family=model_type, status="skipped", reason=str(exc), stage=exc.stage,
                            seconds=time.perf_counter() - t0)
    result = scan_probe(probe, alpha)
    result.seconds = time.perf_counter() - t0
    return result


def families() -> list[str]:
    """Every model type of the installed transformers' causal-LM auto mapping."""
    from conformance.backends.torch import hf_probe

    return list(hf_probe.causal_lm_families())


def environment() -> tuple[bool, str | None, str]:
    """``(usable, transformers version, reason)``."""
    from conformance.backends.torch import hf_probe

    return hf_probe.environment()


def scan(names: Iterable[str] | None = None, *, seed: int = 0, max_params: int | None = 2_000_000,
         alpha: float = ALPHA, progress: Callable[[FamilyResult], None] | None = None) -> ScanReport:
    """Scan ``names`` (default: every causal-LM family); ``progress`` gets each result as it is done."""
    ok, version, reason = environment()
    if not ok:
        raise RuntimeError(reason)
    t0 = time.perf_counter()
    results = []
    for model_type in (list(names) if names is not None else families()):
        result = scan_family(model_type, seed=seed, max_params=max_params, alpha=alpha)
        results.append(result)
        if progress is not None:
            progress(result)
    return ScanReport(families=results, transformers=version, seed=seed, max_params=max_params, alpha=alpha,
                      seconds=time.perf_counter() - t0)
