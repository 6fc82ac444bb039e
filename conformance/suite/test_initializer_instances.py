"""Initializer instances called more than once (Keras documents it; see
:mod:`conformance.areas.initializer_instances.expect`).

* ``test_instance_reuse``: ONE instance of the framework's glorot_uniform / he_normal initializer, seeded with an
  int, unseeded, or with the framework's stateful seed object, called twice: the same values or independent ones, as
  the backend's contract ``initializer_reuse`` declares (a generator-seeded instance that repeats itself is
  pytorch #78009's "identical tensor on every call").
* ``test_shared_instance_layers``: two ``Linear(256, 256)`` built with ONE shared weight-initializer instance: the
  documented outcome (identical layers, the "identical biases in every layer" class of candle #1931, reported as the
  documented hazard; or independent layers for a stateful seed), and a failure where it disagrees with the contract.
"""

from __future__ import annotations

import pytest

from conformance.areas.initializer_instances import expect as E
from conformance.areas.named_schemes import spec as N

SHAPE = (64, 48)
SCHEMES = ("glorot_uniform", "he_normal")


@pytest.mark.requires("initializer_instances")
@pytest.mark.dtypes("float32")
@pytest.mark.parametrize("seed", E.SEED_KINDS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_instance_reuse(backend, dtype, conformance, scheme, seed):
    """One initializer instance called twice returns what the contract says for its seed kind."""
    contract, table = E.declared(backend)
    entries = [e for e in N.entries_for(scheme, backend.framework) if e.call in backend.named_schemes()]
    if not entries:
        pytest.skip(N.missing_reason(scheme, backend.framework))
    entry = entries[0]
    backend.seed(conformance.seed)
    a, b = backend.initializer_instance_draws(entry.call, SHAPE, dtype, seed, calls=2, **entry.params)
    conformance.expect(E.reuse(backend, conformance, contract, table, seed, a, b, entry.label),
                       f"one {entry.label} instance seeded {seed}, called twice")


@pytest.mark.requires("initializer_instances")
@pytest.mark.parametrize("seed", E.SEED_KINDS)
def test_shared_instance_layers(backend, dtype, conformance, seed):
    """Two Linear(256, 256) sharing one weight-initializer instance: identical or independent, as documented."""
    contract, table = E.declared(backend)
    backend.seed(conformance.seed)
    layers = backend.shared_initializer_layers("Linear", dtype, seed, count=2, in_features=256, out_features=256)
    conformance.expect(E.shared_layers(backend, conformance, contract, table, seed, layers, "Linear"),
                       f"two Linear layers sharing one {seed}-seeded initializer")
