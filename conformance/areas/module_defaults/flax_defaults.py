"""Flax's (``flax.nnx`` and ``flax.linen``) and Equinox's own layer defaults where they differ from torch's.

Read from the sources (flax 0.12.8, equinox 0.13.8); each sentence is shown as ``observed["convention"]``:

* Flax ``Dense``/``Linear``, ``Conv``, ``ConvTranspose``: ``default_kernel_init = initializers.lecun_normal()``
  (flax/nnx/nn/linear.py and flax/linen/linear.py), i.e. ``jax.nn.initializers.variance_scaling(1.0, "fan_in",
  "truncated_normal")``: a normal truncated at +-2 of its underlying std, rescaled so that the std *after*
  truncation is sqrt(1/fan_in). Fans are computed on Flax's own kernel layout with JAX's defaults ``in_axis=-2,
  out_axis=-1`` (jax/_src/nn/initializers.py ``_compute_fans``): ``Conv`` kernel ``kernel_size + (in_features //
  feature_group_count, features)`` -> fan_in = C_in/groups * prod(kernel) (torch's fan); ``ConvTranspose`` kernel
  ``kernel_size + (in_features, features)`` -> fan_in = C_in * prod(kernel) (torch's ConvTranspose uses
  C_out/groups * prod(kernel)). Biases: ``default_bias_init = initializers.zeros_init()``.
* Flax ``Embed``: ``default_embed_init = initializers.variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)`` on
  ``(num_embeddings, features)``: with ``in_axis=-2`` and ``out_axis=0`` both naming axis 0, the receptive field is
  ``features/num_embeddings`` and fan_in = ``features``: N(0, 1/features) (torch: N(0, 1)).
* Flax ``BatchNorm`` keeps ``mean``/``var`` (zeros/ones, as torch) but no ``num_batches_tracked``.
* Equinox ``Linear``, ``ConvNd``: weight and bias U(-lim, lim), lim = 1/sqrt(in_features) and 1/sqrt(C_in/groups *
  prod(kernel)) (equinox/nn/_linear.py, _conv.py): torch's rules. ``ConvTransposeNd``: the same
  ``lim = 1 / math.sqrt(grouped_in_channels * math.prod(kernel_size))`` with ``grouped_in_channels = in_channels //
  groups`` (torch: k = groups/(C_out * prod(kernel))). ``Embedding``: ``jrandom.normal``: N(0, 1), torch's.
* Equinox ``BatchNorm`` has weight (ones) and bias (zeros); its running statistics are not module parameters but
  ``eqx.nn.State`` entries (mode ``"ema"``: ``jnp.empty`` buffers that the first batch's statistics replace,
  ``ema_first_time_index``), so there is no running_mean/running_var/num_batches_tracked to compare.
"""

from __future__ import annotations

import math

from conformance.areas.init_schemes.spec import Exact, Expectation
from conformance.areas.module_defaults.laws import ABSENT, kernel_dims, uniform_sqrt_k
from conformance.areas.named_schemes.laws import TRUNC2_STD
from conformance.stats import reference as R

_FLAX_SRC = "flax 0.12.8 flax/nnx/nn/linear.py and flax/linen/linear.py"
_EQX_SRC = "equinox 0.13.8 equinox/nn/_conv.py"


def _lecun_trunc(fan_in: float, what: str) -> Expectation:
    std = math.sqrt(1.0 / fan_in)
    s = std / TRUNC2_STD
    return Expectation(R.trunc_normal(0.0, s, -2.0 * s, 2.0 * s),
                       f"{what}: lecun_normal = variance_scaling(1, fan_in, truncated_normal): std after truncation "
                       f"sqrt(1/fan_in) = {std:.6g}, truncated at +-2*{s:.6g}")


