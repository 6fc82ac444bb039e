"""The named-scheme entries of torch, JAX and MLX: each framework's initializer for a canonical scheme, its
documented law quoted from its docs, and why a framework has none (:data:`MISSING`)."""

from __future__ import annotations

import math

from conformance.areas.named_schemes.laws import (
    CANONICAL,
    TN_STD,
    Entry,
    Law,
    glorot_std,
    he_std,
    lecun_std,
    trunc_for_std,
    unif,
)

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
        law = Law("trunc_normal", trunc_for_std(std), f"std after truncation sqrt({scale:g}/{mode}), truncated at "
                                                          "+-2 std of the underlying normal")
    elif dist == "normal":
        law = Law("normal", std, f"N(0, {scale:g}/{mode})")
    else:
        law = Law("uniform", unif(std), f"U(+-sqrt(3*{scale:g}/{mode}))")
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
        "mlx": [Entry("mlx", "he_normal", Law("normal", lecun_std, "N(0, gain^2/fan_in), gain = 1 by default"),
                      "he_normal: 'samples from a normal distribution with a standard deviation ... sigma = gamma / "
                      "sqrt(fan)'; the returned initializer's gain defaults to 1.0", _MLX_SRC,
                      convention="the gain defaults to 1, so the default draw has Var = 1/fan_in (LeCun's), half "
                                 "of He's 2/fan_in; pass gain=sqrt(2) for He"),
                Entry("mlx", "he_normal", Law("normal", he_std, "N(0, gain^2/fan_in), gain = sqrt(2)"),
                      "he_normal: 'sigma = gamma / sqrt(fan)'", _MLX_SRC, params={"gain": math.sqrt(2.0)})],
        "torch": [Entry("torch", "kaiming_normal", Law("normal", he_std, "N(0, gain^2/fan_in), gain(leaky_relu, "
                                                                          "a=0) = sqrt(2)"),
                        "kaiming_normal_: 'std = gain / sqrt(fan_mode)'; defaults a=0, mode='fan_in', "
                        "nonlinearity='leaky_relu'; calculate_gain('leaky_relu', 0) = sqrt(2/(1+0^2))", _TORCH_SRC)],
    },
    "he_uniform": {
        "jax": [_jax_vs("he_uniform", 2.0, "fan_in", "uniform", CANONICAL["he_uniform"].law)],
        "mlx": [Entry("mlx", "he_uniform", Law("uniform", unif(lecun_std), "U(+-gain*sqrt(3/fan_in)), gain = 1"),
                      "he_uniform: 'samples from a uniform distribution on the interval [-limit, limit] ... limit = "
                      "gamma sqrt(3.0/fan)'; gain defaults to 1.0", _MLX_SRC,
                      convention="the gain defaults to 1, so the default bound is sqrt(3/fan_in) (LeCun uniform), "
                                 "not He's sqrt(6/fan_in)")],
        "torch": [Entry("torch", "kaiming_uniform", Law("uniform", unif(he_std), "U(+-gain*sqrt(3/fan_in)), "
                                                                                   "gain = sqrt(2)"),
                        "kaiming_uniform_: 'bound = gain * sqrt(3 / fan_mode)'; defaults a=0, mode='fan_in', "
                        "nonlinearity='leaky_relu'", _TORCH_SRC)],
    },
    "glorot_normal": {
        "jax": [_jax_vs("glorot_normal", 1.0, "fan_avg", "truncated_normal", CANONICAL["glorot_normal"].law,
                        _JAX_TRUNC)],
        "mlx": [Entry("mlx", "glorot_normal", Law("normal", glorot_std, "N(0, 2/(fan_in+fan_out))"),
                      "glorot_normal: 'sigma = gamma sqrt(2.0/(fan_in + fan_out))'; gain defaults to 1.0", _MLX_SRC)],
        "torch": [Entry("torch", "xavier_normal", Law("normal", glorot_std, "N(0, 2/(fan_in+fan_out))"),
                        "xavier_normal_: 'std = gain * sqrt(2 / (fan_in + fan_out))', gain=1", _TORCH_SRC)],
    },
    "glorot_uniform": {
        "jax": [_jax_vs("glorot_uniform", 1.0, "fan_avg", "uniform", CANONICAL["glorot_uniform"].law)],
        "mlx": [Entry("mlx", "glorot_uniform", Law("uniform", unif(glorot_std), "U(+-sqrt(6/(fan_in+fan_out)))"),
                      "glorot_uniform: 'limit = gamma sqrt(6.0/(fan_in + fan_out))'; gain defaults to 1.0", _MLX_SRC)],
        "torch": [Entry("torch", "xavier_uniform", Law("uniform", unif(glorot_std), "U(+-sqrt(6/(fan_in+fan_out)))"),
                        "xavier_uniform_: 'a = gain * sqrt(6 / (fan_in + fan_out))', gain=1", _TORCH_SRC)],
    },
    "lecun_normal": {
        "jax": [_jax_vs("lecun_normal", 1.0, "fan_in", "truncated_normal", CANONICAL["lecun_normal"].law,
                        _JAX_TRUNC)],
        "torch": [Entry("torch", "kaiming_normal", Law("normal", lecun_std, "N(0, gain^2/fan_in), gain(linear) = 1"),
                        "kaiming_normal_: 'std = gain / sqrt(fan_mode)'; calculate_gain('linear') = 1 (torch has no "
                        "lecun_* initializer: this is the spelling of LeCun normal)", _TORCH_SRC,
                        {"nonlinearity": "linear"})],
    },
    "lecun_uniform": {
        "jax": [_jax_vs("lecun_uniform", 1.0, "fan_in", "uniform", CANONICAL["lecun_uniform"].law)],
        "torch": [Entry("torch", "kaiming_uniform", Law("uniform", unif(lecun_std), "U(+-sqrt(3/fan_in)), "
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
