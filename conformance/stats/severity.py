"""Severity of a failing verdict: a **defect** a user must fix, or a **deviation** the design can see but that is
smaller than what it was built to find (issue 20). Framework-free; reads verdict dicts (:meth:`Verdict.to_dict`).

The default tier fails a check on defects only; deviations are recorded and counted, and ``--strict-tier`` fails on
them too. Every rule below is one ``_RULES`` entry or one ``_judge_*`` function; each returns the verdict's kind,
its magnitude (the effect in multiples of its defect threshold, ``None`` for an exact defect with no scale) and a
one-line explanation.

Rules, with the reasoning:

* **Exact checks are defects.** Non-finite output for finite input, NaN that does not propagate, identical draws or
  layers, a seed that does not reproduce, a resume that diverges, values outside the documented support, a
  constant tensor, a wrong special value, a broken adapter contract, a crash. Every verdict test not named below
  is in this class, so a new check fails as a defect until someone argues otherwise here.
* **Scale and shift** (``mean``/``variance`` and their ``docs:``/``canonical:``/``_large`` forms). A departure is a
  defect when its estimate reaches ``T = d - z(TARGET_POWER) * se(n)``, where ``d`` is the effect the check was
  designed to detect (a shift of 0.01 std and a 1% std error at n = 1e6; for the 2^26-value checks the effects
  they detect with power 0.99, 0.00094 std and 0.066%) and ``se(n)`` the estimate's standard error: a true
  design-size defect is then called a defect with probability TARGET_POWER (0.999), and a smaller significant
  departure is a deviation. For the 2^26-value checks ``T`` lies below their significance threshold, so every
  failure of theirs is a defect.
* **Continuous goodness of fit** (``ks`` on float32/float64): a defect. At n = 1e6 KS sees distances of about
  0.0027; a float32 law that far from its reference is a different distribution (a wrong family, an ignored range).
* **16-bit laws** (``chi2`` against the reference rounded to nearest): a deviation, unless
  - the whole departure is a rounding in the wrong direction: the law is the mixture of round-to-nearest and
    round-toward-zero that :func:`conformance.stats.procedures.chi2_test` fits, its bias is at least
    :data:`ROUNDING_BIAS_CELLS` cells, and the fitted mixture leaves no significant residual (``residual_pvalue``
    above the test's alpha): every value moves by half a cell, a scale error of 2^-9 relative in bfloat16 that
    the moment tests at n = 1e6 cannot see; or
  - one value carries at least :data:`ATOM_RATIO` times its expected count with ``z >=`` :data:`ATOM_Z`
    (mass piled on one value, e.g. at a truncation bound).
  The other departures of a 16-bit law (cell-to-cell unevenness, a coarser grid near zero) keep its mean and scale
  within the design's effects; the moment, support and tail verdicts of the same record judge those.
* **Tails and outliers**: a defect in float32/float64 (mass missing beyond +-3 std, a clipped law). In 16-bit
  dtypes the tail regions (mass 3e-5 each) lie within the outermost cell or two of the grid, so a tail verdict is a
  deviation there; mass piled on an edge value is judged by the atom rule.
* **Accuracy** (``ulp``): a defect where some input misses the default tier's tolerance
  (:func:`default_tolerance`: torch.testing's per-dtype rtol with an absolute floor at the smallest normal number
  of the working precision, or the strict bound where that is looser); a deviation where every input meets it but
  some miss the correctly rounded ULP bound (the strict tier).
* **Layout** (``layout``: a strided or transposed input changes the result bitwise): a defect when the difference
  exceeds the default tolerance, a deviation when it is within it (a differently vectorised kernel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import design

DEFECT, DEVIATION = "defect", "deviation"
SEVERITIES = (DEFECT, DEVIATION)

#: A 16-bit law rounded at least this many cells toward (or away from) zero, with nothing else wrong, is a defect.
ROUNDING_BIAS_CELLS = 0.25
#: A value drawn at least ATOM_RATIO times as often as the rounded law gives it, with an excess of at least ATOM_Z
#: standard errors (so that a small cell's noise never qualifies), is an atom: a defect.
ATOM_RATIO = 3.0
ATOM_Z = 10.0

#: torch.testing.assert_close's default rtol per dtype (the tolerance users know).
RTOL = {"float16": 1e-3, "bfloat16": 1.6e-2, "float32": 1.3e-6, "float64": 1e-7}
#: The absolute floor: the smallest normal number of the precision a correct kernel computes in. float16 kernels
#: compute in float32, so a float16 result that flushes float16 subnormals to zero (faulty-sigmoid-flush) is a
#: defect, while a result off only by less than float32's smallest normal (flush-to-zero of the working precision)
#: is a deviation; bfloat16 shares float32's exponent range.
ATOL = {"float16": 2.0**-126, "bfloat16": 2.0**-126, "float32": 2.0**-126, "float64": 2.0**-1022}

_SIXTEEN = ("float16", "bfloat16")


@dataclass(frozen=True)
class Judgement:
    """The severity of one failing verdict, its kind, its magnitude and why."""

    severity: str
    kind: str
    magnitude: float | None
    explanation: str
    #: the effect in a few words ("shift -0.0115 std", "std x1.009"), empty for an exact defect
    effect: str = ""


def default_tolerance(ref, dtype: str):
    """The default tier's allowed absolute error at reference values ``ref``: ``RTOL[dtype] * |ref| + ATOL[dtype]``
    (a numpy array or float, like ``ref``)."""
    return RTOL[dtype] * abs(ref) + ATOL[dtype]


def shift_threshold(n: int, design_shift: float = design.DESIGN_SHIFT) -> float:
    """Smallest |shift in std| called a defect for a mean test of ``n`` values (see the module doc)."""
    return design_shift - design.z_power() / math.sqrt(n)


def variance_threshold(n: int, kurtosis: float, design_ratio: float = design.DESIGN_STD_RATIO) -> float:
    """Smallest |s^2 / sigma^2 - 1| called a defect for a variance test of ``n`` values."""
    return (design_ratio**2 - 1.0) - design.z_power() * math.sqrt(max(kurtosis - 1.0, 0.0) / n)


def _base(test: str) -> str:
    return test.split(":", 1)[-1]


def _exact(v: dict, dtype: str | None) -> Judgement:
    kind = _EXACT_KINDS.get(_base(v["test"]), _base(v["test"]).replace("_", " "))
    return Judgement(DEFECT, kind, None, _first_line(v))


def _first_line(v: dict) -> str:
    text = str(v.get("message", "")).strip().splitlines()
    return f"[{v['test']}] {text[0] if text else ''}"[:300]


def _judge_mean(v: dict, dtype: str | None) -> Judgement:
    shift = float(v.get("effect", {}).get("shift_in_std", math.nan))
    n = int(v.get("n") or 0)
    if _base(v["test"]) == "mean_large" or not n or not math.isfinite(shift):
        return Judgement(DEFECT, "shift", abs(shift) / (design.z_alpha() / math.sqrt(n)) if n and math.isfinite(shift)
                         else None, _first_line(v), f"{shift:+.3g} std")
    t = shift_threshold(n)
    severity = DEFECT if t <= 0 or abs(shift) >= t else DEVIATION
    return Judgement(severity, "shift", abs(shift) / t if t > 0 else None,
                     f"mean shifted by {shift:+.3g} std (defect from {t:.2g}); {_first_line(v)}",
                     f"{shift:+.3g} std")


def _judge_variance(v: dict, dtype: str | None) -> Judgement:
    ratio = float(v.get("effect", {}).get("std_ratio", math.nan))
    n = int(v.get("n") or 0)
    kurtosis = float(v.get("expected", {}).get("kurtosis", 3.0))
    if not n or not math.isfinite(ratio):
        return Judgement(DEFECT, "scale", None, _first_line(v))
    departure = abs(ratio**2 - 1.0)
    if _base(v["test"]) == "variance_large":
        se = math.sqrt(max(kurtosis - 1.0, 0.0) / n)
        return Judgement(DEFECT, "scale", departure / (design.z_alpha() * se) if se else None, _first_line(v),
                         f"std x{ratio:.4g}")
    t = variance_threshold(n, kurtosis)
    severity = DEFECT if t <= 0 or departure >= t else DEVIATION
    return Judgement(severity, "scale", departure / t if t > 0 else None,
                     f"std x{ratio:.4g} (defect from x{math.sqrt(1 + t):.4g}); {_first_line(v)}", f"std x{ratio:.4g}")


def _judge_ks(v: dict, dtype: str | None) -> Judgement:
    d = float(v.get("effect", {}).get("ks_distance", math.nan))
    n = int(v.get("n") or 0)
    crit = math.sqrt(-math.log(design.ALPHA / 2) / 2 / n) if n else math.nan
    return Judgement(DEFECT, "distribution", d / crit if math.isfinite(d) and crit > 0 else None, _first_line(v),
                     f"KS distance {d:.3g}")


def _judge_chi2(v: dict, dtype: str | None) -> Judgement:
    e = v.get("effect", {})
    alpha = v.get("alpha") or design.ALPHA
    bias = float(e.get("rounding_bias_cells", 0.0))
    if abs(bias) >= ROUNDING_BIAS_CELLS and float(e.get("residual_pvalue", 0.0)) > alpha:
        side = "toward" if bias > 0 else "away from"
        return Judgement(DEFECT, "rounding direction", abs(bias) / ROUNDING_BIAS_CELLS,
                         f"the law is rounded {abs(bias):.2f} cells {side} zero, not to nearest; {_first_line(v)}",
                         f"rounding {bias:+.2f} cells toward zero")
    ratio, z = float(e.get("atom_ratio", 0.0)), float(e.get("atom_z", 0.0))
    if ratio >= ATOM_RATIO and z >= ATOM_Z:
        return Judgement(DEFECT, "atom", ratio / ATOM_RATIO,
                         f"one value drawn x{ratio:.3g} as often as the rounded law gives it "
                         f"({float(e.get('atom_mass', 0.0)):.2g} of the sample beyond its share); {_first_line(v)}",
                         f"one value x{ratio:.3g}")
    return Judgement(DEVIATION, "16-bit sampling law", float(e.get("chi2_per_dof", 0.0)) or None,
                     f"the {dtype or '16-bit'} law differs from the reference rounded to nearest without a rounding "
                     f"bias or an atom; {_first_line(v)}", f"chi-square x{float(e.get('chi2_per_dof', 0.0)):.3g}")


def _judge_tail(v: dict, dtype: str | None) -> Judgement:
    kind = "tails" if _base(v["test"]).startswith("tail") else "outliers"
    if dtype in _SIXTEEN:
        return Judgement(DEVIATION, kind, None, f"a tail region within the outermost cells of the {dtype} grid; "
                         f"{_first_line(v)}")
    e = v.get("effect", {})
    ratio = e.get("tail_ratio")
    magnitude = None if ratio is None else max(ratio, 1 / ratio if ratio else math.inf)
    return Judgement(DEFECT, kind, magnitude if magnitude is None or math.isfinite(magnitude) else None,
                     _first_line(v), "" if ratio is None else f"x{ratio:.3g} the expected count")


def _judge_ulp(v: dict, dtype: str | None) -> Judgement:
    o = v.get("observed", {})
    outside = int(o.get("outside_default", o.get("outside", 1)))
    if outside > 0:
        worst = float(o.get("worst_default_ratio", 0.0)) or None
        return Judgement(DEFECT, "accuracy", worst,
                         f"{outside} inputs beyond the default tolerance (rtol {RTOL.get(dtype or '', '?')}); "
                         f"{_first_line(v)}", f"{outside} inputs, worst {float(o.get('worst_ulp', 0.0)):.3g} ulp")
    return Judgement(DEVIATION, "accuracy (ULP bound)", float(o.get("worst_ulp", 0.0)) or None,
                     f"within the default tolerance, beyond the correctly rounded ULP bound; {_first_line(v)}",
                     f"worst {float(o.get('worst_ulp', 0.0)):.3g} ulp")


def _judge_layout(v: dict, dtype: str | None) -> Judgement:
    o = v.get("observed", {})
    if o.get("within_default") is True:
        return Judgement(DEVIATION, "layout (last bits)", None,
                         f"a non-contiguous input changes the last bits, within the default tolerance; "
                         f"{_first_line(v)}")
    return Judgement(DEFECT, "layout", None, _first_line(v))


_RULES = {"mean": _judge_mean, "mean_large": _judge_mean, "variance": _judge_variance,
          "variance_large": _judge_variance, "ks": _judge_ks, "chi2": _judge_chi2, "tail_lower": _judge_tail,
          "tail_upper": _judge_tail, "outliers_lower": _judge_tail, "outliers_upper": _judge_tail,
          "ulp": _judge_ulp, "layout": _judge_layout}

_EXACT_KINDS = {"finite": "non-finite output", "finite_large": "non-finite output", "nan": "NaN not propagated",
                "support": "outside the support", "not_constant": "constant tensor", "distinct": "identical draws",
                "bitwise_equal": "not reproducible", "stuck_positions": "stuck elements",
                "grad_at_zero": "wrong special value", "value_at_zero": "wrong special value",
                "limit": "wrong limit", "adapter_output": "adapter contract", "sampler_output": "adapter contract"}


def judge(v: dict, dtype: str | None) -> Judgement:
    """The judgement of one FAILING verdict dict (``v["passed"]`` is False) of a check in ``dtype``."""
    return _RULES.get(_base(v["test"]), _exact)(v, dtype)


def judge_record(verdicts: list[dict], outcome: str, dtype: str | None, error: str = "") -> dict:
    """Severity fields of a record: ``severity`` (``"defect"``, ``"deviation"`` or None when nothing failed),
    ``kind``, ``magnitude`` and ``explanation`` of its worst failing verdict (a defect before a deviation; the
    larger magnitude first, an exact defect first of all). A failed or erroring check with no failing verdict (a
    crash, an exception) is a defect of kind ``crash``."""
    judged = [judge(v, dtype) for v in verdicts if not v.get("passed", True)]
    if not judged:
        if outcome in ("failed", "error", "xfailed"):  # raised instead of judging: a crash (or a known one)
            return {"severity": DEFECT, "kind": "crash", "magnitude": None,
                    "explanation": (error or outcome).strip().splitlines()[0][:300] if (error or outcome) else ""}
        return {"severity": None, "kind": "", "magnitude": None, "explanation": ""}

    def rank(j: Judgement) -> tuple:
        return (j.severity != DEFECT, j.magnitude is not None, -(j.magnitude or 0.0))

    ordered = sorted(judged, key=rank)
    worst = ordered[0]
    magnitude = worst.magnitude if worst.magnitude is None or math.isfinite(worst.magnitude) else None
    others = dict.fromkeys(f"{j.kind} {j.effect}".rstrip() for j in ordered[1:]
                           if j.severity == worst.severity and j.kind != worst.kind)
    also = f" Also: {', '.join(others)}." if others else ""
    return {"severity": worst.severity, "kind": worst.kind, "magnitude": magnitude,
            "explanation": worst.explanation + also}


def fails_tier(judgement: Judgement, strict_tier: bool) -> bool:
    """Whether a failing verdict with this judgement fails its check in the tier."""
    return strict_tier or judgement.severity == DEFECT
