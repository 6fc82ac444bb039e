"""Keras 3's own layer defaults where they differ from torch's (keras 3.15 source; ``keras-jax``, ``keras-torch``).

* ``Dense``/``ConvND``/``ConvNDTranspose``: ``kernel_initializer="glorot_uniform"``, ``bias_initializer="zeros"``
  (keras/src/layers/core/dense.py, layers/convolutional/base_conv.py, base_conv_transpose.py). ``GlorotUniform``
  draws U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)), fans from the Keras kernel
  (``compute_fans``): ConvND kernel ``(*k, in/groups, out)`` -> fan_in = in/groups * prod(k), fan_out = out * prod(k);
  ConvNDTranspose kernel ``(*k, out, in)`` -> fan_in = out * prod(k), fan_out = in * prod(k) (their sum is what
  glorot uses, so the swap does not matter). Keras's transposed convolutions have no groups.
* ``Embedding``: ``embeddings_initializer="uniform"`` = ``RandomUniform(minval=-0.05, maxval=0.05)``
  (keras/src/layers/core/embedding.py, initializers/random_initializers.py).
* ``LayerNormalization``/``RMSNormalization``: gamma/scale ones, beta zeros (torch's rule); ``BatchNormalization``:
  gamma ones, beta zeros, moving_mean zeros, moving_variance ones, no ``num_batches_tracked``.
"""

from __future__ import annotations

import math

from conformance.areas.init_schemes.spec import Exact, Expectation
from conformance.areas.module_defaults.laws import ABSENT, kernel_dims
from conformance.stats import reference as R

_SRC = "keras 3.15 keras/src/layers/{}: {}=\"{}\""


def _glorot(what: str, fan_in: int, fan_out: int) -> Expectation:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return Expectation(R.uniform(-limit, limit), f"{what}: GlorotUniform U(-sqrt(6/(fan_in+fan_out)), ...) = "
                                                 f"U(-{limit:.6g}, {limit:.6g}), fan_in {fan_in}, fan_out {fan_out}")


def framework_default(framework: str, module: str, param: str, **config):
    if module == "Linear":
        if param == "weight":
            n_in, n_out = config["in_features"], config["out_features"]
            return (_glorot("keras.layers.Dense.kernel", n_in, n_out),
                    "Keras draws Dense.kernel from glorot_uniform ("
                    + _SRC.format("core/dense.py", "kernel_initializer", "glorot_uniform")
                    + "); torch from U(-1/sqrt(in), 1/sqrt(in))")
        if param == "bias":
            return (Exact("constant", "keras.layers.Dense.bias: zeros", 0.0),
                    "Keras initializes Dense.bias to zeros ("
                    + _SRC.format("core/dense.py", "bias_initializer", "zeros")
                    + "); torch draws U(-1/sqrt(in), 1/sqrt(in))")
    if module.startswith("Conv"):
        transposed = module.startswith("ConvTranspose")
        dims = int(module[-2])
        rf = math.prod(kernel_dims(config["kernel_size"], dims))
        groups = config.get("groups", 1)
        src = "convolutional/base_conv_transpose.py" if transposed else "convolutional/base_conv.py"
        name = f"keras.layers.Conv{dims}D{'Transpose' if transposed else ''}"
        if param == "weight":
            if transposed:
                fan_in, fan_out = config["out_channels"] * rf, config["in_channels"] * rf
            else:
                fan_in, fan_out = config["in_channels"] // groups * rf, config["out_channels"] * rf
            return (_glorot(f"{name}.kernel", fan_in, fan_out),
                    f"Keras draws {name}.kernel from glorot_uniform ("
                    + _SRC.format(src, "kernel_initializer", "glorot_uniform") + "); torch from U(-sqrt(k), sqrt(k))")
        if param == "bias":
            return (Exact("constant", f"{name}.bias: zeros", 0.0),
                    f"Keras initializes {name}.bias to zeros (" + _SRC.format(src, "bias_initializer", "zeros")
                    + "); torch draws U(-sqrt(k), sqrt(k))")
    if module == "Embedding" and param == "weight":
        return (Expectation(R.uniform(-0.05, 0.05), "keras.layers.Embedding.embeddings: RandomUniform(-0.05, 0.05)"),
                "Keras draws Embedding.embeddings from \"uniform\" = RandomUniform(minval=-0.05, maxval=0.05) ("
                + _SRC.format("core/embedding.py", "embeddings_initializer", "uniform") + "); torch from N(0, 1)")
    if module.startswith("BatchNorm") and param == "num_batches_tracked":
        return (ABSENT, "keras.layers.BatchNormalization keeps no num_batches_tracked counter (torch bookkeeping only)")
    return None
