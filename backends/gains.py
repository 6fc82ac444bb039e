"""Fans and recommended gains: the one table every adapter uses (``torch.nn.init`` docs).

Adapters whose framework has no ``calculate_gain`` (numpy reference, JAX, MLX) take gains from here, and the
reference computes its fans here. The checks do not: their expectations come from the independent oracle in
:mod:`conformance.areas.init_schemes.fans` (``tests/test_adapters.py`` compares this table with torch's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Nonlinearities whose recommended gain is 1.
UNIT_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
             "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain table of ``torch.nn.init.calculate_gain``'s documentation (``param``: leaky ReLU's slope)."""
    if nonlinearity in UNIT_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight in canonical layout ``(out, in, *kernel)``."""
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def check_fan_mode(fan_mode: str) -> str:
    """``fan_mode`` itself if it is ``"fan_in"`` or ``"fan_out"``; ``ValueError`` (torch's message) otherwise."""
    if fan_mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {fan_mode} not supported, please use one of fan_in, fan_out")
    return fan_mode


def fan(shape: Sequence[int], fan_mode: str) -> int:
    """The fan ``fan_mode`` (``"fan_in"`` or ``"fan_out"``) of a canonical weight shape."""
    check_fan_mode(fan_mode)
    fan_in, fan_out = fans(shape)
    return fan_in if fan_mode == "fan_in" else fan_out