def _flax(framework: str, module: str, param: str, **config):
    if module == "Linear":
        if param == "weight":
            n = config["in_features"]
            return (_lecun_trunc(n, f"flax Dense kernel, fan_in = in_features = {n}"),
                    f"Flax's default kernel_init is lecun_normal(): truncated normal, Var = 1/fan_in ({_FLAX_SRC}: "
                    "default_kernel_init = initializers.lecun_normal()); torch draws U(-1/sqrt(in), 1/sqrt(in))")
        if param == "bias":
            return (Exact("constant", "flax Dense bias: zeros", 0.0),
                    f"Flax's default bias_init is zeros ({_FLAX_SRC}: default_bias_init = initializers.zeros_init()); "
                    "torch draws U(-1/sqrt(in), 1/sqrt(in))")
    if module.startswith("Conv"):
        transposed = module.startswith("ConvTranspose")
        if param == "bias":
            return (Exact("constant", f"flax {module} bias: zeros", 0.0),
                    f"Flax's default bias_init is zeros ({_FLAX_SRC}); torch draws U(-sqrt(k), sqrt(k))")
        if param == "weight":
            kernel = math.prod(kernel_dims(config["kernel_size"], int(module[-2])))
            groups = config.get("groups", 1)
            if transposed:
                fan = config["in_channels"] * kernel
                rule = f"fan_in = C_in*prod(kernel) = {config['in_channels']}*{kernel} (kernel (*k, in, out))"
                note = ("; ConvTranspose's kernel is kernel_size + (in_features, features), so its fan_in is "
                        "C_in*prod(kernel) (torch: C_out/groups*prod(kernel))")
            else:
                fan = config["in_channels"] // groups * kernel
                rule = (f"fan_in = C_in/groups*prod(kernel) = {config['in_channels']}/{groups}*{kernel} "
                        "(kernel (*k, in/groups, out))")
                note = ("; the fan is computed on the kernel (*kernel_size, in_features // feature_group_count, "
                        "features), so it divides by groups as torch does")
            return (_lecun_trunc(fan, f"flax {module} kernel, {rule}"),
                    f"Flax's default kernel_init is lecun_normal() ({_FLAX_SRC}){note}; torch draws U(-sqrt(k), "
                    "sqrt(k))")
    if module == "Embedding" and param == "weight":
        d = config["embedding_dim"]
        return (Expectation(R.normal(0.0, math.sqrt(1.0 / d)), f"flax Embed: N(0, 1/features) = N(0, 1/{d})"),
                f"Flax's default_embed_init = variance_scaling(1.0, 'fan_in', 'normal', out_axis=0) ({_FLAX_SRC}): "
                "fan_in = features on (num_embeddings, features), so N(0, 1/features); torch draws N(0, 1)")
    if module.startswith("BatchNorm") and param == "num_batches_tracked":
        return (ABSENT, "flax BatchNorm keeps mean and var (batch_stats) but no num_batches_tracked (torch "
                        "bookkeeping only)")
    return None


def _equinox(framework: str, module: str, param: str, **config):
    if module.startswith("ConvTranspose") and param in ("weight", "bias"):
        kernel = math.prod(kernel_dims(config["kernel_size"], int(module[-2])))
        groups = config.get("groups", 1)
        k = groups / (config["in_channels"] * kernel)
        return (uniform_sqrt_k(k, f"eqx.nn.{module}.{param}, lim = 1/sqrt(C_in/groups*prod(kernel)) = "
                                   f"1/sqrt({config['in_channels']}/{groups}*{kernel})"),
                f"Equinox scales {module}.{param} by C_in/groups*prod(kernel) ({_EQX_SRC}: lim = 1 / math.sqrt("
                "grouped_in_channels * math.prod(kernel_size)), grouped_in_channels = in_channels // groups); torch "
                "by C_out/groups*prod(kernel)")
    if module.startswith("BatchNorm") and param in ("running_mean", "running_var", "num_batches_tracked"):
        return (ABSENT, "eqx.nn.BatchNorm keeps its running statistics in an eqx.nn.State, not in the module (mode "
                        "'ema': jnp.empty buffers replaced by the first batch's statistics; equinox 0.13.8 "
                        "equinox/nn/_batch_norm.py), and no num_batches_tracked")
    return None


def framework_default(framework: str, module: str, param: str, **config) -> tuple[Expectation | Exact, str] | None:
    """Flax's or Equinox's own default for ``module.param`` where it differs from torch's; ``None`` where torch's
    rule is theirs too. ``framework``'s family (up to the first ``-``) picks the table: ``flax``, ``flax-linen`` and
    ``flax-faulty-*`` share Flax's; ``equinox*`` Equinox's."""
    family = framework.split("-", 1)[0]
    if family == "flax":
        return _flax(framework, module, param, **config)
    if family == "equinox":
        return _equinox(framework, module, param, **config)
    return None
