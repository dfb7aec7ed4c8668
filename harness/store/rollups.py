"""Per-minute and per-hour rollups of the outcomes, recomputed from the rows below them: a cache
that is never wrong.

Every recorder batch marks the minutes and hours it wrote as dirty (`dirty_buckets.gen` bumped,
in the batch's own transaction). `compact` takes dirty buckets that have ended:
- a minute is recomputed from its raw outcomes;
- an hour is recomputed from its minutes' rollups, once none of its minutes is dirty.
A mark is removed only if its `gen` is still the one read before the rows were, so a row written
meanwhile keeps the bucket dirty and it is redone on the next pass. Late rows (a spill replayed
after an outage, another process, a replay of a batch whose commit was not acknowledged)
therefore end up counted exactly once. Any process's recorder compacts; two doing the same
bucket at once is harmless (one transaction loses and retries later). Queries read dirty hours
from their minutes and dirty minutes from the raw rows (`harness.store.queries`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Final

import numpy as np
from sqlalchemy import Engine, Insert, and_, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from harness.sketch import LatencySketch
from harness.store.models import DirtyBucket, Outcome, OutcomeRollup

__all__ = [
    "GROUP",
    "HOUR_NS",
    "MINUTE_NS",
    "compact",
    "dirty_marks",
    "fold",
    "mark_dirty",
    "rebuild",
]

log = logging.getLogger("harness.store")

MINUTE_NS: Final = 60_000_000_000
HOUR_NS: Final = 60 * MINUTE_NS
PERIODS: Final = (MINUTE_NS, HOUR_NS)
GROUP: Final = ("run_id", "op", "stage", "routed", "served", "fell_back", "ok")
"""The columns an outcome is rolled up by (besides its bucket)."""
GRACE_NS: Final = 2_000_000_000
"""A bucket is compacted once it ended this long ago (rows of its last batches have landed)."""


def mark_dirty(engine: Engine) -> Insert:
    """`INSERT ... ON CONFLICT DO UPDATE gen = gen + 1` of `dirty_buckets` for `engine`."""
    dialect: Any = sqlite if engine.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(DirtyBucket)
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[DirtyBucket.period_ns, DirtyBucket.bucket_ns],
        set_={"gen": DirtyBucket.gen + 1},
    )


def dirty_marks(timestamps: Iterable[int]) -> list[dict[str, int]]:
    """The `mark_dirty` parameters for outcomes started at `timestamps` (ns): every minute and
    hour they fall in, in a fixed order (so concurrent writers lock rows in the same order)."""
    buckets = {(p, ts - ts % p) for ts in timestamps for p in PERIODS}
    return [{"period_ns": p, "bucket_ns": b, "gen": 1} for p, b in sorted(buckets)]


def fold(rows: Iterable[tuple[Any, ...]], bucket_ns: int) -> list[dict[str, Any]]:
    """Minute rollup rows of raw outcome rows `(*GROUP, latency_us)`, all in one minute."""
    groups: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        key = tuple(row[:-1])
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


def _replace(conn: Any, period: int, bucket: int, rows: list[dict[str, Any]]) -> None:
    conn.execute(
        delete(OutcomeRollup).where(
            OutcomeRollup.period_ns == period, OutcomeRollup.bucket_ns == bucket
        )
    )
    if rows:
        conn.execute(insert(OutcomeRollup), rows)


def _clear(conn: Any, period: int, bucket: int, gen: int) -> bool:
    cleared = conn.execute(
        delete(DirtyBucket).where(
            DirtyBucket.period_ns == period,
            DirtyBucket.bucket_ns == bucket,
            DirtyBucket.gen == gen,
        )
    )
    return bool(cleared.rowcount)


def _recompute_minute(engine: Engine, bucket: int, gen: int) -> bool:
    with engine.begin() as conn:
        rows = conn.execute(
            select(*_RAW).where(Outcome.ts_ns >= bucket, Outcome.ts_ns < bucket + MINUTE_NS)
        ).all()
        _replace(conn, MINUTE_NS, bucket, fold(rows, bucket))
        return _clear(conn, MINUTE_NS, bucket, gen)


def _recompute_hour(engine: Engine, bucket: int, gen: int) -> bool:
    """An hour from its minutes; skipped (stays dirty) while any of its minutes is dirty."""
    end = bucket + HOUR_NS
    with engine.begin() as conn:
        busy = conn.execute(
            select(func.count()).where(
                DirtyBucket.period_ns == MINUTE_NS,
                DirtyBucket.bucket_ns >= bucket,
                DirtyBucket.bucket_ns < end,
            )
        ).scalar_one()
        if busy:
            return False
        in_hour = and_(
            OutcomeRollup.period_ns == MINUTE_NS,
            OutcomeRollup.bucket_ns >= bucket,
            OutcomeRollup.bucket_ns < end,
        )
        rows = conn.execute(
            select(
                *_ROLLED,
                OutcomeRollup.n,
                OutcomeRollup.latency_sum_us,
                OutcomeRollup.latency_max_us,
                OutcomeRollup.sketch,
            ).where(in_hour)
        ).all()
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for row in rows:
            key = tuple(row[: len(GROUP)])
            n, total, peak, blob = row[len(GROUP) :]
            group = groups.setdefault(key, [0, 0.0, 0.0, []])
            group[0] += int(n)
            group[1] += float(total)
            group[2] = max(group[2], float(peak))
            group[3].append(bytes(blob))
        folded = []
        for key, (n, total, peak, blobs) in groups.items():
            record = dict(zip(GROUP, key, strict=True))
            record.update(
                period_ns=HOUR_NS,
                bucket_ns=bucket,
                n=n,
                latency_sum_us=total,
                latency_max_us=peak,
                sketch=LatencySketch.from_blobs(blobs).to_bytes(),
            )
            folded.append(record)
        _replace(conn, HOUR_NS, bucket, folded)
        return _clear(conn, HOUR_NS, bucket, gen)


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
                marks = conn.execute(
                    select(DirtyBucket.bucket_ns, DirtyBucket.gen)
                    .where(
                        DirtyBucket.period_ns == period,
                        DirtyBucket.bucket_ns <= now - GRACE_NS - period,
                    )
                    .order_by(DirtyBucket.bucket_ns)
                    .limit(limit)
                ).all()
        except SQLAlchemyError as exc:
            log.debug("compaction skipped: %s", exc)
            return done
        for bucket, gen in marks:
            try:
                if redo(engine, int(bucket), int(gen)):
                    done += 1
            except (IntegrityError, OperationalError) as exc:
                log.debug("bucket %d not compacted this time: %s", bucket, exc)
            except SQLAlchemyError as exc:
                log.debug("compaction stopped: %s", exc)
                return done
    return done


def rebuild(engine: Engine) -> int:
    """Mark every minute and hour that has outcomes dirty and compact them all (a repair tool);
    returns the number of buckets recomputed."""
    with engine.begin() as conn:
        stamps = (int(ts) for (ts,) in conn.execute(select(Outcome.ts_ns)).yield_per(100_000))
        marks = dirty_marks(stamps)
        if marks:
            conn.execute(mark_dirty(engine), marks)
    total = 0
    while True:
        done = compact(engine, now_ns=2**62, limit=1_000)
        total += done
        if done == 0:
            return total
