"""Static safety scan of pickles and torch checkpoint containers: which globals a file would import, without
unpickling anything.

Contract
--------
* :func:`scan_pickle_stream` reads pickle opcodes with :func:`pickletools.genops` (decoding only, nothing is imported
  or called) and simulates the unpickler's stack just far enough to know every global the pickle names: ``GLOBAL``
  and ``INST`` carry the name, ``STACK_GLOBAL`` takes the two strings on top of the stack (through the memo), ``EXT*``
  codes name a global through the copyreg registry (never resolvable statically: unsafe). Python 2 names are mapped
  as the unpickler maps them (``commands.Popen`` -> ``subprocess.Popen``, ``__builtin__.exec`` -> ``builtins.exec``).
* A global is **allowed** only if torch's default weights-only unpickler allows it (:func:`is_allowed`: tensor
  rebuild functions, storage and tensor classes, dtypes, layouts, devices, ``collections.OrderedDict`` ...); anything
  else is **unsafe**: the file would import (and usually call) code. :func:`describe` says which is worst.
* :func:`scan_torch_file` scans a file as ``torch.load`` would read it: a zip archive's ``*.pkl`` members (torch
  unpickles ``data.pkl``; an archive without one has kind ``zip without data.pkl``), a tar archive is reported as such
  (torch's legacy tar format, never loaded weights-only), anything else as the legacy stream of up to five consecutive
  pickles that ``torch.save(..., _use_new_zipfile_serialization=False)`` writes (a bare pickle is its first). Globals
  named before a decoding error count: the unpickler would have reached them.
* :func:`sniff` names a file's container from its first bytes (``zip``, ``tar``, ``safetensors``, ``pickle``,
  ``empty``, ``unknown``).

Only the standard library; no framework is imported.
"""

from __future__ import annotations

import io
import os
import pickletools
import re
import tarfile
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from dataclasses import dataclass, field
from pathlib import Path

#: Pickles a legacy (non-zip) ``torch.save`` stream holds before the raw storage bytes: magic number, protocol
#: version, sys info, the object, the storage keys.
LEGACY_PICKLES = 5

_EXACT_ALLOWED = frozenset({
    "_codecs.encode", "builtins.bytearray", "builtins.complex", "builtins.set", "collections.Counter",
    "collections.OrderedDict", "torch.Size", "torch.Tensor", "torch.device", "torch.nn.parameter.Parameter",
    "torch.serialization._get_layout", "torch.storage.TypedStorage", "torch.storage.UntypedStorage",
    "torch._tensor._rebuild_from_type_v2",
    "torch.per_channel_affine", "torch.per_channel_affine_float_qparams", "torch.per_channel_symmetric",
    "torch.per_tensor_affine", "torch.per_tensor_symmetric",
    "torch.bfloat16", "torch.bool", "torch.complex32", "torch.complex64", "torch.complex128",
    "torch.float16", "torch.float32", "torch.float64",
})
_PATTERN_ALLOWED = re.compile(
    r"torch\._utils\._rebuild_(tensor|tensor_v2|tensor_v3|parameter|parameter_with_state|qtensor|sparse_tensor"
    r"|nested_tensor|meta_tensor_no_storage|wrapper_subclass|device_tensor_from_cpu_tensor"
    r"|device_tensor_from_numpy)"
    r"|torch(\.cuda)?(\.sparse)?\.(BFloat16|Bool|Byte|Char|ComplexDouble|ComplexFloat|Double|Float|Half|Int|Long"
    r"|Short|QInt32|QInt8|QUInt2x4|QUInt4x2|QUInt8)(Storage|Tensor)"
    r"|torch\.(u?int[1-7]|u?int(8|16|32|64)|bits(1x8|2x4|4x2|8|16)|q(u)?int(8|32)|quint(2x4|4x2)"
    r"|float8_e(4m3fn|4m3fnuz|5m2|5m2fnuz|8m0fnu)|float4_e2m1fn_x2)")

