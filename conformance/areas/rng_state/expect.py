"""RNG state: the producers the checks draw from and the verdicts on what a state save/restore must give
(``conformance/suite/test_rng_state.py``)."""

from __future__ import annotations

from conformance.stats import Verdict
from conformance.stats import independence as I

#: name -> draw(backend, dtype, shape, generator) from the global stream (generator None) or an explicit one.
DRAWS = {
    "uniform": lambda b, d, s, g=None: b.sample("uniform", s, d, **({"generator": g} if g is not None else {})),
    "normal": lambda b, d, s, g=None: b.sample("normal", s, d, **({"generator": g} if g is not None else {})),
}
#: Sizes below and above the vectorized thresholds of typical kernels (torch CPU normal_ switches at 16).
SHAPES = [(7,), (64, 64)]


def draw_all(draw, backend, dtype, generator=None):
    """One draw of every shape of :data:`SHAPES`, from the global stream or ``generator``."""
    return [draw(backend, dtype, s, generator) for s in SHAPES]


def equal_all(first, second, what):
    """Bitwise equality verdicts of two :func:`draw_all` results, shape by shape."""
    return [I.bitwise_equal(a, b, f"{what}, shape {a.shape}") for a, b in zip(first, second, strict=True)]


def advances(backend, draw, dtype, what: str, steps: int = 3) -> list[Verdict]:
    """``steps`` draws, each of which must change :meth:`rng_state`."""
    verdicts = []
    for i in range(steps):
        before = backend.rng_state()
        draw(backend, dtype, SHAPES[i % len(SHAPES)])
        after = backend.rng_state()
        verdicts.append(Verdict("state_advances", before != after,
                                f"{what}: the state {'changed' if before != after else 'did NOT change'} "
                                f"on draw {i + 1} (shape {SHAPES[i % len(SHAPES)]})", n=1))
    return verdicts
