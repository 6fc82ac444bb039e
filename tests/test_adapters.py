"""Fast tests of the numpy reference adapter, the torch adapter and conformance.backends.dtypes."""

from __future__ import annotations

import math
import warnings

import ml_dtypes
import numpy as np
import pytest
from conformance.backends import base, interface, registry
from conformance.backends import dtypes as D
from conformance.backends.gains import calculate_gain, fans
from conformance.backends.numpy_adapter import PROVIDER as NUMPY_PROVIDER
from conformance.backends.numpy_adapter import NumpyBackend
from conformance.backends.torch_adapter import PROVIDER as TORCH_PROVIDER
from conformance.backends.torch_adapter import TorchBackend

from conformance.areas.init_schemes.fans import fans as oracle_fans
from conformance.areas.init_schemes.fans import recommended_gain

torch = pytest.importorskip("torch")

registry.register(NUMPY_PROVIDER)
registry.register(TORCH_PROVIDER)

ACTIVATIONS = ("silu", "sigmoid", "gelu", "gelu_tanh", "softplus", "tanh", "mish", "relu", "leaky_relu")

# A small valid config per module; a Conv with groups exercises the fan rule.
MODULE_CONFIGS = {
    "Linear": dict(in_features=7, out_features=5),
    "Conv1d": dict(in_channels=4, out_channels=6, kernel_size=3, groups=2),
    "Conv2d": dict(in_channels=4, out_channels=6, kernel_size=(3, 2), groups=2, bias=False),
    "Conv3d": dict(in_channels=3, out_channels=2, kernel_size=2, stride=2),
    "ConvTranspose1d": dict(in_channels=4, out_channels=6, kernel_size=3, groups=2),
    "ConvTranspose2d": dict(in_channels=4, out_channels=6, kernel_size=(2, 3)),
    "ConvTranspose3d": dict(in_channels=2, out_channels=4, kernel_size=2, groups=2, output_padding=0),
    "Embedding": dict(num_embeddings=6, embedding_dim=3, padding_idx=-2),
    "LayerNorm": dict(normalized_shape=(3, 4)),
    "RMSNorm": dict(normalized_shape=5),
    "BatchNorm1d": dict(num_features=3),
    "BatchNorm2d": dict(num_features=4, affine=False),
}

INIT_PARAMS = {"constant": {"value": 0.3}, "sparse": {"sparsity": 0.25}}


def _shape_for(scheme: str) -> tuple[int, ...]:
    return (4, 6, 3) if scheme == "dirac" else (4, 6)


@pytest.fixture(scope="module")
def np_backend() -> NumpyBackend:
    return registry.resolve("numpy:cpu")


@pytest.fixture(scope="module")
def torch_backend():
    return registry.resolve("torch:cpu")


# -- availability -----------------------------------------------------------------------------------------------
def test_numpy_and_torch_cpu_available():
    assert registry.probe("numpy:cpu").available
    assert registry.probe("torch:cpu").available
    assert {"numpy:cpu", "torch:cpu"} <= set(registry.available_specs())


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_torch_accelerator_probe_gives_reason(device):
    av = TORCH_PROVIDER.probe(device)
    if av.available:
        pytest.skip(f"torch:{device} is available here")
    assert isinstance(av.reason, str) and av.reason
    with pytest.raises(base.BackendUnavailable, match=device):
        TORCH_PROVIDER.create(device)


def test_cuda_reason_names_cpu_only_build():
    if torch.version.cuda is not None:
        pytest.skip("CUDA build of torch")
    assert "CPU-only build" in TORCH_PROVIDER.probe("cuda").reason