#: Modules (after the unpickler's Python 2 mapping) whose globals run programs, touch files or evaluate code.
CODE_EXECUTION_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "sys", "shutil", "runpy", "importlib", "pty", "socket", "ctypes",
    "multiprocessing", "code", "codeop", "pickle", "_pickle", "marshal", "webbrowser", "pdb", "timeit", "asyncio",
    "_posixsubprocess", "signal", "pathlib", "io", "_io", "zipimport", "types", "functools", "operator",
})
#: Builtins that evaluate code, import modules or reach arbitrary attributes.
CODE_EXECUTION_BUILTINS = frozenset({
    "exec", "eval", "compile", "__import__", "open", "getattr", "setattr", "delattr", "globals", "locals", "vars",
    "breakpoint", "input", "exit", "quit", "help", "__build_class__",
})


def resolve(module: str, name: str) -> tuple[str, str]:
    """The global the unpickler imports for ``module name`` (Python 2 names mapped as pickle and torch map them)."""
    if (module, name) in NAME_MAPPING:
        return NAME_MAPPING[(module, name)]
    return IMPORT_MAPPING.get(module, module), name


def is_allowed(qualified: str) -> bool:
    """Whether torch's default weights-only unpickler allows the global ``module.name`` (already resolved)."""
    return qualified in _EXACT_ALLOWED or _PATTERN_ALLOWED.fullmatch(qualified) is not None


def executes_code(qualified: str) -> bool:
    """Whether the global ``module.name`` runs programs or evaluates code (os.system, subprocess.*, builtins.exec)."""
    module, _, name = qualified.rpartition(".")
    top = module.split(".")[0]
    return top in CODE_EXECUTION_MODULES or (module == "builtins" and name in CODE_EXECUTION_BUILTINS)


def display(qualified: str) -> str:
    """``posix.system`` -> ``os.system (posix.system in the file)``; other names unchanged."""
    module, _, name = qualified.rpartition(".")
    if module in ("posix", "nt"):
        return f"os.{name} ({qualified} in the file)"
    return qualified


@dataclass
class ScanResult:
    """What a static scan found: the container, every global named (resolved, in order), the unsafe ones, and
    the decoding error that stopped the scan (``None`` when every pickle decoded to its STOP)."""

    kind: str
    globals: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)
    error: str | None = None
    pickles: int = 0

    def add(self, qualified: str) -> None:
        if qualified not in self.globals:
            self.globals.append(qualified)
        if not is_allowed(qualified) and qualified not in self.unsafe:
            self.unsafe.append(qualified)

    @property
    def worst(self) -> str | None:
        """The most dangerous unsafe global (code execution first), or ``None``."""
        ranked = sorted(self.unsafe, key=lambda g: (not executes_code(g), self.unsafe.index(g)))
        return ranked[0] if ranked else None


def describe(result: ScanResult) -> str:
    """One phrase for an unsafe result: ``pickle names os.system (posix.system in the file; code execution)``."""
    worst = result.worst
    if worst is None:
        return "pickle names nothing outside the weights-only allowlist"
    shown = display(worst)
    why = "code execution" if executes_code(worst) else "outside the weights-only allowlist: it would import code"
    if shown.endswith(")"):
        shown = shown[:-1] + f"; {why})"
    else:
        shown = f"{shown} ({why})"
    others = [g for g in result.unsafe if g != worst]
    more = f", and {len(others)} more: {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}" if others else ""
    return f"pickle names {shown}{more}"


class _Mark:
    pass


_MARK = _Mark()
_UNKNOWN = object()
_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}


