"""Fan-in, fan-out and recommended gains, from the definitions.

Layout: the canonical ``(out, in, *kernel)`` of ``torch.nn.init``; the receptive field is
the product of the kernel dims (Glorot and Bengio 2010; He et al. 2015; torch.nn.init docs).

Kept on purpose as the checks' independent oracle: the adapters take their fans and gains from
:mod:`conformance.backends.gains`, and a check must not reuse the table it judges. Both are compared
with torch (``tests/test_adapters.py``: ``test_fans_with_groups``, ``test_gains_match_torch``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

GAIN_SOURCE = "torch.nn.init.calculate_gain docs table"


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of canonical shape ``(out, in, *kernel)``."""
    if len(shape) < 2:
        raise ValueError(f"fan_in and fan_out need at least 2 dimensions, got shape {tuple(shape)}")
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def recommended_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain table of ``calculate_gain``: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2),
    leaky_relu(a) sqrt(2/(1+a^2)) with a = 0.01 by default, selu 3/4."""
    unit = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
            "conv_transpose3d", "sigmoid"}
    if nonlinearity in unit:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"no recommended gain for nonlinearity {nonlinearity!r}")
