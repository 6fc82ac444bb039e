"""The one atomic file writer: reports, golden files and checkpoints all go through :func:`atomic_write`.

Contract
--------
* ``atomic_write(path, data)`` with ``data`` bytes or str (UTF-8), or a callback ``writer(f)`` that fills a binary
  file object (``torch.save``, ``np.savez``...).
* The bytes go to a temporary file ``.<name>.tmp-XXXXXXXX.tmp`` in the destination's directory (created when
  missing), which is flushed, fsynced and renamed over the destination with ``os.replace``; the directory is
  fsynced after the rename (where the filesystem allows it).
* If the writer raises (or encoding fails), the temporary file is removed and the exception propagates; the
  destination keeps its old bytes. A process killed mid-write leaves at most a ``.<name>.tmp-*`` file beside an
  intact destination.
* The file gets ordinary permissions, ``0o666 & ~umask`` (``mkstemp`` alone would leave 0600).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Writer = Callable[[BinaryIO], object]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened / fsynced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes | bytearray | memoryview | str | Writer) -> Path:
    """Write ``data`` (bytes, str as UTF-8, or ``writer(f)`` filling a binary file) to ``path`` atomically.

    Returns ``path`` as a :class:`~pathlib.Path`. See the module docstring for the guarantees.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, 0o666 & ~_umask())  # reports, golden files and checkpoints are ordinary files
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return path


class ReportDirError(ValueError):
    """A report directory that cannot be used; the message names it and what to do."""


def prepare_report_dir(path: str | os.PathLike) -> Path:
    """Validate a report directory before a run: not empty, not a file, creatable and writable. Creates it (and its
    parents) and returns its absolute path; raises :class:`ReportDirError` with a one-line reason otherwise."""
    text = os.fspath(path)
    if not str(text).strip():
        raise ReportDirError("--report-dir is empty; give a directory, e.g. --report-dir reports")
    directory = Path(os.path.expanduser(text)).absolute()
    for parent in [directory, *directory.parents]:
        if parent.exists():
            if not parent.is_dir():
                what = "is a file" if parent == directory else f"lies under {parent}, which is a file"
                raise ReportDirError(f"--report-dir {text}: {what}; give a directory")
            break
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ReportDirError(f"--report-dir {text}: cannot write there ({exc.strerror or exc}); "
                             "give a writable directory") from None
    return directory
