"""Per-minute and per-hour rollups of the outcomes, recomputed from the rows below them: a cache
that is never wrong, and that writers on one database keep without waiting on each other.

**Marks per writer.** Every recorder batch marks the minutes and hours it wrote as dirty, in
the batch's own transaction, in rows of its own: `dirty_buckets` is keyed by (period, bucket,
writer), `writer` a random id per recorder, and a batch bumps `gen` of its own rows only. A
bucket is dirty while any writer's mark on it exists. (Until schema 0004 all writers bumped one
row per bucket: every process held the current minute's row lock for its whole batch, and on
PostgreSQL 4 writers took turns; `benches/fleet.py` measures it.) No writer updates a row
another process updates; only a compactor deletes a mark, of a bucket that ended.

**Exactly once.** `compact` takes buckets that have ended (`GRACE_NS` after their end):
- a minute is read, marks first (every writer's (writer, gen)), then the prune mark
  (`raw_before`), then its raw rows, and folded outside any write transaction. The rollup is
  then written in a write transaction (`write_transaction`: SQLite's write lock; PostgreSQL
  READ COMMITTED with the bucket's advisory lock taken without waiting, so two processes never
  compact one bucket at once, and the prune lock shared) only if the marks and the prune mark
  read again are what they were: every row write moves its writer's mark in the row's own
  transaction, and rows are removed only by a prune (which moves its mark in the removing
  transaction) or by the late-row merge below the prune mark, so equal marks mean the rows
  folded are the minute's rows. Each mark is then deleted only if its `gen` is still the one
  read: a row committed meanwhile (PostgreSQL lets one in between the check and the delete)
  leaves its writer's mark, and the minute is redone on the next pass, from all its rows;
- an hour is recomputed from its minutes' rollups, once none of its minutes is dirty, under
  the same claim and the same gen-matched deletion (a row written to the hour moved its mark);
- a minute before the prune mark has no raw rows but late ones (the prune deleted the rest in
  the transaction that moved the mark, and only from minutes that were clean, so those rows
  were in the rollup): its late rows are folded into the rollup it has and deleted, with the
  marks, in one write transaction. Such a minute is never recomputed from raw rows.
So a row is counted in its minute's rollup, or its minute is dirty and queries read it raw
(`harness.store.queries`), never both and never neither; that holds for a late row, a replayed
spill file, a batch written again because its commit was not acknowledged (its rows are
skipped by their ids, its marks moved again: a redo, no double count), and any number of
processes writing and compacting. Every process's recorder compacts; a compactor that cannot
claim a bucket skips it, and one whose transaction fails leaves the marks for the next pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Final

import numpy as np
from sqlalchemy import Connection, Engine, Insert, and_, delete, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from harness.sketch import LatencySketch
from harness.store.db import write_transaction
from harness.store.models import DirtyBucket, Outcome, OutcomeRollup, Retention

__all__ = [
    "GROUP",
    "HOUR_NS",
    "MINUTE_NS",
    "NEVER",
    "compact",
    "dirty_marks",
    "fold",
    "mark_dirty",
    "raw_before",
    "rebuild",
]

log = logging.getLogger("harness.store")

MINUTE_NS: Final = 60_000_000_000
HOUR_NS: Final = 60 * MINUTE_NS
PERIODS: Final = (MINUTE_NS, HOUR_NS)
GROUP: Final = (
    "run_id", "op", "stage", "routed", "served", "fell_back", "ok", "migration", "targeted",
)  # fmt: skip
"""The columns an outcome is rolled up by (besides its bucket)."""
GRACE_NS: Final = 2_000_000_000
"""A bucket is compacted once it ended this long ago (rows of its last batches have landed)."""


def mark_dirty(engine: Engine) -> Insert:
    """`INSERT ... ON CONFLICT DO UPDATE gen = gen + 1` of `dirty_buckets` for `engine`: a
    writer's own mark (the writer is part of the key), so no other process updates that row."""
    dialect: Any = sqlite if engine.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(DirtyBucket)
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[DirtyBucket.period_ns, DirtyBucket.bucket_ns, DirtyBucket.writer],
        set_={"gen": DirtyBucket.gen + 1},
    )