def test_probe_reports_missing_torch(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    av = TORCH_PROVIDER.probe("cpu")
    assert not av.available and "torch is not installed" in av.reason


def test_backend_declarations(np_backend, torch_backend):
    assert np_backend.spec == "numpy:cpu" and torch_backend.spec == "torch:cpu"
    assert np_backend.dtypes == torch_backend.dtypes == frozenset(base.FLOAT_DTYPES)
    assert "activations" in torch_backend.capabilities and "activations" in np_backend.capabilities
    assert "torch" in torch_backend.versions() and "numpy" in np_backend.versions()


# -- dtypes helpers ---------------------------------------------------------------------------------------------
def test_round_to_is_single_rounding_for_bfloat16():
    x = 1 + 2**-8 + 2**-40  # just above the tie between 1 and 1 + 2^-7; float32 first would round to the tie
    assert float(D.round_to(x, "bfloat16")) == 1 + 2**-7
    assert float(D.round_to(1 + 2**-8, "bfloat16")) == 1.0  # exact tie -> even


def test_round_to_nearest_on_random_values():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5000) * 10.0 ** rng.integers(-6, 6, 5000)
    for name in ("float16", "bfloat16", "float32"):
        r = D.round_to(x, name)
        ok = np.isfinite(r.astype(np.float64))
        r64 = r.astype(np.float64)[ok]
        err = np.abs(x[ok] - r64)
        assert np.all(err <= np.abs(x[ok] - D.next_up(r[ok], name).astype(np.float64)))
        assert np.all(err <= np.abs(x[ok] - D.next_down(r[ok], name).astype(np.float64)))


def test_grid_neighbours():
    assert float(D.largest_below(1.0, "bfloat16")) == 1 - 2**-8
    assert float(D.largest_below(1.0, "float16")) == 1 - 2**-11
    assert float(D.smallest_at_least(0.1, "float32")) >= 0.1
    assert float(D.nearest_inside(2.01, -2, 2, "bfloat16")) == 2.0
    assert D.numpy_dtype("bfloat16") == np.dtype(ml_dtypes.bfloat16)


# -- sampling and the rounding rule ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", base.FLOAT_DTYPES)
@pytest.mark.parametrize("dist", ["uniform", "normal", "rand", "randn"])
def test_sample_shape_dtype(np_backend, torch_backend, dist, dtype):
    for backend in (np_backend, torch_backend):
        backend.seed(1)
        out = backend.sample(dist, (3, 5), dtype)
        assert out.shape == (3, 5) and out.dtype == D.numpy_dtype(dtype)


def test_unknown_sampler_is_unsupported(np_backend, torch_backend):
    for backend in (np_backend, torch_backend):
        with pytest.raises(base.UnsupportedOperation):
            backend.sample("cauchy", (2,), "float32")


def test_numpy_seed_reproduces(np_backend):
    np_backend.seed(7)
    a = np_backend.sample("normal", (100,), "float32")
    np_backend.seed(7)
    assert np.array_equal(a, np_backend.sample("normal", (100,), "float32"))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_numpy_uniform_never_returns_b_and_is_on_grid(np_backend, dtype):
    np_backend.seed(0)
    x = np_backend.sample("uniform", (200_000,), dtype, low=-1.0, high=1.0).astype(np.float64)
    top = float(D.largest_below(1.0, dtype))
    assert x.max() == top and x.min() >= -1.0 and not np.any(x == 1.0)
    assert np.all(D.on_grid(x, dtype))
    # the top grid value absorbs the mass that rounds to b: [top - ulp/2, 1) has probability 1.5 ulp/2 of width 2
    ulp = 1.0 - top
    expected = 1.5 * ulp / 2
    assert abs(np.mean(x == top) - expected) < 6 * math.sqrt(expected / x.size)


def test_numpy_trunc_normal_within_closed_bounds(np_backend):
    np_backend.seed(0)
    x = np_backend.init("trunc_normal", (50_000,), "bfloat16", mean=0.5, std=1.0, low=-1.0, high=1.5)
    x = x.astype(np.float64)
    assert x.min() >= -1.0 and x.max() <= 1.5
    assert np.all(D.on_grid(x, "bfloat16"))


def test_torch_bfloat16_transfer_is_exact(torch_backend):
    torch_backend.seed(0)
    t = torch.empty(1000, dtype=torch.bfloat16).normal_()
    from conformance.backends.torch_adapter import from_numpy, to_numpy

    arr = to_numpy(t)
    assert arr.dtype == np.dtype(ml_dtypes.bfloat16)
    assert np.array_equal(arr.view(np.int16), t.view(torch.int16).numpy())
    assert torch.equal(from_numpy(arr, "bfloat16", "cpu"), t)


