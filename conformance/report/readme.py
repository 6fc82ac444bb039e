"""Generated blocks of the README: a table between a begin and an end marker, replaced in place."""

from __future__ import annotations


def replace_block(text: str, table: str, begin: str, end: str, error: type[Exception] = ValueError) -> str:
    """``text`` with the block between ``begin`` and ``end`` replaced by ``table``; ``error`` names both markers
    when they are not there exactly once each, in order."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise error(f"the README must hold exactly one {begin} ... {end} block (in that order) for the findings "
                    "table; add the two markers where the table goes")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}\n{end}{tail}"
