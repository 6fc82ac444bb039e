"""The Equinox adapter: ``equinox:cpu`` (``eqx.nn`` layers with their default initialization).

Contract
--------
* ``import equinox`` happens lazily: importing this module never fails when Equinox is absent; the probe's reason
  names the extra to install.
* **Seeds.** Equinox layers take an explicit ``key``. The adapter holds one
  :class:`~conformance.backends.jax_adapter.KeyStream` (the JAX adapter's): ``seed(s)`` sets it to
  ``jax.random.PRNGKey(s)`` and every layer built by :meth:`EquinoxBackend.module_params` takes the next split key;
  a fresh adapter starts at ``PRNGKey(0)`` (contract ``unseeded``: deterministic).
* **dtype.** Creating the adapter turns on ``jax_enable_x64`` process-wide (as the JAX adapter does). Equinox's
  layers default to ``dtype=None`` -> ``default_floating_dtype()``, which is float64 when x64 is on and float32
  otherwise: a user who does not pass ``dtype`` gets float64 parameters in any process where something (here: the
  JAX adapter, or this one) enabled x64. The adapter always passes ``dtype`` explicitly (contract
  ``module_dtype``).
* **Modules.** ``Linear`` -> ``eqx.nn.Linear``, ``ConvNd`` -> ``eqx.nn.ConvNd`` (``groups`` as is),
  ``ConvTransposeNd`` -> ``eqx.nn.ConvTransposeNd``, ``Embedding`` -> ``eqx.nn.Embedding``, ``LayerNorm``,
  ``RMSNorm`` (``use_bias=False``: torch's RMSNorm has no bias), ``BatchNorm1d/2d`` -> ``eqx.nn.BatchNorm`` (weight
  and bias only: its running statistics live in an ``eqx.nn.State``, not in the module; see
  ``conformance/areas/module_defaults/flax_defaults.py``). Weights are ``(out, in)`` and ``(out, in/groups,
  *kernel)`` like torch (a convolution bias ``(out, 1, ..., 1)`` comes back as ``(out,)``); a transposed
  convolution's weight ``(out, in/groups, *kernel)`` is applied as a plain kernel over the dilated input
  (``lax.conv_general_dilated(lhs_dilation=stride)``), so it comes back as torch's ``ConvTranspose`` weight
  ``(in, out/groups, *kernel)`` with the spatial axes flipped.
* No initializer module of its own (Equinox users call ``jax.nn.initializers``): no ``named_init``; no sampler.
"""

from __future__ import annotations

import numpy as np

from .base import FLOAT_DTYPES, Availability, Backend, Contract, Provider, UnsupportedOperation
from .flax_adapter import bn_momentum, conv_config, done, embedding_config, norm_shape, transposed_to_torch
from .jax_adapter import DEFAULT_SEED, KeyedJaxBackend, jax_dtype, probe_jax_stack, to_numpy

EXTRA = "pip install 'dl-conformance[equinox]'"
_SRC = "equinox 0.13.8 equinox/nn/_linear.py, _conv.py, _embedding.py, _misc.py"


def _eqx():
    import equinox as eqx

    return eqx


