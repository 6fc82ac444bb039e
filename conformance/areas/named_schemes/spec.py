"""Named initializers: what the name means in the literature (canonical) and what each framework documents.

Every row of the named-scheme table is a *canonical scheme* (He, Glorot, LeCun, truncated normal) and a
*framework entry*: the framework's own initializer of that name called with its default arguments. Each entry
is checked twice against the same draw:

* **canonical**: the definition in the paper (:data:`CANONICAL`), with the family the name says (``normal``:
  an untruncated Gaussian; ``uniform``: symmetric uniform) and the variance the paper states;
* **documented**: the framework's own documentation (:class:`Entry.documented`, quoted with its source).

Where the framework's docs declare a formula that differs from the canonical one, the entry carries a
``convention`` sentence: the canonical battery is then *expected* to fail (the report shows it as a documented
convention difference); a divergence from the framework's own docs is always a failure.

Fans are those of a weight in the canonical layout ``(out, in, *kernel)``; each adapter translates the layout
(see :mod:`conformance.backends.layouts`), so ``fan_in`` and ``fan_out`` below are the layer's true fans.

Sources (quoted in each entry):

* He et al. 2015, "Delving Deep into Rectifiers", eq. (10): weights N(0, 2/n_l), n_l = k^2 c = fan_in.
* Glorot & Bengio 2010, "Understanding the difficulty...", eq. (16): U[-sqrt(6/(n_j + n_j+1)), +...];
  Var = 2/(fan_in + fan_out) (eq. 12).
* LeCun et al. 1998, "Efficient BackProp", section 4.6: std = m^(-1/2), m = fan_in.
* Truncated normal (e.g. BERT, ViT): N(0, sigma^2) truncated at two standard deviations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from conformance.areas.init_schemes.fans import fans
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


def _he_std(fi, fo):
    return math.sqrt(2.0 / fi)


def _glorot_std(fi, fo):
    return math.sqrt(2.0 / (fi + fo))


def _lecun_std(fi, fo):
    return math.sqrt(1.0 / fi)


def _unif(std_fn):
    return lambda fi, fo: math.sqrt(3.0) * std_fn(fi, fo)


def _trunc_for_std(std_fn):
    """Underlying std of a normal truncated at +-2 of itself whose std *after* truncation is ``std_fn``."""
    return lambda fi, fo: std_fn(fi, fo) / TRUNC2_STD


TN_STD = 0.02  # the std of the truncated-normal rows (BERT / ViT / GPT-style 0.02)

CANONICAL: dict[str, Canonical] = {
    "he_normal": Canonical("he_normal", Law("normal", _he_std, "N(0, 2/fan_in)"),
                           "He et al. 2015, eq. (10): zero-mean Gaussian, std sqrt(2/n_l), n_l = fan_in"),
    "he_uniform": Canonical("he_uniform", Law("uniform", _unif(_he_std), "U(+-sqrt(6/fan_in))"),
                            "He et al. 2015 variance 2/fan_in, uniform form (bound = sqrt(3) std)"),
    "glorot_normal": Canonical("glorot_normal", Law("normal", _glorot_std, "N(0, 2/(fan_in+fan_out))"),
                               "Glorot & Bengio 2010, eq. (12): Var = 2/(n_j + n_j+1)"),
    "glorot_uniform": Canonical("glorot_uniform", Law("uniform", _unif(_glorot_std),
                                                      "U(+-sqrt(6/(fan_in+fan_out)))"),
                                "Glorot & Bengio 2010, eq. (16): U[-sqrt(6)/sqrt(n_j + n_j+1), +...]"),
    "lecun_normal": Canonical("lecun_normal", Law("normal", _lecun_std, "N(0, 1/fan_in)"),
                              "LeCun et al. 1998, Efficient BackProp 4.6: std = m^(-1/2), m = fan_in"),
    "lecun_uniform": Canonical("lecun_uniform", Law("uniform", _unif(_lecun_std), "U(+-sqrt(3/fan_in))"),
                               "LeCun et al. 1998: std = m^(-1/2), uniform form (bound = sqrt(3) std)"),
    "trunc_normal": Canonical("trunc_normal", Law("trunc_normal", lambda fi, fo: TN_STD,
                                                  f"N(0, {TN_STD}^2) truncated at +-2 std"),
                              "truncated normal (BERT, ViT): N(0, sigma^2) conditioned on [-2 sigma, 2 sigma]"),
}

_JAX_SRC = "jax.nn.initializers docstrings, jax 0.10.2 (jax/_src/nn/initializers.py)"
_JAX_VS = ("variance_scaling: 'samples are drawn from a (truncated) normal distribution with a mean of zero and a "
           "standard deviation (after truncation, if applicable) of sqrt(scale/n)'; 'the absolute values of the "
           "samples are truncated at 2 standard deviations before scaling'; uniform: 'a uniform interval ... with a "
           "mean of zero and a standard deviation of sqrt(scale/n)'")


def _jax_vs(call: str, scale: float, mode: str, dist: str, canonical_law: Law, convention: str = "") -> Entry:
    fan = {"fan_in": lambda fi, fo: fi, "fan_avg": lambda fi, fo: (fi + fo) / 2.0}[mode]

    def std(fi, fo):
        return math.sqrt(scale / fan(fi, fo))

    if dist == "truncated_normal":
        law = Law("trunc_normal", _trunc_for_std(std), f"std after truncation sqrt({scale:g}/{mode}), truncated at "
                                                          "+-2 std of the underlying normal")
    elif dist == "normal":
        law = Law("normal", std, f"N(0, {scale:g}/{mode})")
    else:
        law = Law("uniform", _unif(std), f"U(+-sqrt(3*{scale:g}/{mode}))")
    doc = (f"{call}: 'a specialization of variance_scaling where scale = {scale:g}, mode=\"{mode}\", and "
           f"distribution=\"{dist}\"'; " if call != "variance_scaling" else "") + _JAX_VS
    params = {"scale": scale, "mode": mode, "distribution": dist} if call == "variance_scaling" else {}
    return Entry("jax", call, law, doc, _JAX_SRC, params, convention)


_JAX_TRUNC = ("truncated at 2 std of the underlying normal, rescaled so that the std after truncation is the "
              "canonical one (Keras/TF convention); the canonical scheme is an untruncated Gaussian")

_MLX_SRC = "mlx.nn.init docstrings, mlx 0.32.4 (python/mlx/nn/init.py)"
_TORCH_SRC = "torch.nn.init docs, torch 2.13 (https://pytorch.org/docs/stable/nn.init.html)"

ENTRIES: dict[str, dict[str, list[Entry]]] = {
    "he_normal": {
        "jax": [_jax_vs("he_normal", 2.0, "fan_in", "truncated_normal", CANONICAL["he_normal"].law, _JAX_TRUNC),
                _jax_vs("variance_scaling", 2.0, "fan_in", "normal", CANONICAL["he_normal"].law)],
        "mlx": [Entry("mlx", "he_normal", Law("normal", _lecun_std, "N(0, gain^2/fan_in), gain = 1 by default"),
                      "he_normal: 'samples from a normal distribution with a standard deviation ... sigma = gamma / "
                      "sqrt(fan)'; the returned initializer's gain defaults to 1.0", _MLX_SRC,
                      convention="the gain defaults to 1, so the default draw has Var = 1/fan_in (LeCun's), half "
                                 "of He's 2/fan_in; pass gain=sqrt(2) for He"),
                Entry("mlx", "he_normal", Law("normal", _he_std, "N(0, gain^2/fan_in), gain = sqrt(2)"),
                      "he_normal: 'sigma = gamma / sqrt(fan)'", _MLX_SRC, params={"gain": math.sqrt(2.0)})],
        "torch": [Entry("torch", "kaiming_normal", Law("normal", _he_std, "N(0, gain^2/fan_in), gain(leaky_relu, "
                                                                          "a=0) = sqrt(2)"),
                        "kaiming_normal_: 'std = gain / sqrt(fan_mode)'; defaults a=0, mode='fan_in', "
                        "nonlinearity='leaky_relu'; calculate_gain('leaky_relu', 0) = sqrt(2/(1+0^2))", _TORCH_SRC)],
    },
    "he_uniform": {
        "jax": [_jax_vs("he_uniform", 2.0, "fan_in", "uniform", CANONICAL["he_uniform"].law)],
        "mlx": [Entry("mlx", "he_uniform", Law("uniform", _unif(_lecun_std), "U(+-gain*sqrt(3/fan_in)), gain = 1"),
                      "he_uniform: 'samples from a uniform distribution on the interval [-limit, limit] ... limit = "
                      "gamma sqrt(3.0/fan)'; gain defaults to 1.0", _MLX_SRC,
                      convention="the gain defaults to 1, so the default bound is sqrt(3/fan_in) (LeCun uniform), "
                                 "not He's sqrt(6/fan_in)")],
        "torch": [Entry("torch", "kaiming_uniform", Law("uniform", _unif(_he_std), "U(+-gain*sqrt(3/fan_in)), "
                                                                                   "gain = sqrt(2)"),
                        "kaiming_uniform_: 'bound = gain * sqrt(3 / fan_mode)'; defaults a=0, mode='fan_in', "
                        "nonlinearity='leaky_relu'", _TORCH_SRC)],
    },
    "glorot_normal": {
        "jax": [_jax_vs("glorot_normal", 1.0, "fan_avg", "truncated_normal", CANONICAL["glorot_normal"].law,
                        _JAX_TRUNC)],
        "mlx": [Entry("mlx", "glorot_normal", Law("normal", _glorot_std, "N(0, 2/(fan_in+fan_out))"),
                      "glorot_normal: 'sigma = gamma sqrt(2.0/(fan_in + fan_out))'; gain defaults to 1.0", _MLX_SRC)],
        "torch": [Entry("torch", "xavier_normal", Law("normal", _glorot_std, "N(0, 2/(fan_in+fan_out))"),
                        "xavier_normal_: 'std = gain * sqrt(2 / (fan_in + fan_out))', gain=1", _TORCH_SRC)],
    },
    "glorot_uniform": {
        "jax": [_jax_vs("glorot_uniform", 1.0, "fan_avg", "uniform", CANONICAL["glorot_uniform"].law)],
        "mlx": [Entry("mlx", "glorot_uniform", Law("uniform", _unif(_glorot_std), "U(+-sqrt(6/(fan_in+fan_out)))"),
                      "glorot_uniform: 'limit = gamma sqrt(6.0/(fan_in + fan_out))'; gain defaults to 1.0", _MLX_SRC)],
        "torch": [Entry("torch", "xavier_uniform", Law("uniform", _unif(_glorot_std), "U(+-sqrt(6/(fan_in+fan_out)))"),
                        "xavier_uniform_: 'a = gain * sqrt(6 / (fan_in + fan_out))', gain=1", _TORCH_SRC)],
    },
    "lecun_normal": {
        "jax": [_jax_vs("lecun_normal", 1.0, "fan_in", "truncated_normal", CANONICAL["lecun_normal"].law,
                        _JAX_TRUNC)],
        "torch": [Entry("torch", "kaiming_normal", Law("normal", _lecun_std, "N(0, gain^2/fan_in), gain(linear) = 1"),
                        "kaiming_normal_: 'std = gain / sqrt(fan_mode)'; calculate_gain('linear') = 1 (torch has no "
                        "lecun_* initializer: this is the spelling of LeCun normal)", _TORCH_SRC,
                        {"nonlinearity": "linear"})],
    },
    "lecun_uniform": {
        "jax": [_jax_vs("lecun_uniform", 1.0, "fan_in", "uniform", CANONICAL["lecun_uniform"].law)],
        "torch": [Entry("torch", "kaiming_uniform", Law("uniform", _unif(_lecun_std), "U(+-sqrt(3/fan_in)), "
                                                                                      "gain(linear) = 1"),
                        "kaiming_uniform_: 'bound = gain * sqrt(3 / fan_mode)'; calculate_gain('linear') = 1",
                        _TORCH_SRC, {"nonlinearity": "linear"})],
    },
    "trunc_normal": {
        "jax": [Entry("jax", "truncated_normal",
                      Law("trunc_normal", lambda fi, fo: TN_STD, f"N(0, {TN_STD}^2) truncated at +-2 stddev"),
                      "truncated_normal: 'stddev: the standard deviation of the untruncated distribution'; 'lower: "
                      "... Applied before the output is multiplied by the stddev' (defaults lower=-2.0, upper=2.0); "
                      "range 'lower * stddev < x < upper * stddev'. (Its Returns section also says 'standard "
                      "deviation stddev', which contradicts the Args section.)", _JAX_SRC, {"stddev": TN_STD})],
        "torch": [Entry("torch", "trunc_normal",
                        Law("trunc_normal", lambda fi, fo: TN_STD, f"N(0, {TN_STD}^2) truncated to [-2, 2] (absolute)",
                            trunc=2.0, absolute=True),
                        "trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0): 'a: the minimum cutoff value, b: "
                        "the maximum cutoff value' (absolute values)", _TORCH_SRC, {"std": TN_STD},
                        convention="the cutoffs a=-2, b=2 are absolute values, not multiples of std: with std=0.02 "
                                   "they sit at +-100 std and the draw is practically untruncated")],
    },
}

#: Why a framework has no entry for a scheme (shown as the skip reason and in the table).
MISSING: dict[str, str] = {
    "mlx": "mlx.nn.init (0.32.4) has he_normal, he_uniform, glorot_normal, glorot_uniform, normal, uniform, "
           "constant, identity, orthogonal, sparse: no {scheme}",
    "torch": "torch.nn.init (2.13) has no {scheme} initializer",
    "candle": "candle's Python API (candle-nn 0.4.2) exposes no initializers (candle_nn::init is Rust only)",
    "jax": "jax.nn.initializers has no {scheme}",
}


def entries_for(scheme: str, framework: str) -> list[Entry]:
    return ENTRIES.get(scheme, {}).get(framework, [])


def missing_reason(scheme: str, framework: str) -> str:
    template = MISSING.get(framework, "{framework} declares no named initializer for {scheme}")
    return template.format(scheme=scheme, framework=framework)


#: Canonical weight shapes of the table: a non-square dense layer and a convolution with distinct sizes.
SHAPES: dict[str, tuple[int, ...]] = {"dense": (384, 256), "conv2d": (64, 32, 3, 3)}


def fans_of(shape) -> tuple[int, int]:
    return fans(shape)
