"""The recorder: every outcome and shadow comparison reaches SQL without the caller waiting.

The caller pays one `deque.append` (`record`, `record_shadow`); a writer thread takes what is
queued every `flush_interval_s` (or as soon as `batch_size` rows wait), gives each row its id,
and inserts the batch with SQLAlchemy Core in one transaction: the outcomes, the shadow rows, and a
dirty mark on each minute written, from which the writer later recomputes those minutes'
rollups (`harness.store.rollups`).

Nothing is lost and nothing is doubled:
- a batch is written whole or not at all; inserts are `ON CONFLICT DO NOTHING` on ids fixed
  before the first attempt, so replaying a batch whose commit was not acknowledged inserts
  nothing twice (and rollups are recomputed from the raw rows, so they cannot double either);
- while the database is unreachable, batches wait in memory in order; past `buffer_rows` the
  oldest are appended to a spill file (`harness-spill-<run>.jsonl`, held with `flock`) and
  replayed first when it returns; the file is removed once empty. A spill file left by a
  process that died is replayed by the next recorder opened on the same spill folder;
- past `queue_bound` queued rows (a writer that cannot keep up), `record` itself spills, so a
  row is never refused; `stats().dropped` counts rows that could not even be spilled (a full
  disk) and must stay 0; it is written to the run's row at close.

`close()` (also called at exit) flushes everything; if the database is still down then, what
is left is spilled for the next recorder.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import math
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

import orjson
from sqlalchemy import Connection, Engine, Table, bindparam, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import SQLAlchemyError

from harness.config import RecorderConfig
from harness.errors import InvalidInputError
from harness.sketch import FINITE
from harness.store.db import error_line
from harness.store.models import Outcome
from harness.store.rollups import compact, dirty_marks, mark_dirty

__all__ = ["OutcomeRecord", "Recorder", "RecorderStats", "ShadowRecord"]

log = logging.getLogger("harness.recorder")
_isfinite = math.isfinite  # bound once: `record` is on the caller's path

SPILL_PREFIX: Final = "harness-spill-"
COMPACT_EVERY_S: Final = 5.0
"""How often the writer recomputes the rollups of minutes that have ended (rollups.py)."""
WRITER_STOP_S: Final = 60.0
"""How long `close` waits for the writer's current database call to end."""


class OutcomeRecord(NamedTuple):
    """One routed call, as the router hands it over (the `outcomes` columns but the id)."""

    ts_ns: int
    run_id: str
    op: str
    stage: str
    routed: str
    served: str
    fell_back: bool
    fallback_reason: str | None
    ok: bool
    error_class: str | None
    error_message: str | None
    latency_us: float
    attempts: int | None
    http_status: int | None
    order_id: int | None
    custom_tag: str | None
    routing_key: str | None
    reconciled: bool = False


class ShadowRecord(NamedTuple):
    """One shadow comparison (the `shadow_comparisons` columns but the id)."""

    ts_ns: int
    run_id: str
    op: str
    stage: str
    routing_key: str | None
    primary: str
    shadow: str
    matched: bool
    timeframe: str | None
    bar_index: int | None
    field: str | None
    primary_value: str | None
    shadow_value: str | None
    primary_latency_us: float | None
    shadow_latency_us: float | None
    shadow_error: str | None
    bars_in: int | None


