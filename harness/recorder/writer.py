"""The recorder's writer: every queued row reaches SQL, or is counted as lost.

The caller pays one `deque.append` (`record`, `record_shadow`); a writer thread takes what is
queued `flush_interval_s` after the first row of a batch arrived (or as soon as `batch_size`
rows wait), gives each row its id,
and inserts the batch with SQLAlchemy Core in one transaction (on SQLite `BEGIN IMMEDIATE`, so
several processes on one file wait their turn, `write_transaction`): the outcomes, the shadow
rows, this recorder's own dirty mark on each minute and hour written (from which the writers
later recompute those buckets' rollups, `harness.store.rollups`), and the run's
`rows_recorded` / `rows_dropped` (so a running run shows its live count).

Nothing is doubled, and nothing is lost without being counted:
- a batch is written whole or not at all, on ids fixed before the first attempt, and a row
  already there is skipped (SQLite `ON CONFLICT DO NOTHING`; PostgreSQL `COPY`, redone as
  `INSERT ... ON CONFLICT DO NOTHING` when the key says part of it is in already), so a batch
  whose commit was not acknowledged, or a replayed spill file, inserts nothing twice;
- a failed write is one of two things (`classify`). The database is unavailable (it cannot be
  reached, is locked, out of disk, read-only, refuses this user): the rows wait in memory in
  order; past `buffer_rows` the oldest go to the spill file (`harness.recorder.spill`), and
  when even that cannot be written (a full disk) they stay in memory up to twice that bound,
  the oldest beyond it lost and counted. Or the database refused the data itself (a value out
  of range, too long, a NUL byte, a broken constraint, a value the driver cannot send): the
  batch is written again with every row made to fit (`harness.recorder.rows`); if it is still
  refused it is halved until each row that cannot be written stands alone, the rest is
  written, and that row is dropped, counted, logged and written down as a `rows_dropped`
  event (the row's text, cut). A refused row never holds up the rows behind it;
- a spill file left by a process that died is replayed by the next recorder opened on the
  same spill folder; a line it cannot read is counted, and the file is kept aside;
- past `queue_bound` queued rows (a writer that cannot keep up), `record` itself spills.

The writer sleeps until there is work, never on a short poll: with nothing queued it waits for
the first row (`record` wakes it then, and only then: one wake-up per batch, not per row) or the
next rollup compaction (`COMPACT_EVERY_S`); with rows queued it waits for the batch's deadline,
a full batch, `flush` or `close`. `cycles` counts its passes (tests hold it to this).

Captures (`record_capture`, `harness.router.capture`) are a sample, not evidence: the writer
encodes each (off the caller's path), keeps it if its payload fits `max_bytes` (else counts it
in `captures_oversize`) and inserts the captures of a cycle in their own transaction after the
rows, deleting its migration's captures older than their retention. While the database is
unavailable they wait in memory, at most `CAPTURE_BOUND`; beyond that, and at a close the
database does not take, they are counted in `captures_dropped`, never spilled to disk.

`stats().dropped` counts this recorder's rows that will never reach the store; it must stay 0.
`close()` (also called at exit) flushes, and spills what the database did not take for the
next recorder; it never raises. `written + dropped + in_spill` then equals the rows handed in.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine

from harness.alerts import Alert, listening, notify
from harness.config import RecorderConfig
from harness.errors import InvalidInputError
from harness.recorder.rows import (
    CaptureRecord,
    OutcomeRecord,
    ShadowRecord,
    fit_outcome_values,
    fit_shadow_values,
    fit_text,
)
from harness.recorder.spill import OUTCOME, SHADOW, SPILL_PREFIX, SpillFile, encode
from harness.recorder.sql import BulkInsert, Failure, classify
from harness.sketch import FINITE
from harness.store.db import error_line, write_transaction
from harness.store.models import Capture, Outcome
from harness.store.rollups import compact, dirty_marks, mark_dirty
from harness.store.runs import progress
from harness.store.state import EventKind, write_event

__all__ = ["Recorder", "RecorderStats", "with_config"]

log = logging.getLogger("harness.recorder")
_isfinite = math.isfinite  # bound once: `record` is on the caller's path

COMPACT_EVERY_S: Final = 5.0
"""How often the writer recomputes the rollups of minutes that have ended (rollups.py)."""
WRITER_STOP_S: Final = 60.0
"""How long `close` waits for the writer's current database call to end."""
MEMORY_FACTOR: Final = 2
"""Rows kept in memory when the spill file cannot be written: this many times `buffer_rows`."""
LOGGED_REFUSALS: Final = 10
"""Refused rows logged one by one; later ones are counted (and summed up at close)."""
ROW_TEXT: Final = 2000
"""A dropped row's text in its `rows_dropped` event is cut to this many characters."""
CAPTURE_BOUND: Final = 1024
"""Captures waiting at most (queued, or held while the database is unavailable)."""
_OUTCOME_COLUMNS: Final = ("id", *OutcomeRecord._fields)
_SHADOW_COLUMNS: Final = ("id", *ShadowRecord._fields)


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """The recorder's figures; `dropped` and `earlier_lost` must stay 0.

    Rows: `enqueued` handed to `record`/`record_shadow`; `written` committed (replays of its
    own spill file included); `pending` queued or waiting in memory; `spilled` ever written to
    its spill file; `replayed` of those later committed; `in_spill` in its spill file now (not
    in the store yet, not lost: the next recorder on the folder replays them), in
    `spill_file`; `dropped` that will never reach the store (refused by the database, or
    neither writable nor spillable), `refused` of those the ones the database refused;
    `max_queue_depth` the most ever queued at once; `overflowed` spilled by `record` itself
    (the queue at its bound). Once closed: `enqueued == written + dropped + in_spill`.

    Spill files left by earlier processes: `earlier_replayed` rows committed, `earlier_lost`
    rows that could not be (unreadable lines, refused rows), `damaged_files` the files kept
    aside because a line could not be read.

    Captures (a sample, not rows: see the module): `captures_written` committed,
    `captures_oversize` not kept because their payload exceeded `max_bytes`,
    `captures_dropped` not kept otherwise (the bound reached, the database refused or was
    down at close, the payload could not be made).
    """

    enqueued: int
    written: int
    pending: int
    spilled: int
    replayed: int
    dropped: int
    max_queue_depth: int
    overflowed: int
    db_ok: bool
    last_error: str | None
    refused: int
    in_spill: int
    spill_file: str | None
    earlier_replayed: int
    earlier_lost: int
    damaged_files: tuple[str, ...]
    captures_written: int = 0
    captures_oversize: int = 0
    captures_dropped: int = 0


