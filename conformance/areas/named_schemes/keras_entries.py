"""Keras 3's named initializers (``keras.initializers``), each with the law its docstring states (keras 3.15).

Keras's normal-family shortcuts (``HeNormal``, ``GlorotNormal``, ``LecunNormal``) are ``VarianceScaling`` with
``distribution="truncated_normal"``: a normal truncated at 2 standard deviations of the underlying normal, whose
std AFTER truncation is ``sqrt(scale / n)`` (the code divides by 0.87962566103423978). The untruncated He normal
is ``VarianceScaling(scale=2.0, mode="fan_in", distribution="untruncated_normal")``. Fans come from Keras's own
layout (``compute_fans``: fan_in = ``shape[-2]`` x receptive field); the adapter translates the canonical layout, so
the fans below are the layer's true fans. ``keras-jax`` and ``keras-torch`` share these entries.
"""

from __future__ import annotations

import math

from conformance.areas.named_schemes.laws import TN_STD, Entry, Law, trunc_for_std, unif

_SRC = "keras.initializers docstrings, keras 3.15 (keras/src/initializers/random_initializers.py)"
_VS = ("VarianceScaling: 'With distribution=\"truncated_normal\" or \"untruncated_normal\", samples are drawn from a "
       "truncated/untruncated normal distribution with a mean of zero and a standard deviation (after truncation, if "
       "used) stddev = sqrt(scale / n)'; 'With distribution=\"uniform\", samples are drawn from a uniform distribution "
       "within [-limit, limit], where limit = sqrt(3 * scale / n)'")
_TRUNC = ("truncated at 2 std of the underlying normal and rescaled so that the std after truncation is the canonical "
          "one (VarianceScaling's default distribution=\"truncated_normal\"); the canonical scheme is an untruncated "
          "Gaussian")


def _fan(mode: str):
    return {"fan_in": lambda fi, fo: fi, "fan_avg": lambda fi, fo: (fi + fo) / 2.0}[mode]


def _law(scale: float, mode: str, dist: str) -> Law:
    fan = _fan(mode)

    def std(fi, fo):
        return math.sqrt(scale / fan(fi, fo))

    if dist == "truncated_normal":
        return Law("trunc_normal", trunc_for_std(std), f"std after truncation sqrt({scale:g}/{mode}), truncated at "
                                                        "+-2 std of the underlying normal")
    if dist == "untruncated_normal":
        return Law("normal", std, f"N(0, {scale:g}/{mode})")
    return Law("uniform", unif(std), f"U(+-sqrt(3*{scale:g}/{mode}))")


def _entry(call: str, doc: str, scale: float, mode: str, dist: str, convention: str = "") -> Entry:
    return Entry("keras", call, _law(scale, mode, dist), f"{doc}; {_VS}", _SRC, convention=convention)


def _vs(scale: float, mode: str, dist: str) -> Entry:
    return Entry("keras", "variance_scaling", _law(scale, mode, dist), _VS, _SRC,
                 params={"scale": scale, "mode": mode, "distribution": dist})


ENTRIES: dict[str, list[Entry]] = {
    "he_normal": [
        _entry("he_normal", "HeNormal: 'It draws samples from a truncated normal distribution centered on 0 with "
                            "stddev = sqrt(2 / fan_in)' (VarianceScaling(scale=2.0, mode=\"fan_in\", "
                            "distribution=\"truncated_normal\"))", 2.0, "fan_in", "truncated_normal", _TRUNC),
        _vs(2.0, "fan_in", "untruncated_normal"),
    ],
    "he_uniform": [_entry("he_uniform", "HeUniform: 'Draws samples from a uniform distribution within [-limit, limit], "
                                        "where limit = sqrt(6 / fan_in)'", 2.0, "fan_in", "uniform")],
    "glorot_normal": [
        _entry("glorot_normal", "GlorotNormal: 'Draws samples from a truncated normal distribution centered on 0 with "
                                "stddev = sqrt(2 / (fan_in + fan_out))'", 1.0, "fan_avg", "truncated_normal", _TRUNC),
        _vs(1.0, "fan_avg", "untruncated_normal"),
    ],
    "glorot_uniform": [_entry("glorot_uniform", "GlorotUniform: 'Draws samples from a uniform distribution within "
                                                "[-limit, limit], where limit = sqrt(6 / (fan_in + fan_out))'",
                              1.0, "fan_avg", "uniform")],
    "lecun_normal": [
        _entry("lecun_normal", "LecunNormal: 'Draws samples from a truncated normal distribution centered on 0 with "
                               "stddev = sqrt(1 / fan_in)'", 1.0, "fan_in", "truncated_normal", _TRUNC),
        _vs(1.0, "fan_in", "untruncated_normal"),
    ],
    "lecun_uniform": [_entry("lecun_uniform", "LecunUniform: 'Draws samples from a uniform distribution within "
                                              "[-limit, limit], where limit = sqrt(3 / fan_in)'",
                             1.0, "fan_in", "uniform")],
    "trunc_normal": [Entry(
        "keras", "truncated_normal",
        Law("trunc_normal", lambda fi, fo: TN_STD, f"N(0, {TN_STD}^2) truncated at +-2 stddev"),
        "TruncatedNormal: 'The values generated are similar to values from a RandomNormal initializer, except that "
        "values more than two standard deviations from the mean are discarded and re-drawn'; 'stddev: ... Standard "
        "deviation of the random values to generate'", _SRC, {"stddev": TN_STD})],
}

MISSING = "keras.initializers (3.15) has no {scheme} initializer ({framework})"
