"""``conformance checkpoint verify`` and the static pickle scan under it.

The scan names every global a pickle would import without unpickling it (GLOBAL, STACK_GLOBAL through the memo,
stack tricks, extension codes) and allows exactly what torch's weights-only unpickler allows. The command prints one
line per file (OK, CORRUPT naming the tensor, UNSAFE naming the global with the payload never run, MISSING,
NO-PROVENANCE, MISMATCH, UNKNOWN FORMAT, UNCHECKED without torch) and exits 0 / 1 / 4; safetensors files verify
without torch.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance import cli
from conformance.harness import pickle_scan as ps
from conformance.harness.checkpoint_verify import verify_file

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = {"torch": ".pt", "safetensors": ".safetensors"}


# -- the static scan (no framework) ---------------------------------------------------------------------------------
class _System:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_scan_names_os_system_in_every_protocol(tmp_path, protocol):
    marker = tmp_path / "PWNED"
    result = ps.scan_pickle_bytes(pickle.dumps({"a": [1, "x"], "p": _System(marker)}, protocol=protocol))
    assert result.unsafe == ["posix.system"] and result.error is None
    assert ps.describe(result) == "pickle names os.system (posix.system in the file; code execution)"
    assert not marker.exists()


def _stack_global(module: bytes, name: bytes) -> bytes:
    return b"\x8c" + bytes([len(module)]) + module + b"\x8c" + bytes([len(name)]) + name


def test_scan_follows_the_stack_not_the_last_strings():
    """Two allowed strings pushed and popped after 'posix' 'system' leave those on top: STACK_GLOBAL names them."""
    data = (b"\x80\x04" + _stack_global(b"posix", b"system") + _stack_global(b"collections", b"OrderedDict")
            + b"00\x93\x8c\x04true\x85R.")
    assert ps.scan_pickle_bytes(data).unsafe == ["posix.system"]


def test_scan_follows_the_memo():
    """Names stored with MEMOIZE and fetched with BINGET."""
    data = (b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94"
            b"0000h\x00h\x01\x93)R.")
    assert ps.scan_pickle_bytes(data).unsafe == ["posix.system"]


def test_scan_unresolvable_names_and_extension_codes_are_unsafe():
    unknown = b"\x80\x04K\x01K\x02\x93)R."  # STACK_GLOBAL on two integers
    assert ps.scan_pickle_bytes(unknown).unsafe == ["<STACK_GLOBAL with names not known statically>"]
    ext = b"\x80\x02\x82\x01)R."
    assert ps.scan_pickle_bytes(ext).unsafe == ["<copyreg extension code 1>"]


def test_scan_maps_python2_names_and_allows_state_dict_globals():
    data = b"\x80\x02c__builtin__\nexec\nq\x00X\x01\x00\x00\x00xq\x01\x85q\x02Rq\x03."
    result = ps.scan_pickle_bytes(data)
    assert result.unsafe == ["builtins.exec"] and ps.executes_code("builtins.exec")
    assert ps.resolve("commands", "Popen") == ("subprocess", "Popen")
    for name in ("torch._utils._rebuild_tensor_v2", "torch.FloatStorage", "collections.OrderedDict",
                 "torch.bfloat16", "torch._utils._rebuild_parameter", "torch.cuda.HalfStorage"):
        assert ps.is_allowed(name), name
    for name in ("posix.system", "subprocess.Popen", "builtins.eval", "torch.load", "torch._utils.exec",
                 "collections.defaultdict", "torch.FloatStorage.__reduce__"):
        assert not ps.is_allowed(name), name
    assert "outside the weights-only allowlist" in ps.describe(ps.ScanResult("pickle", unsafe=["torch.load"]))


def test_scan_allows_everything_torch_weights_only_allows():
    """The static scan never refuses what torch's default weights-only unpickler accepts (a newer torch that allows
    more shows here)."""
    w = pytest.importorskip("torch._weights_only_unpickler")
    allowed = getattr(w, "_get_allowed_globals", None)
    if allowed is None:
        pytest.skip("torch has no _get_allowed_globals")
    missing = sorted(g for g in allowed() if not ps.is_allowed(g))
    assert missing == [], f"allowed by torch, refused by the static scan: {missing}"


def test_pickle_disguised_as_safetensors_header_is_unsafe(tmp_path):
    """A protocol-0 pickle whose ninth byte is "{" sniffs as safetensors; it is still UNSAFE, not CORRUPT (no torch
    needed)."""
    data = b"(S'abcde{'\np0\n0cposix\nsystem\n(S'true'\ntR."
    assert data[8:9] == b"{"
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    assert ps.sniff(path) == "safetensors"
    finding = verify_file(path)
    assert finding.status == "UNSAFE" and "os.system" in finding.line(), finding.line()


# -- files -----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch_mods():
    torch = pytest.importorskip("torch")
    from conformance.backends.torch import checkpoint_io as cio
    from conformance.backends.torch import checkpoint_models as cm

    return torch, cio, cm


def _formats():
    out = ["torch"]
    try:
        import safetensors.torch  # noqa: F401

        out.append("safetensors")
    except ImportError:
        out.append(pytest.param("safetensors", marks=pytest.mark.skip(reason="safetensors is not installed")))
    return out


FORMATS = _formats()


def _save(torch_mods, path: Path, fmt: str, sd=None, seed: int = 11) -> dict:
    torch, cio, cm = torch_mods
    sd = sd if sd is not None else cm.build_model("tiny_tied", "float32", "cpu", seed).state_dict()
    return cio.save_state_dict(sd, path, fmt, cm.provenance_of("tiny_tied", seed, "float32", "cpu",
                                                                {"torch": torch.__version__}))


def _verify(capsys, *args) -> tuple[int, list[str]]:
    code = cli.main(["checkpoint", "verify", *map(str, args)])
    out = capsys.readouterr().out
    return code, out.splitlines()


def _payloads(torch_mods, tmp_path: Path, marker: Path) -> list[Path]:
    """An os.system payload in torch's zip and legacy formats, as a bare pickle and under a .safetensors name."""
    torch, _, _ = torch_mods
    obj = {"embed.weight": torch.zeros(2), "payload": _System(marker)}
    zipped, legacy = tmp_path / "evil_zip.pt", tmp_path / "evil_legacy.pt"
    torch.save(obj, zipped)
    torch.save(obj, legacy, _use_new_zipfile_serialization=False)
    bare, disguised = tmp_path / "evil_bare.pt", tmp_path / "evil.safetensors"
    bare.write_bytes(pickle.dumps(obj["payload"], protocol=2))
    disguised.write_bytes(pickle.dumps({"w": obj["payload"]}, protocol=5))
    return [zipped, legacy, bare, disguised]


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_files_verify(torch_mods, tmp_path, capsys, fmt):
    path = tmp_path / f"model{SUFFIX[fmt]}"
    prov = _save(torch_mods, path, fmt)
    code, lines = _verify(capsys, path)
    assert code == 0 and len(lines) == 1, lines
    torch = torch_mods[0]
    assert lines[0] == (f"OK   {path}  ({'torch.save zip' if fmt == 'torch' else 'safetensors'}, 10 tensors, "
                        f"model tiny_tied, seed 11, spec tiny_tied-v1, torch {torch.__version__})")
    finding = verify_file(path)
    assert finding.ok and finding.tensors == len(prov["tensors"]) == 10 and finding.provenance["seed"] == 11


