"""Fast tests of the tinygrad adapter: availability, environment, dtype exactness, seeding, realization order,
layouts, unsupported reasons, module names, activations, and the faulty adapters' defects.

Skipped when tinygrad is not installed (its compile-per-shape cost is kept low: tiny shapes, few of them).
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

pytest.importorskip("tinygrad")

from conformance.backends import base, registry  # noqa: E402
from conformance.backends import tinygrad_adapter as T  # noqa: E402


@pytest.fixture(scope="module")
def tg():
    availability = T.PROVIDER.probe("cpu")
    if not availability.available:
        pytest.skip(availability.reason)
    return T.PROVIDER.create("cpu")


def test_registered_through_entry_point():
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert names.get("tinygrad") == "conformance.backends.tinygrad_adapter:PROVIDER"


def test_accelerators_probe_with_reason_and_unknown_device():
    for device in ("cuda", "metal"):
        a = T.PROVIDER.probe(device)
        assert isinstance(a, base.Availability)
        if not a.available:
            assert device.upper() in a.reason and a.reason
    a = T.PROVIDER.probe("tpu")
    assert not a.available and "tpu" in a.reason


def test_dev_env_set_only_when_absent():
    """A fresh interpreter: DEV=CPU is set before import; a user's own DEV is left alone."""
    code = ("import os; from conformance.backends.tinygrad_adapter import PROVIDER; PROVIDER.probe('cpu'); "
            "print(os.environ.get('DEV'))")
    env = {k: v for k, v in os.environ.items() if k != "DEV"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "CPU", out.stderr[-2000:]
    env["DEV"] = "CPU:LLVM"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "CPU:LLVM", out.stderr[-2000:]


def test_capabilities_and_contracts(tg):
    assert {"seed", "sample", "init", "named_init", "modules", "activations", "processes"} <= tg.capabilities
    assert tg.contracts["unseeded"].value == "fresh"
    assert "16520" in tg.contracts["realization"].source
    assert "float32" in tg.dtypes and "float64" in tg.dtypes


def test_bit_exact_dtypes(tg):
    for dtype in sorted(tg.dtypes):
        tg.seed(3)
        x = tg.sample("rand", (7,), dtype)
        assert x.dtype == (ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype))
        assert x.shape == (7,)
        assert ((x.astype(np.float64) >= 0) & (x.astype(np.float64) < 1)).all()


def test_bfloat16_reason_or_bits(tg):
    """bfloat16 either works (natively or emulated, the contract naming the compiler's reason) or is refused with the
    compiler's reason; never silently computed in another dtype."""
    if "bfloat16" in tg.dtypes:
        tg.seed(0)
        x = tg.sample("randn", (5,), "bfloat16")
        assert x.dtype == ml_dtypes.bfloat16
        if "bfloat16" in tg._emulate:
            assert "error" in tg.contracts["bfloat16"].statement
    else:
        with pytest.raises(base.UnsupportedOperation, match="compile"):
            tg.sample("randn", (5,), "bfloat16")


def test_to_numpy_refuses_wrong_dtype_and_checks_representability(tg):
    from tinygrad import Tensor, dtypes

    with tg._ctx("float32"):
        t = Tensor([1.0, 2.0], dtype=dtypes.float32, device=tg._dev).realize()
        with pytest.raises(T.TinygradDtypeError, match="float16"):
            T.to_numpy(t, "float16")
        assert T.to_numpy(t, "float32").tolist() == [1.0, 2.0]
    with pytest.raises(T.TinygradDtypeError, match="expected a numpy array of float16"):
        T.check_representable(np.array([0.1, 0.5]), "float16")
    ok = np.array([0.5, np.nan, -np.inf], np.float16)
    assert T.check_representable(ok, "float16") is ok
    assert not T.exactly_representable(np.array([0.1]), "bfloat16").any()
    assert T.exactly_representable(np.array([0.5, 0.25]), "bfloat16").all()


def test_check_representable_rejects_wider_array():
    with pytest.raises(T.TinygradDtypeError, match="expected a numpy array of float16"):
        T.check_representable(np.array([0.5], np.float32), "float16")


