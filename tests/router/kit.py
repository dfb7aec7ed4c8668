"""Shared helpers of the router suite: constants, reading the store, order-client wrappers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text

from harness.orders import OrderClient

ACCOUNT = 1001
MNQ = "CON.F.US.MNQ.Z26"
EXPIRED_MNQ = "CON.F.US.MNQ.U26"
SIM_USER = "router-user"
SECRET_KEY = "router-key-5d1e-do-not-print"
MINUTE = 60_000_000_000


def rows(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a query on the store at `url` (a separate engine, as another reader would)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def outcomes(url: str) -> list[dict[str, Any]]:
    """Every outcome row, in call order."""
    return rows(url, "SELECT * FROM outcomes ORDER BY ts_ns")


def requests(sim: Any, path: str) -> int:
    """Requests the simulator received on `path` since its last reset."""
    return int(sim.stats()["requests"].get(path, 0))


def minute_bars(n: int, seed: int = 1, start_minute: int = 29_000_000) -> dict[str, np.ndarray]:
    """`n` valid 1-minute bars on the tick grid from `start_minute` (minutes since the epoch)."""
    rng = np.random.default_rng(seed)
    t = (start_minute + np.arange(n, dtype=np.int64)) * MINUTE
    o = (4000 + rng.integers(-400, 400, n)) * 0.25
    c = o + rng.integers(-8, 9, n) * 0.25
    return {
        "t": t,
        "o": o,
        "h": np.maximum(o, c) + rng.integers(0, 5, n) * 0.25,
        "l": np.minimum(o, c) - rng.integers(0, 5, n) * 0.25,
        "c": c,
        "v": rng.integers(0, 2000, n).astype(np.int64),
    }


class Flaky:
    """Wraps a real order client; the named mutations fail on purpose.

    `fail[name]()` makes the exception to raise. With `after=True` the real call is made first
    (the broker did it, the answer is "lost"); with `after=False` nothing is sent. `times`
    limits how many calls fail (None: all). Everything else is the real client's.
    """

    def __init__(
        self,
        inner: OrderClient,
        fail: dict[str, Callable[[], BaseException]],
        *,
        after: bool,
        times: int | None = None,
    ) -> None:
        self.inner = inner
        self.fail = fail
        self.after = after
        self.times = times
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        maker = self.fail.get(name)
        failing = maker is not None and (self.times is None or self.times > 0)
        if not failing:
            return await getattr(self.inner, name)(*args, **kwargs)
        if self.times is not None:
            self.times -= 1
        if self.after:
            await getattr(self.inner, name)(*args, **kwargs)
        assert maker is not None
        raise maker()

    async def place_order(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("place_order", *args, **kwargs)

    async def place_market_order(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("place_market_order", *args, **kwargs)

    async def modify_order(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("modify_order", *args, **kwargs)

    async def cancel_order(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("cancel_order", *args, **kwargs)

    async def aclose(self) -> None:
        await self.inner.aclose()