@pytest.mark.parametrize("fmt", FORMATS)
def test_flipped_byte_is_corrupt_naming_the_tensor(torch_mods, tmp_path, capsys, fmt):
    torch, cio, cm = torch_mods
    sd = cm.build_model("tiny_tied", "float32", "cpu", 11).state_dict()
    path = tmp_path / f"model{SUFFIX[fmt]}"
    _save(torch_mods, path, fmt, sd)
    data = bytearray(path.read_bytes())
    target = sd["up.weight"].detach().numpy().tobytes()
    at = bytes(data).find(target[:64])
    assert at > 0, "tensor bytes not found in the file"
    data[at + 10] ^= 0x01
    path.write_bytes(bytes(data))
    code, lines = _verify(capsys, path)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"CORRUPT {path}: ") and "'up.weight'" in lines[0] and "sha256" in lines[0], lines
    assert verify_file(path).key == "up.weight"


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_files_are_corrupt(torch_mods, tmp_path, capsys, fmt):
    path = tmp_path / f"model{SUFFIX[fmt]}"
    _save(torch_mods, path, fmt)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 7, 0):
        path.write_bytes(data[:cut])
        code, lines = _verify(capsys, path)
        assert code == 1 and len(lines) == 1, (cut, lines)
        assert lines[0].startswith(f"CORRUPT {path}: "), (cut, lines)
        assert "truncated" in lines[0] or "empty" in lines[0] or "corrupted" in lines[0], (cut, lines)