class _Status(Enum):
    WRITTEN = "written"
    DOWN = "down"
    REFUSED = "refused"


@dataclass(slots=True)
class _Batch:
    """Rows taken together (each with its id first), written in one transaction."""

    outcomes: list[tuple[Any, ...]]
    shadows: list[tuple[Any, ...]]

    def __len__(self) -> int:
        return len(self.outcomes) + len(self.shadows)

    def halves(self) -> list[_Batch]:
        """Two smaller batches holding these rows (outcomes and shadows apart first)."""
        if self.outcomes and self.shadows:
            return [_Batch(self.outcomes, []), _Batch([], self.shadows)]
        rows, shadow = (self.outcomes, False) if self.outcomes else (self.shadows, True)
        cut = len(rows) // 2
        parts = [rows[:cut], rows[cut:]]
        return [_Batch([], p) if shadow else _Batch(p, []) for p in parts if p]

    def fitted(self) -> _Batch:
        """These rows with every column made to fit (a row too malformed to fit, e.g. of the
        wrong length, is kept as it is: it will be isolated)."""
        return _Batch(
            [_fit(row, fit_outcome_values) for row in self.outcomes],
            [_fit(row, fit_shadow_values) for row in self.shadows],
        )

    def lines(self) -> Iterator[bytes]:
        """The spill file's lines of these rows (fitted where a value is not JSON)."""
        for kind, rows in ((OUTCOME, self.outcomes), (SHADOW, self.shadows)):
            for row in rows:
                yield _line(kind, row)


def _fit(row: tuple[Any, ...], fit: Any) -> tuple[Any, ...]:
    try:
        return (row[0], *fit(row[1:]))
    except (ValueError, TypeError, IndexError):
        return row


def _line(kind: str, row: tuple[Any, ...]) -> bytes:
    try:
        return encode(kind, row)
    except TypeError:
        fit = fit_outcome_values if kind == OUTCOME else fit_shadow_values
        return encode(kind, _fit(row, fit))  # still TypeError: the caller counts the row


def _row_text(kind: str, row: tuple[Any, ...]) -> str:
    """A dropped row as one line of text for its event: `column=value, ...`, cut."""
    columns = _OUTCOME_COLUMNS if kind == OUTCOME else _SHADOW_COLUMNS
    pairs = ", ".join(f"{c}={fit_text(repr(v), 300)}" for c, v in zip(columns, row, strict=False))
    return fit_text(pairs, ROW_TEXT)


_live: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for recorder in list(_live):
        with contextlib.suppress(Exception):
            recorder.close(timeout=10.0)


