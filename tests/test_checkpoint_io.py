"""Bad checkpoint input is refused with one clear line naming the file and key; saves are atomic.

Truncated and corrupted files, a pickle that would run code (and proof that it did not), missing or unexpected keys,
shape and dtype mismatches, missing or wrong provenance; a save that fails or dies mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
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


class _System:
    """``os.system("touch MARKER")`` on unpickling (pickled as ``posix system``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Popen:
    """``subprocess.Popen(["touch", MARKER])`` (pickled by protocol 2 as ``commands Popen``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.marker)],))


class _Run:
    """``subprocess.run(["touch", MARKER])``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.run, (["touch", str(self.marker)],))


class _Exec:
    """``exec("open(MARKER, 'w').close()")`` (pickled by protocol 2 as ``__builtin__ exec``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


#: payload -> (the global the error must name, the resolved global in ``UnsafeCheckpoint.globals``)
PAYLOADS = {"system": (_System, "os.system", "posix.system"), "popen": (_Popen, "subprocess.Popen", "subprocess.Popen"),
            "run": (_Run, "subprocess.run", "subprocess.run"), "exec": (_Exec, "builtins.exec", "builtins.exec")}
#: how a payload is written: torch's zip format, its legacy stream, bare pickles (protocol 2: GLOBAL; protocol 5:
#: STACK_GLOBAL through the memo), and a bare pickle under a .safetensors name (loaded as safetensors)
CONTAINERS = ("zip", "legacy", "pickle2", "pickle5", "safetensors")


def _payload_file(tmp_path: Path, payload: str, container: str, marker: Path) -> Path:
    obj = {"embed.weight": torch.zeros(2), "payload": PAYLOADS[payload][0](marker)}
    path = tmp_path / f"evil_{payload}_{container}{'.safetensors' if container == 'safetensors' else '.pt'}"
    if container == "zip":
        torch.save(obj, path)
    elif container == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps({"payload": obj["payload"]}, protocol=5 if container == "pickle5" else 2))
    return path


def _assert_no_unsafe_advice(text: str) -> None:
    low = text.lower()
    assert not ("weights_only" in low and "false" in low), text
    for advice in ("re-running", "add_safe_globals", "safe_globals", "trust", "will likely succeed"):
        assert advice not in low, text


def _wait_absent(marker: Path, seconds: float = 0.3) -> None:
    """The marker does not appear (Popen would create it asynchronously, if it had run)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert not marker.exists(), "the payload ran"
        time.sleep(0.05)


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_code_carrying_pickle_is_unsafe_not_corrupt(backend, tmp_path, payload, container):
    """os.system, subprocess.Popen/run and builtins.exec payloads in every container: UnsafeCheckpoint naming the
    global, one line, no advice to turn weights_only off, and the payload never runs."""
    if container == "safetensors" and cio.safetensors_available():
        pytest.skip("safetensors is not installed")
    marker = tmp_path / "PWNED"
    path = _payload_file(tmp_path, payload, container, marker)
    fmt = "safetensors" if container == "safetensors" else "torch"
    _, shown, resolved = PAYLOADS[payload]
    for load in (lambda: backend.load_checkpoint(path, "tiny_tied", fmt, "float32"),
                 lambda: cio.read_checkpoint(path, fmt)):
        with pytest.raises(UnsafeCheckpoint) as info:
            load()
        text = _one_line(info.value, path)
        assert "unsafe" in text and shown in text and "corrupt" not in text.lower(), text
        assert info.value.globals[0] == resolved
        _assert_no_unsafe_advice(text)
        assert not marker.exists(), "the payload ran"
    if fmt == "torch":
        with pytest.raises(UnsafeCheckpoint):
            cio.safe_torch_load(path)
    if payload == "popen":
        _wait_absent(marker)
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("payload", ["system", "popen"])
def test_torch_refusal_is_unsafe_without_advice(backend, tmp_path, monkeypatch, payload):
    """Without the static scan, torch's own weights-only refusal (its two message forms: a blocked module, a global
    not allowed) is still UnsafeCheckpoint naming the global, and torch's advice is not relayed."""
    marker = tmp_path / "PWNED"
    monkeypatch.setattr(cio, "refuse_unsafe", lambda path: None)
    for container in ("zip", "legacy"):
        path = _payload_file(tmp_path, payload, container, marker)
        with pytest.raises(UnsafeCheckpoint) as info:
            cio.read_checkpoint(path, "torch")
        text = _one_line(info.value, path)
        assert "unsafe" in text and {"system": "posix.system", "popen": "commands.Popen"}[payload] in text, text
        _assert_no_unsafe_advice(text)
    _wait_absent(marker)


def test_torch_advice_is_stripped_from_every_message(tmp_path):
    """torch's legacy .tar refusal carries the advice to turn weights_only off: the CheckpointCorrupt does not."""
    import tarfile

    path = tmp_path / "old.tar.pt"
    member = tmp_path / "storages"
    member.write_bytes(pickle.dumps(0, protocol=2))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(member, arcname="storages")
    with pytest.raises(CheckpointCorrupt) as info:
        cio.read_checkpoint(path, "torch")
    text = _one_line(info.value, path)
    assert "tar" in text, text
    _assert_no_unsafe_advice(text)
    raw = ("Weights only load failed. In PyTorch 2.6, we changed the default value of the `weights_only` argument in "
           "`torch.load` from `False` to `True`. Re-running `torch.load` with `weights_only` set to `False` will "
           "likely succeed, but it can result in arbitrary code execution. Do it only if you got the file from a "
           "trusted source.\n\nTrying to load unsupported GLOBAL posix.system whose module posix is blocked.")
    err = CheckpointCorrupt(tmp_path / "x.pt", raw)
    assert "posix.system" in str(err)
    _assert_no_unsafe_advice(str(err))


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
        assert "unsafe" in text and "refused" in text
        _assert_no_unsafe_advice(text)
        assert not marker.exists(), f"loading {path.name} ran the payload"
        with pytest.raises(UnsafeCheckpoint):
            cio.read_checkpoint(path, "torch")
        assert not marker.exists()


_LIVE_CHILD = textwrap.dedent("""
    import json, pickle, sys
    from pathlib import Path
    import torch
    marker = Path(sys.argv[1])
    ran = {}
    for name, with_torch in json.loads(sys.argv[2]):
        obj = torch.load(name, weights_only=False) if with_torch else pickle.load(open(name, "rb"))
        [v.wait() for v in obj.values() if hasattr(v, "wait")]  # a Popen payload runs asynchronously
        ran[name] = marker.exists()
        marker.unlink(missing_ok=True)
    print(json.dumps(ran))
""")


def test_malicious_payload_is_live(tmp_path):
    """Control: the same files DO run code under an unsafe load (``torch.load(weights_only=False)`` for torch's
    formats, ``pickle.load`` for bare pickles; in one child process), so the tests above prove something."""
    marker = tmp_path / "PWNED"
    zipped, bare = _malicious_files(tmp_path, marker)
    files = [(str(zipped), True), (str(bare), False)]
    files += [(str(_payload_file(tmp_path, payload, container, marker)), container in ("zip", "legacy"))
              for payload in sorted(PAYLOADS) for container in CONTAINERS]
    proc = subprocess.run([sys.executable, "-c", _LIVE_CHILD, str(marker), json.dumps(files)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    ran = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(ran) == len(files)
    assert all(ran.values()), f"payloads that did not run under an unsafe load: {[n for n, r in ran.items() if not r]}"


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
