"""Fast tests of the JAX, MLX and Candle adapters: availability, reasons, shapes, dtypes, layouts, seeds.

Frameworks that are not installed are skipped (their probe reason is tested with a simulated missing import).
"""

from __future__ import annotations

import builtins
import math

import ml_dtypes
import numpy as np
import pytest
from conformance.backends import base, registry
from conformance.backends.candle_adapter import PROVIDER as CANDLE_PROVIDER
from conformance.backends.jax_adapter import PROVIDER as JAX_PROVIDER
from conformance.backends.mlx_adapter import PROVIDER as MLX_PROVIDER

PROVIDERS = {"jax": JAX_PROVIDER, "mlx": MLX_PROVIDER, "candle": CANDLE_PROVIDER}


def _resolve(spec: str):
    provider = PROVIDERS[spec.split(":")[0]]
    availability = provider.probe(spec.split(":")[1])
    if not availability.available:
        pytest.skip(availability.reason)
    return provider.create(spec.split(":")[1])


@pytest.fixture(scope="module")
def jax_b():
    return _resolve("jax:cpu")


@pytest.fixture(scope="module")
def mlx_b():
    return _resolve("mlx:cpu")


@pytest.fixture(scope="module")
def candle_b():
    return _resolve("candle:cpu")


# -- registration and availability ---------------------------------------------------------------------------------
@pytest.mark.parametrize("framework", sorted(PROVIDERS))
def test_registered_through_entry_points(framework):
    """The adapters register like third-party ones: through the conformance.backends entry-point group."""
    import importlib.metadata

    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert names.get(framework) == f"conformance.backends.{framework}_adapter:PROVIDER"


@pytest.mark.parametrize(("framework", "module"), [("jax", "jax"), ("mlx", "mlx.core"), ("candle", "candle")])
def test_missing_framework_reason(monkeypatch, framework, module):
    """A framework that fails to import is unavailable, with the import error and the pip extra as reason."""
    real_import = builtins.__import__

    def failing(name, *args, **kwargs):
        if name == module or name.startswith(module.split(".")[0] + ".") or name == module.split(".")[0]:
            raise ImportError(f"No module named {name!r} (simulated)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing)
    availability = PROVIDERS[framework].probe("cpu")
    assert not availability.available
    assert f"pip install 'dl-conformance[{framework}]'" in availability.reason
    assert "simulated" in availability.reason


@pytest.mark.parametrize("framework", sorted(PROVIDERS))
def test_probe_unknown_device_never_raises(framework):
    availability = PROVIDERS[framework].probe("tpu-v9")
    assert not availability.available and availability.reason


def test_accelerators_unavailable_here_with_reason():
    for provider, device in ((JAX_PROVIDER, "gpu"), (MLX_PROVIDER, "gpu"), (CANDLE_PROVIDER, "cuda"),
                             (CANDLE_PROVIDER, "metal")):
        availability = provider.probe(device)
        if not availability.available:
            assert availability.reason


# -- JAX -------------------------------------------------------------------------------------------------------------
def test_jax_seed_split_and_state(jax_b):
    jax_b.seed(7)
    a = jax_b.sample("normal", (4, 5), "float32")
    b = jax_b.sample("normal", (4, 5), "float32")
    assert a.shape == (4, 5) and a.dtype == np.float32 and not np.array_equal(a, b)
    jax_b.seed(7)
    assert np.array_equal(jax_b.sample("normal", (4, 5), "float32"), a)
    state = jax_b.rng_state()
    x = jax_b.sample("uniform", (9,), "float64")
    jax_b.set_rng_state(state)
    assert np.array_equal(jax_b.sample("uniform", (9,), "float64"), x)
    gen = jax_b.generator(7)
    jax_b.seed(7)
    assert np.array_equal(jax_b.sample("uniform", (3,), "float32", generator=gen), jax_b.sample("uniform", (3,),
                                                                                                 "float32"))


def test_jax_dtypes_and_bfloat16(jax_b):
    for dtype in base.FLOAT_DTYPES:
        x = jax_b.sample("uniform", (3, 4), dtype)
        assert x.dtype == np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)


def test_jax_layout_translation(jax_b):
    """init on canonical (out, in, kh, kw) returns that shape; fans are the canonical ones (variance check)."""
    jax_b.seed(3)
    w = jax_b.init("kaiming_uniform", (64, 16, 3, 5), "float32", nonlinearity="relu")
    assert w.shape == (64, 16, 3, 5)
    bound = math.sqrt(6 / (16 * 15))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert jax_b.named_init("glorot_uniform", (5, 3), "float32").shape == (5, 3)


def test_jax_unsupported_reasons(jax_b):
    with pytest.raises(base.UnsupportedOperation, match="no lower bound"):
        jax_b.init("uniform", (4, 4), "float32", low=-1.0, high=1.0)
    with pytest.raises(base.UnsupportedOperation, match="dirac"):
        jax_b.init("dirac", (4, 4, 3), "float32")
    with pytest.raises(base.UnsupportedOperation):
        jax_b.module_params("Linear", "float32", in_features=3, out_features=2)
    with pytest.raises(base.UnsupportedOperation):
        jax_b.calculate_gain("relu")


