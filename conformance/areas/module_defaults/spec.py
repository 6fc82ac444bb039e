"""Default initialization of torch.nn layers, from the torch.nn module docs.

Each entry maps a parameter or buffer name to an :class:`Expectation` (random) or an
:class:`Exact` (deterministic). The docs state, e.g. for ``Linear``: "weight ... initialized
from U(-sqrt(k), sqrt(k)), where k = 1/in_features"; for ``ConvNd``: k = groups/(C_in * prod(kernel_size));
for ``ConvTransposeNd``: k = groups/(C_out * prod(kernel_size)); ``Embedding``: N(0, 1); norm layers
weight 1 and bias 0, BatchNorm running_mean 0 and running_var 1.
"""

from __future__ import annotations

import math

from conformance.areas.init_schemes.spec import Exact, Expectation
from conformance.areas.module_defaults import flax_defaults, keras_defaults, tinygrad_defaults
from conformance.areas.module_defaults.laws import ABSENT, kernel_dims, uniform_sqrt_k
from conformance.stats import reference as R

__all__ = ["ABSENT", "FRAMEWORK_MODULES", "expected_module", "framework_default", "kernel_dims", "uniform_sqrt_k"]

_DOCS = "torch.nn.{module} docs"


def expected_module(module: str, **config) -> dict[str, Expectation | Exact]:
    """Expected default init of every parameter and buffer of ``module(**config)``."""
    if module == "Linear":
        k = 1.0 / config["in_features"]
        out = {"weight": uniform_sqrt_k(k, f"Linear.weight, k = 1/in_features = 1/{config['in_features']}")}
        if config.get("bias", True):
            out["bias"] = uniform_sqrt_k(k, f"Linear.bias, k = 1/in_features = 1/{config['in_features']}")
        return out
    if module.startswith("Conv"):
        transposed = module.startswith("ConvTranspose")
        dims = int(module[-2])
        kernel = kernel_dims(config["kernel_size"], dims)
        groups = config.get("groups", 1)
        channels = config["out_channels"] if transposed else config["in_channels"]
        name = "C_out" if transposed else "C_in"
        k = groups / (channels * math.prod(kernel))
        what = f"{module}.{{}}, k = groups/({name}*prod(kernel_size)) = {groups}/({channels}*{math.prod(kernel)})"
        out = {"weight": uniform_sqrt_k(k, what.format("weight"))}
        if config.get("bias", True):
            out["bias"] = uniform_sqrt_k(k, what.format("bias"))
        return out
    if module == "Embedding":
        out = {"weight": Expectation(R.normal(0.0, 1.0), "Embedding.weight: N(0, 1)")}
        if config.get("padding_idx") is not None:
            out["weight[padding_idx]"] = Exact("constant", "Embedding: the padding_idx row is all zeros", 0.0)
        return out
    if module in ("LayerNorm", "RMSNorm"):
        out: dict[str, Expectation | Exact] = {}
        if config.get("elementwise_affine", True):
            out["weight"] = Exact("constant", f"{module}.weight: initialized to ones", 1.0)
            if module == "LayerNorm" and config.get("bias", True):
                out["bias"] = Exact("constant", f"{module}.bias: initialized to zeros", 0.0)
        return out
    if module.startswith("BatchNorm"):
        return {
            "weight": Exact("constant", f"{module}.weight: initialized to ones", 1.0),
            "bias": Exact("constant", f"{module}.bias: initialized to zeros", 0.0),
            "running_mean": Exact("constant", f"{module}.running_mean: zeros", 0.0),
            "running_var": Exact("constant", f"{module}.running_var: ones", 1.0),
            "num_batches_tracked": Exact("constant", f"{module}.num_batches_tracked: 0", 0.0),
        }
    raise ValueError(f"no default-init expectation written for module {module!r}")


# -- other frameworks' own defaults where they differ from torch's ------------------------------------------------
_MLX_CONV_SRC = "mlx 0.32.4 python/mlx/nn/layers/convolution.py and convolution_transpose.py (no docstring states it)"


#: Framework families whose own defaults live in a module of their own, holding ``framework_default`` with this
#: function's signature. The family is the framework name up to its first ``-`` (``keras-jax`` -> ``keras``,
#: ``flax-linen`` -> ``flax``; a faulty adapter ``flax-faulty-...`` in our tests is held to Flax's defaults).
FRAMEWORK_MODULES = {"tinygrad": tinygrad_defaults, "keras": keras_defaults, "flax": flax_defaults,
                     "equinox": flax_defaults}


def framework_default(framework: str, module: str, param: str, **config) -> tuple[Expectation | Exact, str] | None:
    """A framework's own default for ``module.param`` where it differs from torch's documented one, with the
    sentence saying so (shown as ``observed["convention"]``); ``None`` where torch's rule is the framework's too.

    MLX: ``nn.Linear`` documents torch's U(-k, k), k = 1/sqrt(input_dims); its convolutions draw the weight from
    U(-s, s), s = sqrt(1/(C_in/groups * prod(kernel))) (torch's rule for ConvNd) but set the bias to zeros; its
    transposed convolutions use s = sqrt(1/(C_in * prod(kernel))) (torch: groups/(C_out * prod(kernel)));
    ``nn.Embedding`` draws N(0, 1/dims) (python/mlx/nn/layers/embedding.py: ``scale = math.sqrt(1 / dims)``).
    Candle's Python ``nn.Linear`` and ``nn.Embedding`` document torch's rules (its docstrings are torch's).
    """
    own = FRAMEWORK_MODULES.get(framework.split("-", 1)[0])
    if own is not None:
        return own.framework_default(framework, module, param, **config)
    if framework != "mlx":
        return None
    if module.startswith("BatchNorm") and param == "num_batches_tracked":
        return (ABSENT, "mlx.nn.BatchNorm keeps no num_batches_tracked buffer (torch bookkeeping only)")
    if module.startswith("Conv") and param == "bias":
        return (Exact("constant", f"mlx.nn.{module}.bias: zeros", 0.0),
                f"MLX initializes {module}.bias to zeros ({_MLX_CONV_SRC}); torch draws U(-sqrt(k), sqrt(k))")
    if module.startswith("ConvTranspose") and param == "weight":
        dims = int(module[-2])
        kernel = kernel_dims(config["kernel_size"], dims)
        k = 1.0 / (config["in_channels"] * math.prod(kernel))
        return (uniform_sqrt_k(k, f"mlx.nn.{module}.weight, k = 1/(C_in*prod(kernel_size)) = "
                                   f"1/({config['in_channels']}*{math.prod(kernel)})"),
                f"MLX scales {module}.weight by C_in*prod(kernel) ({_MLX_CONV_SRC}); "
                "torch by C_out*prod(kernel)/groups")
    if module == "Embedding" and param == "weight":
        dim = config["embedding_dim"]
        return (Expectation(R.normal(0.0, math.sqrt(1.0 / dim)), f"mlx.nn.Embedding.weight: N(0, 1/dims) = "
                                                                   f"N(0, 1/{dim})"),
                "MLX draws Embedding.weight from N(0, 1/dims) (mlx 0.32.4 python/mlx/nn/layers/embedding.py: "
                "scale = math.sqrt(1 / dims)); torch from N(0, 1)")
    return None