class EquinoxBackend(KeyedJaxBackend):
    """``equinox.nn`` layers with their default initialization, ``dtype`` always explicit."""

    framework = "equinox"
    dtypes = frozenset(FLOAT_DTYPES)
    contracts = {
        "unseeded": Contract(
            "unseeded", f"deterministic: Equinox layers take an explicit key; the adapter's key starts at "
                        f"jax.random.PRNGKey({DEFAULT_SEED}) in every process until seed() replaces it",
            "Equinox docs, eqx.nn.Linear: 'key: A jax.random.PRNGKey used to provide randomness for parameter "
            "initialisation. (Keyword only argument.)'; backends/equinox_adapter.py", value="deterministic"),
        "seed_mapping": Contract(
            "seed_mapping", "seed(s) sets the adapter's key to jax.random.PRNGKey(s); each layer is built with the "
                            "next split key (key=...)", "backends/equinox_adapter.py"),
        "layout": Contract(
            "layout", "Linear weight (out_features, in_features); Conv weight (out_channels, in_channels // groups, "
                      "*kernel_size); ConvTranspose weight (out_channels, in_channels // groups, *kernel_size)",
            _SRC + ": wshape = (out_channels, grouped_in_channels) + kernel_size"),
        "module_dtype": Contract(
            "module_dtype", "dtype: 'Defaults to either jax.numpy.float32 or jax.numpy.float64 depending on whether "
                            "JAX is in 64-bit mode': with jax_enable_x64 on (the jax and equinox adapters turn it on "
                            "process-wide) a layer built without dtype has float64 parameters; the adapter always "
                            "passes dtype", _SRC + " (default_floating_dtype)"),
    }

    def versions(self) -> dict[str, str]:
        return {"equinox": _eqx().__version__, **self.jax_versions()}

    def _key(self):
        return self._stream.next()

    def module_params(self, module: str, dtype: str, **config) -> dict[str, np.ndarray]:
        """The ``eqx.nn`` layer with the same role, built with its default init in ``dtype`` from the next key;
        parameters by torch's names, in torch's layout."""
        self.require_dtype(dtype)
        with self._on_device():
            layer, conv = self._build(module, dict(config), jax_dtype(dtype))
        out = {}
        for name in ("weight", "bias"):
            value = getattr(layer, name, None)
            if value is None:
                continue
            arr = to_numpy(value)
            if name == "weight" and conv is not None and conv["transposed"]:
                arr = transposed_to_torch(arr, conv["groups"])
            if name == "bias" and conv is not None:
                arr = arr.reshape(-1)  # Equinox's convolution bias is (out_channels, *(1,) * dims)
            out[name] = arr
        return out

    def _build(self, module: str, c: dict, dt):
        nn = _eqx().nn
        if module == "Linear":
            layer = nn.Linear(int(c.pop("in_features")), int(c.pop("out_features")), use_bias=c.pop("bias", True),
                              dtype=dt, key=self._key())
            done(c, "eqx.nn.Linear")
            return layer, None
        if module.startswith("Conv"):
            cc = conv_config(module, c)
            cls = getattr(nn, module)
            done(c, f"eqx.nn.{module}")
            padding = cc["padding"]
            padding = padding.upper() if isinstance(padding, str) else padding
            kwargs = {"stride": cc["stride"], "padding": padding, "dilation": cc["dilation"], "groups": cc["groups"],
                      "use_bias": cc["bias"], "dtype": dt, "key": self._key()}
            if cc["transposed"]:
                kwargs["output_padding"] = cc["output_padding"]
            elif any(cc["output_padding"]):
                raise TypeError(f"{module} takes no output_padding")
            return cls(cc["in_ch"], cc["out_ch"], cc["kernel"], **kwargs), cc
        if module == "Embedding":
            n, d = embedding_config(c, "eqx.nn.Embedding")
            done(c, "eqx.nn.Embedding")
            return nn.Embedding(n, d, dtype=dt, key=self._key()), None
        if module in ("LayerNorm", "RMSNorm"):
            shape = norm_shape(c)
            eps = c.pop("eps", 1e-5)
            affine = c.pop("elementwise_affine", True)
            if module == "RMSNorm":
                done(c, "eqx.nn.RMSNorm")
                return nn.RMSNorm(shape, eps=1e-5 if eps is None else eps, use_weight=affine, use_bias=False,
                                  dtype=dt), None
            bias = c.pop("bias", True)
            done(c, "eqx.nn.LayerNorm")
            return nn.LayerNorm(shape, eps=eps, use_weight=affine, use_bias=affine and bias, dtype=dt), None
        if module in ("BatchNorm1d", "BatchNorm2d"):
            n = int(c.pop("num_features"))
            eps = float(c.pop("eps", 1e-5))
            momentum = bn_momentum(c, module)
            affine = bool(c.pop("affine", True))
            if not c.pop("track_running_stats", True):
                raise UnsupportedOperation(f"{module}(track_running_stats=False): eqx.nn.BatchNorm always keeps "
                                           "running statistics")
            done(c, "eqx.nn.BatchNorm")
            return nn.BatchNorm(n, axis_name="batch", eps=eps, momentum=momentum, channelwise_affine=affine,
                                dtype=dt, mode="ema"), None
        raise UnsupportedOperation(f"{self.spec} cannot build module {module!r}")


class EquinoxProvider(Provider):
    """Equinox on ``cpu`` (and ``gpu`` when jax has one); :meth:`probe` never raises."""

    def probe(self, device: str) -> Availability:
        return probe_jax_stack("equinox", device, self.devices, ("equinox",), EXTRA)

    def _create(self, device: str) -> Backend:
        return EquinoxBackend(device)


PROVIDER = EquinoxProvider(framework="equinox", devices=("cpu", "gpu"),
                           description="Equinox layers (eqx.nn.Linear, Conv*, ConvTranspose*, Embedding, norms) with "
                                       "their default initialization", extra="equinox")