def test_seed_reproduces_and_successive_draws_differ(tg):
    tg.seed(11)
    a, b = tg.sample("uniform", (16,), "float32"), tg.sample("uniform", (16,), "float32")
    tg.seed(11)
    c = tg.sample("uniform", (16,), "float32")
    assert np.array_equal(a, c) and not np.array_equal(a, b)


def test_realization_order_bug_exists_and_adapter_avoids_it(tg):
    """tinygrad #16520 reproduced with raw tinygrad (newest-first realization repeats), and the adapter's one-by-one
    realization differs."""
    from tinygrad import Tensor

    with tg._ctx("float32"):
        Tensor.manual_seed(5)
        a, b = Tensor.rand(8, device=tg._dev), Tensor.rand(8, device=tg._dev)
        b.realize()
        a.realize()
        raw_equal = np.array_equal(a.numpy(), b.numpy())
    tg.seed(5)
    x, y = tg.sample("rand", (8,), "float32"), tg.sample("rand", (8,), "float32")
    assert not np.array_equal(x, y)
    if not raw_equal:
        pytest.skip("tinygrad no longer repeats newest-first draws (#16520 fixed?): update the contract")


def test_faulty_lazy_repeats_draws():
    from tests.faulty.tinygrad_adapters import PROVIDERS

    faulty = {p.framework: p for p in PROVIDERS}["tinygrad-faulty-lazy"].create("cpu")
    faulty.seed(1)
    a, b = faulty.sample("uniform", (16,), "float32"), faulty.sample("uniform", (16,), "float32")
    assert np.array_equal(a, b)


def test_faulty_truncate_rounds_toward_zero():
    from tests.faulty.tinygrad_adapters import PROVIDERS

    faulty = {p.framework: p for p in PROVIDERS}["tinygrad-faulty-truncate"].create("cpu")
    if "bfloat16" not in faulty.dtypes:
        pytest.skip("bfloat16 does not compile here")
    faulty.seed(2)
    wide = faulty.init("uniform", (256,), "float32")
    faulty.seed(2)
    narrow = faulty.init("uniform", (256,), "bfloat16").astype(np.float64)
    assert (narrow <= wide).all() and (narrow < wide).any()


def test_layout_and_module_names(tg):
    tg.seed(0)
    lin = tg.module_params("Linear", "float32", in_features=3, out_features=5)
    assert lin["weight"].shape == (5, 3) and lin["bias"].shape == (5,)
    conv = tg.module_params("Conv2d", "float32", in_channels=4, out_channels=6, kernel_size=3, groups=2)
    assert conv["weight"].shape == (6, 2, 3, 3)
    conv3 = tg.module_params("Conv3d", "float32", in_channels=2, out_channels=3, kernel_size=(3, 2, 1))
    assert conv3["weight"].shape == (3, 2, 3, 2, 1)
    tconv = tg.module_params("ConvTranspose1d", "float32", in_channels=4, out_channels=6, kernel_size=3)
    assert tconv["weight"].shape == (4, 6, 3)
    bn = tg.module_params("BatchNorm2d", "float16", num_features=4)
    assert set(bn) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    assert bn["weight"].dtype == np.float16 and (bn["running_var"] == 1).all()
    emb = tg.module_params("Embedding", "float32", num_embeddings=10, embedding_dim=4)
    bound = np.sqrt(6 / 14)
    assert emb["weight"].shape == (10, 4) and (np.abs(emb["weight"]) <= bound).all()


