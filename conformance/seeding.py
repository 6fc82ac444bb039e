"""Stable per-check seeds: the same master seed and check id give the same seed on every
machine, in any test order and with any number of xdist workers (no use of Python's ``hash``)."""

from __future__ import annotations

import hashlib

#: The master seed of a default run.
DEFAULT_MASTER_SEED = 20251123


def derive_seed(master_seed: int, *parts: str) -> int:
    """A 32-bit seed from the master seed and identifying strings (check id, backend, dtype)."""
    text = "\x1f".join([str(master_seed), *parts]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "little")
