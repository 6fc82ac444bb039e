"""Faulty Keras adapters: the genuine ``keras-jax``/``keras-torch`` adapter with one bug of a real class each, in
Keras's idiom (BUGS.md, "Seeds and RNG streams": identical layers, candle #1931; identical draws, pytorch #78009).

* ``keras-faulty-shared-init``: every layer's kernel comes from ONE module-level ``GlorotUniform(seed=1337)``
  instance (the model-file idiom ``INIT = keras.initializers.GlorotUniform(seed=1337)`` passed to every layer).
  Keras documents that an int-seeded instance returns the same values on every call, so every Dense/Conv layer,
  in every run and after every seed, is bit-identical: caught by ``seeds/test_successive_draws_differ
  [module-Linear]`` (and ``test_different_seeds_differ[module-Linear]``, ``test_layers_independent``);
* ``keras-faulty-frozen-seedgen``: a ``keras.random.SeedGenerator``-seeded instance whose seed is drawn once, when
  the instance is built (the generator's state frozen into an int), so it repeats its first values on every call
  although Keras documents different values: caught by ``initializer_instances/test_instance_reuse[...-generator]``
  and ``test_shared_instance_layers[generator]``;
* ``keras-faulty-advancing-seed``: the converse, an instance seeded with an int (or unseeded) built on a
  ``SeedGenerator``, so its calls differ although Keras documents the same values (the contract check must fail
  both ways): caught by ``initializer_instances/test_instance_reuse[...-int]`` and
  ``test_shared_instance_layers[int]`` (``bitwise_equal``).

The Keras backend is the one already imported in this process (``jax`` when keras is not imported yet), so these
run beside ``keras-jax:cpu`` or ``keras-torch:cpu`` (``--adapters tests.faulty.keras_adapters``). Framework names
keep the ``keras-`` prefix so the Keras conventions (named entries, module defaults) apply.
"""

from __future__ import annotations

from conformance.backends.keras_adapter import KerasBackend, _imported_backend

from .common import providers


def _backend() -> str:
    return _imported_backend() or "jax"


class SharedInit(KerasBackend):
    """keras: every layer's kernel from one shared GlorotUniform(seed=1337) instance (identical layers)."""

    def __init__(self, device: str) -> None:
        super().__init__(_backend(), device)
        self._shared = self._k.initializers.GlorotUniform(seed=1337)

    def module_params(self, module, dtype, **config):
        if module == "Linear" or module.startswith("Conv"):
            config.setdefault("_weight_initializer", self._shared)
        return super().module_params(module, dtype, **config)


class FrozenSeedGenerator(KerasBackend):
    """keras: a SeedGenerator-seeded initializer whose seed is frozen into an int when built (repeats itself)."""

    def __init__(self, device: str) -> None:
        super().__init__(_backend(), device)

    def _frozen(self, name: str, seed: str, **params):
        cls = getattr(self._k.initializers, name)
        if seed != "generator":
            return cls(seed=1337 if seed == "int" else None, **params)
        gen = self._k.random.SeedGenerator(1337)
        first = int(self.keras_np(gen.next())[0])  # the state read once: every call draws [first, 0]
        return cls(seed=first, **params)

    def keras_np(self, x):
        return self._np(x)

    def initializer_instance_draws(self, name, shape, dtype, seed, calls=2, **params):
        instance = self._frozen(name, seed, **params)
        return [self._call(instance, shape, dtype) for _ in range(calls)]

    def shared_initializer_layers(self, module, dtype, seed, count=2, **config):
        shared = self._frozen("random_uniform" if module == "Embedding" else "glorot_uniform", seed)
        return [self.module_params(module, dtype, _weight_initializer=shared, **config) for _ in range(count)]


class AdvancingSeed(FrozenSeedGenerator):
    """keras: an int-seeded or unseeded initializer instance that advances like a SeedGenerator (calls differ)."""

    def _frozen(self, name: str, seed: str, **params):
        cls = getattr(self._k.initializers, name)
        return cls(seed=self._k.random.SeedGenerator(1337), **params)


PROVIDERS = providers(keras_faulty_shared_init=SharedInit, keras_faulty_frozen_seedgen=FrozenSeedGenerator,
                      keras_faulty_advancing_seed=AdvancingSeed)
