"""The workload's pace: seeded pauses between round trips, and a request budget that keeps the
workload under the gateway's documented rate limits.

The real gateway allows 200 requests per 60 s (50 per 30 s for `History/retrieveBars`) and
answers HTTP 429 past that (`docs/projectx-api.md`, `harness.projectx.RATE_LIMIT`). A careful
bot stays under the limits rather than leaning on retries: a 429 retried after `Retry-After`
would show up as latency of the routed call and distort exactly the figures the gate judges. So
the workload takes a request from a sliding-window `RequestBudget` before each call it makes,
keeping `HEADROOM` of each limit free for the requests the clients make on their own (logins,
contract look-ups, reconciliation after an ambiguous answer).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Final

__all__ = ["HEADROOM", "RequestBudget", "interruptible_sleep"]

HEADROOM: Final = 0.10
"""Share of each documented limit the workload leaves to the clients' own requests."""


class RequestBudget:
    """At most `limit` requests in any `window_s` seconds (a sliding window of start times).

    `take()` waits until a request fits, then counts it; `count()` counts one without waiting
    (for the last-resort requests that must not wait: flattening, the final sweep). Waiters are
    served in order. `limit=None` disables the budget (`workload.rate_limit=false`).
    """

    def __init__(
        self,
        limit: int | None,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"limit={limit!r}: must be >= 1 (or None for no budget)")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()
        self.waited_s = 0.0
        """Total time spent waiting for the budget (shown in the summary)."""

    def _expire(self, now: float) -> None:
        starts = self._starts
        while starts and starts[0] <= now - self.window_s:
            starts.popleft()

    def count(self) -> None:
        """Count a request sent without waiting."""
        if self.limit is not None:
            now = self._clock()
            self._expire(now)
            self._starts.append(now)

    async def take(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        if self.limit is None:
            return
        async with self._lock:
            while True:
                now = self._clock()
                self._expire(now)
                if len(self._starts) < self.limit:
                    self._starts.append(now)
                    return
                wait = self._starts[0] + self.window_s - now
                self.waited_s += max(wait, 0.0)
                await asyncio.sleep(max(wait, 0.001))


async def interruptible_sleep(seconds: float, stop: asyncio.Event) -> bool:
    """Sleep `seconds` unless `stop` is set first; True when it slept the whole time."""
    if seconds <= 0:
        return not stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return True
    return False
