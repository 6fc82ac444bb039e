"""Bad checkpoint input is refused with one clear line naming the file and key; saves are atomic.

Truncated and corrupted files, a pickle that would run code (and proof that it did not), missing or unexpected keys,
shape and dtype mismatches, missing or wrong provenance; a save that fails or dies mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conformance.backends.torch import checkpoint_io as cio  # noqa: E402
from conformance.backends.torch import checkpoint_models as cm  # noqa: E402
from conformance.backends.torch_adapter import TorchBackend  # noqa: E402

from conformance.harness.checkpoints import (  # noqa: E402
    CheckpointCorrupt,
    CheckpointError,
    DtypeMismatch,
    MissingKeys,
    ProvenanceMismatch,
    ShapeMismatch,
    UnexpectedKeys,
    UnsafeCheckpoint,
)
from conformance.harness.files import atomic_write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ["torch", pytest.param("safetensors", marks=pytest.mark.skipif(
    cio.safetensors_available() is not None, reason="safetensors is not installed"))]
SUFFIX = {"torch": ".pt", "safetensors": ".safetensors"}


@pytest.fixture(scope="module")
def backend():
    return TorchBackend("cpu")


def _save(backend, tmp_path, fmt, name="model"):
    path = tmp_path / f"{name}{SUFFIX[fmt]}"
    return path, backend.save_checkpoint(path, "tiny_tied", fmt, "float32", 11)


def _one_line(exc: Exception, path: Path, key: str | None = None) -> str:
    text = str(exc)
    assert "\n" not in text, text
    assert str(path) in text, text
    if key is not None:
        assert repr(key) in text, text
        assert exc.key == key
    return text


def _save_sd(tmp_path, fmt, sd, name="edited"):
    path = tmp_path / f"{name}{SUFFIX[fmt]}"
    cio.save_state_dict(sd, path, fmt, cm.provenance_of("tiny_tied", 11, "float32", "cpu", {}))
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_file(backend, tmp_path, fmt):
    path, _ = _save(backend, tmp_path, fmt)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 7, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointCorrupt) as info:
            backend.load_checkpoint(path, "tiny_tied", fmt, "float32")
        text = _one_line(info.value, path)
        assert "truncated" in text or "corrupted" in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupted_tensor_bytes_name_the_key(backend, tmp_path, fmt):
    """A flipped bit inside tensor data is caught by the sha256 digests saved with the checkpoint."""
    path, saved = _save(backend, tmp_path, fmt)
    data = bytearray(path.read_bytes())
    target = saved.tensors["up.weight"].array.tobytes()
    at = bytes(data).find(target[:64])
    assert at > 0, "tensor bytes not found in the file"
    data[at + 10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointCorrupt) as info:
        backend.load_checkpoint(path, "tiny_tied", fmt, "float32")
    _one_line(info.value, path, "up.weight")


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupted_header(backend, tmp_path, fmt):
    path, _ = _save(backend, tmp_path, fmt)
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 64, len(data) - 8) if fmt == "torch" else range(8, 40):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointCorrupt) as info:
        backend.load_checkpoint(path, "tiny_tied", fmt, "float32")
    _one_line(info.value, path)


class _Payload:
    """Unpickling this creates a marker file: code execution, if anything loads it unsafely."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _malicious_files(tmp_path: Path, marker: Path) -> list[Path]:
    zipped = tmp_path / "evil.pt"
    torch.save({"embed.weight": torch.zeros(2), "payload": _Payload(marker)}, zipped)  # torch's zip format
    legacy = tmp_path / "evil_legacy.pt"
    legacy.write_bytes(pickle.dumps({"payload": _Payload(marker)}, protocol=2))  # a bare pickle
    return [zipped, legacy]


def test_malicious_pickle_is_refused_and_nothing_runs(backend, tmp_path):
    marker = tmp_path / "PWNED"
    for path in _malicious_files(tmp_path, marker):
        with pytest.raises(UnsafeCheckpoint) as info:
            backend.load_checkpoint(path, "tiny_tied", "torch", "float32")
        text = _one_line(info.value, path)
        assert "weights_only=True" in text and "refused" in text
        assert not marker.exists(), f"loading {path.name} ran the payload"
        with pytest.raises(UnsafeCheckpoint):
            cio.read_checkpoint(path, "torch")
        assert not marker.exists()


def test_malicious_payload_is_live(tmp_path):
    """Control: the same files DO run code under an unsafe load (in a child process), so the test above proves
    something."""
    marker = tmp_path / "PWNED"
    for path in _malicious_files(tmp_path, marker):
        load = (f"import pickle; pickle.load(open({str(path)!r}, 'rb'))" if "legacy" in path.name
                else f"import torch; torch.load({str(path)!r}, weights_only=False)")
        code = textwrap.dedent(load)
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert marker.exists(), f"the payload of {path.name} did not run under weights_only=False"
        marker.unlink()


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_key(backend, tmp_path, fmt):
    sd = cm.build_model("tiny_tied", "float32", "cpu", 11).state_dict()
    del sd["norm.bias"]
    path = _save_sd(tmp_path, fmt, sd)
    with pytest.raises(MissingKeys) as info:
        backend.load_checkpoint(path, "tiny_tied", fmt, "float32")
    _one_line(info.value, path, "norm.bias")