def test_jax_truncated_normal_bounds_are_in_std_units(jax_b):
    x = jax_b.init("trunc_normal", (200, 100), "float32", std=0.5, low=-0.25, high=1.0).astype(np.float64)
    assert x.min() >= -0.25 and x.max() <= 1.0 and x.min() < -0.2 and x.max() > 0.9


def test_jax_activation_and_grad(jax_b):
    x = np.array([-1.0, 0.0, 2.0, np.nan], np.float32)
    v, g = jax_b.activation("silu", x, "float32")
    s = 1 / (1 + np.exp(-x[:3].astype(np.float64)))
    assert np.allclose(v[:3], x[:3] * s, rtol=1e-6) and np.allclose(g[:3], s * (1 + x[:3] * (1 - s)), rtol=1e-6)
    assert np.isnan(v[3]) and np.isnan(g[3])
    out, gx, gy = jax_b.activation2("swiglu", np.ones((2, 3), np.float32), np.full((2, 3), 2.0, np.float32), "float32")
    assert out.shape == (2, 3) and np.allclose(gy, v[2] * 0 + 1 / (1 + np.exp(-1.0)), rtol=1e-6)


# -- MLX -------------------------------------------------------------------------------------------------------------
def test_mlx_seed_and_dtypes(mlx_b):
    mlx_b.seed(5)
    a = mlx_b.sample("normal", (3, 4), "bfloat16")
    mlx_b.seed(5)
    assert np.array_equal(mlx_b.sample("normal", (3, 4), "bfloat16").view(np.uint16), a.view(np.uint16))
    assert a.dtype == ml_dtypes.bfloat16
    with pytest.raises(base.UnsupportedOperation, match="float64"):
        mlx_b.sample("uniform", (3,), "float64")


def test_mlx_layouts(mlx_b):
    """Conv weights come back canonical (out, in/groups, *k); ConvTranspose in torch's (in, out, *k)."""
    p = mlx_b.module_params("Conv2d", "float32", in_channels=4, out_channels=6, kernel_size=(3, 2), groups=2)
    assert p["weight"].shape == (6, 2, 3, 2) and np.all(p["bias"] == 0)
    p = mlx_b.module_params("ConvTranspose1d", "float32", in_channels=4, out_channels=6, kernel_size=3)
    assert p["weight"].shape == (4, 6, 3)
    assert mlx_b.module_params("Linear", "float16", in_features=7, out_features=5)["weight"].shape == (5, 7)
    w = mlx_b.named_init("he_uniform", (8, 4, 3), "float32")
    assert w.shape == (8, 4, 3) and np.abs(w).max() <= math.sqrt(3 / 12)


def test_mlx_unsupported_reasons(mlx_b):
    with pytest.raises(base.UnsupportedOperation, match="padding_idx"):
        mlx_b.module_params("Embedding", "float32", num_embeddings=5, embedding_dim=3, padding_idx=1)
    with pytest.raises(base.UnsupportedOperation, match="groups"):
        mlx_b.module_params("ConvTranspose2d", "float32", in_channels=4, out_channels=4, kernel_size=3, groups=2)
    with pytest.raises(base.UnsupportedOperation, match="sparse"):
        mlx_b.init("sparse", (4, 4), "float32", sparsity=0.5)
    with pytest.raises(base.UnsupportedOperation):
        mlx_b.rng_state()


def test_mlx_activation_layouts(mlx_b):
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(4, 6)
    base_v, base_g = mlx_b.activation("gelu", x, "float32")
    for layout in ("transposed", "strided"):
        v, g = mlx_b.activation("gelu", x, "float32", layout=layout)
        assert np.array_equal(v, base_v) and np.array_equal(g, base_g)


def test_mlx_dropout_mask(mlx_b):
    m = mlx_b.dropout_mask((200, 200), 0.25, "float32")
    assert m.dtype == bool and abs(m.mean() - 0.75) < 0.01


# -- Candle ----------------------------------------------------------------------------------------------------------
def test_candle_declares_what_it_lacks(candle_b):
    assert {"seed", "init", "named_init", "activations"}.isdisjoint(candle_b.capabilities)
    with pytest.raises(base.UnsupportedOperation, match="no seed"):
        candle_b.seed(1)
    with pytest.raises(base.UnsupportedOperation, match="float32 only"):
        candle_b.sample("normal", (3,), "bfloat16")
    with pytest.raises(base.UnsupportedOperation, match="bounds"):
        candle_b.sample("uniform", (3,), "float32", low=-1.0, high=1.0)
    with pytest.raises(base.UnsupportedOperation, match="Conv2d"):
        candle_b.module_params("Conv2d", "float32", in_channels=2, out_channels=2, kernel_size=3)


def test_candle_bit_exact_boundary(candle_b):
    x = candle_b.sample("uniform", (50, 40), "float32")
    assert x.shape == (50, 40) and x.dtype == np.float32 and 0 <= x.min() and x.max() < 1
    p = candle_b.module_params("Embedding", "bfloat16", num_embeddings=6, embedding_dim=3)
    assert p["weight"].dtype == ml_dtypes.bfloat16 and p["weight"].shape == (6, 3)
    ln = candle_b.module_params("LayerNorm", "float64", normalized_shape=(2, 3))
    assert ln["weight"].dtype == np.float64 and np.all(ln["weight"] == 1) and np.all(ln["bias"] == 0)
