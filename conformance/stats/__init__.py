"""Statistics: expected distributions, test procedures, the error budget. Knows no framework."""

from .compare import as_float64, compare_distribution
from .design import ALPHA, DEFAULT_N, FWER
from .reference import ContinuousReference, DiscreteReference, Support, beta, for_dtype, normal, trunc_normal, uniform
from .verdict import Verdict

__all__ = [
    "ALPHA", "DEFAULT_N", "FWER", "ContinuousReference", "DiscreteReference", "Support", "Verdict",
    "as_float64", "beta", "compare_distribution", "for_dtype", "normal", "trunc_normal", "uniform",
]
