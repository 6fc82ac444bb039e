"""``calculate_gain`` returns the documented gains exactly (to 1e-12 relative)."""

from __future__ import annotations

import pytest

from conformance.areas.init_schemes import expect
from conformance.areas.init_schemes.fans import GAIN_SOURCE, recommended_gain

CASES = [("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None), ("conv_transpose2d", None),
         ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
         ("leaky_relu", 0.0), ("selu", None)]


@pytest.mark.requires("gain")
@pytest.mark.parametrize(("nonlinearity", "param"), CASES,
                         ids=[f"{n}" + ("" if p is None else f"-{p}") for n, p in CASES])
def test_calculate_gain(backend, conformance, nonlinearity, param):
    got = backend.calculate_gain(nonlinearity, param)
    want = recommended_gain(nonlinearity, param)
    conformance.expect(expect.scalar_equal(float(got), want, f"{GAIN_SOURCE}: gain({nonlinearity}, {param})"))
