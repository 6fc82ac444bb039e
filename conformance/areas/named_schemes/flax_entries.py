"""Flax's named initializers: JAX's, inherited.

``flax.nnx.initializers`` (flax/nnx/nn/initializers.py) and ``flax.linen.initializers`` re-export
``jax.nn.initializers``: ``flax.nnx.initializers.he_normal is jax.nn.initializers.he_normal`` (the same function
objects, flax 0.12.8 with jax 0.10.2; ``tests/test_flax_equinox_adapters.py`` checks it). Every entry here is
therefore JAX's entry (``spec.ENTRIES[scheme]["jax"]``) under the family ``flax``, with the same documented law and
the same declared convention (JAX's truncated ``he_normal``/``glorot_normal``/``lecun_normal``), marked as inherited.
Equinox has no initializer module of its own (its users call ``jax.nn.initializers``): no entries.
"""

from __future__ import annotations

import dataclasses

from conformance.areas.named_schemes.core_entries import ENTRIES as _ALL
from conformance.areas.named_schemes.laws import Entry

_INHERITED = ("flax.nnx.initializers.{call} and flax.linen.initializers.{call} are jax.nn.initializers.{call} "
              "(the same object, re-exported; flax 0.12.8 flax/nnx/nn/initializers.py): ")


def _inherit(entry: Entry) -> Entry:
    convention = entry.convention and f"inherited from JAX: {entry.convention}"
    return dataclasses.replace(entry, framework="flax", quote=_INHERITED.format(call=entry.call) + entry.quote,
                               source=f"{entry.source}; re-exported by flax.nnx/flax.linen.initializers (flax 0.12.8)",
                               convention=convention)


ENTRIES: dict[str, list[Entry]] = {scheme: [_inherit(e) for e in by_fw.get("jax", [])]
                                   for scheme, by_fw in _ALL.items()}

MISSING = ("{framework}: no named initializer for {scheme} (flax.nnx/flax.linen.initializers re-export "
           "jax.nn.initializers, which has none; equinox has no initializer module of its own)")
