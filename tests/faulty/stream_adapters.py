"""Faulty streams: the numpy reference posing as ``numpy:cpu`` with a changed random stream or version.

Each attribute is a list of one provider registered under the framework name ``numpy`` (overriding the genuine
reference for the run), so the golden checks compare it with the golden of the real ``numpy:cpu``:

* ``SKIPPED_DRAW``: the same numpy version, but every uniform/normal draw skips the value at index 5 (one draw
  lost, the stream shifted from there): the golden stream checks must fail and name index 5;
* ``NEWER_CHANGED``: the same defect under a newer numpy version (99.0.0): "stream changed since VERSION";
* ``NEWER_SAME``: a newer numpy version with the genuine stream: unchanged since VERSION, passes.
"""

from __future__ import annotations

import math

from conformance.backends.numpy_adapter import NumpyBackend

from .common import providers

SKIP_INDEX = 5


def _skip_one(draw, shape):
    n = math.prod(shape)
    flat = draw((n + 1,)).reshape(-1)
    return flat[[i for i in range(n + 1) if i != SKIP_INDEX]][:n].reshape(shape) if n > SKIP_INDEX else draw(shape)


class SkippedDraw(NumpyBackend):
    """Loses the draw at index 5 of every uniform and normal stream."""

    def _uniform(self, shape, dtype, low=0.0, high=1.0):
        return _skip_one(lambda s: super(SkippedDraw, self)._uniform(s, dtype, low, high), tuple(shape))

    def _normal(self, shape, dtype, mean=0.0, std=1.0):
        return _skip_one(lambda s: super(SkippedDraw, self)._normal(s, dtype, mean, std), tuple(shape))


class _Newer:
    def versions(self) -> dict[str, str]:
        return {**super().versions(), "numpy": "99.0.0"}


class NewerChanged(_Newer, SkippedDraw):
    """numpy 99.0.0 whose streams skip the draw at index 5."""


class NewerSame(_Newer, NumpyBackend):
    """numpy 99.0.0 with the genuine streams."""


SKIPPED_DRAW = providers(numpy=SkippedDraw)
NEWER_CHANGED = providers(numpy=NewerChanged)
NEWER_SAME = providers(numpy=NewerSame)