_OUTCOME_COLUMNS: Final = ("id", *OutcomeRecord._fields)
_SHADOW_COLUMNS: Final = ("id", *ShadowRecord._fields)


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """The recorder's figures; `dropped` must stay 0.

    `enqueued`: rows handed to `record`/`record_shadow`; `written`: rows committed; `pending`:
    rows queued or waiting in memory; `spilled`: rows ever written to a spill file; `replayed`:
    spilled rows later committed; `max_queue_depth`: the most rows ever queued at once;
    `overflowed`: rows `record` had to spill itself because the queue was at its bound.
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


@dataclass(slots=True)
class _Batch:
    """Rows taken together: ids assigned once, so every retry and replay is the same batch."""

    id: str
    outcomes: list[tuple[Any, ...]]
    shadows: list[tuple[Any, ...]]

    def __len__(self) -> int:
        return len(self.outcomes) + len(self.shadows)

    def to_line(self) -> bytes:
        return orjson.dumps({"b": self.id, "o": self.outcomes, "s": self.shadows}) + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> _Batch:
        data = orjson.loads(line)
        # A row spilled before schema 0002 lacks its last column, `reconciled`: False.
        short = len(_OUTCOME_COLUMNS) - 1
        outcomes = [tuple(r) if len(r) != short else (*r, False) for r in data["o"]]
        return cls(data["b"], outcomes, [tuple(r) for r in data["s"]])


class _BulkInsert:
    """Whole batches of rows into `table`, written so that a batch written again (its commit
    was not acknowledged, or a spill file is replayed) inserts nothing twice.

    - SQLite: `INSERT ... ON CONFLICT DO NOTHING` built by SQLAlchemy Core, compiled once, run
      with the driver's `executemany`. Per-row parameter processing in `Connection.execute`
      cost as much as SQLite's own insert (profiled: 0.7 s of 2.3 s for 50,000 rows); the rows
      here are already plain ints, floats, strings, bools and None in column order.
    - PostgreSQL: psycopg's `COPY ... FROM STDIN` straight into the table, after one indexed
      look-up of the batch's first id: a batch is always written whole, in one transaction,
      so its first row present means all of it is (about 2x the rows/s of a COPY into a
      staging table moved by `INSERT ... ON CONFLICT`, and 3x `executemany`, measured here).
    """

    def __init__(self, engine: Engine, table: Table, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self.copy = engine.dialect.name == "postgresql"
        self.positions: list[int] | None = None
        if self.copy:
            quote = engine.dialect.identifier_preparer.quote  # `primary` is a reserved word
            quoted = ", ".join(quote(name) for name in columns)
            self.copy_sql = f"COPY {quote(table.name)} ({quoted}) FROM STDIN"
            self.sql = str(
                select(table.c.id).where(table.c.id == bindparam("first")).compile(engine)
            )
            return
        stmt = sqlite.insert(table).on_conflict_do_nothing()
        compiled = stmt.compile(dialect=engine.dialect, column_keys=list(columns))
        self.sql = str(compiled)
        names = compiled.positiontup if compiled.positional else None
        self.positions = None if names is None else [columns.index(n) for n in names]

    def rows(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        """Driver parameters for `rows` (tuples in `columns` order)."""
        if self.positions is None:
            columns = self.columns
            return [dict(zip(columns, r, strict=True)) for r in rows]
        if self.positions == list(range(len(self.columns))):
            return rows
        order = self.positions
        return [tuple(r[i] for i in order) for r in rows]

    def execute(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert the batch `rows` (the id first) in the caller's transaction."""
        if not rows:
            return
        if not self.copy:
            conn.exec_driver_sql(self.sql, self.rows(rows))
            return
        if conn.exec_driver_sql(self.sql, {"first": rows[0][0]}).first() is not None:
            return  # this batch is in already: a replay
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(self.copy_sql) as stream:  # type: ignore[union-attr]
            for row in rows:
                stream.write_row(row)


_live: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for recorder in list(_live):
        with contextlib.suppress(Exception):
            recorder.close(timeout=10.0)


