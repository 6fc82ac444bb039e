"""Reviewed-findings files: the ``[[table]]`` entries of a TOML text, parsed and checked for unknown keys."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Sequence


def entries(text: str, origin: str, table: str, keys: Sequence[str],
            error: type[Exception] = ValueError) -> Iterator[tuple[str, dict]]:
    """``(where, entry)`` for each ``[[table]]`` of ``text``; ``where`` is ``"<origin>: [[table]] #i"`` for the
    caller's own messages. Invalid TOML, an entry that is not a table or a key outside ``keys`` raises ``error``
    naming the file, the entry and what to do."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{origin}: not valid TOML ({exc}); fix the file") from None
    for i, raw in enumerate(data.get(table, []), 1):
        where = f"{origin}: [[{table}]] #{i}"
        if not isinstance(raw, dict):
            raise error(f"{where} must be a table")
        unknown = sorted(set(raw) - set(keys))
        if unknown:
            raise error(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(keys)}")
        yield where, raw
