"""Faulty Flax and Equinox adapters: real bug classes (../shared/BUGS.md) in these frameworks' idioms.

* ``flax-faulty-groups-ignored``: a grouped ``nnx.Conv`` whose ``kernel_init`` computes LeCun's fan on the full
  input channels (``in_features``) instead of ``in_features // feature_group_count``: the MLX #4536 class (grouped
  conv init range sqrt(groups) too narrow). Written the way a user writes a custom Flax initializer: draw the kernel
  of an ungrouped layer and keep the first ``in/groups`` input slices. Caught by
  ``module_defaults/test_random_default[Conv2d-weight-in_channels8-out_channels4096-kernel_size3-groups2]``
  (variance: std 1/sqrt(2) of the documented one).
* ``equinox-faulty-key-reuse``: every layer is built with the same key (``key = jax.random.PRNGKey(seed)`` reused
  instead of split), the classic JAX key-reuse mistake: two layers built one after the other are identical, the
  "same bias in every layer" class (candle #1931). Caught by ``seeds/test_layers_independent`` (distinct).
"""

from __future__ import annotations

from conformance.backends.equinox_adapter import EquinoxBackend
from conformance.backends.flax_adapter import NnxBackend

from .common import providers


class GroupsIgnored(NnxBackend):
    """flax.nnx.Conv whose kernel_init ignores feature_group_count in fan_in (MLX #4536 class)."""

    def _build(self, module, c, dt, key):
        groups = int(c.get("groups", 1))
        if not module.startswith("Conv") or module.startswith("ConvTranspose") or groups == 1:
            return super()._build(module, c, dt, key)
        from flax import nnx

        lecun = nnx.initializers.lecun_normal()

        def kernel_init(k, shape, dtype):
            # the bug: the fan is that of the ungrouped kernel (*kernel, in_features, out)
            full = lecun(k, (*shape[:-2], shape[-2] * groups, shape[-1]), dtype)
            return full[..., : shape[-2], :]

        c = dict(c)
        dims = int(module[-2])
        kernel = c.pop("kernel_size")
        kernel = tuple(kernel) if isinstance(kernel, (tuple, list)) else (int(kernel),) * dims
        layer = nnx.Conv(int(c.pop("in_channels")), int(c.pop("out_channels")), kernel,
                         feature_group_count=int(c.pop("groups")), use_bias=c.pop("bias", True), param_dtype=dt,
                         kernel_init=kernel_init, rngs=nnx.Rngs(params=key))
        from conformance.backends.flax_adapter import _nnx_params

        return _nnx_params(layer), {"transposed": False, "groups": groups}


class KeyReuse(EquinoxBackend):
    """equinox layers all built with one key (jax.random.PRNGKey(seed) reused, never split)."""

    def __init__(self, device: str) -> None:
        super().__init__(device)
        self._fixed = 0

    def seed(self, seed: int) -> None:
        super().seed(seed)
        self._fixed = int(seed)

    def _key(self):
        import jax

        return jax.random.PRNGKey(self._fixed)  # the bug: the same key for every layer


PROVIDERS = providers(
    flax_faulty_groups_ignored=GroupsIgnored,
    equinox_faulty_key_reuse=KeyReuse,
)