def dirty_marks(timestamps: Iterable[int], writer: str) -> list[dict[str, Any]]:
    """The `mark_dirty` parameters of `writer` for outcomes started at `timestamps` (ns): every
    minute and hour they fall in, in a fixed order."""
    buckets = {(p, ts - ts % p) for ts in timestamps for p in PERIODS}
    return [
        {"period_ns": p, "bucket_ns": b, "writer": writer, "gen": 1} for p, b in sorted(buckets)
    ]


def fold(rows: Iterable[tuple[Any, ...]], bucket_ns: int) -> list[dict[str, Any]]:
    """Minute rollup rows of raw outcome rows `(*GROUP, latency_us)`, all in one minute."""
    groups: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        key = tuple(row[:-1])
        if key[7] is None:  # `migration`: NULL only in a row written by hand; keep it whole
            key = (*key[:7], "", *key[8:])
        latencies = groups.get(key)
        if latencies is None:
            groups[key] = [row[-1]]
        else:
            latencies.append(row[-1])
    out = []
    for key, latencies in groups.items():
        values = np.asarray(latencies, dtype=np.float64)
        sketch = LatencySketch()
        sketch.add_many(values)
        record = dict(zip(GROUP, key, strict=True))
        record.update(
            period_ns=MINUTE_NS,
            bucket_ns=bucket_ns,
            n=int(values.size),
            latency_sum_us=float(values.sum()),
            latency_max_us=float(values.max()),
            sketch=sketch.to_bytes(),
        )
        out.append(record)
    return out


_RAW = (*(getattr(Outcome, c) for c in GROUP), Outcome.latency_us)
_ROLLED = tuple(getattr(OutcomeRollup, c) for c in GROUP)
_FIGURES = (
    OutcomeRollup.n,
    OutcomeRollup.latency_sum_us,
    OutcomeRollup.latency_max_us,
    OutcomeRollup.sketch,
)
NEVER: Final = -(2**63)
"""`raw_before` of a store never pruned."""
_LOCK_CLASS: Final = {MINUTE_NS: 0x526F6C6D, HOUR_NS: 0x526F6C68}
"""PostgreSQL advisory lock namespaces ('Rolm', 'Rolh') of a bucket being compacted."""
PRUNE_LOCK: Final = (0x5072756E, 0)
"""PostgreSQL advisory lock ('Prun') a compactor shares and `harness db prune` holds alone."""
DELETE_CHUNK: Final = 500
"""Ids deleted per statement (SQLite's bound parameters are limited)."""


def raw_before(conn: Connection) -> int:
    """Raw outcomes before this instant (ns, minute-aligned) were pruned (`NEVER`: none)."""
    value = conn.execute(select(Retention.raw_before_ns).where(Retention.id == 1)).scalar()
    return NEVER if value is None else int(value)


def _marks(conn: Connection, period: int, bucket: int) -> frozenset[tuple[str, int]]:
    """Every writer's mark on a bucket: (writer, gen)."""
    rows = conn.execute(
        select(DirtyBucket.writer, DirtyBucket.gen).where(
            DirtyBucket.period_ns == period, DirtyBucket.bucket_ns == bucket
        )
    ).all()
    return frozenset((str(w), int(g)) for w, g in rows)