def test_unsupported_reasons(tg):
    cases = [
        (lambda: tg.init("trunc_normal", (4, 4), "float32"), "truncated"),
        (lambda: tg.init("orthogonal", (4, 4), "float32"), "orthogonal"),
        (lambda: tg.init("kaiming_uniform", (4, 4), "float32", fan_mode="fan_out"), "fan_out"),
        (lambda: tg.init("kaiming_normal", (4, 4), "float32", nonlinearity="tanh"), "tanh"),
        (lambda: tg.init("xavier_uniform", (4, 4, 3, 3), "float32"), "receptive field"),
        (lambda: tg.sample("trunc_normal", (4,), "float32"), "truncated"),
        (lambda: tg.module_params("Embedding", "float32", num_embeddings=5, embedding_dim=2, padding_idx=0),
         "padding_idx"),
        (lambda: tg.module_params("RMSNorm", "float32", normalized_shape=(2, 3)), "last axis"),
    ]
    for call, word in cases:
        with pytest.raises(base.UnsupportedOperation, match=word):
            call()
    with pytest.raises(TypeError):
        tg.init("normal", (3,), "float32", sigma=1.0)
    with pytest.raises(ValueError):
        tg.sample("rand", (3,), "float8")


def test_init_mappings(tg):
    tg.seed(0)
    w = tg.init("kaiming_uniform", (64, 16), "float32")
    assert np.abs(w).max() <= np.sqrt(6 / 16)
    assert np.array_equal(tg.init("eye", (2, 3), "float32"), np.eye(2, 3, dtype=np.float32))
    assert (tg.init("constant", (3,), "float16", value=0.1) == np.float16(0.1)).all()
    w = tg.init("xavier_uniform", (8, 4), "float64")
    assert w.dtype == np.float64 and np.abs(w).max() <= np.sqrt(6 / 12)


def test_named_init_own_keywords(tg):
    assert {"kaiming_uniform", "kaiming_normal", "glorot_uniform", "scaled_uniform"} <= set(tg.named_schemes())
    w = tg.named_init("kaiming_uniform", (32, 8), "float32", a=1.0)
    assert np.abs(w).max() <= np.sqrt(3 / 8)
    with pytest.raises(base.UnsupportedOperation):
        tg.named_init("orthogonal", (3, 3), "float32")


def test_activation_values_grads_and_layouts(tg):
    x = np.array([-2.0, -0.0, 0.0, 0.5, 3.0], np.float32)
    val, grad = tg.activation("relu", x, "float32")
    assert val.tolist() == [0.0, 0.0, 0.0, 0.5, 3.0] and grad.tolist()[-2:] == [1.0, 1.0]
    val, grad = tg.activation("leaky_relu", x, "float32", negative_slope=0.2)
    assert np.isclose(val[0], -0.4) and np.isclose(grad[0], 0.2)
    m = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    base_out = tg.activation("silu", m, "float32")
    for layout in ("transposed", "strided"):
        out = tg.activation("silu", m, "float32", layout=layout)
        assert all(np.array_equal(a, b) for a, b in zip(base_out, out, strict=True))
    v, gx, gy = tg.activation2("swiglu", x, np.full(5, 2.0, np.float32), "float32")
    assert np.allclose(gy, tg.activation("silu", x, "float32")[0])
    with pytest.raises(base.UnsupportedOperation):
        tg.activation("selu", x, "float32")


def test_numpy_round_trip_is_bit_exact(tg):
    """numpy -> tinygrad -> numpy keeps every bit (subnormals, signed zeros, inf, NaN) in every dtype that compiles."""
    for dtype in sorted(tg.dtypes):
        np_dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
        tiny = float(ml_dtypes.finfo(np_dt).smallest_subnormal)
        a = np.array([0.0, -0.0, tiny, -tiny, 1.5, np.inf, -np.inf, np.nan], dtype=np_dt)
        with tg._ctx(dtype):
            back = T.to_numpy(T.from_numpy(a, dtype, tg._dev), dtype)
        assert back.dtype == np_dt and back.tobytes() == a.tobytes(), dtype


def test_cpu_without_clang_is_unavailable_with_the_fix(monkeypatch):
    """tinygrad:cpu compiles every kernel with clang: without it on PATH the spec is unavailable, naming clang and how
    to install it (not an error in every check)."""
    pytest.importorskip("tinygrad")
    import shutil

    from conformance.backends.tinygrad_adapter import PROVIDER

    monkeypatch.setenv("DEV", "CPU")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    availability = PROVIDER.probe("cpu")
    assert not availability.available
    assert "clang" in availability.reason and "apt-get install clang" in availability.reason
