"""Regression: RNG streams and reference-model init against golden fingerprints (the NumPy approach).

For the fixed seed :data:`conformance.goldens.fingerprints.GOLDEN_SEED`, each sampler and initializer case draws
1,024 values per dtype and each built-in reference model is built; their sha256 and first values must equal the
golden of the backend's framework version and device (``golden/streams``, ``golden/model_init``). Within one
version a difference fails; against another version's golden it is an expected failure "stream changed since
VERSION" until ``conformance golden update`` accepts it; with no golden the check is skipped with that command
(see :mod:`conformance.areas.golden_streams.expect`).
"""

from __future__ import annotations

import pytest

from conformance.areas.golden_streams import expect as golden
from conformance.goldens import fingerprints as fp

pytestmark = [pytest.mark.requires("seed")]


@pytest.mark.parametrize("case", fp.STREAM_CASES, ids=[c.id for c in fp.STREAM_CASES])
def test_stream(backend, dtype, conformance, case):
    """sha256 and first values of one sampler/initializer stream equal the golden's."""
    got, arrays = fp.case_entries(backend, case, dtype)
    golden.judge(conformance, "streams", backend, got, arrays, what="stream")


@pytest.mark.requires("models")
@pytest.mark.parametrize("model", fp.MODEL_IDS)
def test_model_init(backend, conformance, model):
    """Every parameter of a built-in reference model, built after a fixed seed, hashes as in the golden."""
    got, arrays = fp.model_case_entries(backend, fp.model_case(backend, model))
    golden.judge(conformance, "model_init", backend, got, arrays, what="model init")