def _scan_one(stream, result: ScanResult) -> bool:
    """Scan one pickle from ``stream`` (up to its STOP); False at end of stream before any opcode."""
    stack: list = []
    memo: dict[int, object] = {}
    desync = False  # the simulated stack no longer mirrors the unpickler's: STACK_GLOBAL names become unknown
    first = True

    def pop():
        nonlocal desync
        if not stack or stack[-1] is _MARK:
            desync = True
            return _UNKNOWN
        return stack.pop()

    def pop_to_mark():
        nonlocal desync
        while stack and stack[-1] is not _MARK:
            stack.pop()
        if stack:
            stack.pop()
        else:
            desync = True

    try:
        for op, arg, _pos in pickletools.genops(stream):
            first = False
            name = op.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                result.add(".".join(resolve(module, attr)))
            elif name == "STACK_GLOBAL":
                attr, module = pop(), pop()
                if not desync and isinstance(module, str) and isinstance(attr, str):
                    result.add(".".join(resolve(module, attr)))
                else:
                    result.add("<STACK_GLOBAL with names not known statically>")
            elif name.startswith("EXT"):
                result.add(f"<copyreg extension code {arg}>")
            if name in _STRING_OPS:
                stack.append(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg))
            elif name in _GET_OPS:
                stack.append(memo.get(arg, _UNKNOWN))
            elif name in _PUT_OPS or name == "MEMOIZE":
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1] if stack else _UNKNOWN
            elif name == "DUP":
                stack.append(stack[-1] if stack else _UNKNOWN)
            elif name == "MARK":
                stack.append(_MARK)
            elif name == "STACK_GLOBAL":
                stack.append(_UNKNOWN)
            else:
                before = op.stack_before
                if pickletools.markobject in before:
                    pop_to_mark()
                    for _ in range(before.index(pickletools.markobject)):
                        pop()
                else:
                    for _ in before:
                        pop()
                stack.extend(_UNKNOWN for _ in op.stack_after)
    except (ValueError, OverflowError) as exc:  # UnicodeDecodeError is a ValueError
        if first and str(exc) == "pickle exhausted before seeing STOP":
            return False  # a clean end of the stream
        text = " ".join(str(exc).split())
        result.error = ("truncated pickle: " if "exhausted" in text or "expected" in text else "malformed pickle: "
                        ) + text[:300]
        return True
    if first:
        return False
    result.pickles += 1
    return True


def scan_pickle_stream(stream, max_pickles: int = 1, kind: str = "pickle", result: ScanResult | None = None
                       ) -> ScanResult:
    """Scan up to ``max_pickles`` consecutive pickles of a binary stream; stops at the first decoding error."""
    result = result or ScanResult(kind)
    for _ in range(max_pickles):
        if not _scan_one(stream, result) or result.error:
            break
    return result


def scan_pickle_bytes(data: bytes, max_pickles: int = 1) -> ScanResult:
    return scan_pickle_stream(io.BytesIO(data), max_pickles)


def scan_torch_file(path: str | os.PathLike) -> ScanResult:
    """Scan ``path`` as ``torch.load`` would read it (zip members ``*.pkl``, else the legacy pickle stream)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        result = ScanResult("zip")
        try:
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if n.endswith(".pkl")]
                if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in members):
                    result.kind = "zip without data.pkl"  # an archive, but not one torch.save wrote
                for member in members:
                    with archive.open(member) as stream:
                        scan_pickle_stream(stream, 1, result=result)
                    if result.error:
                        result.error = f"{member}: {result.error}"
                        break
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
            result.error = f"damaged zip archive: {' '.join(str(exc).split())[:200]}"
        return result
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        return ScanResult("zip", error=f"truncated: the zip archive torch.save writes has no end-of-central-directory "
                                       f"record ({path.stat().st_size} bytes)")
    if _is_tar(path):
        return ScanResult("tar")
    with open(path, "rb") as f:
        result = scan_pickle_stream(f, LEGACY_PICKLES)
    if result.pickles == 0 and result.error is None:
        result.error = "empty file (0 bytes)"
    return result


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, ValueError):
        return False


def safetensors_header_size(head: bytes) -> int | None:
    """The JSON header length when ``head`` (the first 9+ bytes) starts like a safetensors file, else ``None``."""
    if len(head) < 9 or head[8:9] != b"{":
        return None
    return int.from_bytes(head[:8], "little")


def sniff(path: str | os.PathLike) -> str:
    """The container ``path`` holds, from its bytes: ``zip`` (torch.save), ``tar`` (torch's legacy tar format),
    ``safetensors`` (8-byte header length then ``{``; possibly truncated), ``pickle`` (legacy torch.save or a bare
    pickle: its first opcodes decode), ``empty`` or ``unknown``."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if safetensors_header_size(head) is not None:
        return "safetensors"
    if head[0] == 0x80 and len(head) > 1 and head[1] <= 5:  # PROTO n
        return "pickle"
    if _is_tar(path):
        return "tar"
    with open(path, "rb") as f:
        probe = scan_pickle_stream(f, 1)
    return "pickle" if probe.pickles or probe.unsafe else "unknown"
