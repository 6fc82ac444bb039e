"""Weight layouts of the frameworks and the translation to and from the canonical layout (pure numpy).

Contract
--------
The suite's canonical layout is ``torch.nn.init``'s: a dense weight is ``(out, in)``, a convolution
kernel ``(out, in, *kernel)``. Frameworks differ:

========  =====================  ============================  =========================================
layout    dense                  convolution                   used by
========  =====================  ============================  =========================================
``oi``    ``(out, in)``          ``(out, in, *kernel)``        torch, candle, the numpy reference
``io``    ``(in, out)``          ``(*kernel, in, out)``        ``jax.nn.initializers`` defaults
                                                               (``in_axis=-2, out_axis=-1``; flax HWIO)
``oki``   ``(out, in)``          ``(out, *kernel, in)``        MLX (``nn.Linear`` weight ``(out, in)``,
                                                               ``nn.Conv2d`` weight ``(out, kh, kw, in)``,
                                                               ``mlx.nn.init`` fans: in = ``shape[-1]``,
                                                               out = ``shape[0]``)
========  =====================  ============================  =========================================

:func:`to_framework_shape` maps a canonical shape to the framework's, :func:`from_framework` transposes a
framework array back to canonical. Both are exact permutations; round trips are the identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LAYOUTS = ("oi", "io", "oki")


def _check(layout: str, ndim: int) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if ndim < 2:
        raise ValueError(f"a weight layout needs at least 2 dims, got {ndim}")


def framework_axes(layout: str, ndim: int) -> tuple[int, ...]:
    """``perm`` such that ``canonical.transpose(perm)`` is in ``layout`` (for an ``ndim``-d weight)."""
    _check(layout, ndim)
    kernel = tuple(range(2, ndim))
    if layout == "oi":
        return tuple(range(ndim))
    if layout == "io":
        return (*kernel, 1, 0)
    return (0, *kernel, 1)


def to_framework_shape(shape: Sequence[int], layout: str) -> tuple[int, ...]:
    """The framework-layout shape of a weight whose canonical shape is ``shape``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        return shape
    return tuple(shape[i] for i in framework_axes(layout, len(shape)))


def to_framework(array: np.ndarray, layout: str) -> np.ndarray:
    """A canonical array in ``layout`` (a transposed copy)."""
    array = np.asarray(array)
    if array.ndim < 2:
        return array
    return np.ascontiguousarray(array.transpose(framework_axes(layout, array.ndim)))


def from_framework(array: np.ndarray, layout: str) -> np.ndarray:
    """A framework-layout array back in the canonical layout (a transposed copy)."""
    array = np.asarray(array)
    if array.ndim < 2:
        return array
    perm = framework_axes(layout, array.ndim)
    return np.ascontiguousarray(array.transpose(np.argsort(perm)))
