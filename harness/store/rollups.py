"""Per-minute rollups of the outcomes, recomputed from the raw rows: a cache that is never wrong.

Every recorder batch marks the minutes it wrote as dirty (`dirty_minutes.gen` bumped, in the
batch's own transaction). `compact` takes dirty minutes that have ended, reads their raw
outcomes, and replaces their `outcome_rollups` rows; it removes a mark only if its `gen` is
still the one read before the rows were, so a row written meanwhile keeps the minute dirty and
it is recomputed on the next pass. Late rows (a spill replayed after an outage, another process,
a replay of a batch whose commit was not acknowledged) therefore always end up counted exactly
once. Any process's recorder compacts; two doing the same minute at once is harmless (one
transaction loses and retries later). Queries read minutes still dirty from the raw rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Final

import numpy as np
from sqlalchemy import Engine, Insert, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from harness.sketch import LatencySketch
from harness.store.models import DirtyMinute, Outcome, OutcomeRollup

__all__ = ["GROUP", "MINUTE_NS", "compact", "fold", "mark_dirty", "rebuild"]

log = logging.getLogger("harness.store")

MINUTE_NS: Final = 60_000_000_000
GROUP: Final = ("run_id", "op", "stage", "routed", "served", "fell_back", "ok")
"""The columns an outcome is rolled up by (besides its minute)."""
GRACE_NS: Final = 2_000_000_000
"""A minute is compacted once it ended this long ago (rows of its last batches have landed)."""


def mark_dirty(engine: Engine) -> Insert:
    """`INSERT ... ON CONFLICT DO UPDATE gen = gen + 1` of `dirty_minutes` for `engine`."""
    dialect: Any = sqlite if engine.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(DirtyMinute)
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[DirtyMinute.minute_ns], set_={"gen": DirtyMinute.gen + 1}
    )


def fold(rows: Iterable[tuple[Any, ...]], minute_ns: int | None = None) -> list[dict[str, Any]]:
    """Rollup rows of outcome rows `(ts_ns, *GROUP, latency_us)`.

    With `minute_ns`, every row is taken to be of that minute; otherwise each row's own.
    """
    groups: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        ts = row[0]
        key = (minute_ns if minute_ns is not None else ts - ts % MINUTE_NS, *row[1:-1])
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
        record = dict(zip(GROUP, key[1:], strict=True))
        record.update(
            minute_ns=key[0],
            n=int(values.size),
            latency_sum_us=float(values.sum()),
            latency_max_us=float(values.max()),
            sketch=sketch.to_bytes(),
        )
        out.append(record)
    return out


_RAW = (Outcome.ts_ns, *(getattr(Outcome, c) for c in GROUP), Outcome.latency_us)


def _recompute(engine: Engine, minute_ns: int, gen: int) -> bool:
    """Replace one minute's rollups from its raw rows; True if the mark was cleared."""
    with engine.begin() as conn:
        rows = conn.execute(
            select(*_RAW).where(Outcome.ts_ns >= minute_ns, Outcome.ts_ns < minute_ns + MINUTE_NS)
        ).all()
        conn.execute(delete(OutcomeRollup).where(OutcomeRollup.minute_ns == minute_ns))
        folded = fold(rows, minute_ns)
        if folded:
            conn.execute(insert(OutcomeRollup), folded)
        cleared = conn.execute(
            delete(DirtyMinute).where(DirtyMinute.minute_ns == minute_ns, DirtyMinute.gen == gen)
        )
        return bool(cleared.rowcount)


def compact(engine: Engine, *, now_ns: int | None = None, limit: int = 120) -> int:
    """Recompute up to `limit` dirty minutes that have ended; returns how many were redone.

    Never raises for a database problem (the recorder calls it between batches): a failure is
    logged at debug level and the minutes stay dirty for the next pass.
    """
    now = time.time_ns() if now_ns is None else now_ns
    cutoff = now - GRACE_NS - MINUTE_NS  # the minute must have ended GRACE_NS ago
    try:
        with engine.connect() as conn:
            marks = conn.execute(
                select(DirtyMinute.minute_ns, DirtyMinute.gen)
                .where(DirtyMinute.minute_ns <= cutoff)
                .order_by(DirtyMinute.minute_ns)
                .limit(limit)
            ).all()
    except SQLAlchemyError as exc:
        log.debug("compaction skipped: %s", exc)
        return 0
    done = 0
    for minute_ns, gen in marks:
        try:
            _recompute(engine, int(minute_ns), int(gen))
        except (IntegrityError, OperationalError) as exc:
            log.debug("minute %d not compacted this time: %s", minute_ns, exc)
            continue
        except SQLAlchemyError as exc:
            log.debug("compaction stopped: %s", exc)
            break
        done += 1
    return done


def rebuild(engine: Engine) -> int:
    """Mark every minute that has outcomes dirty and compact them all (a repair tool); returns
    the number of minutes recomputed."""
    with engine.begin() as conn:
        minutes = {
            int(ts) - int(ts) % MINUTE_NS
            for (ts,) in conn.execute(select(Outcome.ts_ns)).yield_per(100_000)
        }
        for minute in minutes:
            conn.execute(mark_dirty(engine).values(minute_ns=minute, gen=1))
    total = 0
    while True:
        done = compact(engine, now_ns=2**62, limit=1_000)
        total += done
        if done == 0:
            return total
