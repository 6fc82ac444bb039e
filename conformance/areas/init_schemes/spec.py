"""Expected result of each ``torch.nn.init``-style scheme, from its definition.

:func:`expected_init` returns either a continuous :class:`~conformance.stats.reference.ContinuousReference`
(random schemes) or an :class:`Exact` description (deterministic schemes), each with a ``rule``
string quoting the definition, which assertion messages repeat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from conformance.areas.init_schemes.fans import fans, recommended_gain
from conformance.stats import reference as R


@dataclass(frozen=True)
class Expectation:
    """A random scheme's expected distribution and the rule it comes from."""

    reference: R.ContinuousReference
    rule: str


@dataclass(frozen=True)
class Exact:
    """A deterministic scheme: every element must equal ``value`` (or follow ``kind``)."""

    kind: str  # "constant", "eye", "dirac"
    rule: str
    value: float = 0.0
    groups: int = 1


def _fan(shape: Sequence[int], mode: str) -> int:
    fan_in, fan_out = fans(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


_KAIMING = frozenset({"negative_slope", "fan_mode", "nonlinearity"})
#: The parameters each scheme's expectation reads; any other name is a caller's mistake (TypeError), not a default.
PARAMETERS: dict[str, frozenset[str]] = {
    "uniform": frozenset({"low", "high"}), "normal": frozenset({"mean", "std"}),
    "trunc_normal": frozenset({"mean", "std", "low", "high"}), "constant": frozenset({"value"}),
    "zeros": frozenset(), "ones": frozenset(), "eye": frozenset(), "dirac": frozenset({"groups"}),
    "xavier_uniform": frozenset({"gain"}), "xavier_normal": frozenset({"gain"}),
    "kaiming_uniform": _KAIMING, "kaiming_normal": _KAIMING, "sparse": frozenset({"sparsity", "std"}),
}


def expected_init(scheme: str, shape: Sequence[int], **p) -> Expectation | Exact:
    """What ``init(scheme, shape, **p)`` must produce. Parameter names are the adapters' neutral ones
    (:data:`conformance.backends.interface.INIT_PARAMETERS`: ``low``/``high``, ``value``, ``fan_mode``,
    ``negative_slope``, ...); defaults are torch's. The rules quote torch's definitions, in torch's names."""
    unknown = sorted(set(p) - PARAMETERS.get(scheme, frozenset(p)))
    if unknown:
        raise TypeError(f"expected_init({scheme!r}) takes {sorted(PARAMETERS[scheme])}, got {unknown}")
    if scheme == "uniform":
        a, b = p.get("low", 0.0), p.get("high", 1.0)
        return Expectation(R.uniform(a, b), f"uniform_: U(a={a:g}, b={b:g})")
    if scheme == "normal":
        mean, std = p.get("mean", 0.0), p.get("std", 1.0)
        return Expectation(R.normal(mean, std), f"normal_: N(mean={mean:g}, std={std:g}^2)")
    if scheme == "trunc_normal":
        mean, std, a, b = p.get("mean", 0.0), p.get("std", 1.0), p.get("low", -2.0), p.get("high", 2.0)
        return Expectation(R.trunc_normal(mean, std, a, b),
                           f"trunc_normal_: N({mean:g}, {std:g}^2) truncated to the absolute interval [{a:g}, {b:g}]")
    if scheme in ("constant", "zeros", "ones"):
        val = {"zeros": 0.0, "ones": 1.0}.get(scheme, p.get("value"))
        return Exact("constant", f"{scheme}_: every element equals {val:g}", value=float(val))
    if scheme == "eye":
        return Exact("eye", "eye_: the identity matrix (ones on the main diagonal, zeros elsewhere)")
    if scheme == "dirac":
        g = p.get("groups", 1)
        return Exact("dirac", f"dirac_(groups={g}): identity convolution, preserves the input channels of each group",
                     groups=g)
    fan_in, fan_out = fans(shape)
    if scheme in ("xavier_uniform", "xavier_normal"):
        gain = p.get("gain", 1.0)
        std = gain * math.sqrt(2.0 / (fan_in + fan_out))
        if scheme == "xavier_uniform":
            bound = math.sqrt(3.0) * std
            return Expectation(R.uniform(-bound, bound),
                               f"xavier_uniform_ (Glorot & Bengio 2010): U(-b, b), b = gain*sqrt(6/(fan_in+fan_out)) "
                               f"= {bound:.6g} (gain {gain:g}, fan_in {fan_in}, fan_out {fan_out})")
        return Expectation(R.normal(0.0, std),
                           f"xavier_normal_ (Glorot & Bengio 2010): N(0, std^2), std = gain*sqrt(2/(fan_in+fan_out)) "
                           f"= {std:.6g} (gain {gain:g}, fan_in {fan_in}, fan_out {fan_out})")
    if scheme in ("kaiming_uniform", "kaiming_normal"):
        a = p.get("negative_slope", 0.0)
        mode = p.get("fan_mode", "fan_in")
        nonlinearity = p.get("nonlinearity", "leaky_relu")
        gain = recommended_gain(nonlinearity, a)
        fan = _fan(shape, mode)
        std = gain / math.sqrt(fan)
        what = f"gain {gain:.6g} for {nonlinearity}" + (f"(a={a:g})" if nonlinearity == "leaky_relu" else "")
        if scheme == "kaiming_uniform":
            bound = math.sqrt(3.0) * std
            return Expectation(R.uniform(-bound, bound),
                               f"kaiming_uniform_ (He et al. 2015): U(-b, b), b = gain*sqrt(3/{mode}) = {bound:.6g} "
                               f"({what}, {mode} {fan})")
        return Expectation(R.normal(0.0, std),
                           f"kaiming_normal_ (He et al. 2015): N(0, std^2), std = gain/sqrt({mode}) = {std:.6g} "
                           f"({what}, {mode} {fan})")
    if scheme == "sparse":
        std = p.get("std", 0.01)
        return Expectation(R.normal(0.0, std), f"sparse_: non-zero entries N(0, {std:g}^2)")
    raise ValueError(f"no expectation written for scheme {scheme!r}")


def sparse_zeros_per_column(rows: int, sparsity: float) -> int:
    """``sparse_``: each column has exactly ceil(sparsity * rows) zeros (Martens 2010; torch docs)."""
    return int(math.ceil(sparsity * rows))


def orthogonal_entry_reference(rows: int, cols: int) -> Expectation:
    """Haar-orthogonal (semi-orthogonal) matrix with gain 1: each entry^2 ~ Beta(1/2, (m-1)/2),
    m = max(rows, cols), because each row (or column) is uniform on the unit sphere of R^m."""
    m = max(rows, cols)
    return Expectation(R.beta(0.5, (m - 1) / 2.0),
                       f"orthogonal_: entry^2 of a Haar (semi-)orthogonal {rows}x{cols} matrix ~ Beta(1/2, {m - 1}/2)")
