"""Retention: `harness db prune` deletes raw outcomes, shadow comparisons and captures past an
age, while the rollups, events, runs, replay results and the rollout state stay, so the gate
and the history still answer.

Captures (`harness.router.capture`) are deleted by age alone, in one transaction after the
outcomes (they are no gate evidence: a stage's start keeps none of them); each migration's
writers also delete its captures older than its `capture.retention`.

A prune moves the prune mark (`retention.raw_before_ns`, minute-aligned) forward a batch of
whole minutes at a time. Each batch is one short write transaction: it deletes the raw outcomes
of minutes `[mark, end)` and the shadow comparisons before `end`, and moves the mark to `end`,
where `end` stops at the first minute still dirty (its rollup does not hold its rows yet: those
rows stay until a compactor has folded them in) and at about `BATCH_ROWS` outcomes (so no lock
is held long, and writers go on between batches). On PostgreSQL a writer may commit a row into
the batch's minutes while it runs: the batch reads the dirty marks again after its deletes and,
if a minute turned dirty, is rolled back whole and retried below it; it holds the prune
advisory lock alone so that no compactor writes a rollup while the mark moves
(`harness.store.rollups`). A row that arrives later for a pruned minute is a late row: the
compactor folds it into that minute's rollup and deletes it.

What is never pruned: anything at or after the start of a current stage (its gate window must
keep its raw partial minutes), and anything younger than `MIN_AGE_NS` (an hour: every minute
that old has been compacted many times over, and the dashboard's recent windows keep their raw
edges). A late row older than that, e.g. a spill file replayed after a weekend's outage, is
folded into its pruned minute's rollup, counted once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from harness.store.db import write_transaction
from harness.store.models import (
    Capture,
    DirtyBucket,
    MigrationState,
    Outcome,
    Retention,
    ShadowComparison,
)
from harness.store.rollups import MINUTE_NS, NEVER, PRUNE_LOCK, raw_before

__all__ = ["BATCH_ROWS", "MIN_AGE_NS", "PruneResult", "prune"]

MIN_AGE_NS: Final = 60 * MINUTE_NS
"""The youngest raw rows `prune` deletes are this old (an hour)."""
BATCH_ROWS: Final = 10_000
"""About this many outcomes are deleted per transaction (whole minutes: a minute holding more
is deleted in one)."""


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune deleted (or, `dry_run`, would delete).

    `before_ns`: raw rows before this instant (ns, UTC, minute-aligned) are gone; `asked_ns`:
    the instant asked for (`now - older_than`, or the current stage's start when that is
    earlier: `kept_for_stage` names the stage); `outcomes` and `shadow_comparisons` deleted;
    `batches` transactions; `stopped_at_ns`: a minute still dirty that stopped it short (the
    next prune, after compaction, goes on), else None; `captures` deleted (every capture
    before `now - older_than`, whatever the stage).
    """

    before_ns: int
    asked_ns: int
    outcomes: int
    shadow_comparisons: int
    batches: int
    dry_run: bool
    kept_for_stage: str | None
    stopped_at_ns: int | None
    captures: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values."""
        return asdict(self)


def _stage_start(conn: Connection) -> tuple[int, str] | None:
    """The earliest start of any migration's current stage, and that stage: the oldest window
    a gate still judges (each migration judges its own)."""
    row = conn.execute(
        select(MigrationState.stage_since_ns, MigrationState.stage)
        .order_by(MigrationState.stage_since_ns)
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def _first_dirty(conn: Connection, start: int, end: int) -> int | None:
    value = conn.execute(
        select(func.min(DirtyBucket.bucket_ns)).where(
            DirtyBucket.period_ns == MINUTE_NS,
            DirtyBucket.bucket_ns >= start,
            DirtyBucket.bucket_ns < end,
        )
    ).scalar()
    return None if value is None else int(value)


def _set_mark(conn: Connection, before_ns: int, now_ns: int) -> None:
    dialect: Any = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(Retention).values(id=1, raw_before_ns=before_ns, pruned_ns=now_ns)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[Retention.id], set_={"raw_before_ns": before_ns, "pruned_ns": now_ns}
        )
    )


class _Retry(Exception):
    """A minute turned dirty during the batch: roll it back and stop below that minute."""

    def __init__(self, minute: int) -> None:
        super().__init__(minute)
        self.minute = minute


def _batch(engine: Engine, cutoff: int, now: int) -> tuple[int, int, int, int | None] | None:
    """One batch: (outcomes, shadow comparisons, new mark, dirty minute that stopped it), or
    None when the mark is at the cutoff already."""
    limit = cutoff
    while True:
        try:
            with write_transaction(engine) as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:c, :o)"),
                        {"c": PRUNE_LOCK[0], "o": PRUNE_LOCK[1]},
                    )
                mark = raw_before(conn)
                if mark == NEVER:
                    first = conn.execute(select(func.min(Outcome.ts_ns))).scalar()
                    mark = (
                        limit if first is None else min(limit, int(first) - int(first) % MINUTE_NS)
                    )
                if mark >= limit:
                    return None
                nth = conn.execute(
                    select(Outcome.ts_ns)
                    .where(Outcome.ts_ns >= mark, Outcome.ts_ns < limit)
                    .order_by(Outcome.ts_ns)
                    .offset(BATCH_ROWS)
                    .limit(1)
                ).scalar()
                end = (
                    limit if nth is None else max(int(nth) - int(nth) % MINUTE_NS, mark + MINUTE_NS)
                )
                dirty = _first_dirty(conn, mark, end)
                if dirty is not None:
                    end = dirty
                if end <= mark:
                    return 0, 0, mark, dirty
                outcomes = conn.execute(
                    delete(Outcome).where(Outcome.ts_ns >= mark, Outcome.ts_ns < end)
                ).rowcount
                shadows = conn.execute(
                    delete(ShadowComparison).where(ShadowComparison.ts_ns < end)
                ).rowcount
                turned = _first_dirty(conn, mark, end)
                if turned is not None:
                    raise _Retry(turned)
                _set_mark(conn, end, now)
                return int(outcomes), int(shadows), end, dirty
        except _Retry as retry:
            limit = retry.minute


def _count(engine: Engine, cutoff: int) -> tuple[int, int, int, int | None]:
    with engine.connect() as conn:
        mark = raw_before(conn)
        start = NEVER if mark == NEVER else mark
        if start >= cutoff:
            return 0, 0, max(mark, cutoff) if mark != NEVER else cutoff, None
        dirty = _first_dirty(conn, start, cutoff)
        end = cutoff if dirty is None else dirty
        outcomes = conn.execute(
            select(func.count()).where(Outcome.ts_ns >= start, Outcome.ts_ns < end)
        ).scalar_one()
        shadows = conn.execute(
            select(func.count()).where(ShadowComparison.ts_ns < end)
        ).scalar_one()
    return int(outcomes), int(shadows), end, dirty


def prune(
    engine: Engine, older_than_ns: int, *, dry_run: bool = False, now_ns: int | None = None
) -> PruneResult:
    """Delete raw outcomes and shadow comparisons older than `older_than_ns` (see the module
    docstring); safe while processes write. `ValueError` when `older_than_ns` is below
    `MIN_AGE_NS` (the CLI checks it first). Database errors propagate (SQLAlchemy's)."""
    if older_than_ns < MIN_AGE_NS:
        raise ValueError(f"older_than_ns must be at least {MIN_AGE_NS}")
    now = time.time_ns() if now_ns is None else now_ns
    asked = now - older_than_ns
    with engine.connect() as conn:
        stage = _stage_start(conn)
    kept_for = None
    if stage is not None and stage[0] < asked:
        asked, kept_for = stage[0], stage[1]
    cutoff = asked - asked % MINUTE_NS
    captures_before = now - older_than_ns
    if dry_run:
        outcomes, shadows, end, dirty = _count(engine, cutoff)
        with engine.connect() as conn:
            captures = conn.execute(
                select(func.count()).where(Capture.ts_ns < captures_before)
            ).scalar_one()
        return PruneResult(end, asked, outcomes, shadows, 0, True, kept_for, dirty, int(captures))
    total_outcomes = total_shadows = batches = 0
    stopped: int | None = None
    while True:
        done = _batch(engine, cutoff, now)
        if done is None:
            break
        outcomes, shadows, _, dirty = done
        batches += 1
        total_outcomes += outcomes
        total_shadows += shadows
        if dirty is not None:  # the mark reached a minute still dirty: stop there
            stopped = dirty
            break
    with write_transaction(engine) as conn:
        captures = conn.execute(delete(Capture).where(Capture.ts_ns < captures_before)).rowcount
    with engine.connect() as conn:
        mark = raw_before(conn)
    return PruneResult(
        mark if mark != NEVER else cutoff,
        asked,
        total_outcomes,
        total_shadows,
        batches,
        False,
        kept_for,
        stopped,
        int(captures or 0),
    )
