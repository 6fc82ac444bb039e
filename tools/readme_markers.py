"""Generated README sections live between ``<!-- name:start -->`` and ``<!-- name:end -->`` markers."""

from __future__ import annotations

from pathlib import Path

from conformance.harness.files import atomic_write


def replace_between(readme: Path, start: str, end: str, body: str) -> bool:
    """Replace the text between ``start`` and ``end`` with ``body``; returns True when the file changed."""
    text = readme.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{readme}: markers {start} / {end} not found")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{body}\n{end}{tail}"
    if new != text:
        atomic_write(readme, new)
        return True
    return False
