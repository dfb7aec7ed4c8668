"""Following the store's rollout state: a background thread, one cheap query per `refresh_s`.

The poller reads `harness.store.state.read_states` (the global row; every migration's row and
the breakers only when its version moved) every `rollout.refresh_s` seconds and hands it to the
router, which swaps its snapshot whole. A promotion, rollback, kill or breaker change made by
another process is therefore followed within about `refresh_s` (0.5 s by default), without a
restart and without a query per call. The poller also writes the breaker trips the router asks
for (so a failing call never waits on the database), then reads the state back at once.

A database that cannot be reached is logged once per outage; the last snapshot stays in force
and the trips wait in order until they can be written.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from harness.errors import HarnessError
from harness.router.core import Router, TripRequest
from harness.store.db import error_line
from harness.store.state import StoreState, read_states, trip_breaker

__all__ = ["LiveStatePoller"]

log = logging.getLogger("harness.router")


class LiveStatePoller:
    """The thread that keeps a router's snapshot in step with the store."""

    def __init__(self, engine: Engine, router: Router, *, refresh_s: float) -> None:
        self._engine = engine
        self._router = router
        self._refresh_s = refresh_s
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one refresh at a time (the thread, or an action)
        self._thread: threading.Thread | None = None
        self._failing = False
        self.polls = 0

    def start(self) -> None:
        """Start polling (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="harness-live-state", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; trips still unwritten are written once more first."""
        self._stop.set()
        self._router.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.refresh()

    def refresh(self) -> bool:
        """Write pending trips, read the state, swap the snapshot now; False if the store failed."""
        with self._lock:
            try:
                written = self._write_trips()
                known = self._router.live_state
                with self._engine.connect() as conn:
                    state = read_states(conn, known if isinstance(known, StoreState) else None)
            except (SQLAlchemyError, HarnessError) as exc:
                if not self._failing:
                    log.warning(
                        "live state: store unreadable, keeping the last state: %s", error_line(exc)
                    )
                self._failing = True
                return False
            if self._failing:
                log.warning("live state: the store is back")
            self._failing = False
            self.polls += 1
            self._router.apply_state(state, written)
            return True

    def _write_trips(self) -> frozenset[str]:
        requests = self._router.trip_requests
        written: set[str] = set()
        while requests:
            request: TripRequest = requests[0]
            trip_breaker(
                self._engine,
                str(request.op),
                failures=request.failures,
                reason=request.reason,
                migration=request.migration,
                run_id=self._router.run_id,
            )
            requests.popleft()
            written.add(request.op)
        return frozenset(written)

    def _run(self) -> None:
        wake = self._router.wake
        while not self._stop.is_set():
            wake.wait(self._refresh_s)
            wake.clear()
            if self._stop.is_set():
                return
            try:
                self.refresh()
            except Exception:  # the poller must never die
                log.exception("live state: refresh failed")