@pytest.mark.parametrize("fmt", FORMATS)
def test_unexpected_key(backend, tmp_path, fmt):
    sd = cm.build_model("tiny_tied", "float32", "cpu", 11).state_dict()
    sd["extra.weight"] = torch.zeros(3)
    path = _save_sd(tmp_path, fmt, sd)
    with pytest.raises(UnexpectedKeys) as info:
        backend.load_checkpoint(path, "tiny_tied", fmt, "float32")
    _one_line(info.value, path, "extra.weight")


@pytest.mark.parametrize("fmt", FORMATS)
def test_shape_mismatch(backend, tmp_path, fmt):
    sd = cm.build_model("tiny_tied", "float32", "cpu", 11).state_dict()
    sd["up.weight"] = sd["up.weight"].t().contiguous()
    path = _save_sd(tmp_path, fmt, sd)
    with pytest.raises(ShapeMismatch) as info:
        backend.load_checkpoint(path, "tiny_tied", fmt, "float32")
    text = _one_line(info.value, path, "up.weight")
    assert "(32, 48)" in text and "(48, 32)" in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_dtype_mismatch_is_not_cast_silently(backend, tmp_path, fmt):
    sd = cm.build_model("tiny_tied", "float32", "cpu", 11).state_dict()
    sd["down.bias"] = sd["down.bias"].double()
    path = _save_sd(tmp_path, fmt, sd)
    with pytest.raises(DtypeMismatch) as info:
        backend.load_checkpoint(path, "tiny_tied", fmt, "float32")
    text = _one_line(info.value, path, "down.bias")
    assert "float64" in text and "float32" in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_provenance_mismatch_and_missing(backend, tmp_path, fmt):
    path, saved = _save(backend, tmp_path, fmt)
    with pytest.raises(ProvenanceMismatch) as info:
        backend.load_checkpoint(path, "tiny_tied", fmt, "float32", expect={"seed": 12})
    _one_line(info.value, path, "seed")
    with pytest.raises(ProvenanceMismatch) as info:
        backend.load_checkpoint(path, "tiny_tied", fmt, "float32", expect={"versions": {"torch": "0.0.1"}})
    assert info.value.key == "versions.torch"
    ok = backend.load_checkpoint(path, "tiny_tied", fmt, "float32",
                                 expect={k: saved.provenance[k] for k in ("seed", "init", "dtype", "versions")})
    assert ok.provenance["seed"] == 11
    plain = tmp_path / "plain.pt"
    torch.save(cm.build_model("tiny_tied", "float32", "cpu", 11).state_dict(), plain)
    backend.load_checkpoint(plain, "tiny_tied", "torch", "float32")  # a plain state dict loads ...
    with pytest.raises(ProvenanceMismatch, match="no provenance"):  # ... but cannot prove where it came from
        backend.load_checkpoint(plain, "tiny_tied", "torch", "float32", expect={"seed": 11})


def test_missing_file(backend, tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        backend.load_checkpoint(tmp_path / "nope.pt", "tiny_tied", "torch", "float32")


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_save_keeps_the_good_checkpoint(backend, tmp_path, fmt, monkeypatch):
    """A writer that dies half way (disk full) leaves the old file byte for byte and no temporary file."""
    path, _ = _save(backend, tmp_path, fmt)
    good = path.read_bytes()

    def half_then_fail(obj_or_file, *args, **kwargs):
        f = obj_or_file if hasattr(obj_or_file, "write") else args[0]
        f.write(b"\0" * (len(good) // 2))
        raise OSError(28, "No space left on device")

    if fmt == "torch":
        monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: half_then_fail(f))
    else:
        real = atomic_write
        monkeypatch.setattr(cio, "atomic_write",
                            lambda p, writer: real(p, lambda f: (writer(f), half_then_fail(f))))
    with pytest.raises(OSError, match="No space left"):
        backend.save_checkpoint(path, "tiny_tied", fmt, "float32", 99)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    monkeypatch.undo()
    assert backend.load_checkpoint(path, "tiny_tied", fmt, "float32", expect={"seed": 11}).provenance["seed"] == 11


def test_killed_save_keeps_the_good_checkpoint(tmp_path):
    """A process killed mid-write (os._exit between two writes) leaves the destination intact."""
    path = tmp_path / "ckpt.bin"
    atomic_write(path, lambda f: f.write(b"good" * 1000))
    code = textwrap.dedent(f"""
        import os
        from conformance.harness.files import atomic_write
        def writer(f):
            f.write(b"bad" * 500)
            f.flush()
            os._exit(9)
        atomic_write({str(path)!r}, writer)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    assert path.read_bytes() == b"good" * 1000
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert all(name.startswith(".ckpt.bin.tmp-") for name in leftovers), leftovers


def test_round_trip_report_covers_layout(backend, tmp_path):
    """The state report carries strides (a transposed parameter), ties and non-persistent buffers."""
    path, saved = _save(backend, tmp_path, "torch")
    assert saved.tensors["proj"].strides == (1, 16)
    assert saved.aliases == [["embed.weight", "head.weight"]]
    assert saved.nonpersistent == ["inv_freq"] and "inv_freq" not in saved.file_keys
    assert saved.provenance["seed"] == 11 and saved.provenance["device"] == "cpu"
    assert set(saved.provenance["tensors"]) == set(saved.file_keys)
