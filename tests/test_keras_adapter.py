"""The Keras 3 adapter's contract edges: one Keras backend per process, probes that never import keras, bit-exact
dtypes, layouts, seeding, the initializer-instance contract, errors.

Keras fixes its backend at ``import keras``: this process uses the backend already imported, else ``jax`` (else
``torch``); the other backend runs in a child process. Skips cleanly when keras is absent.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pytest

if importlib.util.find_spec("keras") is None:  # not importorskip: importing keras here would fix its backend
    pytest.skip("keras is not installed", allow_module_level=True)

from conformance.backends import keras_adapter as K  # noqa: E402
from conformance.backends.base import BackendUnavailable, UnsupportedOperation  # noqa: E402
from conformance.backends.dtypes import NUMPY_DTYPES  # noqa: E402


def _here() -> str | None:
    current = K._imported_backend()
    if current in ("jax", "torch"):
        return current
    if current is not None:
        return None
    for name in ("jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


HERE = _here()
OTHER = {"jax": "torch", "torch": "jax"}.get(HERE or "")
pytestmark = pytest.mark.skipif(HERE is None, reason="keras is imported with a backend other than jax/torch, or "
                                                     "neither jax nor torch is installed")
PROVIDERS = {"jax": K.JAX_PROVIDER, "torch": K.TORCH_PROVIDER}


@pytest.fixture(scope="module")
def b():
    return PROVIDERS[HERE].create("cpu")


def _child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_probe_never_imports_keras():
    got = _child("import json, sys\nfrom conformance.backends.keras_adapter import JAX_PROVIDER, TORCH_PROVIDER\n"
                 "a, t = JAX_PROVIDER.probe('cpu'), TORCH_PROVIDER.probe('cpu'), \n"
                 "print(json.dumps({'keras': 'keras' in sys.modules, 'jax': a.available, 'torch': t.available,\n"
                 "                  'gpu': JAX_PROVIDER.probe('gpu').reason}))")
    assert got["keras"] is False
    assert got[HERE] is True
    assert "no device 'gpu'" in got["gpu"]


def test_other_backend_is_unavailable_with_reason(b):
    assert b.framework == f"keras-{HERE}" and b.spec == f"keras-{HERE}:cpu"
    other = PROVIDERS[OTHER]
    availability = other.probe("cpu")
    if importlib.util.find_spec(OTHER) is None:
        assert not availability.available and "not installed" in availability.reason
        return
    assert not availability.available
    assert f"backend {HERE!r}" in availability.reason and "separate `conformance run" in availability.reason
    with pytest.raises(BackendUnavailable, match="separate"):
        other.create("cpu")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dtypes_come_back_exact(b, dtype):
    want = NUMPY_DTYPES[dtype]
    b.seed(3)
    arrays = [b.sample("uniform", (7, 5), dtype), b.sample("normal", (7, 5), dtype),
              b.init("kaiming_uniform", (7, 5), dtype), b.named_init("he_normal", (7, 5), dtype),
              *b.module_params("Linear", dtype, in_features=5, out_features=7).values()]
    for a in arrays:
        assert a.dtype == want
    # the bits are Keras's own: the same draw through keras, widened on the framework side, matches ours widened
    keras = b._k
    keras.utils.set_random_seed(11)
    raw = keras.random.normal((64,), dtype=dtype)
    b.seed(11)
    ours = b.sample("normal", (64,), dtype)
    wide = K.to_numpy(keras.ops.cast(raw, "float64"), HERE)
    np.testing.assert_array_equal(ours.astype(np.float64), wide)
    if dtype in ("float16", "bfloat16"):  # values on the dtype's grid, not a float32 draw in disguise
        assert len(np.unique(ours)) < 64 or np.all(ours.astype(np.float32).astype(want) == ours)


def test_layouts(b):
    lin = b.module_params("Linear", "float32", in_features=3, out_features=5)
    assert lin["weight"].shape == (5, 3) and lin["bias"].shape == (5,) and not lin["bias"].any()
    conv = b.module_params("Conv2d", "float32", in_channels=4, out_channels=8, kernel_size=(3, 2), groups=2)
    assert conv["weight"].shape == (8, 2, 3, 2)
    tconv = b.module_params("ConvTranspose1d", "float32", in_channels=4, out_channels=6, kernel_size=5)
    assert tconv["weight"].shape == (4, 6, 5)
    emb = b.module_params("Embedding", "float32", num_embeddings=50, embedding_dim=8)["weight"]
    assert emb.shape == (50, 8) and np.abs(emb).max() <= 0.05
    ln = b.module_params("LayerNorm", "float32", normalized_shape=(4, 8))
    assert ln["weight"].shape == (4, 8) and (ln["weight"] == 1).all() and (ln["bias"] == 0).all()
    bn = b.module_params("BatchNorm2d", "float32", num_features=3)
    assert set(bn) == {"weight", "bias", "running_mean", "running_var"}
    # glorot_uniform fans from the canonical (out, in) = (384, 256): limit sqrt(6 / 640)
    w = b.named_init("glorot_uniform", (384, 256), "float32")
    limit = math.sqrt(6.0 / 640.0)
    assert w.shape == (384, 256) and np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    # he_uniform: fan_in = in * receptive field of the canonical conv (out, in, kh, kw)
    w = b.named_init("he_uniform", (16, 8, 3, 3), "float32")
    assert np.abs(w).max() <= math.sqrt(6.0 / 72.0) and np.abs(w).max() > 0.9 * math.sqrt(6.0 / 72.0)


def test_seeding(b):
    b.seed(5)
    x1, l1 = b.sample("uniform", (100,), "float32"), b.module_params("Linear", "float32", in_features=8,
                                                                     out_features=8)
    y1 = b.init("xavier_normal", (16, 16), "float32")
    b.seed(5)
    x2, l2 = b.sample("uniform", (100,), "float32"), b.module_params("Linear", "float32", in_features=8,
                                                                     out_features=8)
    y2 = b.init("xavier_normal", (16, 16), "float32")
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(l1["weight"], l2["weight"])
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(b.sample("uniform", (100,), "float32"), x1)
    b.seed(6)
    assert not np.array_equal(b.sample("uniform", (100,), "float32"), x1)


def test_initializer_reuse_contract(b):
    table = dict(p.split(":") for p in b.contracts["initializer_reuse"].value.split(","))
    assert table == {"int": "same", "none": "same", "generator": "differ"}
    for seed, same in (("int", True), ("none", True), ("generator", False)):
        a, c = b.initializer_instance_draws("glorot_uniform", (16, 12), "float32", seed, calls=2)
        assert np.array_equal(a, c) == same, seed
        layers = b.shared_initializer_layers("Linear", "float32", seed, count=2, in_features=16, out_features=16)
        assert np.array_equal(layers[0]["weight"], layers[1]["weight"]) == same, seed
    # the default construction builds one instance per layer: layers differ
    one, two = (b.module_params("Linear", "float32", in_features=16, out_features=16) for _ in range(2))
    assert not np.array_equal(one["weight"], two["weight"])


def test_seed_generator_contract(b):
    """SeedGenerator(s)'s k-th draw uses the pair [s, k]; torch sums it into one seed (stream shifted by one draw)."""
    keras = b._k
    g0, g1 = keras.random.SeedGenerator(40), keras.random.SeedGenerator(41)
    d0 = [K.to_numpy(keras.random.normal((32,), seed=g0), HERE) for _ in range(3)]
    d1 = [K.to_numpy(keras.random.normal((32,), seed=g1), HERE) for _ in range(2)]
    assert not np.array_equal(d0[0], d0[1])
    shifted = np.array_equal(d1[0], d0[1]) and np.array_equal(d1[1], d0[2])
    assert shifted == (HERE == "torch")
    int_twice = [K.to_numpy(keras.random.normal((32,), seed=7), HERE) for _ in range(2)]
    np.testing.assert_array_equal(*int_twice)