# -- initializers ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", base.FLOAT_DTYPES)
@pytest.mark.parametrize("scheme", base.INIT_SCHEMES)
def test_init_shape_dtype(np_backend, torch_backend, scheme, dtype):
    shape = _shape_for(scheme)
    params = INIT_PARAMS.get(scheme, {})
    out = np_backend.init(scheme, shape, dtype, **params)
    assert out.shape == shape and out.dtype == D.numpy_dtype(dtype)
    try:
        tout = torch_backend.init(scheme, shape, dtype, **params)
    except base.UnsupportedOperation as exc:  # torch has no half-precision QR on CPU
        assert scheme == "orthogonal" and dtype in ("float16", "bfloat16"), exc
        return
    assert tout.shape == shape and tout.dtype == D.numpy_dtype(dtype)


def test_deterministic_inits_equal_torch(np_backend, torch_backend):
    for scheme, shape, params in [("eye", (3, 5), {}), ("dirac", (6, 4, 3, 3), {"groups": 2}),
                                  ("constant", (2, 3), {"value": 0.1}), ("ones", (4,), {}), ("zeros", (2, 2), {})]:
        for dtype in base.FLOAT_DTYPES:
            a = np_backend.init(scheme, shape, dtype, **params)
            b = torch_backend.init(scheme, shape, dtype, **params)
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (scheme, dtype)


def test_init_errors_match_torch(np_backend, torch_backend):
    for scheme, shape in [("xavier_uniform", (5,)), ("kaiming_normal", (5,)), ("eye", (2, 2, 2)), ("dirac", (3, 3)),
                          ("sparse", (2, 2, 2)), ("orthogonal", (4,))]:
        params = INIT_PARAMS.get(scheme, {})
        with pytest.raises(ValueError):
            np_backend.init(scheme, shape, "float32", **params)
        with pytest.raises(ValueError):
            torch_backend.init(scheme, shape, "float32", **params)
    with pytest.raises(base.UnsupportedOperation):
        np_backend.init("lecun", (2, 2), "float32")


def test_fans_with_groups():
    # Conv2d(in=4, out=6, k=(3, 2), groups=2): weight (6, 2, 3, 2)
    assert fans((6, 2, 3, 2)) == (12, 36)
    w = torch.empty(6, 2, 3, 2)
    assert fans(w.shape) == torch.nn.init._calculate_fan_in_and_fan_out(w)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        fans((3,))
    # the checks' independent oracle agrees with torch too
    for shape in [(6, 2, 3, 2), (5, 7), (4, 3, 5), (2, 3, 1, 4, 2)]:
        assert oracle_fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_gains_match_torch(np_backend, torch_backend):
    for nl, param in [("linear", None), ("conv_transpose2d", None), ("sigmoid", None), ("tanh", None),
                      ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 0), ("selu", None)]:
        assert np_backend.calculate_gain(nl, param) == pytest.approx(torch_backend.calculate_gain(nl, param), rel=1e-15)
        assert calculate_gain(nl, param) == recommended_gain(nl, param) == pytest.approx(
            torch_backend.calculate_gain(nl, param), rel=1e-15)  # adapters' table, checks' oracle, torch
    assert np_backend.calculate_gain("leaky_relu") == 1.4141428569978354
    with pytest.raises(ValueError):
        np_backend.calculate_gain("swish")


def test_sparse_has_exact_zero_count(np_backend):
    x = np_backend.init("sparse", (10, 30), "float32", sparsity=0.25)
    assert np.all((x == 0).sum(axis=0) == math.ceil(0.25 * 10))


def test_orthogonal_is_orthogonal(np_backend):
    for shape in [(5, 8), (8, 5), (3, 2, 2)]:
        q = np_backend.init("orthogonal", shape, "float64", gain=2.0).reshape(shape[0], -1)
        gram = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q
        assert np.allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-12)


@pytest.mark.parametrize("scheme", ["kaiming_uniform", "kaiming_normal"])
def test_zero_element_warning(np_backend, torch_backend, scheme):
    for backend in (np_backend, torch_backend):
        with pytest.warns(UserWarning, match="zero-element tensors is a no-op"):
            out = backend.init(scheme, (0, 3), "float32")
        assert out.shape == (0, 3)


def test_zero_element_silent_where_torch_is(np_backend, torch_backend):
    for backend in (np_backend, torch_backend):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert backend.init("uniform", (0, 3), "float32").shape == (0, 3)


# -- modules -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("module", base.MODULES)
def test_module_params_names_shapes_match_torch(np_backend, torch_backend, module):
    config = MODULE_CONFIGS[module]
    for dtype in ("bfloat16", "float32"):
        ours = np_backend.module_params(module, dtype, **config)
        theirs = torch_backend.module_params(module, dtype, **config)
        assert list(ours) == list(theirs)
        for name in ours:
            assert ours[name].shape == theirs[name].shape, name
            assert ours[name].dtype == theirs[name].dtype, name