def _claim(conn: Connection, period: int, bucket: int) -> bool:
    """Whether this transaction may write the bucket's rollup now. PostgreSQL: this bucket's
    advisory lock, taken without waiting (another process compacting it: skip it this pass),
    and the prune lock shared (a prune moving its mark: skip); SQLite: `write_transaction`
    already holds the database's only write lock."""
    if conn.dialect.name != "postgresql":
        return True
    ours = conn.execute(
        text(
            "SELECT pg_try_advisory_xact_lock(:c, :o) AND pg_try_advisory_xact_lock_shared(:p, :q)"
        ),
        {
            "c": _LOCK_CLASS[period],
            "o": (bucket // MINUTE_NS) % 2**31,
            "p": PRUNE_LOCK[0],
            "q": PRUNE_LOCK[1],
        },
    ).scalar_one()
    return bool(ours)


def _replace(conn: Connection, period: int, bucket: int, rows: list[dict[str, Any]]) -> None:
    conn.execute(
        delete(OutcomeRollup).where(
            OutcomeRollup.period_ns == period, OutcomeRollup.bucket_ns == bucket
        )
    )
    if rows:
        conn.execute(insert(OutcomeRollup), rows)


def _clear(conn: Connection, period: int, bucket: int, marks: frozenset[tuple[str, int]]) -> bool:
    """Delete the marks read before the rows were; a mark whose gen moved since (rows written
    meanwhile) stays. True when every one was deleted."""
    cleared = 0
    for writer, gen in sorted(marks):
        done = conn.execute(
            delete(DirtyBucket).where(
                DirtyBucket.period_ns == period,
                DirtyBucket.bucket_ns == bucket,
                DirtyBucket.writer == writer,
                DirtyBucket.gen == gen,
            )
        )
        cleared += done.rowcount
    return cleared == len(marks)


def _merge(rows: Iterable[tuple[Any, ...]], period: int, bucket: int) -> list[dict[str, Any]]:
    """Rollup rows of `period` at `bucket` merging rollup rows `(*GROUP, n, sum, max, sketch)`
    by group."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        key = tuple(row[: len(GROUP)])
        n, total, peak, blob = row[len(GROUP) :]
        group = groups.setdefault(key, [0, 0.0, 0.0, []])
        group[0] += int(n)
        group[1] += float(total)
        group[2] = max(group[2], float(peak))
        group[3].append(bytes(blob))
    out = []
    for key, (n, total, peak, blobs) in groups.items():
        record = dict(zip(GROUP, key, strict=True))
        record.update(
            period_ns=period,
            bucket_ns=bucket,
            n=n,
            latency_sum_us=total,
            latency_max_us=peak,
            sketch=LatencySketch.from_blobs(blobs).to_bytes(),
        )
        out.append(record)
    return out


def _as_rolled(record: dict[str, Any]) -> tuple[Any, ...]:
    return (*(record[c] for c in GROUP), *(record[c.key] for c in _FIGURES))


def _in_minute(bucket: int) -> ColumnElement[bool]:
    return and_(Outcome.ts_ns >= bucket, Outcome.ts_ns < bucket + MINUTE_NS)


def _recompute_minute(engine: Engine, bucket: int) -> bool:
    """A minute from its raw rows. The rows are read and folded outside the write transaction
    (a busy minute's fold takes a while, and SQLite has one write lock); the rollup is written
    only if the marks and the prune mark are still what they were before the rows were read:
    then no row was added (every write moves a mark) or removed (only a prune moving its mark,
    or a late-row merge below it, removes rows)."""
    with engine.connect() as conn:
        marks = _marks(conn, MINUTE_NS, bucket)
        if not marks:
            return False  # another process did it
        before = raw_before(conn)
        if bucket < before:
            return _merge_late_minute(engine, bucket)
        rows = conn.execute(select(*_RAW).where(_in_minute(bucket))).all()
    folded = fold(rows, bucket)
    with write_transaction(engine) as conn:
        if not _claim(conn, MINUTE_NS, bucket):
            return False
        if raw_before(conn) != before or _marks(conn, MINUTE_NS, bucket) != marks:
            return False  # rows came or went: redone on the next pass
        _replace(conn, MINUTE_NS, bucket, folded)
        return _clear(conn, MINUTE_NS, bucket, marks)


def _merge_late_minute(engine: Engine, bucket: int) -> bool:
    """A pruned minute (before `raw_before`) whose raw rows all came after the prune: they are
    folded into its rollup and deleted, in one transaction, so each is counted once (in the
    rollup, or still raw and dirty)."""
    with write_transaction(engine) as conn:
        if not _claim(conn, MINUTE_NS, bucket):
            return False
        marks = _marks(conn, MINUTE_NS, bucket)
        if not marks:
            return False
        late = conn.execute(select(Outcome.id, *_RAW).where(_in_minute(bucket))).all()
        kept = conn.execute(
            select(*_ROLLED, *_FIGURES).where(
                OutcomeRollup.period_ns == MINUTE_NS, OutcomeRollup.bucket_ns == bucket
            )
        ).all()
        added = [_as_rolled(r) for r in fold((tuple(row[1:]) for row in late), bucket)]
        _replace(conn, MINUTE_NS, bucket, _merge([*kept, *added], MINUTE_NS, bucket))
        ids = [row[0] for row in late]
        for start in range(0, len(ids), DELETE_CHUNK):
            conn.execute(delete(Outcome).where(Outcome.id.in_(ids[start : start + DELETE_CHUNK])))
        return _clear(conn, MINUTE_NS, bucket, marks)


def _recompute_hour(engine: Engine, bucket: int) -> bool:
    """An hour from its minutes; skipped (stays dirty) while any of its minutes is dirty."""
    end = bucket + HOUR_NS
    with write_transaction(engine) as conn:
        if not _claim(conn, HOUR_NS, bucket):
            return False
        marks = _marks(conn, HOUR_NS, bucket)
        if not marks:
            return False
        busy = conn.execute(
            select(func.count()).where(
                DirtyBucket.period_ns == MINUTE_NS,
                DirtyBucket.bucket_ns >= bucket,
                DirtyBucket.bucket_ns < end,
            )
        ).scalar_one()
        if busy:
            return False
        rows = conn.execute(
            select(*_ROLLED, *_FIGURES).where(
                OutcomeRollup.period_ns == MINUTE_NS,
                OutcomeRollup.bucket_ns >= bucket,
                OutcomeRollup.bucket_ns < end,
            )
        ).all()
        _replace(conn, HOUR_NS, bucket, _merge(rows, HOUR_NS, bucket))
        return _clear(conn, HOUR_NS, bucket, marks)


def compact(engine: Engine, *, now_ns: int | None = None, limit: int = 120) -> int:
    """Recompute up to `limit` dirty minutes, then hours, that have ended; returns how many.

    Never raises for a database problem (the recorder calls it between batches): a failure is
    logged at debug level and the buckets stay dirty for the next pass.
    """
    now = time.time_ns() if now_ns is None else now_ns
    done = 0
    for period, redo in ((MINUTE_NS, _recompute_minute), (HOUR_NS, _recompute_hour)):
        try:
            with engine.connect() as conn:
                buckets = (
                    conn.execute(
                        select(DirtyBucket.bucket_ns)
                        .where(
                            DirtyBucket.period_ns == period,
                            DirtyBucket.bucket_ns <= now - GRACE_NS - period,
                        )
                        .distinct()
                        .order_by(DirtyBucket.bucket_ns)
                        .limit(limit)
                    )
                    .scalars()
                    .all()
                )
        except SQLAlchemyError as exc:
            log.debug("compaction skipped: %s", exc)
            return done
        for bucket in buckets:
            try:
                if redo(engine, int(bucket)):
                    done += 1
            except (IntegrityError, OperationalError) as exc:
                log.debug("bucket %d not compacted this time: %s", bucket, exc)
            except SQLAlchemyError as exc:
                log.debug("compaction stopped: %s", exc)
                return done
    return done


REBUILD_WRITER: Final = "rebuild"


def rebuild(engine: Engine) -> int:
    """Mark every minute and hour that has outcomes dirty and compact them all (a repair tool);
    returns the number of buckets recomputed. A pruned minute keeps its rollup (its raw rows
    are gone): only late rows are folded into it."""
    with write_transaction(engine) as conn:
        stamps = (int(ts) for (ts,) in conn.execute(select(Outcome.ts_ns)).yield_per(100_000))
        marks = dirty_marks(stamps, REBUILD_WRITER)
        if marks:
            conn.execute(mark_dirty(engine), marks)
    total = 0
    while True:
        done = compact(engine, now_ns=2**62, limit=1_000)
        total += done
        if done == 0:
            return total
