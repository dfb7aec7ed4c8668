"""The routing decision: a stable hash of (salt, operation, key) into 10,000 buckets.

    bucket = crc32(f"{salt}|{op}|" + key) mod 10000;  Rust when bucket < percent * 100

CRC-32 (zlib, in C) is stable across processes, machines and Python versions (unlike `hash()`)
and costs about 0.2 us for a short key (blake2b costs about 0.9 us); it is uniform enough for
this use: a 10% stage sends 10% +/- 0.5% of 100,000 sequential, numeric or random keys to Rust
(`tests/router/test_decide.py`). The CRC of the prefix `salt|op|` is computed once per
operation (`op_seed`) and continued over the key, so a decision hashes only the key's bytes.

Sticky and monotonic (DESIGN.md): a key's bucket never changes, so the same key always lands on
the same side at a given percentage, and raising the percentage only adds buckets to Rust.
This module does no I/O and holds no state; `harness.router.core.Router.decide` applies it to
the live snapshot.
"""

from __future__ import annotations

import zlib
from typing import Final

__all__ = ["BUCKETS", "bucket", "op_seed", "threshold"]

BUCKETS: Final = 10_000
"""Buckets of the hash; a percentage p sends buckets [0, p * 100) to Rust (0.01% steps)."""


def op_seed(salt: str, op: str) -> int:
    """CRC-32 of `salt|op|`: the running CRC every key of `op` is continued from (a built-in
    `Operation` or a registered operation's name: the same text, the same seed)."""
    return zlib.crc32(f"{salt}|{op!s}|".encode())


def bucket(salt: str, op: str, key: str) -> int:
    """The bucket (0..9999) of `key` for `op` under `salt`."""
    return zlib.crc32(key.encode(), op_seed(salt, op)) % BUCKETS


def threshold(percent: float) -> float:
    """Buckets below this go to Rust: `percent * 100` (0 sends none, 100 sends all)."""
    return float(percent) * 100.0