def test_os_system_pickles_are_unsafe_and_never_run(torch_mods, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    files = _payloads(torch_mods, tmp_path, marker)
    code, lines = _verify(capsys, *files)
    assert code == 1 and len(lines) == len(files), lines
    for path, line in zip(files, lines, strict=True):
        assert line == (f"UNSAFE {path}: pickle names os.system (posix.system in the file; code execution); "
                        "not loaded"), line
    assert not marker.exists(), "verify ran the payload"


def test_no_provenance_missing_and_unknown(torch_mods, tmp_path, capsys):
    torch, cio, cm = torch_mods
    plain = tmp_path / "plain.pt"
    torch.save(cm.build_model("tiny_tied", "float32", "cpu", 11).state_dict(), plain)
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    code, lines = _verify(capsys, plain, tmp_path / "nope.pt", text)
    assert code == 1
    assert lines[0].startswith(f"NO-PROVENANCE {plain}: a plain state dict (10 tensors)"), lines
    assert lines[1] == f"MISSING {tmp_path / 'nope.pt'}: no such file"
    assert lines[2].startswith(f"UNKNOWN FORMAT {text}: "), lines


@pytest.mark.parametrize("fmt", FORMATS)
def test_altered_provenance_is_corrupt(torch_mods, tmp_path, capsys, fmt):
    """A tensor added after saving (no digest) and a provenance that lost a field are caught."""
    torch, cio, cm = torch_mods
    path = tmp_path / f"model{SUFFIX[fmt]}"
    prov = _save(torch_mods, path, fmt)
    sd, _ = cio.read_checkpoint(path, fmt)
    sd["extra.weight"] = torch.ones(3)
    for altered, expect in ((dict(prov), "'extra.weight' has no sha256"),
                            ({k: v for k, v in prov.items() if k != "seed"}, "provenance lacks field 'seed'")):
        text = cio.dumps_provenance(altered)
        if fmt == "torch":
            obj = {"format": cio.FORMAT_TAG, "provenance": text,
                   "state_dict": sd if "extra" in expect else {k: v for k, v in sd.items() if k != "extra.weight"}}
            torch.save(obj, path)
        else:
            import safetensors.torch

            flat = {k: v.contiguous() for k, v in sd.items() if k != "head.weight"}
            if "extra" not in expect:
                flat.pop("extra.weight")
            path.write_bytes(safetensors.torch.save(flat, metadata={"format": cio.FORMAT_TAG, "provenance": text}))
        code, lines = _verify(capsys, path)
        assert code == 1 and lines[0].startswith(f"CORRUPT {path}: ") and expect in lines[0], lines


def test_expect_and_usage_errors(torch_mods, tmp_path, capsys):
    torch = torch_mods[0]
    path = tmp_path / "model.pt"
    _save(torch_mods, path, "torch")
    code, lines = _verify(capsys, "--expect", "seed=11", "--expect", f"versions.torch={torch.__version__}", path)
    assert code == 0 and lines[0].startswith("OK   "), lines
    code, lines = _verify(capsys, "--expect", "seed=12", path)
    assert code == 1 and lines == [f"MISMATCH {path}: provenance field 'seed' is 11, expected 12"]
    assert cli.main(["checkpoint", "verify"]) == 4
    assert "no FILE given" in capsys.readouterr().err
    assert cli.main(["checkpoint", "verify", "--expect", "seed", str(path)]) == 4
    assert "FIELD=VALUE" in capsys.readouterr().err


def test_mixed_files_through_the_command_line(torch_mods, tmp_path):
    """``python -m conformance.cli checkpoint verify`` with valid, corrupt, unsafe and missing files: one line each,
    in order, exit 1; the os.system payload never runs."""
    good = tmp_path / "good.pt"
    _save(torch_mods, good, "torch")
    files = [good]
    if "safetensors" in FORMATS:
        files.append(tmp_path / "good.safetensors")
        _save(torch_mods, files[-1], "safetensors")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:100])
    marker = tmp_path / "PWNED"
    evil = _payloads(torch_mods, tmp_path, marker)[0]
    files += [truncated, evil, tmp_path / "missing.pt"]
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "checkpoint", "verify", *map(str, files)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1, (proc.stdout, proc.stderr[-2000:])
    assert len(lines) == len(files), lines
    statuses = [line.split(" ", 1)[0] for line in lines]
    assert statuses == ["OK"] * (len(files) - 3) + ["CORRUPT", "UNSAFE", "MISSING"], lines
    assert all(str(f) in line for f, line in zip(files, lines, strict=True))
    assert not marker.exists()


_NO_TORCH = textwrap.dedent("""
    import sys

    class Uninstalled:  # import torch / safetensors -> ModuleNotFoundError, as if neither were installed
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("torch", "safetensors"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Uninstalled())
    from conformance.cli import main
    code = main(["checkpoint", "verify", *sys.argv[1:]])
    print("torch imported:", any(m.partition(".")[0] in ("torch", "safetensors") for m in sys.modules))
    sys.exit(code)
""")


def test_safetensors_verify_without_torch(torch_mods, tmp_path):
    """Without torch (and without the safetensors package) a safetensors file still verifies, a corrupted one is
    still caught, a torch file is UNCHECKED and an os.system pickle is still UNSAFE."""
    if "safetensors" not in FORMATS:
        pytest.skip("safetensors is not installed")
    good, bad, pt = tmp_path / "good.safetensors", tmp_path / "bad.safetensors", tmp_path / "model.pt"
    for path, fmt in ((good, "safetensors"), (bad, "safetensors"), (pt, "torch")):
        _save(torch_mods, path, fmt)
    data = bytearray(bad.read_bytes())
    data[-5] ^= 0xFF
    bad.write_bytes(bytes(data))
    marker = tmp_path / "PWNED"
    evil = _payloads(torch_mods, tmp_path, marker)[1]  # torch's legacy stream
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH, str(good), str(bad), str(pt), str(evil)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1, (proc.stdout, proc.stderr[-2000:])
    assert lines[0].startswith(f"OK   {good}  (safetensors, 10 tensors, model tiny_tied, seed 11"), lines
    assert lines[1].startswith(f"CORRUPT {bad}: bytes of tensor "), lines
    assert lines[2].startswith(f"UNCHECKED {pt}: torch is required"), lines
    assert lines[3].startswith(f"UNSAFE {evil}: pickle names os.system"), lines
    assert lines[4] == "torch imported: False", lines
    assert not marker.exists()