def test_module_bounds_and_padding_row(np_backend):
    conv = np_backend.module_params("Conv2d", "float64", in_channels=4, out_channels=6, kernel_size=3, groups=2)
    k = math.sqrt(2 / (4 * 9))
    assert np.abs(conv["weight"]).max() < k and np.abs(conv["bias"]).max() < k
    tconv = np_backend.module_params("ConvTranspose1d", "float64", in_channels=3, out_channels=6, kernel_size=3,
                                     groups=3)
    assert tconv["weight"].shape == (3, 2, 3)
    assert np.abs(tconv["weight"]).max() < math.sqrt(3 / (6 * 3))
    emb = np_backend.module_params("Embedding", "float32", num_embeddings=5, embedding_dim=4, padding_idx=-1)
    assert np.all(emb["weight"][4] == 0) and np.all(emb["weight"][:4] != 0)
    bn = np_backend.module_params("BatchNorm1d", "float16", num_features=3)
    assert bn["num_batches_tracked"].dtype == np.int64 and bn["running_var"].tolist() == [1, 1, 1]
    with pytest.raises(base.UnsupportedOperation):
        np_backend.module_params("GRU", "float32")


# -- activations --------------------------------------------------------------------------------------------------
_EXTREMES = {
    "float16": [0.0, -0.0, 1e-7, -1e-7, 30.0, -30.0, 65504.0, -65504.0],
    "bfloat16": [0.0, -0.0, 1e-30, -1e-30, 100.0, -100.0, 3e38, -3e38],
    "float32": [0.0, -0.0, 1e-30, -1e-30, 100.0, -100.0, 3e38, -3e38],
    "float64": [0.0, -0.0, 1e-300, -1e-300, 800.0, -800.0, 1e308, -1e308],
}


