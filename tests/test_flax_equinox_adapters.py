"""The Flax (nnx, linen) and Equinox adapters at their contract's edges: dtypes, seeding, layouts, errors, the
contracts they declare, and their faulty twins (tests/faulty/flax_adapters.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("equinox")

from conformance.backends import flax_adapter as F  # noqa: E402
from conformance.backends.base import UnsupportedOperation  # noqa: E402
from conformance.backends.dtypes import NUMPY_DTYPES  # noqa: E402

SPECS = ("flax", "flax-linen", "equinox")


@pytest.fixture(scope="module", params=SPECS)
def backend(request):
    from conformance.backends import equinox_adapter as E

    cls = {"flax": F.NnxBackend, "flax-linen": F.LinenBackend, "equinox": E.EquinoxBackend}[request.param]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield cls("cpu")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_module_params_dtype_exact(backend, dtype):
    """Every parameter comes back in the requested dtype (bfloat16 as ml_dtypes.bfloat16), never widened."""
    for module, cfg in [("Linear", {"in_features": 3, "out_features": 5}),
                        ("Embedding", {"num_embeddings": 6, "embedding_dim": 4})]:
        params = backend.module_params(module, dtype, **cfg)
        assert params and all(v.dtype == NUMPY_DTYPES[dtype] for v in params.values()), (module, params)


def test_seeding(backend):
    """seed(s) reproduces a layer bit for bit; successive layers and other seeds differ."""
    backend.seed(7)
    a = backend.module_params("Linear", "float32", in_features=8, out_features=8)
    b = backend.module_params("Linear", "float32", in_features=8, out_features=8)
    backend.seed(7)
    again = backend.module_params("Linear", "float32", in_features=8, out_features=8)
    backend.seed(8)
    other = backend.module_params("Linear", "float32", in_features=8, out_features=8)
    np.testing.assert_array_equal(a["weight"], again["weight"])
    assert not np.array_equal(a["weight"], b["weight"])
    assert not np.array_equal(a["weight"], other["weight"])


def test_layouts_are_torch(backend):
    """Shapes by torch's names and layouts: Linear (out, in), grouped Conv (out, in/groups, *k), ConvTranspose
    (in, out, *k), Embedding (num, dim)."""
    p = backend.module_params("Linear", "float32", in_features=3, out_features=5)
    assert p["weight"].shape == (5, 3) and p["bias"].shape == (5,)
    p = backend.module_params("Conv2d", "float32", in_channels=4, out_channels=6, kernel_size=(3, 2), groups=2)
    assert p["weight"].shape == (6, 2, 3, 2) and p["bias"].shape == (6,)
    p = backend.module_params("ConvTranspose1d", "float32", in_channels=4, out_channels=6, kernel_size=3)
    assert p["weight"].shape == (4, 6, 3) and p["bias"].shape == (6,)
    assert backend.module_params("Embedding", "float32", num_embeddings=7, embedding_dim=4)["weight"].shape == (7, 4)
    bn = backend.module_params("BatchNorm1d", "float32", num_features=3)
    np.testing.assert_array_equal(bn["weight"], 1.0)
    np.testing.assert_array_equal(bn["bias"], 0.0)


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_transpose_weight_is_torchs(backend, groups):
    """The ConvTranspose weight handed back, loaded into torch.nn.ConvTranspose1d, computes what the framework's
    layer computes (layout, groups and the spatial flip are right)."""
    torch = pytest.importorskip("torch")
    import jax.numpy as jnp

    if groups != 1 and backend.framework != "equinox":
        pytest.skip("Flax's ConvTranspose has no feature_group_count")
    cfg = {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "stride": 2, "groups": groups}
    x = np.random.default_rng(0).standard_normal((4, 7))
    if backend.framework == "equinox":
        layer, _ = backend._build("ConvTranspose1d", dict(cfg), jnp.float64)
        from conformance.backends.flax_adapter import transposed_to_torch

        weight, y = transposed_to_torch(np.asarray(layer.weight), groups), np.asarray(layer(jnp.asarray(x)))
        bias = np.asarray(layer.bias).ravel()
    else:
        from conformance.backends import layouts
        from flax import nnx

        fl = nnx.ConvTranspose(4, 6, 3, strides=2, padding="VALID", param_dtype=jnp.float64, rngs=nnx.Rngs(0))
        weight = F.transposed_to_torch(layouts.from_framework(np.asarray(fl.kernel[...]), "io"), 1)
        y, bias = np.asarray(fl(jnp.asarray(x.T[None])))[0].T, np.zeros(6)
    t = torch.nn.ConvTranspose1d(4, 6, 3, stride=2, groups=groups, dtype=torch.float64)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(np.array(weight)))
        t.bias.copy_(torch.tensor(np.array(bias)))
        want = t(torch.tensor(x)[None])[0].numpy()
    np.testing.assert_allclose(y, want, atol=1e-12)


def test_unsupported_configs_say_why(backend):
    with pytest.raises(UnsupportedOperation, match="padding_idx"):
        backend.module_params("Embedding", "float32", num_embeddings=5, embedding_dim=3, padding_idx=0)
    with pytest.raises(UnsupportedOperation, match="no equivalent"):
        backend.module_params("Linear", "float32", in_features=3, out_features=2, frobnicate=True)
    with pytest.raises(UnsupportedOperation, match="cannot build"):
        backend.module_params("GRU", "float32")
    with pytest.raises(UnsupportedOperation, match="momentum=None"):
        backend.module_params("BatchNorm1d", "float32", num_features=3, momentum=None)
    if backend.framework.startswith("flax"):
        with pytest.raises(UnsupportedOperation, match="feature_group_count"):
            backend.module_params("ConvTranspose2d", "float32", in_channels=4, out_channels=4, kernel_size=3,
                                  groups=2)


def test_flax_initializers_are_jaxs():
    """Contract named_init: flax.nnx/flax.linen.initializers are jax.nn.initializers' own function objects."""
    import flax.linen as nn
    import jax
    from flax import nnx

    for name in ("he_normal", "lecun_normal", "glorot_uniform", "variance_scaling", "truncated_normal"):
        assert getattr(nnx.initializers, name) is getattr(jax.nn.initializers, name)
        assert getattr(nn.initializers, name) is getattr(jax.nn.initializers, name)
    assert "flax" in F.NnxBackend.contracts["named_init"].statement


