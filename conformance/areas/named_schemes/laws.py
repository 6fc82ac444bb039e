"""The laws of the named-scheme table: :class:`Law` (a distribution as a formula of the fans), the canonical schemes
as the papers define them (:data:`CANONICAL`), and :class:`Entry` (one framework's initializer, how to call it and
what its docs promise). Framework entries live in ``core_entries`` (torch, JAX, MLX) and one ``<family>_entries``
module per further framework; :mod:`.spec` looks them up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from conformance.stats import reference as R

#: The constant by which a standard normal truncated to [-2, 2] has a smaller std: sqrt of its variance.
TRUNC2_STD = math.sqrt(1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / (math.erf(2.0 / math.sqrt(2.0))))


@dataclass(frozen=True)
class Law:
    """A distribution as a formula of the fans: ``family`` and a scale function of ``(fan_in, fan_out)``.

    ``family``: ``"normal"`` (scale = std), ``"uniform"`` (scale = bound b of U(-b, b)), ``"trunc_normal"``
    (scale = std of the untruncated normal, truncated at ``+-trunc * scale``; ``trunc`` may be absolute with
    ``absolute=True``), ``"uniform01"`` (U[0, scale)). ``formula`` is the human form shown in the table.
    """

    family: str
    scale: Callable[[float, float], float]
    formula: str
    trunc: float = 2.0
    absolute: bool = False

    def params(self, fan_in: float, fan_out: float) -> dict:
        s = float(self.scale(fan_in, fan_out))
        out = {"family": self.family, "scale": s}
        if self.family == "trunc_normal":
            out["bound"] = self.trunc if self.absolute else self.trunc * s
        return out

    def reference(self, fan_in: float, fan_out: float) -> R.ContinuousReference:
        s = float(self.scale(fan_in, fan_out))
        if self.family == "normal":
            return R.normal(0.0, s)
        if self.family == "uniform":
            return R.uniform(-s, s)
        if self.family == "uniform01":
            return R.uniform(0.0, s)
        if self.family == "trunc_normal":
            bound = self.trunc if self.absolute else self.trunc * s
            return R.trunc_normal(0.0, s, -bound, bound)
        raise ValueError(f"unknown family {self.family!r}")

    def std(self, fan_in: float, fan_out: float) -> float:
        """The standard deviation of the law (what a fitted std is compared with)."""
        return self.reference(fan_in, fan_out).std


@dataclass(frozen=True)
class Canonical:
    """A scheme as the literature defines it."""

    name: str
    law: Law
    source: str


@dataclass(frozen=True)
class Entry:
    """One framework's initializer for a canonical scheme: how to call it and what its docs promise."""

    framework: str
    call: str                     # the framework's name, passed to Backend.named_init
    documented: Law
    quote: str                    # the docstring / docs sentence(s) the documented law comes from
    source: str                   # URL or module path + version
    params: dict = field(default_factory=dict)
    convention: str = ""          # non-empty: the docs declare a difference from the canonical definition

    @property
    def label(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.call}({args})"


def he_std(fi, fo):
    return math.sqrt(2.0 / fi)


def glorot_std(fi, fo):
    return math.sqrt(2.0 / (fi + fo))


def lecun_std(fi, fo):
    return math.sqrt(1.0 / fi)


def unif(std_fn):
    return lambda fi, fo: math.sqrt(3.0) * std_fn(fi, fo)


def trunc_for_std(std_fn):
    """Underlying std of a normal truncated at +-2 of itself whose std *after* truncation is ``std_fn``."""
    return lambda fi, fo: std_fn(fi, fo) / TRUNC2_STD


TN_STD = 0.02  # the std of the truncated-normal rows (BERT / ViT / GPT-style 0.02)

CANONICAL: dict[str, Canonical] = {
    "he_normal": Canonical("he_normal", Law("normal", he_std, "N(0, 2/fan_in)"),
                           "He et al. 2015, eq. (10): zero-mean Gaussian, std sqrt(2/n_l), n_l = fan_in"),
    "he_uniform": Canonical("he_uniform", Law("uniform", unif(he_std), "U(+-sqrt(6/fan_in))"),
                            "He et al. 2015 variance 2/fan_in, uniform form (bound = sqrt(3) std)"),
    "glorot_normal": Canonical("glorot_normal", Law("normal", glorot_std, "N(0, 2/(fan_in+fan_out))"),
                               "Glorot & Bengio 2010, eq. (12): Var = 2/(n_j + n_j+1)"),
    "glorot_uniform": Canonical("glorot_uniform", Law("uniform", unif(glorot_std),
                                                      "U(+-sqrt(6/(fan_in+fan_out)))"),
                                "Glorot & Bengio 2010, eq. (16): U[-sqrt(6)/sqrt(n_j + n_j+1), +...]"),
    "lecun_normal": Canonical("lecun_normal", Law("normal", lecun_std, "N(0, 1/fan_in)"),
                              "LeCun et al. 1998, Efficient BackProp 4.6: std = m^(-1/2), m = fan_in"),
    "lecun_uniform": Canonical("lecun_uniform", Law("uniform", unif(lecun_std), "U(+-sqrt(3/fan_in))"),
                               "LeCun et al. 1998: std = m^(-1/2), uniform form (bound = sqrt(3) std)"),
    "trunc_normal": Canonical("trunc_normal", Law("trunc_normal", lambda fi, fo: TN_STD,
                                                  f"N(0, {TN_STD}^2) truncated at +-2 std"),
                              "truncated normal (BERT, ViT): N(0, sigma^2) conditioned on [-2 sigma, 2 sigma]"),
}
