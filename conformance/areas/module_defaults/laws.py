"""Building blocks of the module-default laws, shared by torch's rules (:mod:`.spec`) and each framework's own
(``<family>_defaults``): kernel sizes, the ``U(-sqrt(k), sqrt(k))`` law, and the marker of a parameter a framework's
layer does not have."""

from __future__ import annotations

import math

from conformance.areas.init_schemes.spec import Exact, Expectation
from conformance.stats import reference as R

#: Marks a parameter or buffer the framework's layer does not have at all.
ABSENT = Exact("absent", "the framework's layer has no such parameter or buffer")


def kernel_dims(kernel_size, dims: int) -> tuple[int, ...]:
    """``kernel_size`` (an int or a sequence) as a tuple of ``dims`` sizes."""
    return tuple(kernel_size) if isinstance(kernel_size, (tuple, list)) else (int(kernel_size),) * dims


def uniform_sqrt_k(k: float, what: str) -> Expectation:
    """``U(-sqrt(k), sqrt(k))``, described as ``what``."""
    bound = math.sqrt(k)
    return Expectation(R.uniform(-bound, bound), f"{what}: U(-sqrt(k), sqrt(k)) = U(-{bound:.6g}, {bound:.6g})")
