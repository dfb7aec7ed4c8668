"""Shared helpers of the order-client suite (constants, simulator counters, ledger reads)."""

from __future__ import annotations

import dataclasses

from harness.orders import ClientSettings
from harness.sim import Simulator

IMPLS = ("python", "rust")
ACCOUNT = 1001
MNQ = "CON.F.US.MNQ.Z26"
SECRET_KEY = "sim-key-7f3a9c-do-not-print"


def with_settings(settings: ClientSettings, **changes: object) -> ClientSettings:
    """A copy of `settings` with some fields changed."""
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def requests(sim: Simulator, path: str) -> int:
    """How many requests the simulator received on `path` since the last reset."""
    return int(sim.stats()["requests"].get(path, 0))


def orders_tagged(sim: Simulator, tag: str) -> list[dict]:
    """Ledger rows carrying `tag`."""
    return [o for o in sim.ledger() if o["customTag"] == tag]