class Recorder:
    """Records outcomes and shadow comparisons of one run; see the module docstring.

    `name` names the spill file; `run_id`, when given, is the run row whose `rows_recorded` and
    `rows_dropped` the writer keeps current, and which its `rows_dropped` events name.
    """

    def __init__(
        self,
        engine: Engine,
        config: RecorderConfig,
        *,
        spill_dir: str | Path,
        name: str,
        run_id: str | None = None,
    ) -> None:
        self._engine = engine
        self._config = config
        self._name = name
        self._run_id = run_id
        self._queue: deque[tuple[Any, ...]] = deque()
        self._shadow_queue: deque[tuple[Any, ...]] = deque()
        self._capture_queue: deque[CaptureRecord] = deque()
        self._capture_held: list[dict[str, Any]] = []  # encoded, waiting for the database
        self._capture_retention: dict[str, int] = {}
        self._captures = {"written": 0, "oversize": 0, "dropped": 0}
        self._bound = config.queue_bound
        self._batch_size = config.batch_size
        self._wake = threading.Event()
        # True while the writer sleeps with nothing queued: the next row must wake it.
        self._awaiting_rows = False
        self.cycles = 0
        """The writer's passes so far (each takes what is queued and writes it)."""
        self._idle = threading.Condition()
        self._closing = False
        self._closed = False
        self._pending: deque[_Batch] = deque()  # taken, not yet committed, oldest first
        self._pending_rows = 0
        self._spill_dir = Path(spill_dir)
        self._spill = SpillFile(self._spill_dir / f"{SPILL_PREFIX}{name}.jsonl")
        self._spill_lock = threading.RLock()  # the caller's overflow and the writer share it
        self._writer_lock = threading.Lock()  # held by the writer around each cycle
        # Counters. The writer's (and close's, which holds the writer's lock):
        self._enqueued = 0
        self._written = 0
        self._replayed = 0
        self._dropped = 0
        self._refused = 0
        self._earlier_replayed = 0
        self._earlier_lost = 0
        self._damaged: list[str] = []
        self._max_depth = 0
        # ... the caller's (`record` overflowing the queue):
        self._overflowed = 0
        # ... and those kept under the spill lock (both threads spill):
        self._spilled = 0
        self._spill_rows = 0
        self._spill_dropped = 0
        self._spill_failing = False
        self._db_ok = True
        self._last_error: str | None = None
        self._refusal: str | None = None
        self._logged_refusals = 0
        self._cycle_error: str | None = None
        self._notices: deque[tuple[str, str | None]] = deque()  # rows_dropped events to write
        metadata = Outcome.metadata
        self._outcome_insert = BulkInsert(engine, metadata.tables["outcomes"], _OUTCOME_COLUMNS)
        self._shadow_insert = BulkInsert(
            engine, metadata.tables["shadow_comparisons"], _SHADOW_COLUMNS
        )
        self._mark_dirty = mark_dirty(engine)
        # This recorder's own rollup marks (see rollups.py): no other process updates them.
        self._writer_key = uuid.uuid4().hex
        self._progress = None if run_id is None else progress(run_id)
        self._compacted_at = 0.0
        self._thread = threading.Thread(
            target=self._run, name=f"harness-recorder-{name[:8]}", daemon=True
        )
        _live.add(self)
        self._thread.start()

    # ----- the caller's side (hot path) ----------------------------------------------------------

    def record(self, row: OutcomeRecord) -> None:
        """Queue one outcome; never blocks on the database, never refuses a row, but one whose
        `latency_us` is not a finite number: `InvalidInputError` naming it, nothing queued (it
        could not be folded into its minute's latency sketch; the router's rows always are)."""
        if not _isfinite(row.latency_us):
            raise InvalidInputError("latency_us", row.latency_us, FINITE)
        queue = self._queue
        queue.append(row)
        depth = len(queue)
        if depth >= self._batch_size:
            self._on_depth(depth)
        elif self._awaiting_rows:
            self._first_row()

    def record_shadow(self, row: ShadowRecord) -> None:
        """Queue one shadow comparison (same guarantees as `record`; each latency None or a
        finite number)."""
        for name in ("primary_latency_us", "shadow_latency_us"):
            value = getattr(row, name)
            if value is not None and not _isfinite(value):
                raise InvalidInputError(name, value, FINITE)
        queue = self._shadow_queue
        queue.append(row)
        if len(queue) == self._batch_size:
            self._wake.set()
        elif self._awaiting_rows:
            self._first_row()

    def record_capture(self, row: CaptureRecord) -> None:
        """Queue one capture (see the module: encoded by the writer, never on this thread);
        with `CAPTURE_BOUND` already waiting it is counted as dropped instead."""
        queue = self._capture_queue
        if len(queue) + len(self._capture_held) >= CAPTURE_BOUND:
            self._captures["dropped"] += 1
            return
        queue.append(row)
        if self._awaiting_rows:
            self._first_row()

    def _captures_waiting(self) -> bool:
        return bool(self._capture_queue or self._capture_held)

    def _write_captures(self) -> None:
        """Encode the queued captures and insert those that fit, with the expired ones of
        their migrations deleted, in one transaction (the writer's thread)."""
        from sqlalchemy import delete, insert

        queue, held = self._capture_queue, self._capture_held
        with contextlib.suppress(IndexError):
            for _ in range(len(queue)):
                row = queue.popleft()
                try:
                    payload = row.encode()
                except Exception as exc:  # a capture never stops the writer
                    self._captures["dropped"] += 1
                    log.warning("recorder: a capture of %s could not be encoded: %s", row.op, exc)
                    continue
                if payload is None:
                    continue
                if len(payload) > row.max_bytes:
                    self._captures["oversize"] += 1
                    continue
                self._capture_retention[row.migration] = row.retention_ns
                held.append({
                    "id": uuid.uuid4().hex, "ts_ns": row.ts_ns, "run_id": row.run_id,
                    "migration": row.migration, "op": row.op, "served": row.served,
                    "build_id": row.build_id, "format": row.format, "payload": payload,
                    "size": len(payload),
                })  # fmt: skip
        if not held:
            return
        now_ns = time.time_ns()
        migrations = {r["migration"] for r in held}
        try:
            with write_transaction(self._engine) as conn:
                for name in sorted(migrations):
                    cutoff = now_ns - self._capture_retention.get(name, 0)
                    conn.execute(
                        delete(Capture).where(Capture.migration == name, Capture.ts_ns < cutoff)
                    )
                conn.execute(insert(Capture), held)
        except Exception as exc:
            if classify(exc) is Failure.REFUSED:
                self._captures["dropped"] += len(held)
                held.clear()
                log.warning("recorder: the database refused captures: %s", error_line(exc))
                return
            # Unavailable: they wait (bounded by record_capture); the writer retries.
            if self._db_ok:
                log.warning("recorder: database unavailable, captures wait: %s", error_line(exc))
            self._db_ok = False
            self._last_error = error_line(exc)
            return
        self._database_up()
        self._captures["written"] += len(held)
        held.clear()

    def _first_row(self) -> None:
        """Wake the writer sleeping on an empty queue: its batch's deadline starts now."""
        self._awaiting_rows = False
        self._wake.set()

    def _on_depth(self, depth: int) -> None:
        if depth > self._max_depth:
            self._max_depth = depth
        if depth == self._batch_size or depth > self._bound:
            # Once, when the batch fills (the event stays set until the writer takes the
            # queue): setting it for every row past the size cost each caller a lock.
            self._wake.set()
        if depth > self._bound:
            # The writer cannot keep up: move the overflow to disk ourselves, in order.
            rows = []
            with contextlib.suppress(IndexError):
                for _ in range(depth - self._bound // 2):
                    rows.append(self._queue.popleft())
            if rows:
                self._overflowed += len(rows)
                batch = self._batch(rows, [])
                if not self._spill_batches([batch]):
                    with self._spill_lock:
                        self._spill_dropped += len(rows)
                    log.error(
                        "recorder: %d rows LOST: the queue is past its bound and the spill "
                        "file cannot be written",
                        len(rows),
                    )

    # ----- flushing and closing ------------------------------------------------------------------

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every row queued before this call is committed (or counted as dropped,
        its `rows_dropped` event written while the database takes it); False on time-out (the
        database is down: the rows still wait, or are spilled)."""
        target = self._enqueued_so_far()
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self._written + self._dropped_total() < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(0.05 if remaining is None else min(remaining, 0.05))
                self._wake.set()
            # Captures too, while the database takes them (else they wait, and are counted).
            while self._captures_waiting() and self._db_ok:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(0.05 if remaining is None else min(remaining, 0.05))
                self._wake.set()
        # The counts are reached mid-cycle: let that cycle end, so that what it writes after
        # the rows (a refused row's `rows_dropped` event) is in the store too.
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._writer_lock.acquire(timeout=-1 if remaining is None else remaining):
            return False
        self._writer_lock.release()
        return True

    def close(self, timeout: float = 30.0) -> RecorderStats:
        """Flush (waiting up to `timeout` s for the database), stop the writer, and spill what
        the database did not take; rows that cannot be spilled either are counted as dropped.
        Never raises."""
        if self._closed:
            return self.stats()
        try:
            self.flush(timeout)
        except Exception:  # pragma: no cover - flush only waits
            log.exception("recorder: flush at close failed")
        self._closing = True
        self._wake.set()
        # The writer ends after its current cycle; a database call is bounded (SQLite's busy
        # time-out, PostgreSQL's connect time-out), so this wait is too.
        self._thread.join(timeout=WRITER_STOP_S)
        self._closed = True
        try:
            if self._thread.is_alive() or not self._writer_lock.acquire(timeout=WRITER_STOP_S):
                lost = self._pending_rows + len(self._queue) + len(self._shadow_queue)
                self._dropped += lost
                log.error("recorder: writer stuck at close; %d rows it held are LOST", lost)
                return self.stats()
            try:
                self._close_held()
            finally:
                self._writer_lock.release()
        except Exception:
            log.exception("recorder: close failed")
        finally:
            _live.discard(self)
        self._log_losses()
        return self.stats()

    def _close_held(self) -> None:
        leftover = self._take()
        if leftover is not None:
            self._pending.append(leftover)
            self._pending_rows += len(leftover)
        if self._pending:
            batches, rows = list(self._pending), self._pending_rows
            self._pending.clear()
            self._pending_rows = 0
            if not self._spill_batches(batches):
                self._dropped += rows
                self._notice(
                    f"{rows} rows lost at close: the database was unavailable "
                    f"({self._last_error}) and the spill file could not be written",
                    None,
                )
                log.error(
                    "recorder: %d rows LOST at close: the database is unavailable and the "
                    "spill file %s cannot be written",
                    rows,
                    self._spill.path,
                )
        if self._db_ok:
            if self._captures_waiting():
                self._write_captures()
            self._write_notices()
        lost = len(self._capture_queue) + len(self._capture_held)
        if lost:
            self._captures["dropped"] += lost
            self._capture_queue.clear()
            self._capture_held.clear()
            log.warning("recorder: %d captures not kept at close (database unavailable)", lost)
        with self._spill_lock:
            if self._spill_rows == 0 and self._spill.held:
                self._spill.remove()  # made, then nothing could be written to it (a full disk)
            else:
                self._spill.close()

    def _log_losses(self) -> None:
        stats = self.stats()
        if stats.refused > LOGGED_REFUSALS:
            log.error("recorder: %d rows in all were refused by the database", stats.refused)
        if stats.in_spill:
            log.warning(
                "recorder: %d rows wait in %s for the next recorder on this folder",
                stats.in_spill,
                stats.spill_file,
            )

    def stats(self) -> RecorderStats:
        """The recorder's figures now (see `RecorderStats`)."""
        in_spill = self._spill_rows
        return RecorderStats(
            enqueued=self._enqueued_so_far(),
            written=self._written,
            pending=len(self._queue) + len(self._shadow_queue) + self._pending_rows,
            spilled=self._spilled,
            replayed=self._replayed,
            dropped=self._dropped_total(),
            max_queue_depth=max(self._max_depth, len(self._queue)),
            overflowed=self._overflowed,
            db_ok=self._db_ok,
            last_error=self._last_error,
            refused=self._refused,
            in_spill=in_spill,
            spill_file=str(self._spill.path) if in_spill else None,
            earlier_replayed=self._earlier_replayed,
            earlier_lost=self._earlier_lost,
            damaged_files=tuple(self._damaged),
            captures_written=self._captures["written"],
            captures_oversize=self._captures["oversize"],
            captures_dropped=self._captures["dropped"],
        )

    def _enqueued_so_far(self) -> int:
        # Rows handed in = rows still queued + rows taken by the writer or spilled by record.
        return self._enqueued + self._overflowed + len(self._queue) + len(self._shadow_queue)

    def _dropped_total(self) -> int:
        return self._dropped + self._spill_dropped

    # ----- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._replay_orphans()
        except Exception:
            log.exception("recorder: replaying earlier spill files failed")
        interval = self._config.flush_interval_s
        while True:
            self._sleep(interval)
            self._wake.clear()
            self.cycles += 1
            closing = self._closing
            failed = False
            try:
                with self._writer_lock:
                    self._cycle()
                self._cycle_error = None
            except Exception as exc:  # the writer must never die, nor spin on one error
                failed = True
                text = f"{type(exc).__name__}: {exc}"
                if text != self._cycle_error:
                    log.exception("recorder cycle failed (logged once while it repeats)")
                self._cycle_error = text
            with self._idle:
                self._idle.notify_all()
            if closing:
                return
            if failed or not self._db_ok:
                self._wake.wait(self._config.retry_s)

    def _sleep(self, interval: float) -> None:
        """Until there is work: rows queued wait for their deadline (`interval` s), a full
        batch, `flush` or `close` (each sets `_wake`); with nothing queued or held, until the
        first row arrives or the next compaction is due."""
        if self._pending or self._spill_rows or self._closing:
            self._wake.wait(interval)
            return
        # Announce the sleep before looking at the queues: a row appended after the look
        # finds the flag set and wakes the writer; one appended before it is seen here.
        self._awaiting_rows = True
        if self._queue or self._shadow_queue or self._capture_queue:
            self._awaiting_rows = False
            self._wake.wait(interval)
            return
        woken = self._wake.wait(COMPACT_EVERY_S)
        first_row = woken and not self._awaiting_rows  # `_first_row` lowered the flag
        self._awaiting_rows = False
        if first_row:
            # Gather the batch until its deadline. A close, a full batch or a flush cut it
            # short (checked after the clear, so a wake-up set before it is not lost).
            self._wake.clear()
            if not self._closing and len(self._queue) < self._batch_size:
                self._wake.wait(interval)

    def _take(self) -> _Batch | None:
        outcomes: list[tuple[Any, ...]] = []
        shadows: list[tuple[Any, ...]] = []
        queue, shadow_queue = self._queue, self._shadow_queue
        with contextlib.suppress(IndexError):
            for _ in range(len(queue)):
                outcomes.append(queue.popleft())
        with contextlib.suppress(IndexError):
            for _ in range(len(shadow_queue)):
                shadows.append(shadow_queue.popleft())
        if not outcomes and not shadows:
            return None
        self._enqueued += len(outcomes) + len(shadows)
        if len(outcomes) > self._max_depth:
            self._max_depth = len(outcomes)
        return self._batch(outcomes, shadows)

    @staticmethod
    def _batch(outcomes: list[tuple[Any, ...]], shadows: list[tuple[Any, ...]]) -> _Batch:
        """Rows with their ids: 22 random hex digits per batch and a 10-hex-digit row number,
        32 hex digits as the schema says (a UUID per row cost 1.5 us of the writer's time)."""
        prefix = uuid.uuid4().hex[:22]
        shadow_prefix = uuid.uuid4().hex[:22]
        return _Batch(
            [(f"{prefix}{i:010x}", *row) for i, row in enumerate(outcomes)],
            [(f"{shadow_prefix}{i:010x}", *row) for i, row in enumerate(shadows)],
        )

    def _cycle(self) -> None:
        batch = self._take()
        if batch is not None:
            # Large takes are written in slices of batch_size rows.
            for part in self._slices(batch):
                self._pending.append(part)
                self._pending_rows += len(part)
        if not self._replay_spill():
            self._buffer_or_spill()
            return
        while self._pending:
            part = self._pending.popleft()
            self._pending_rows -= len(part)
            left = self._store(part, own=True)
            if left:
                self._pending.extendleft(reversed(left))
                self._pending_rows += sum(len(p) for p in left)
                self._buffer_or_spill()
                return
        if self._captures_waiting():
            self._write_captures()
        self._write_notices()
        now = time.monotonic()
        if self._closing or now - self._compacted_at >= COMPACT_EVERY_S:
            self._compacted_at = now
            compact(self._engine)

    def _slices(self, batch: _Batch) -> Iterator[_Batch]:
        size = self._batch_size
        if len(batch) <= size:
            yield batch
            return
        for start in range(0, max(len(batch.outcomes), len(batch.shadows)), size):
            yield _Batch(batch.outcomes[start : start + size], batch.shadows[start : start + size])

    # ----- writing, and isolating a refused row --------------------------------------------------

    def _store(self, batch: _Batch, *, own: bool) -> list[_Batch]:
        """Write `batch`; a row the database refuses is dropped (counted, logged, noted) and the
        rest written. Returns what is left when the database became unavailable ([]: done).
        `own`: this recorder's rows (else an earlier process's, from its spill file)."""
        status = self._write(batch, own=own)
        if status is not _Status.REFUSED:
            return [batch] if status is _Status.DOWN else []
        # Refused: first every row made to fit (what the router missed: one more write), then,
        # if the database still refuses, halves until each refused row stands alone.
        fitted = batch.fitted()
        status = self._write(fitted, own=own)
        if status is not _Status.REFUSED:
            return [fitted] if status is _Status.DOWN else []
        refused: list[tuple[str, tuple[Any, ...]]] = []
        parts = deque([fitted])  # each tried and refused: halved, or dropped once alone
        try:
            while parts:
                part = parts.popleft()
                if len(part) == 1:
                    row = (
                        (OUTCOME, part.outcomes[0]) if part.outcomes else (SHADOW, part.shadows[0])
                    )
                    refused.append(row)
                    self._refuse(row, own=own)
                    continue
                halves = part.halves()
                for i, half in enumerate(halves):
                    status = self._write(half, own=own)
                    if status is _Status.DOWN:
                        return [*halves[i:], *parts]
                    if status is _Status.REFUSED:
                        parts.append(half)
            return []
        finally:
            if refused:
                self._note_refused(refused, own=own)

    def _write(self, batch: _Batch, *, own: bool, tolerant: bool = False) -> _Status:
        try:
            with write_transaction(self._engine) as conn:
                if batch.outcomes:
                    # This writer's own marks, in the rows' transaction (see rollups.py).
                    marks = dirty_marks((r[1] for r in batch.outcomes), self._writer_key)
                    conn.execute(self._mark_dirty, marks)
                    self._outcome_insert.execute(conn, batch.outcomes, tolerant=tolerant)
                if batch.shadows:
                    self._shadow_insert.execute(conn, batch.shadows, tolerant=tolerant)
                if own and self._progress is not None:
                    figures = {"rows": self._written + len(batch), "dropped": self._dropped_total()}
                    conn.execute(self._progress, figures)
        except Exception as exc:
            failure = classify(exc)
            if failure is Failure.DUPLICATE and not tolerant:
                return self._write(batch, own=own, tolerant=True)
            if failure is Failure.UNAVAILABLE:
                if self._db_ok:
                    log.warning("recorder: database unavailable, buffering: %s", error_line(exc))
                self._db_ok = False
                self._last_error = error_line(exc)
                return _Status.DOWN
            self._refusal = f"{type(getattr(exc, 'orig', None) or exc).__name__}: {error_line(exc)}"
            self._database_up()  # it answered
            return _Status.REFUSED
        self._database_up()
        if own:
            self._written += len(batch)
        else:
            self._earlier_replayed += len(batch)
        return _Status.WRITTEN

    def _database_up(self) -> None:
        if not self._db_ok:
            log.warning("recorder: database back; writing what waited")
        self._db_ok = True

    def _refuse(self, row: tuple[str, tuple[Any, ...]], *, own: bool) -> None:
        kind, values = row
        if own:
            self._dropped += 1
            self._refused += 1
        else:
            self._earlier_lost += 1
        self._logged_refusals += 1
        if self._logged_refusals <= LOGGED_REFUSALS:
            table = "outcomes" if kind == OUTCOME else "shadow_comparisons"
            log.error(
                "recorder: a row of %s was refused by the database and is DROPPED (%s): %s%s",
                table,
                self._refusal,
                _row_text(kind, values),
                "; later refused rows are counted, not logged"
                if self._logged_refusals == LOGGED_REFUSALS
                else "",
            )

    def _note_refused(self, rows: list[tuple[str, tuple[Any, ...]]], *, own: bool) -> None:
        kind, first = rows[0]
        whose = "" if own else f" of an earlier process's spill file ({first[2]})"
        reason = (
            f"{len(rows)} row(s){whose} refused by the database and dropped; the first, of "
            f"{'outcomes' if kind == OUTCOME else 'shadow_comparisons'} ({self._refusal}): "
            f"{_row_text(kind, first)}"
        )
        self._notice(reason, first[3] if isinstance(first[3], str) else None)

    def _notice(self, reason: str, op: str | None) -> None:
        self._notices.append((fit_text(reason, None), None if op is None else fit_text(op, 32)))

    def _write_notices(self) -> None:
        """The `rows_dropped` events waiting, while the database takes them."""
        while self._notices:
            reason, op = self._notices[0]
            try:
                with write_transaction(self._engine) as conn:
                    write_event(
                        conn,
                        EventKind.ROWS_DROPPED,
                        who="recorder",
                        reason=reason,
                        op=op,
                        run_id=self._run_id,
                    )
            except Exception as exc:
                log.warning("recorder: a rows_dropped event waits: %s", error_line(exc))
                return
            self._notices.popleft()

    # ----- buffering and the spill file ----------------------------------------------------------

    def _buffer_or_spill(self) -> None:
        """While the database is down: keep at most `buffer_rows` in memory, spill the oldest;
        when the spill file cannot be written, keep up to `MEMORY_FACTOR` times as many and
        drop (count) the oldest beyond."""
        limit = self._config.buffer_rows
        if self._pending_rows <= limit:
            return
        spill: list[_Batch] = []
        while self._pending and self._pending_rows > limit // 2:
            part = self._pending.popleft()
            self._pending_rows -= len(part)
            spill.append(part)
        if self._spill_batches(spill):
            return
        self._pending.extendleft(reversed(spill))
        self._pending_rows += sum(len(b) for b in spill)
        cap = MEMORY_FACTOR * limit
        lost = 0
        while self._pending and self._pending_rows > cap:
            part = self._pending.popleft()
            self._pending_rows -= len(part)
            lost += len(part)
        if lost:
            self._dropped += lost
            self._notice(
                f"{lost} rows lost: the database was unavailable ({self._last_error}), the "
                f"spill file could not be written, and {cap} rows already waited in memory",
                None,
            )
            log.error(
                "recorder: %d rows LOST: the database is unavailable, the spill file cannot be "
                "written, and %d rows already wait in memory",
                lost,
                cap,
            )

    def _spill_batches(self, batches: list[_Batch]) -> bool:
        """Append `batches` to the spill file; False (nothing appended) when it cannot be
        written. A row that cannot be encoded even once fitted is counted as dropped."""
        lines: list[bytes] = []
        unencodable = 0
        for batch in batches:
            for kind, rows in ((OUTCOME, batch.outcomes), (SHADOW, batch.shadows)):
                for row in rows:
                    try:
                        lines.append(_line(kind, row))
                    except TypeError:
                        unencodable += 1
        count = len(lines)
        with self._spill_lock:
            try:
                if lines:
                    self._spill.append(b"".join(lines))
            except OSError as exc:
                if not self._spill_failing:  # once per spell, not at every retry
                    log.error(
                        "recorder: the spill file %s cannot be written: %s", self._spill.path, exc
                    )
                    self._notice(
                        f"the spill file {self._spill.path} could not be written: {exc}", None
                    )
                self._spill_failing = True
                return False
            self._spill_failing = False
            started = count > 0 and self._spill_rows == 0  # the file goes from empty to rows
            self._spill_rows += count
            self._spilled += count
            self._spill_dropped += unencodable
        if unencodable:
            log.error(
                "recorder: %d rows DROPPED: not even their fitted values can be spilled",
                unencodable,
            )
        if count:
            log.warning("recorder: %d rows spilled to %s", count, self._spill.path)
        if started and listening():  # once per spell: until the file is replayed whole
            notify(
                Alert(
                    kind="spill",
                    who="recorder",
                    run_id=self._run_id,
                    reason=f"{count} rows spilled to {self._spill.path}: "
                    + (
                        f"the database is unavailable ({self._last_error})"
                        if self._last_error
                        else "the queue reached db.recorder.queue_bound"
                    ),
                )
            )
        return True

    def _replay_spill(self) -> bool:
        """Write this recorder's spill file back, oldest first; True when it is gone."""
        with self._spill_lock:
            if self._spill_rows == 0:
                return True
            written = self._written
            try:
                done, left = self._replay(self._spill, own=True, expected=self._spill_rows)
            except OSError as exc:
                log.error("recorder: cannot replay %s: %s", self._spill.path, exc)
                return False
            finally:
                self._replayed += self._written - written
            self._spill_rows = left
            return done

    def _replay(self, spill: SpillFile, *, own: bool, expected: int = 0) -> tuple[bool, int]:
        """Commit every row of a (locked) spill file in order, then remove it. When the
        database fails midway, the file is rewritten with the rows not yet written (so no row
        is written or dropped twice) and kept: (False, rows left). A file with unreadable lines
        is kept aside first (`SpillFile.set_aside`), its lost rows counted. `expected`: the
        rows this recorder put in its own file (then the loss is known exactly)."""
        contents = spill.read(len(_OUTCOME_COLUMNS), len(_SHADOW_COLUMNS))
        if contents.damaged_lines:
            lost = max(contents.lost_rows, expected - len(contents)) if own else contents.lost_rows
            aside = spill.set_aside(_Batch(contents.outcomes, contents.shadows).lines())
            self._damaged.append(str(aside))
            if own:
                self._dropped += lost
            else:
                self._earlier_lost += lost
            what = (
                f"{contents.damaged_lines} unreadable line(s) in the spill file {spill.path}: "
                f"{'' if own else 'at least '}{lost} row(s) lost; the file is kept as {aside}, "
                f"its {len(contents)} readable rows are replayed"
            )
            log.error("recorder: %s", what)
            self._notice(what, None)
        rows = list(contents.rows())
        size = self._batch_size
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            batch = _Batch(
                [row for kind, row in chunk if kind == OUTCOME],
                [row for kind, row in chunk if kind == SHADOW],
            )
            left = self._store(batch, own=own)
            if left:
                rest = rows[start + size :]
                lines = [line for part in left for line in part.lines()]
                lines += [_line(kind, row) for kind, row in rest]
                spill.replace(lines)
                return False, len(lines)
        spill.remove()
        return True, 0

    def _replay_orphans(self) -> None:
        """Replay spill files left by recorders whose process is gone (their lock is free)."""
        if not self._spill_dir.is_dir():
            return
        for path in sorted(self._spill_dir.glob(f"{SPILL_PREFIX}*.jsonl")):
            if path == self._spill.path:
                continue
            spill = SpillFile(path)
            try:
                if not spill.lock(create=False):
                    continue  # its recorder is alive (or it is gone already)
                done, left = self._replay(spill, own=False)
            except OSError as exc:
                log.error("recorder: cannot replay %s: %s", path, exc)
                continue
            finally:
                spill.close()
            if not done:
                log.warning("recorder: %d rows of %s wait for the database", left, path)
                return
            log.warning("recorder: replayed the rows left in %s", path)
        self._write_notices()


def with_config(config: RecorderConfig, **changes: Any) -> RecorderConfig:
    """A copy of `config` with some fields changed (tests and benches)."""
    return replace(config, **changes)