class Recorder:
    """Records outcomes and shadow comparisons of one run; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        config: RecorderConfig,
        *,
        spill_dir: str | os.PathLike[str],
        name: str,
    ) -> None:
        self._engine = engine
        self._config = config
        self._name = name
        self._queue: deque[tuple[Any, ...]] = deque()
        self._shadow_queue: deque[tuple[Any, ...]] = deque()
        self._bound = config.queue_bound
        self._batch_size = config.batch_size
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._closing = False
        self._closed = False
        self._pending: deque[_Batch] = deque()  # taken, not yet committed, oldest first
        self._pending_rows = 0
        self._spill_dir = Path(spill_dir)
        self._spill_path = self._spill_dir / f"{SPILL_PREFIX}{name}.jsonl"
        self._spill_handle: IO[bytes] | None = None
        self._spill_rows = 0
        self._spill_lock = threading.RLock()
        self._writer_lock = threading.Lock()  # held by the writer around each cycle
        self._enqueued = 0
        self._written = 0
        self._spilled = 0
        self._replayed = 0
        self._dropped = 0
        self._overflowed = 0
        self._max_depth = 0
        self._db_ok = True
        self._last_error: str | None = None
        metadata = Outcome.metadata
        self._outcome_insert = _BulkInsert(engine, metadata.tables["outcomes"], _OUTCOME_COLUMNS)
        self._shadow_insert = _BulkInsert(
            engine, metadata.tables["shadow_comparisons"], _SHADOW_COLUMNS
        )
        self._mark_dirty = mark_dirty(engine)
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

    def record_shadow(self, row: ShadowRecord) -> None:
        """Queue one shadow comparison (same guarantees as `record`; each latency None or a
        finite number)."""
        for name in ("primary_latency_us", "shadow_latency_us"):
            value = getattr(row, name)
            if value is not None and not _isfinite(value):
                raise InvalidInputError(name, value, FINITE)
        self._shadow_queue.append(row)
        self._wake.set()

    def _on_depth(self, depth: int) -> None:
        if depth > self._max_depth:
            self._max_depth = depth
        self._wake.set()
        if depth > self._bound:
            # The writer cannot keep up: move the overflow to disk ourselves, in order.
            rows = []
            with contextlib.suppress(IndexError):
                for _ in range(depth - self._bound // 2):
                    rows.append(self._queue.popleft())
            if rows:
                self._overflowed += len(rows)
                self._spill([self._batch(rows, [])])

    # ----- flushing and closing ------------------------------------------------------------------

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every row queued before this call is committed; False on time-out (the
        database is down: the rows still wait, or are spilled)."""
        target = self._enqueued_so_far()
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self._written_or_replayed() < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(0.05 if remaining is None else min(remaining, 0.05))
                self._wake.set()
        return True

    def close(self, timeout: float = 30.0) -> RecorderStats:
        """Flush, stop the writer, and spill whatever the database did not take."""
        if self._closed:
            return self.stats()
        self.flush(timeout)
        self._closing = True
        self._wake.set()
        # The writer ends after its current cycle; a database call is bounded (SQLite's busy
        # time-out, PostgreSQL's connect time-out), so this wait is too.
        self._thread.join(timeout=WRITER_STOP_S)
        self._closed = True
        if self._thread.is_alive() or not self._writer_lock.acquire(timeout=WRITER_STOP_S):
            lost = self._pending_rows
            self._dropped += lost
            log.error("recorder: writer stuck at close; %d rows it held are LOST", lost)
            _live.discard(self)
            return self.stats()
        with self._writer_lock_held(), self._spill_lock:
            leftover = self._take()
            if leftover is not None:
                self._pending.append(leftover)
                self._pending_rows += len(leftover)
            if self._pending:
                self._spill(list(self._pending))
                self._pending.clear()
                self._pending_rows = 0
            self._close_spill_handle()
        _live.discard(self)
        return self.stats()

    @contextlib.contextmanager
    def _writer_lock_held(self) -> Iterator[None]:
        """Release the (already acquired) writer lock on exit."""
        try:
            yield
        finally:
            self._writer_lock.release()

    def stats(self) -> RecorderStats:
        """The recorder's figures now (see `RecorderStats`)."""
        return RecorderStats(
            enqueued=self._enqueued_so_far(),
            written=self._written,
            pending=len(self._queue) + len(self._shadow_queue) + self._pending_rows,
            spilled=self._spilled,
            replayed=self._replayed,
            dropped=self._dropped,
            max_queue_depth=max(self._max_depth, len(self._queue)),
            overflowed=self._overflowed,
            db_ok=self._db_ok,
            last_error=self._last_error,
        )

    def _enqueued_so_far(self) -> int:
        # Rows handed in = rows still queued + rows taken by the writer (or spilled by record).
        return self._enqueued + len(self._queue) + len(self._shadow_queue)

    def _written_or_replayed(self) -> int:
        return self._written + self._dropped

    # ----- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        self._replay_orphans()
        interval = self._config.flush_interval_s
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            closing = self._closing
            try:
                with self._writer_lock:
                    self._cycle()
            except Exception as exc:  # the writer must never die
                log.exception("recorder cycle failed: %s", exc)
            with self._idle:
                self._idle.notify_all()
            if closing:
                return
            if not self._db_ok:
                self._wake.wait(self._config.retry_s)

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
        if len(outcomes) > self._max_depth:
            self._max_depth = len(outcomes)
        return self._batch(outcomes, shadows)

    def _batch(self, outcomes: list[tuple[Any, ...]], shadows: list[tuple[Any, ...]]) -> _Batch:
        """Rows with their ids: 22 random hex digits per batch and a 10-hex-digit row number,
        32 hex digits as the schema says (a UUID per row cost 1.5 us of the writer's time)."""
        self._enqueued += len(outcomes) + len(shadows)
        prefix = uuid.uuid4().hex[:22]
        shadow_prefix = uuid.uuid4().hex[:22]
        return _Batch(
            uuid.uuid4().hex,
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
            part = self._pending[0]
            if not self._write(part):
                self._buffer_or_spill()
                return
            self._pending.popleft()
            self._pending_rows -= len(part)
            self._written += len(part)
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
            yield _Batch(
                uuid.uuid4().hex,
                batch.outcomes[start : start + size],
                batch.shadows[start : start + size],
            )

    def _write(self, batch: _Batch) -> bool:
        try:
            with self._engine.begin() as conn:
                if batch.outcomes:
                    # Marks first: a compactor skips nothing it should redo (see rollups.py).
                    marks = dirty_marks(r[1] for r in batch.outcomes)
                    conn.execute(self._mark_dirty, marks)
                    self._outcome_insert.execute(conn, batch.outcomes)
                if batch.shadows:
                    self._shadow_insert.execute(conn, batch.shadows)
        except SQLAlchemyError as exc:
            if self._db_ok:
                log.warning("recorder: database unavailable, buffering: %s", error_line(exc))
            self._db_ok = False
            self._last_error = error_line(exc)
            return False
        if not self._db_ok:
            log.warning("recorder: database back; writing what waited")
        self._db_ok = True
        return True

    def _buffer_or_spill(self) -> None:
        """While the database is down: keep at most `buffer_rows` in memory, spill the oldest."""
        if self._pending_rows <= self._config.buffer_rows:
            return
        spill: list[_Batch] = []
        while self._pending and self._pending_rows > self._config.buffer_rows // 2:
            part = self._pending.popleft()
            self._pending_rows -= len(part)
            spill.append(part)
        self._spill(spill)

    # ----- the spill file ------------------------------------------------------------------------

    def _spill(self, batches: list[_Batch]) -> None:
        rows = sum(len(b) for b in batches)
        with self._spill_lock:
            try:
                handle = self._open_spill()
                for batch in batches:
                    handle.write(batch.to_line())
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                self._dropped += rows
                log.error("recorder: %d rows LOST, spill file unwritable: %s", rows, exc)
                return
            self._spill_rows += rows
            self._spilled += rows
        log.warning("recorder: %d rows spilled to %s", rows, self._spill_path)

    def _open_spill(self) -> IO[bytes]:
        if self._spill_handle is None:
            self._spill_dir.mkdir(parents=True, exist_ok=True)
            handle = open(self._spill_path, "ab")  # noqa: SIM115 - held open while spilling
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._spill_handle = handle
        return self._spill_handle

    def _close_spill_handle(self) -> None:
        if self._spill_handle is not None:
            self._spill_handle.close()
            self._spill_handle = None

    def _replay_spill(self) -> bool:
        """Write this recorder's spill file back, oldest first; True when it is gone."""
        with self._spill_lock:
            if self._spill_rows == 0:
                return True
            self._close_spill_handle()
            done = self._replay_file(self._spill_path)
            if done:
                self._replayed += self._spill_rows
                self._written += self._spill_rows
                self._spill_rows = 0
            return done

    def _replay_file(self, path: Path) -> bool:
        """Commit every batch of a spill file in order, then remove it; False if the database
        failed (the file is kept whole: replayed batches will conflict, not double)."""
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            return True
        for line in lines:
            if not line.strip():
                continue
            try:
                batch = _Batch.from_line(line)
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.error("recorder: unreadable line in %s skipped (a torn last write)", path)
                continue
            if not self._write(batch):
                return False
        path.unlink(missing_ok=True)
        return True

    def _replay_orphans(self) -> None:
        """Replay spill files left by recorders whose process is gone (their lock is free)."""
        if not self._spill_dir.is_dir():
            return
        for path in sorted(self._spill_dir.glob(f"{SPILL_PREFIX}*.jsonl")):
            if path == self._spill_path:
                continue
            try:
                with open(path, "rb") as handle:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    count = sum(1 for _ in handle)
                    if self._replay_file(path):
                        log.warning("recorder: replayed %d batches left in %s", count, path)
            except BlockingIOError:
                continue  # its recorder is alive
            except OSError as exc:
                log.error("recorder: cannot replay %s: %s", path, exc)


def with_config(config: RecorderConfig, **changes: Any) -> RecorderConfig:
    """A copy of `config` with some fields changed (tests and benches)."""
    return replace(config, **changes)