def test_named_init_layout():
    """named_init on a canonical (out, in) shape: LeCun normal's fan is the in dimension (shape[1])."""
    b = F.NnxBackend("cpu")
    b.seed(0)
    w = b.named_init("lecun_normal", (64, 4000), "float32")
    assert w.shape == (64, 4000)
    assert abs(w.std() * np.sqrt(4000) - 1.0) < 0.02


def test_equinox_default_dtype_under_x64():
    """Contract module_dtype: with x64 on (the adapter turns it on), eqx.nn.Linear without dtype is float64."""
    import equinox as eqx
    import jax
    from conformance.backends.equinox_adapter import EquinoxBackend

    EquinoxBackend("cpu")
    assert eqx.nn.Linear(2, 3, key=jax.random.PRNGKey(0)).weight.dtype == np.float64
    assert "float64" in EquinoxBackend.contracts["module_dtype"].statement


def test_defaults_table():
    """The framework_default hook picks Flax's table for flax, flax-linen and flax-faulty-*, Equinox's for equinox."""
    from conformance.areas.module_defaults.spec import ABSENT, framework_default

    for fw in ("flax", "flax-linen", "flax-faulty-groups-ignored"):
        want, why = framework_default(fw, "Embedding", "weight", num_embeddings=10, embedding_dim=100)
        assert abs(want.reference.std - 0.1) < 1e-12 and "out_axis=0" in why
        want, _ = framework_default(fw, "Conv2d", "weight", in_channels=8, out_channels=16, kernel_size=3, groups=2)
        assert abs(want.reference.std - np.sqrt(1 / 36)) < 1e-9  # std after truncation = sqrt(1/fan_in)
    assert framework_default("equinox", "Linear", "weight", in_features=3, out_features=2) is None
    want, _ = framework_default("equinox", "ConvTranspose1d", "weight", in_channels=8, out_channels=4, kernel_size=3)
    assert abs(want.reference.std - np.sqrt(1 / 24) / np.sqrt(3)) < 1e-9
    assert framework_default("equinox", "BatchNorm1d", "running_var", num_features=3)[0] is ABSENT


def test_named_entries_inherited():
    from conformance.areas.named_schemes import spec as N

    entries = N.entries_for("he_normal", "flax-linen")
    assert entries and all(e.framework == "flax-linen" and "jax.nn.initializers" in e.quote for e in entries)
    assert entries[0].convention.startswith("inherited from JAX")
    assert N.entries_for("he_normal", "equinox") == []


def test_faulty_twins():
    """groups-ignored: grouped conv std 1/sqrt(groups) too small; key-reuse: two layers identical."""
    from tests.faulty.flax_adapters import GroupsIgnored, KeyReuse

    bad = GroupsIgnored("cpu")
    w = bad.module_params("Conv2d", "float32", in_channels=8, out_channels=512, kernel_size=3, groups=2)["weight"]
    assert abs(w.std() * np.sqrt(4 * 9) - np.sqrt(0.5)) < 0.03
    twin = KeyReuse("cpu")
    a = twin.module_params("Linear", "float32", in_features=4, out_features=4)
    b = twin.module_params("Linear", "float32", in_features=4, out_features=4)
    np.testing.assert_array_equal(a["bias"], b["bias"])