@pytest.mark.parametrize("dtype", base.FLOAT_DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_numpy_activation_finite_at_zero_and_extremes(np_backend, name, dtype):
    x = np.array(_EXTREMES[dtype], dtype=D.numpy_dtype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = np_backend.activation(name, x, dtype)
    assert value.dtype == grad.dtype == x.dtype and value.shape == grad.shape == x.shape
    assert np.all(np.isfinite(value.astype(np.float64))) and np.all(np.isfinite(grad.astype(np.float64)))


def test_activation_conventions_at_zero(np_backend, torch_backend):
    x = np.array([0.0, -0.0], np.float32)
    for backend in (np_backend, torch_backend):
        assert backend.activation("relu", x, "float32")[1].tolist() == [0.0, 0.0]
        grad = backend.activation("leaky_relu", x, "float32", negative_slope=0.2)[1]
        assert grad.tolist() == pytest.approx([0.2, 0.2])
        assert backend.activation("silu", x, "float32")[1].tolist() == [0.5, 0.5]


def _ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    scale = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(np.float32)).astype(np.float64)
    return np.abs(a - b) / scale


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_numpy_and_torch_values_agree_float32(np_backend, torch_backend, name):
    # values only, away from the far tails where torch's float32 formulas lose relative accuracy
    x = np.linspace(-4, 4, 4001, dtype=np.float32)
    ours, _ = np_backend.activation(name, x, "float32")
    theirs, _ = torch_backend.activation(name, x, "float32")
    close = _ulp_distance(ours, theirs) <= 4
    tiny = np.abs(ours.astype(np.float64) - theirs.astype(np.float64)) <= 1e-6
    assert np.all(close | tiny), x[~(close | tiny)][:5]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_numpy_and_torch_gradients_agree_float64(np_backend, torch_backend, name):
    x = np.linspace(-8, 8, 1601)
    _, ours = np_backend.activation(name, x, "float64")
    _, theirs = torch_backend.activation(name, x, "float64")
    assert np.allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_unknown_activation_is_unsupported(np_backend, torch_backend):
    for backend in (np_backend, torch_backend):
        with pytest.raises(base.UnsupportedOperation):
            backend.activation("swish2", np.zeros(2, np.float32), "float32")


# -- the interface: derived capabilities, neutral parameter names ---------------------------------------------------
class _Minimal(base.Backend):
    framework, device, dtypes = "minimal", "cpu", frozenset({"float32"})

    def versions(self):
        return {"minimal": "0"}


class _Drawing(_Minimal):
    def seed(self, seed):
        pass

    def sample(self, dist, shape, dtype, **params):
        return np.zeros(shape, np.float32)

    def module_params(self, module, dtype, **config):
        return {}


class _DrawingNoModules(_Drawing):
    def lacks(self):
        return {"modules": "not on this device"}


def test_capabilities_are_derived_from_overrides():
    assert _Minimal().capabilities == frozenset()
    assert _Drawing().capabilities == {"seed", "sample", "modules", "processes"}
    # what the device lacks goes, and so does a capability that needs it
    assert _DrawingNoModules().capabilities == {"seed", "sample"}
    assert interface.missing_methods(_Minimal, "rng_state") == ("rng_state", "set_rng_state")
    assert interface.implemented_capabilities(NumpyBackend) == frozenset(registry.resolve("numpy:cpu").capabilities)
    assert set(interface.CAPABILITIES) >= {c for b in ("numpy:cpu", "torch:cpu")
                                           for c in registry.resolve(b).capabilities}


def test_torch_distributed_only_on_cpu_and_cuda(torch_backend):
    assert "distributed" in torch_backend.capabilities
    assert "distributed" in TorchBackend("cuda").capabilities
    mps = TorchBackend("mps")
    assert "distributed" not in mps.capabilities and "distributed" in mps.lacks()
    assert mps.capabilities == torch_backend.capabilities - {"distributed"}


def test_parameter_tables_cover_every_scheme():
    assert set(interface.INIT_PARAMETERS) == set(base.INIT_SCHEMES)
    assert interface.init_params("kaiming_normal", {"fan_mode": "fan_out"}) == {
        "negative_slope": 0.0, "fan_mode": "fan_out", "nonlinearity": "leaky_relu"}
    assert interface.sample_params("uniform", {"high": 2.0}) == {"low": 0.0, "high": 2.0}
    with pytest.raises(TypeError, match="value"):
        interface.init_params("constant", {})


@pytest.mark.parametrize("old", [{"a": -1.0, "b": 1.0}, {"mode": "fan_out"}, {"val": 0.5}])
def test_torch_keyword_names_are_refused(np_backend, torch_backend, old):
    scheme = {"a": "uniform", "mode": "kaiming_normal", "val": "constant"}[next(iter(old))]
    for backend in (np_backend, torch_backend):
        with pytest.raises(TypeError):
            backend.init(scheme, (4, 6), "float32", **old)


@pytest.mark.parametrize(("scheme", "neutral", "torch_kwargs"), [
    ("uniform", {"low": -3.0, "high": 5.0}, {"a": -3.0, "b": 5.0}),
    ("trunc_normal", {"mean": 1.0, "std": 0.5, "low": 0.0, "high": 3.0}, {"mean": 1.0, "std": 0.5, "a": 0.0, "b": 3.0}),
    ("constant", {"value": -1.7}, {"val": -1.7}),
    ("kaiming_uniform", {"negative_slope": 0.2, "fan_mode": "fan_out"}, {"a": 0.2, "mode": "fan_out"}),
    ("kaiming_normal", {"fan_mode": "fan_in", "nonlinearity": "relu"}, {"mode": "fan_in", "nonlinearity": "relu"}),
])
def test_torch_translates_neutral_names(torch_backend, scheme, neutral, torch_kwargs):
    torch.manual_seed(5)
    got = torch_backend.init(scheme, (64, 32), "float32", **neutral)
    torch.manual_seed(5)
    want = getattr(torch.nn.init, f"{scheme}_")(torch.empty(64, 32), **torch_kwargs).numpy()
    assert np.array_equal(got, want)
    # named_init keeps torch's own keywords
    if scheme in torch_backend.named_schemes():
        torch.manual_seed(5)
        assert np.array_equal(torch_backend.named_init(scheme, (64, 32), "float32", **torch_kwargs), want)


def test_torch_sample_uses_neutral_bounds(torch_backend):
    torch.manual_seed(3)
    got = torch_backend.sample("uniform", (1000,), "float32", low=-2.0, high=-1.0)
    torch.manual_seed(3)
    assert np.array_equal(got, torch.empty(1000).uniform_(-2.0, -1.0).numpy())