def test_unsupported_with_reasons(b):
    with pytest.raises(UnsupportedOperation, match="2 standard deviations"):
        b.init("trunc_normal", (10, 10), "float32", std=0.02)  # absolute bounds +-2 = +-100 std
    assert b.init("trunc_normal", (10, 10), "float32", std=0.02, low=-0.04, high=0.04).shape == (10, 10)
    for scheme in ("dirac", "sparse"):
        with pytest.raises(UnsupportedOperation):
            b.init(scheme, (4, 4, 3), "float32")
    with pytest.raises(UnsupportedOperation, match="padding_idx"):
        b.module_params("Embedding", "float32", num_embeddings=10, embedding_dim=4, padding_idx=0)
    with pytest.raises(UnsupportedOperation, match="groups"):
        b.module_params("ConvTranspose2d", "float32", in_channels=4, out_channels=4, kernel_size=3, groups=2)
    with pytest.raises(UnsupportedOperation):
        b.activation("softplus", np.ones(3, np.float32), "float32", beta=2.0)
    with pytest.raises(TypeError):
        b.activation("silu", np.ones(3, np.float32), "float32", alpha=1.0)
    assert b.init("zeros", (0, 5), "float32").shape == (0, 5)


def test_activations(b):
    x = np.array([0.0, -0.0, 1.0, -3.0], np.float32)
    value, grad = b.activation("silu", x, "float32")
    assert grad[0] == 0.5 and grad[1] == 0.5 and value[2] == np.float32(1 / (1 + math.exp(-1)))
    _, g = b.activation("leaky_relu", np.array([-1.0], np.float32), "float32", negative_slope=0.01)
    assert g[0] == np.float32(0.01)
    out, gx, gy = b.activation2("swiglu", np.ones(3, np.float32), np.full(3, 2.0, np.float32), "float32")
    assert np.allclose(gy, out / 2)
    m = np.arange(12, dtype=np.float32).reshape(3, 4) / 7 - 0.8
    if HERE == "torch":
        for layout in ("transposed", "strided"):
            got = b.activation("gelu", m, "float32", layout=layout)
            want = b.activation("gelu", m, "float32")
            np.testing.assert_array_equal(got[1], want[1])
    else:
        with pytest.raises(UnsupportedOperation, match="no strides"):
            b.activation("gelu", m, "float32", layout="transposed")


@pytest.mark.skipif(OTHER is None or importlib.util.find_spec(OTHER or "x") is None,
                    reason="the other Keras backend is not installed")
def test_other_backend_in_its_own_process():
    got = _child(
        "import json\nfrom conformance.backends.keras_adapter import JAX_PROVIDER, TORCH_PROVIDER\n"
        f"b = {'TORCH_PROVIDER' if OTHER == 'torch' else 'JAX_PROVIDER'}.create('cpu')\n"
        "b.seed(1)\n"
        "x = b.sample('uniform', (5,), 'bfloat16'); w = b.module_params('Conv1d', 'float16', in_channels=2,"
        " out_channels=3, kernel_size=4)['weight']\n"
        "d = b.initializer_instance_draws('he_normal', (8, 8), 'float32', 'none')\n"
        "print(json.dumps({'spec': b.spec, 'x': str(x.dtype), 'w': [list(w.shape), str(w.dtype)],"
        " 'same': bool((d[0] == d[1]).all())}))")
    assert got == {"spec": f"keras-{OTHER}:cpu", "x": "bfloat16", "w": [[3, 2, 4], "float16"], "same": True}
