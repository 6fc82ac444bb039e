"""Checkpoints: save/load round trips of freshly initialized reference models, provenance, and bit-exact resume.

* ``test_round_trip``: every reference model the backend builds (``checkpoint_models``), in every format it writes
  (``checkpoint_formats``) and dtype, saved after seeding and loaded into a fresh, differently seeded model: bits,
  dtype, shape and strides unchanged; tied parameters still share storage; non-persistent buffers never saved and
  equal to a fresh build; provenance read back unchanged (transformers #28122, accelerate #1197, torchtitan #3775).
* ``test_provenance_verified``: a loader that expects another seed, init spec or dtype than the file records
  refuses it (``ProvenanceMismatch`` naming the field).
* ``test_cross_device_round_trip``: saved on the accelerator, loaded on the CPU (skipped on CPU-only backends).
* ``test_resume_bit_exact``: N steps straight vs k steps + checkpoint, then N - k steps resumed in a fresh process:
  same batch order, dropout masks, losses, learning rates, final parameters and optimizer state, bit for bit
  (ms-swift #10050, ms-swift PR #9935).
"""

from __future__ import annotations

import pytest

from conformance.areas.checkpoints import expect as E
from conformance.backends.base import SubprocessFailed
from conformance.harness.children import default_timeout
from conformance.stats import Verdict

pytestmark = [pytest.mark.requires("checkpoint")]

MODELS = ("tiny_tied", "gpt2", "llama")
FORMATS = ("torch", "safetensors", "npz")
SUFFIX = {"torch": ".pt", "safetensors": ".safetensors", "npz": ".npz"}
RESUME_STEPS, RESUME_SAVE_AT = 24, 12  # 8 batches per epoch: the resume lands mid-epoch 1


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model", MODELS)
def test_round_trip(backend, dtype, conformance, tmp_path, model, fmt):
    """Freshly initialized model -> file -> fresh model: nothing changes."""
    E.require_supported(backend, model, fmt)
    path = tmp_path / f"{model}{SUFFIX[fmt]}"
    saved = backend.save_checkpoint(path, model, fmt, dtype, conformance.seed)
    loaded = E.load_or_fail(conformance, backend, path, model, fmt, dtype, expect=E.provenance_expected(saved))
    conformance.expect(E.round_trip(saved, loaded), f"{model} as {fmt}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_provenance_verified(backend, conformance, tmp_path, fmt):
    """The stored seed, init spec and dtype are checked on load: a mismatch is refused, naming the field."""
    models = backend.checkpoint_models()
    E.require_supported(backend, models[0], fmt)
    dtype = "float32" if "float32" in backend.dtypes else sorted(backend.dtypes)[0]
    path = tmp_path / f"{models[0]}{SUFFIX[fmt]}"
    saved = backend.save_checkpoint(path, models[0], fmt, dtype, conformance.seed)
    verdicts = E.provenance_refusals(backend, path, models[0], fmt, dtype, saved, conformance.seed)
    conformance.expect(verdicts)


@pytest.mark.parametrize("fmt", FORMATS)
def test_cross_device_round_trip(backend, conformance, tmp_path, fmt):
    """Saved on the backend's accelerator, loaded on the CPU: bitwise equal, ties and strides kept."""
    if backend.device == "cpu":
        pytest.skip(f"{backend.spec} saves and loads on the CPU; cross-device round trips need an accelerator "
                    "backend (torch:cuda, torch:mps)")
    models = backend.checkpoint_models()
    E.require_supported(backend, models[0], fmt)
    dtype = "float32" if "float32" in backend.dtypes else sorted(backend.dtypes)[0]
    path = tmp_path / f"{models[0]}{SUFFIX[fmt]}"
    saved = backend.save_checkpoint(path, models[0], fmt, dtype, conformance.seed)
    loaded = E.load_or_fail(conformance, backend, path, models[0], fmt, dtype, device="cpu",
                            expect=E.provenance_expected(saved))
    conformance.expect(E.round_trip(saved, loaded), f"{models[0]} as {fmt}, {backend.device} -> cpu")


@pytest.mark.requires("resume")
def test_resume_bit_exact(backend, conformance, tmp_path):
    """Straight run vs interrupted + resumed in a fresh process: identical batches, masks, losses, parameters."""
    try:
        traces = backend.resume_run(tmp_path, conformance.seed, RESUME_STEPS, RESUME_SAVE_AT, default_timeout())
    except SubprocessFailed as exc:
        conformance.expect(Verdict("harness", False, str(exc)))
    conformance.expect(E.resume(traces, RESUME_SAVE_AT),
                       f"{RESUME_STEPS} steps, resumed at {RESUME_SAVE_AT} in a fresh process")
