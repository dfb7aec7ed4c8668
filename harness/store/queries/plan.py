"""Which rollup rows and which raw outcomes make up a window exactly (see the package
docstring): whole hours, then whole minutes, then raw rows; and the filters' conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, false, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from harness.store.models import (
    DirtyBucket,
    Outcome,
    OutcomeRollup,
    Run,
)
from harness.store.queries.filters import Filters
from harness.store.rollups import HOUR_NS, MINUTE_NS, NEVER, raw_before


def _floor(ns: int, period: int = MINUTE_NS) -> int:
    return ns - ns % period


def _ceil(ns: int, period: int = MINUTE_NS) -> int:
    return -((-ns) // period) * period


def span(column: Any, start: int | None, end: int | None) -> ColumnElement[bool]:
    """`start <= column < end` (either side open when None)."""
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return and_(true(), *conditions)


span = span


@dataclass(frozen=True, slots=True)
class Plan:
    rollups: ColumnElement[bool]  # rollup rows to read (hours and minutes, all clean)
    raw: ColumnElement[bool]  # outcomes read raw (the partial minutes at the ends, dirty minutes)


def _dirty(conn: Connection, period: int, start: int | None, end: int | None) -> list[int]:
    query = select(DirtyBucket.bucket_ns).where(
        DirtyBucket.period_ns == period, span(DirtyBucket.bucket_ns, start, end)
    )
    return sorted(int(b) for b in conn.execute(query).scalars())


def window_plan(
    conn: Connection, since: int | None, until: int | None, *, hours: bool = True
) -> Plan:
    """Which rollup rows and which raw rows make up `[since, until)` exactly (see the package
    docstring); `hours=False` reads whole minutes only (for buckets shorter than an hour)."""
    r, ts = OutcomeRollup, Outcome.ts_ns
    m_first = None if since is None else _ceil(since)
    m_last = None if until is None else _floor(until)
    if m_first is not None and m_last is not None and m_first >= m_last:
        return Plan(false(), span(ts, since, until))  # no whole minute inside
    rollup_parts: list[ColumnElement[bool]] = []
    minute_spans: list[tuple[int | None, int | None]] = []
    h_first = None if since is None else _ceil(since, HOUR_NS)
    h_last = None if until is None else _floor(until, HOUR_NS)
    if hours and (h_first is None or h_last is None or h_first < h_last):
        dirty_hours = _dirty(conn, HOUR_NS, h_first, h_last)
        hour_rows = and_(r.period_ns == HOUR_NS, span(r.bucket_ns, h_first, h_last))
        if dirty_hours:
            hour_rows = and_(hour_rows, r.bucket_ns.not_in(dirty_hours))
        rollup_parts.append(hour_rows)
        if m_first is not None and h_first is not None and m_first < h_first:
            minute_spans.append((m_first, h_first))
        if m_last is not None and h_last is not None and h_last < m_last:
            minute_spans.append((h_last, m_last))
        minute_spans.extend((h, h + HOUR_NS) for h in dirty_hours)
    else:
        minute_spans.append((m_first, m_last))
    raw_parts: list[ColumnElement[bool]] = []
    if since is not None and m_first is not None and since < m_first:
        raw_parts.append(span(ts, since, m_first))
    if until is not None and m_last is not None and m_last < until:
        raw_parts.append(span(ts, m_last, until))
    pruned_before = raw_before(conn) if minute_spans else NEVER
    for start, end in minute_spans:
        dirty_minutes = _dirty(conn, MINUTE_NS, start, end)
        minute_rows = and_(r.period_ns == MINUTE_NS, span(r.bucket_ns, start, end))
        # A dirty minute is read raw, in place of its stale rollup; but a pruned one's raw rows
        # are only the late rows its rollup lacks: both are read (see rollups.py).
        stale = [m for m in dirty_minutes if m >= pruned_before]
        if stale:
            minute_rows = and_(minute_rows, r.bucket_ns.not_in(stale))
        raw_parts.extend(span(ts, m, m + MINUTE_NS) for m in dirty_minutes)
        rollup_parts.append(minute_rows)
    return Plan(
        or_(*rollup_parts) if rollup_parts else false(),
        or_(*raw_parts) if raw_parts else false(),
    )


def same(model: Any, filters: Filters) -> list[ColumnElement[bool]]:
    conditions = []
    if filters.op is not None:
        conditions.append(model.op == str(filters.op))
    if filters.ops is not None:
        conditions.append(model.op.in_([str(op) for op in filters.ops]))
    if filters.migration is not None:
        conditions.append(model.migration == filters.migration)
    if filters.impl is not None:
        conditions.append(model.served == filters.impl.value)
    if filters.stage is not None:
        conditions.append(model.stage == filters.stage)
    if filters.run is not None:
        conditions.append(model.run_id == filters.run)
    if filters.build is not None:
        conditions.append(model.run_id.in_(runs_of_build(filters.build)))
    return conditions


def runs_of_build(build: str) -> Any:
    """The ids of the runs whose `build_id` starts with `build` (a subquery: runs are few, one
    per process, so the rollups keep their indexes and the gate its speed)."""
    return select(Run.id).where(Run.build_id.startswith(build, autoescape=True))
