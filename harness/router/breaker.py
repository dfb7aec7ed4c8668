"""Per-operation failure windows: when Rust fails too often, its circuit breaker opens.

`failures` Rust failures of one operation within `window_s` seconds (a sliding window, not
fixed buckets) trip it; the router then writes the trip to the store
(`harness.store.state.trip_breaker`: an event, and every process sees the breaker open) and
sends the operation to Python until a person resets it. Only the counting lives here: pure,
with an injectable clock, safe to call from several threads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["FailureWindows"]


class FailureWindows:
    """Sliding windows of Rust failure times, one per operation."""

    def __init__(
        self, failures: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError(f"failures={failures!r}: must be >= 1")
        self.failures = failures
        self.window_s = float(window_s)
        self._clock = clock
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, op: str) -> int | None:
        """Count one failure of `op` now; the count in the window when it reaches `failures`
        (the breaker should trip), else None. The window is emptied when it trips."""
        now = self._clock()
        with self._lock:
            times = self._times.setdefault(op, deque())
            times.append(now)
            horizon = now - self.window_s
            while times and times[0] < horizon:
                times.popleft()
            count = len(times)
            if count >= self.failures:
                times.clear()
                return count
        return None

    def count(self, op: str) -> int:
        """Failures of `op` within the window now."""
        horizon = self._clock() - self.window_s
        with self._lock:
            return sum(1 for t in self._times.get(op, ()) if t >= horizon)

    def clear(self, op: str) -> None:
        """Forget `op`'s failures (a breaker reset starts a fresh window)."""
        with self._lock:
            self._times.pop(op, None)
