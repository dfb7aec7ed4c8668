"""The router: every migrated call goes to Rust or Python by a sticky hash, falls back safely,
may be shadowed, and is recorded.

Modules, pure logic first and I/O at the edge:
- `decide`: the hash and the threshold (`bucket = crc32(salt|op|key) mod 10000`);
- `policy`: what a Rust failure leads to, and the `TOPSTEPX_USE_RUST` kill switch;
- `breaker`: sliding windows of Rust failures per operation;
- `snapshot`: the immutable view the hot path reads (stage, thresholds, kill, breakers);
- `core`: `Router`, deciding, counting failures, recording outcomes;
- `live`: the thread that follows the store's rollout state;
- `orders`, `bars`: the routed order client and aggregation; `shadow`: shadow runs.

Users open a harness (`harness.open()`) rather than building these by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.router.core import CallStats, Router
    from harness.router.decide import BUCKETS, bucket, op_seed
    from harness.router.policy import RUST_ENV, env_allows_rust
    from harness.router.snapshot import Snapshot, build_snapshot

__all__ = [
    "BUCKETS",
    "RUST_ENV",
    "CallStats",
    "Router",
    "Snapshot",
    "bucket",
    "build_snapshot",
    "env_allows_rust",
    "op_seed",
]

_HOMES = {
    "BUCKETS": "decide",
    "bucket": "decide",
    "op_seed": "decide",
    "RUST_ENV": "policy",
    "env_allows_rust": "policy",
    "CallStats": "core",
    "Router": "core",
    "Snapshot": "snapshot",
    "build_snapshot": "snapshot",
}


def __getattr__(name: str) -> Any:
    """The names above, imported on first use: a shadow worker (`harness.router.worker`)
    imports this package without loading SQL, config or the router."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'harness.router' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"harness.router.{home}"), name)
