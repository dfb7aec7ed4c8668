"""The router: decides Rust or Python per call, counts Rust failures, records every outcome.

`Router` owns the current `Snapshot` (swapped whole by the live-state poller or by an action of
this process), the per-operation seeds of the hash, the failure windows of the circuit breakers,
and the hand-over to the recorder. It does no I/O on the hot path: `decide` is a hash and a
comparison; `route` adds the environment's kill switch; `record` is one queue append. Writing a
breaker trip to the store is left to the poller thread (`harness.router.live`), so a failing
call never waits on the database; the operation goes to Python at once all the same.

The routed clients (`harness.router.orders`, `harness.router.bars`) are built on this.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic, perf_counter_ns
from typing import Any, Final

from harness.compare import describe_error
from harness.config import RolloutConfig
from harness.errors import BrokerError
from harness.operations import Impl
from harness.recorder import OutcomeRecord, Recorder, ShadowRecord, fit_outcome, fit_shadow
from harness.recorder.rows import OUTCOME_FIT, OUTCOME_WIDTH, fit_text
from harness.router.breaker import FailureWindows
from harness.router.decide import BUCKETS, op_seed
from harness.router.policy import env_allows_rust
from harness.router.snapshot import Snapshot, build_snapshot
from harness.store.state import LiveState, StoreState

__all__ = ["CallStats", "Router", "TripRequest"]

log = logging.getLogger("harness.router")

MAX_ERROR_TEXT: Final = 1000
"""Recorded error messages are cut to this many characters."""
MAX_KEY: Final = OUTCOME_WIDTH["routing_key"]
"""`outcomes.routing_key` is at most this long (its column width, 255)."""
MAX_TAG: Final = OUTCOME_WIDTH["custom_tag"]
"""`outcomes.custom_tag` is at most this long (its column width, 128)."""
_FIT_ORDER_ID: Final = OUTCOME_FIT["order_id"]
RUST: Final = Impl.RUST
PYTHON: Final = Impl.PYTHON
# Plain-str names (an enum's `.value` is a descriptor: slow on the hot path).
_SIDE_NAME: Final = {side: side.value for side in Impl}
_NOT_GIVEN: Final[Any] = object()
# The answers of `route_call`, made once (a tuple per call would cost an allocation).
_TO_RUST: Final = (RUST, True)
_TO_PYTHON: Final = (PYTHON, True)
_NOT_TARGETED: Final = (PYTHON, False)
_new_tuple: Final = tuple.__new__  # builds a NamedTuple row in C, as `_make` does, sans checks


@dataclass(frozen=True, slots=True)
class TripRequest:
    """A breaker this process opened, waiting to be written to the store by the poller."""

    op: str
    failures: int
    reason: str
    migration: str | None = None


@dataclass(frozen=True, slots=True)
class CallStats:
    """Routed calls of one operation since the harness opened."""

    calls: int
    to_rust: int
    served_by_rust: int
    fell_back: int
    errors: int


class Router:
    """Routing, fallback accounting and recording for one harness (see the module docstring).

    `secrets` are strings that must never reach the store (the API key, tokens): they are
    replaced by `***` in recorded error messages.
    """

    def __init__(
        self,
        rollout: RolloutConfig,
        *,
        recorder: Recorder,
        run_id: str,
        native_available: bool,
        secrets: tuple[str, ...] = (),
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.rollout = rollout
        self.recorder = recorder
        self.run_id = run_id
        self.native_available = native_available
        self._secrets = tuple(s for s in secrets if s)
        self._clock = clock
        self._seeds: dict[str, int] = {}
        self._windows: dict[str, FailureWindows] = {}
        self._swap = threading.Lock()
        self._live: StoreState | LiveState | None = None
        self._tripped: set[str] = set()
        self._unknown_logged: set[tuple[str, str]] = set()
        self.trip_requests: deque[TripRequest] = deque()
        self.wake = threading.Event()
        """Set when the poller has something to write (a trip); it then runs at once."""
        self._counts: dict[str, list[int]] = {}
        self._migration_of: dict[str, str] = {}
        self.snapshot: Snapshot = build_snapshot(rollout, None, native_available=native_available)
        self._index_operations()

    def _index_operations(self) -> None:
        """Seeds, counters, breaker windows and the migration of every configured operation
        (again after a registration)."""
        for name, migration in self.rollout.migrations.items():
            breaker = self.rollout.breaker_of(name)
            if name not in self._windows:
                self._windows[name] = FailureWindows(
                    breaker.failures, breaker.window_s, self._clock
                )
            for op in migration.operations:
                self._seeds.setdefault(op, op_seed(self.rollout.salt, op))
                self._counts.setdefault(op, [0, 0, 0, 0, 0])
                self._migration_of[op] = name

    def add_operation(self, op: str, migration: str) -> None:
        """Make `op` (of `migration`, already in `rollout.migrations`) routable: its seed,
        counters and breaker window, and a snapshot that knows it."""
        with self._swap:
            self._index_operations()
            self._rebuild()

    # ----- the hot path --------------------------------------------------------------------------

    def decide(self, op: str, key: str) -> Impl:
        """Rust when `crc32(salt|op|key) mod 10000 < percent * 100` at the current snapshot.

        No I/O, no lock: one attribute read, one dict read, one CRC. The environment's kill
        switch is not looked at here (see `route`).
        """
        limit = self.snapshot.thresholds[op]
        if limit <= 0.0:
            return PYTHON
        if limit >= BUCKETS:
            return RUST
        return RUST if zlib.crc32(key.encode(), self._seeds[op]) % BUCKETS < limit else PYTHON

    def route(self, op: str, key: str, attrs: Any = _NOT_GIVEN) -> Impl:
        """`route_call`'s side alone."""
        return self.route_call(op, key, attrs)[0]

    def route_call(self, op: str, key: str, attrs: Any = _NOT_GIVEN) -> tuple[Impl, bool]:
        """(side, targeted): Python when the stage's targets leave the call out (targeted
        False; `attrs` is its targeting attributes, a mapping or a function returning one,
        called only when the stage targets), or when `TOPSTEPX_USE_RUST` is false right now;
        else `decide` (written out here: one call frame fewer on every routed call)."""
        snap = self.snapshot
        targets = snap.targets[op]
        if targets is not None:
            found = attrs() if callable(attrs) else (None if attrs is _NOT_GIVEN else attrs)
            if not targets.admits(found):
                return _NOT_TARGETED
        if not env_allows_rust():
            return _TO_PYTHON
        limit = snap.thresholds[op]
        if limit <= 0.0:
            return _TO_PYTHON
        if limit >= BUCKETS:
            return _TO_RUST
        hashed = zlib.crc32(key.encode(), self._seeds[op]) % BUCKETS
        return _TO_RUST if hashed < limit else _TO_PYTHON

    def rust_enabled(self, op: str) -> bool:
        """Whether `op` may go to Rust at all now (snapshot and environment)."""
        return self.snapshot.thresholds[op] > 0.0 and env_allows_rust()

    def stage_of(self, op: str) -> str:
        """The current stage of `op`'s migration."""
        return self.snapshot.stages[op]

    # ----- live state ----------------------------------------------------------------------------

    def apply_state(
        self, live: StoreState | LiveState | None, written: frozenset[str] = frozenset()
    ) -> None:
        """Take a state read from the store; `written` are trips now committed there."""
        with self._swap:
            if live is not None:
                self._live = live
            self._tripped -= written
            self._rebuild()

    def _rebuild(self) -> None:
        snap = build_snapshot(
            self.rollout,
            self._live,
            native_available=self.native_available,
            tripped=self._tripped,
        )
        for view in snap.migrations.values():
            if not view.stage_known and (view.name, view.stage) not in self._unknown_logged:
                self._unknown_logged.add((view.name, view.stage))
                names = ", ".join(s.name for s in self.rollout.ladder(view.name))
                log.error(
                    "migration %s: stage %r is not in this process's ladder (%s): its "
                    "operations go to Python until the stage is one this process knows",
                    view.name,
                    view.stage,
                    names,
                )
        self.snapshot = snap

    @property
    def live_state(self) -> StoreState | LiveState | None:
        """The last state read from the store (None before the first read)."""
        return self._live

    # ----- failures and the circuit breaker ------------------------------------------------------

    def rust_failed(self, op: str, exc: BaseException) -> None:
        """Count a Rust failure of `op` (a fallback's cause); trip the breaker past the limit.

        A trip sends `op` to Python from the next call on, and asks the poller to write it to
        the store (event `breaker_trip`), where every process sees it.
        """
        self._counts[op][3] += 1
        migration = self._migration_of.get(op)
        windows = self._windows.get(migration or "")
        if windows is None:
            return
        count = windows.add(op)
        if count is None:
            return
        window = windows.window_s
        reason = f"{count} Rust failures within {window:g} s; last: {self.error_text(exc)}"
        log.error("circuit breaker of %s tripped: %s", op, reason)
        with self._swap:
            self._tripped.add(op)
            self._rebuild()
        self.trip_requests.append(TripRequest(op, count, reason, migration))
        self.wake.set()

    def breaker_reset(self, op: str) -> None:
        """Forget `op`'s failures and any trip of this process not yet written."""
        windows = self._windows.get(self._migration_of.get(op, ""))
        if windows is not None:
            windows.clear(op)
        with self._swap:
            self._tripped.discard(op)
            self._rebuild()

    # ----- recording -----------------------------------------------------------------------------

    def error_text(self, exc: BaseException) -> str:
        """`Class: message`, secrets replaced by `***`, cut to `MAX_ERROR_TEXT` characters."""
        return self.scrub(describe_error(exc))[:MAX_ERROR_TEXT]

    def scrub(self, text: str) -> str:
        """`text` with every secret this router knows replaced by `***`."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def record(
        self,
        op: str,
        ts_ns: int,
        started_ns: int,
        stage: str,
        routed: Impl,
        served: Impl,
        *,
        key: str | None,
        fell_back: bool = False,
        reason: str | None = None,
        error: BaseException | None = None,
        attempts: int | None = None,
        order_id: int | None = None,
        custom_tag: str | None = None,
        reconciled: bool = False,
        targeted: bool = True,
    ) -> None:
        """Hand one outcome to the recorder; `started_ns` is the `perf_counter_ns` at the start
        of the caller's wait (the latency recorded is up to now). `reconciled`: the outcome was
        settled by a look-up after an attempt of unknown outcome. `targeted` False: routed to
        Python because the stage's targets left the call out."""
        latency_us = (perf_counter_ns() - started_ns) / 1000.0
        counts = self._counts[op]
        counts[0] += 1
        if routed is RUST:
            counts[1] += 1
        if served is RUST:
            counts[2] += 1
        http_status = None
        error_class = error_message = None
        if error is not None:
            counts[4] += 1
            error_class = type(error).__name__[:64]
            error_message = self.error_text(error)
            if isinstance(error, BrokerError):
                http_status = error.http_status
                attempts = error.attempts if attempts is None else attempts
        if reason is not None:
            reason = self.scrub(reason)
        # The slow path (errors, fallbacks): every column made to fit what the store holds
        # (harness.recorder.rows), so that no value a caller or a broker sent can get the row
        # refused: an order id of 2**64, a tag with a NUL byte, an error text with a surrogate.
        self.recorder.record(
            fit_outcome(
                OutcomeRecord(
                    ts_ns,
                    self.run_id,
                    str(op),
                    stage,
                    _SIDE_NAME[routed],
                    _SIDE_NAME[served],
                    fell_back,
                    reason,
                    error is None,
                    error_class,
                    error_message,
                    latency_us,
                    attempts,
                    http_status,
                    order_id,
                    custom_tag if isinstance(custom_tag, str) else None,  # the client refused it
                    key,
                    reconciled,
                    self._migration_of.get(op),
                    targeted,
                )
            )
        )

    def record_ok(
        self,
        op: str,
        ts_ns: int,
        started_ns: int,
        stage: str,
        side: Impl,
        key: str,
        attempts: int | None = None,
        order_id: int | None = None,
        custom_tag: str | None = None,
        reconciled: bool = False,
        targeted: bool = True,
    ) -> None:
        """`record` for the common case, kept lean: served where routed, no fallback, no error
        (`order_id` and `custom_tag` are what the client accepted: an int and a str;
        `reconciled` what it said of the placement)."""
        latency_us = (perf_counter_ns() - started_ns) / 1000.0
        counts = self._counts[op]
        counts[0] += 1
        if side is RUST:
            counts[1] += 1
            counts[2] += 1
        name = _SIDE_NAME[side]
        # What the caller or the broker controls is checked against the store's columns (a
        # length and `str.isprintable` for the key and the tag, two comparisons for the order
        # id the broker sent: tens of ns); what fails is made to fit on the slow path. The rest
        # the router or its clients made (attempts: the client's own count). Written out, not
        # in a helper: a function call would double the cost.
        if key is custom_tag:  # a placement: its tag is its routing key, one check for both
            if len(key) > MAX_TAG or not key.isprintable():
                key, custom_tag = fit_text(key, MAX_KEY), fit_text(key, MAX_TAG)
        else:
            if len(key) > MAX_KEY or not key.isprintable():
                key = fit_text(key, MAX_KEY)
            if custom_tag is not None and (
                len(custom_tag) > MAX_TAG or not custom_tag.isprintable()
            ):
                custom_tag = fit_text(custom_tag, MAX_TAG)
        if order_id is not None and not (
            type(order_id) is int and -9223372036854775808 <= order_id <= 9223372036854775807
        ):
            order_id = _FIT_ORDER_ID(order_id)  # not an int64: NULL
        self.recorder.record(
            _new_tuple(
                OutcomeRecord,
                (
                    ts_ns,
                    self.run_id,
                    op,  # a plain str: the routed clients and registrations pass one
                    stage,
                    name,
                    name,
                    False,
                    None,
                    True,
                    None,
                    None,
                    latency_us,
                    attempts,
                    None,
                    order_id,
                    custom_tag,
                    key,
                    reconciled is True,
                    self._migration_of.get(op),
                    targeted is True,
                ),
            )
        )

    def record_shadow(self, row: ShadowRecord) -> None:
        """Hand one shadow comparison to the recorder (from any thread), every column made to
        fit what the store holds (a shadow is off the caller's path)."""
        self.recorder.record_shadow(fit_shadow(row))

    def migration_of(self, op: str) -> str | None:
        """The migration `op` belongs to in this process."""
        return self._migration_of.get(op)

    def call_stats(self) -> dict[str, CallStats]:
        """Routed calls per operation since the harness opened."""
        return {op: CallStats(*c) for op, c in self._counts.items()}
