"""fan_in and fan_out are computed on the right axes for every layer type of every framework.

For each available framework adapter, fan-dependent initializers are drawn on non-square dense and
convolution weights whose in, out and kernel sizes are all distinct (so a swap of any two axes changes the
fans), in the canonical layout ``(out, in, *kernel)``; the adapter translates the layout. The sample std must
match the std computed from the *canonical* fans within 2% (n >= 200,000: the std's standard error is about
0.16%), and must be at least 10% away from the std a wrong fan (swapped in/out, kernel left out) would give.
Layer defaults (Linear, Conv1d/2d/3d) are checked the same way through ``module_params``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conformance.backends import layouts, registry

from conformance.areas.init_schemes.fans import fans

#: Canonical weight shapes: dense, conv1d, conv2d, conv3d; out, in and kernel sizes all distinct.
SHAPES = {"dense": (96, 40), "conv1d": (48, 20, 5), "conv2d": (36, 12, 3, 5), "conv3d": (20, 6, 3, 2, 5)}
N_MIN = 200_000


def _available(spec: str) -> bool:
    try:
        return registry.probe(spec).available
    except Exception:  # noqa: BLE001 - unknown spec: entry point not installed
        return False


FRAMEWORKS = [s for s in ("torch:cpu", "jax:cpu", "mlx:cpu") if _available(s)]

#: (framework, named initializer, params, std as a function of (fan_in, fan_out)) for each fan mode.
CASES = {
    "torch": [("kaiming_normal", {"nonlinearity": "relu"}, lambda fi, fo: math.sqrt(2 / fi)),
              ("kaiming_uniform", {"mode": "fan_out", "nonlinearity": "relu"}, lambda fi, fo: math.sqrt(2 / fo)),
              ("xavier_normal", {}, lambda fi, fo: math.sqrt(2 / (fi + fo)))],
    "jax": [("variance_scaling", {"scale": 2.0, "mode": "fan_in", "distribution": "normal"},
             lambda fi, fo: math.sqrt(2 / fi)),
            ("variance_scaling", {"scale": 1.0, "mode": "fan_out", "distribution": "uniform"},
             lambda fi, fo: math.sqrt(1 / fo)),
            ("glorot_normal", {}, lambda fi, fo: math.sqrt(2 / (fi + fo)))],
    "mlx": [("he_normal", {}, lambda fi, fo: math.sqrt(1 / fi)),
            ("he_uniform", {"mode": "fan_out"}, lambda fi, fo: math.sqrt(1 / fo)),
            ("glorot_normal", {}, lambda fi, fo: math.sqrt(2 / (fi + fo)))],
}


def _draw(fn, n: int = N_MIN) -> np.ndarray:
    parts, total = [], 0
    while total < n:
        x = np.asarray(fn()).astype(np.float64).ravel()
        parts.append(x)
        total += x.size
    return np.concatenate(parts)


def _wrong_fans(shape) -> list[tuple[float, float]]:
    """Fans a layout bug would produce: in/out swapped, or the canonical array read with another framework's rule
    (jax: in = shape[-2], out = shape[-1]; mlx: in = shape[-1], out = shape[0]; the rest is the receptive field)."""
    fi, fo = fans(shape)
    total = math.prod(shape)
    io_rf = total / shape[-2] / shape[-1]
    oki_rf = math.prod(shape[1:-1])
    wrong = [(fo, fi), (shape[-2] * io_rf, shape[-1] * io_rf), (shape[-1] * oki_rf, shape[0] * oki_rf)]
    return [w for w in wrong if w != (fi, fo)]


@pytest.mark.parametrize("kind", list(SHAPES))
@pytest.mark.parametrize("spec", FRAMEWORKS)
def test_named_init_fans(spec, kind):
    backend = registry.resolve(spec)
    backend.seed(1234)
    shape = SHAPES[kind]
    fi, fo = fans(shape)
    for name, params, std_fn in CASES[backend.framework]:
        x = _draw(lambda name=name, params=params: backend.named_init(name, shape, "float32", **params))
        assert backend.named_init(name, shape, "float32", **params).shape == shape
        want = std_fn(fi, fo)
        assert abs(x.std() / want - 1) < 0.02, f"{spec} {name}{params} on {shape}: std {x.std():.5g}, expected " \
                                               f"{want:.5g} from fan_in {fi}, fan_out {fo}"
        for wfi, wfo in _wrong_fans(shape):
            other = std_fn(wfi, wfo)
            if abs(other / want - 1) > 0.1:
                assert abs(x.std() / other - 1) > 0.05, f"{spec} {name}: std matches wrong fans {(wfi, wfo)}"


@pytest.mark.parametrize("spec", FRAMEWORKS)
@pytest.mark.parametrize("scheme", ["kaiming_normal", "xavier_uniform"])
@pytest.mark.parametrize("kind", list(SHAPES))
def test_torch_named_init_fans(spec, scheme, kind):
    """``init`` (torch-named schemes mapped onto each framework) uses the canonical fans too."""
    backend = registry.resolve(spec)
    backend.seed(99)
    shape = SHAPES[kind]
    fi, fo = fans(shape)
    params = {"fan_mode": "fan_out", "nonlinearity": "relu"} if scheme == "kaiming_normal" else {}
    want = math.sqrt(2 / fo) if scheme == "kaiming_normal" else math.sqrt(2 / (fi + fo))
    x = _draw(lambda: backend.init(scheme, shape, "float32", **params))
    assert abs(x.std() / want - 1) < 0.02, f"{spec} {scheme} on {shape}: std {x.std():.5g}, expected {want:.5g}"


MODULES = {
    "Linear": ({"in_features": 40, "out_features": 96}, 40),
    "Conv1d": ({"in_channels": 20, "out_channels": 48, "kernel_size": 5}, 20 * 5),
    "Conv2d": ({"in_channels": 12, "out_channels": 36, "kernel_size": (3, 5)}, 12 * 15),
    "Conv3d": ({"in_channels": 6, "out_channels": 20, "kernel_size": (3, 2, 5)}, 6 * 30),
}


@pytest.mark.parametrize("module", list(MODULES))
@pytest.mark.parametrize("spec", FRAMEWORKS)
def test_module_default_fans(spec, module):
    """Default init of Linear/Conv weights: U(+-1/sqrt(fan_in)) with fan_in = in * prod(kernel), canonical shape."""
    backend = registry.resolve(spec)
    if "modules" not in backend.capabilities:
        pytest.skip(f"{spec} has no modules")
    config, fan_in = MODULES[module]
    w = backend.module_params(module, "float32", **config)["weight"]
    kernel = config.get("kernel_size", ())
    kernel = (kernel,) if isinstance(kernel, int) else tuple(kernel)
    expected_shape = (config.get("out_features", config.get("out_channels")),
                      config.get("in_features", config.get("in_channels")), *kernel)
    assert w.shape == expected_shape
    x = _draw(lambda: backend.module_params(module, "float32", **config)["weight"])
    bound = 1 / math.sqrt(fan_in)
    assert abs(x.std() / (bound / math.sqrt(3)) - 1) < 0.02
    assert np.abs(x).max() <= bound


@pytest.mark.parametrize("layout", layouts.LAYOUTS)
@pytest.mark.parametrize("shape", list(SHAPES.values()))
def test_layout_round_trip(layout, shape):
    a = np.arange(math.prod(shape)).reshape(shape)
    fw = layouts.to_framework(a, layout)
    assert fw.shape == layouts.to_framework_shape(shape, layout)
    assert np.array_equal(layouts.from_framework(fw, layout), a)


def test_layout_axes():
    """The documented layouts: io is (*kernel, in, out), oki is (out, *kernel, in)."""
    assert layouts.to_framework_shape((8, 4), "io") == (4, 8)
    assert layouts.to_framework_shape((8, 4, 3, 2), "io") == (3, 2, 4, 8)
    assert layouts.to_framework_shape((8, 4, 3, 2), "oki") == (8, 3, 2, 4)
    assert layouts.to_framework_shape((8, 4), "oki") == (8, 4)
    assert layouts.to_framework_shape((8, 4, 3, 2), "oi") == (8, 4, 3, 2)
