"""Verdicts of the initializer-instance checks (``conformance/suite/test_initializer_instances.py``).

Frameworks whose initializers are objects (Keras's ``keras.initializers.GlorotUniform()``) let a user build ONE
instance and use it for several weights. What a second call returns is the framework's documented choice; Keras
documents it for every random initializer: "an initializer seeded with an integer or None (unseeded) will produce the
same random values across multiple calls. To get different random values across multiple calls, use as seed an
instance of keras.random.SeedGenerator". The consequence of "same values" is the bug class "identical biases in every
layer" (candle #1931, BUGS.md): layers that share one such instance are bit-identical.

An adapter opts in with the capability ``initializer_instances`` (two methods; it needs ``named_init`` and ``modules``)
and a contract:

* ``initializer_instance_draws(name, shape, dtype, seed, calls=2, **params) -> list[ndarray]``: the framework's
  initializer ``name`` (its own spelling and keywords, as ``named_init``) built ONCE with the seed kind ``seed``
  (:data:`SEED_KINDS`: ``"int"`` a fixed integer, ``"none"`` unseeded, ``"generator"`` the framework's stateful seed
  object), then called ``calls`` times on the canonical ``shape``;
* ``shared_initializer_layers(module, dtype, seed, count=2, **config) -> list[dict]``: ``count`` layers
  ``module(**config)`` (as ``module_params``) whose weight initializer is ONE instance of the layer's default
  initializer class, seeded per ``seed``;
* contract ``initializer_reuse`` whose ``value`` maps each seed kind to ``same`` or ``differ``
  (``"int:same,none:same,generator:differ"``), quoting the docs.

Verdicts: ``same`` -> the calls (layers) are bitwise equal, and the shared-layer verdict carries the documented hazard
as ``observed["convention"]``; ``differ`` -> distinct, uncorrelated, not shifted copies (as
``seeds/test_layers_independent``). A backend whose observation disagrees with its declared contract fails.
"""

from __future__ import annotations

import pytest

from conformance.report.attachments import SeedContract
from conformance.stats import Verdict
from conformance.stats import independence as I

CONTRACT = "initializer_reuse"
SEED_KINDS = ("int", "none", "generator")
HAZARD = ("documented: layers that share one {seed}-seeded initializer instance are identical (the 'identical biases "
          "in every layer' class, candle #1931); a user must build one instance per layer or seed the shared one with "
          "the framework's stateful seed object")


def declared(backend) -> tuple[object, dict[str, str]]:
    """The ``initializer_reuse`` contract and its ``{seed kind: same|differ}``; skips when none is declared."""
    contract = backend.contracts.get(CONTRACT)
    if contract is None:
        pytest.skip(f"{backend.spec} declares no {CONTRACT} contract")
    table = dict(part.split(":", 1) for part in contract.value.split(",") if ":" in part)
    bad = {k: v for k, v in table.items() if k not in SEED_KINDS or v not in ("same", "differ")}
    if bad:
        raise ValueError(f"{backend.spec} contract {CONTRACT} has a malformed value {contract.value!r}")
    return contract, table


def _judge(a, b, want: str, what: str, alpha: float) -> list[Verdict]:
    if want == "same":
        return [I.bitwise_equal(a, b, what)]
    return [I.distinct(a, b, what), I.correlation(a.ravel(), b.ravel(), what, alpha),
            I.shifted_copy(a.ravel(), b.ravel(), f"{what}: the second inside the first"),
            I.shifted_copy(b.ravel(), a.ravel(), f"{what}: the first inside the second")]


def _attach(conformance, contract, seed: str, want: str, verdicts: list[Verdict], what: str) -> None:
    ok = all(v.passed for v in verdicts)
    seen = want if ok else ("differ" if want == "same" else "same or related")
    conformance.attach(SeedContract(CONTRACT, contract.statement, contract.source, f"{seed}:{want}",
                                    f"{what}: observed {seen}", consistent=ok))


def reuse(backend, conformance, contract, table: dict, seed: str, a, b, label: str) -> list[Verdict]:
    """Two calls of one instance seeded ``seed``: equal or independent, as the contract says."""
    want = table.get(seed)
    if want is None:
        pytest.skip(f"{backend.spec} contract {CONTRACT} says nothing about seed kind {seed!r}")
    verdicts = _judge(a, b, want, f"{label} seeded {seed}: call 1 vs call 2 of one instance", conformance.alpha)
    for v in verdicts:
        v.expected.update({"contract": contract.statement, "source": contract.source, "value": f"{seed}:{want}"})
    _attach(conformance, contract, seed, want, verdicts, f"one {label} instance called twice")
    return verdicts


def shared_layers(backend, conformance, contract, table: dict, seed: str, layers: list[dict], module: str,
                  param: str = "weight") -> list[Verdict]:
    """Layers built with one shared instance: identical (documented hazard) or independent, as the contract says."""
    want = table.get(seed)
    if want is None:
        pytest.skip(f"{backend.spec} contract {CONTRACT} says nothing about seed kind {seed!r}")
    a, b = layers[0][param], layers[1][param]
    verdicts = _judge(a, b, want, f"{module}.{param} of layer 1 vs layer 2, one shared {seed}-seeded initializer",
                      conformance.alpha)
    for v in verdicts:
        v.expected.update({"contract": contract.statement, "source": contract.source, "value": f"{seed}:{want}"})
        if want == "same":
            v.observed["convention"] = HAZARD.format(seed=seed)
    _attach(conformance, contract, seed, want, verdicts, f"{module} layers sharing one initializer")
    return verdicts
