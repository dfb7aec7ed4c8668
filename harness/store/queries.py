"""What the gate, `harness query`, `harness status` and the dashboard read: window figures and
history, the same answers on SQLite and PostgreSQL, in time that does not grow with the history.

A window `[since, until)` is read in three parts: whole minutes whose rollups are clean come
from `outcome_rollups` (counts summed in SQL, latency sketches merged with numpy); the partial
minutes at the two edges and any minute still marked dirty come from the raw `outcomes` (with
its rollup too when the minute was pruned: its raw rows are then only late ones). So a
window's counts are exact (but for an edge inside what `harness db prune` deleted: that partial
minute has no raw rows left, so the window counts from its first whole minute), and its
percentiles are the sketch's: the nearest-rank percentile (the value of rank ceil(p/100 * n),
numpy's `method="inverted_cdf"`) within 1% relative error.

Filters are bound parameters (SQLAlchemy expressions), never text pasted into SQL.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
from sqlalchemy import Connection, Engine, and_, false, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from harness.errors import InvalidInputError
from harness.gate.figures import OpFigures, SideFigures, WindowFigures, share
from harness.operations import Impl, Operation
from harness.sketch import LatencySketch
from harness.store.models import (
    DirtyBucket,
    Outcome,
    OutcomeRollup,
    RolloutEvent,
    Run,
    ShadowComparison,
)
from harness.store.rollups import HOUR_NS, MINUTE_NS, NEVER, raw_before

__all__ = [
    "Filters",
    "LatencyRow",
    "RateRow",
    "call_totals",
    "errors",
    "events",
    "fallbacks",
    "latency",
    "op_figures",
    "parse_duration",
    "parse_instant",
    "percentile_ms",
    "rates",
    "runs",
    "shadow",
    "window_figures",
]

MAX_LIMIT: Final = 100_000
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT_NS: Final = {
    "s": 1_000_000_000,
    "m": MINUTE_NS,
    "h": 60 * MINUTE_NS,
    "d": 1_440 * MINUTE_NS,
    "w": 10_080 * MINUTE_NS,
}
_MAX_NS: Final = 100 * 365 * _UNIT_NS["d"]  # a century: anything longer is a typo


# ----- parsing a user's filters -----------------------------------------------------------------


def parse_duration(
    text: str, field: str = "duration", examples: str = "30s, 15m, 1h, 2h30m, 7d"
) -> int:
    """Nanoseconds of a duration like `90s`, `15m`, `1h`, `2h30m`, `7d`, `1w` (at most a century).

    Raises `InvalidInputError(field, text, ...)` for anything else, its reason showing
    `examples` (valid values for `field`: a caller that takes only whole minutes names those).
    """
    value = text.strip().lower() if isinstance(text, str) else ""
    parts = _DURATION.findall(value)
    if not value or not parts or "".join(n + u for n, u in parts) != value:
        raise InvalidInputError(field, text, f"expected a duration such as {examples}")
    total = sum(int(n) * _UNIT_NS[u] for n, u in parts)
    if total <= 0:
        raise InvalidInputError(field, text, "must be longer than zero")
    if total > _MAX_NS:
        raise InvalidInputError(field, text, "longer than a century")
    return total


def parse_instant(text: str, field: str, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch of `--since`/`--until`: a duration back from now (`1h`) or an
    ISO-8601 timestamp (`2026-11-30T14:00`, `...Z`, an offset; naive means UTC)."""
    now = time.time_ns() if now_ns is None else now_ns
    value = text.strip() if isinstance(text, str) else ""
    if _DURATION.match(value.lower()):
        return now - parse_duration(value, field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        reason = "expected a duration back from now (1h, 30m, 7d) or an ISO-8601 timestamp"
        raise InvalidInputError(field, text, reason) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1970 <= parsed.astimezone(UTC).year <= 2200:
        raise InvalidInputError(field, text, "outside the years 1970 to 2200")
    delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta // timedelta(microseconds=1)) * 1_000


@dataclass(frozen=True, slots=True)
class Filters:
    """What a history query keeps: every field optional (None = any).

    `op` is any operation's name; `migration` keeps that migration's rows; `ops` keeps those
    operations' rows (the gate's window of one migration). `impl` is the side that served;
    `since_ns`/`until_ns` bound the outcome's start time; `bucket_ns` (a whole number of
    minutes) splits the answer into a time series.
    """

    op: str | None = None
    impl: Impl | None = None
    stage: str | None = None
    run: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    bucket_ns: int | None = None
    migration: str | None = None
    ops: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("stage", "run"):
            value = getattr(self, name)
            if value is not None and (not value or len(value) > 255 or not value.isprintable()):
                reason = "must be 1 to 255 printable characters"
                raise InvalidInputError(name, value, reason)
        since, until = self.since_ns, self.until_ns
        if since is not None and until is not None and since >= until:
            raise InvalidInputError("since", self.since_ns, "must be before --until")
        if self.bucket_ns is not None and (
            self.bucket_ns < MINUTE_NS or self.bucket_ns % MINUTE_NS
        ):
            raise InvalidInputError("bucket", self.bucket_ns, "must be a whole number of minutes")


# ----- the window plan: hours, then minutes, then raw rows ----------------------------------------


def _floor(ns: int, period: int = MINUTE_NS) -> int:
    return ns - ns % period


def _ceil(ns: int, period: int = MINUTE_NS) -> int:
    return -((-ns) // period) * period


def _span(column: Any, start: int | None, end: int | None) -> ColumnElement[bool]:
    """`start <= column < end` (either side open when None)."""
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return and_(true(), *conditions)


_between = _span


@dataclass(frozen=True, slots=True)
class _Plan:
    rollups: ColumnElement[bool]  # rollup rows to read (hours and minutes, all clean)
    raw: ColumnElement[bool]  # outcomes read raw (the partial minutes at the ends, dirty minutes)


def _dirty(conn: Connection, period: int, start: int | None, end: int | None) -> list[int]:
    query = select(DirtyBucket.bucket_ns).where(
        DirtyBucket.period_ns == period, _span(DirtyBucket.bucket_ns, start, end)
    )
    return sorted(int(b) for b in conn.execute(query).scalars())


def _plan(conn: Connection, since: int | None, until: int | None, *, hours: bool = True) -> _Plan:
    """Which rollup rows and which raw rows make up `[since, until)` exactly (see the module
    docstring); `hours=False` reads whole minutes only (for buckets shorter than an hour)."""
    r, ts = OutcomeRollup, Outcome.ts_ns
    m_first = None if since is None else _ceil(since)
    m_last = None if until is None else _floor(until)
    if m_first is not None and m_last is not None and m_first >= m_last:
        return _Plan(false(), _span(ts, since, until))  # no whole minute inside
    rollup_parts: list[ColumnElement[bool]] = []
    minute_spans: list[tuple[int | None, int | None]] = []
    h_first = None if since is None else _ceil(since, HOUR_NS)
    h_last = None if until is None else _floor(until, HOUR_NS)
    if hours and (h_first is None or h_last is None or h_first < h_last):
        dirty_hours = _dirty(conn, HOUR_NS, h_first, h_last)
        hour_rows = and_(r.period_ns == HOUR_NS, _span(r.bucket_ns, h_first, h_last))
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
        raw_parts.append(_span(ts, since, m_first))
    if until is not None and m_last is not None and m_last < until:
        raw_parts.append(_span(ts, m_last, until))
    pruned_before = raw_before(conn) if minute_spans else NEVER
    for start, end in minute_spans:
        dirty_minutes = _dirty(conn, MINUTE_NS, start, end)
        minute_rows = and_(r.period_ns == MINUTE_NS, _span(r.bucket_ns, start, end))
        # A dirty minute is read raw, in place of its stale rollup; but a pruned one's raw rows
        # are only the late rows its rollup lacks: both are read (see rollups.py).
        stale = [m for m in dirty_minutes if m >= pruned_before]
        if stale:
            minute_rows = and_(minute_rows, r.bucket_ns.not_in(stale))
        raw_parts.extend(_span(ts, m, m + MINUTE_NS) for m in dirty_minutes)
        rollup_parts.append(minute_rows)
    return _Plan(
        or_(*rollup_parts) if rollup_parts else false(),
        or_(*raw_parts) if raw_parts else false(),
    )


def _same(model: Any, filters: Filters) -> list[ColumnElement[bool]]:
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
    return conditions


# ----- group figures ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    """Counts and latencies of one (bucket, op, routed, served, fell_back, ok) group."""

    n: int = 0
    latency_sum_us: float = 0.0
    latency_max_us: float = 0.0
    blobs: list[bytes] | None = None
    raw: list[float] | None = None

    def sketch(self) -> LatencySketch:
        out = LatencySketch.from_blobs(self.blobs or [])
        if self.raw:
            out.add_many(self.raw)
        return out


_KEY = ("op", "routed", "served", "fell_back", "ok", "targeted")


def _collect(
    conn: Connection, filters: Filters, *, sketches: bool
) -> dict[tuple[Any, ...], _Group]:
    """Figures per (bucket start or None, op, routed, served, fell_back, ok) over the filters."""
    bucket = filters.bucket_ns
    hours = bucket is None or bucket % HOUR_NS == 0
    plan = _plan(conn, filters.since_ns, filters.until_ns, hours=hours)
    groups: dict[tuple[Any, ...], _Group] = defaultdict(_Group)

    r = OutcomeRollup
    keys = [getattr(r, k) for k in _KEY]
    where = and_(plan.rollups, *_same(r, filters))
    by = [r.bucket_ns, *keys] if bucket is not None else keys
    counts = (
        select(*by, func.sum(r.n), func.sum(r.latency_sum_us), func.max(r.latency_max_us))
        .where(where)
        .group_by(*by)
    )
    for row in conn.execute(counts).all():
        values = tuple(row)
        start = None if bucket is None else int(values[0]) - int(values[0]) % bucket
        op, routed, served, fell_back, ok, targeted, n, total, peak = values[-9:]
        group = groups[(start, op, routed, served, bool(fell_back), bool(ok), bool(targeted))]
        group.n += int(n)
        group.latency_sum_us += float(total)
        group.latency_max_us = max(group.latency_max_us, float(peak))
    if sketches:
        blobs = select(r.bucket_ns, *keys, r.sketch).where(
            where, r.ok.is_(True), r.fell_back.is_(False)
        )
        for at, op, routed, served, fell_back, ok, targeted, blob in conn.execute(blobs).all():
            start = None if bucket is None else int(at) - int(at) % bucket
            group = groups[(start, op, routed, served, bool(fell_back), bool(ok), bool(targeted))]
            if group.blobs is None:
                group.blobs = []
            group.blobs.append(bytes(blob))

    o = Outcome
    raw = select(o.ts_ns, *(getattr(o, k) for k in _KEY), o.latency_us).where(
        plan.raw, *_same(o, filters)
    )
    for ts, op, routed, served, fell_back, ok, targeted, latency in conn.execute(raw):
        start = None if bucket is None else int(ts) - int(ts) % bucket
        group = groups[(start, op, routed, served, bool(fell_back), bool(ok), bool(targeted))]
        group.n += 1
        group.latency_sum_us += float(latency)
        group.latency_max_us = max(group.latency_max_us, float(latency))
        if sketches and ok and not fell_back:
            if group.raw is None:
                group.raw = []
            group.raw.append(float(latency))
    return groups


# ----- the gate's window ------------------------------------------------------------------------


def _shadow_conditions(filters: Filters) -> list[ColumnElement[bool]]:
    """The filters on shadow comparisons (`impl`: the primary side)."""
    s = ShadowComparison
    conditions = [_between(s.ts_ns, filters.since_ns, filters.until_ns)]
    if filters.op is not None:
        conditions.append(s.op == str(filters.op))
    if filters.ops is not None:
        conditions.append(s.op.in_([str(op) for op in filters.ops]))
    if filters.migration is not None:
        conditions.append(s.migration == filters.migration)
    if filters.impl is not None:
        conditions.append(s.primary == filters.impl.value)
    if filters.stage is not None:
        conditions.append(s.stage == filters.stage)
    if filters.run is not None:
        conditions.append(s.run_id == filters.run)
    return conditions


def window_figures(
    engine: Engine | Connection,
    stage: str,
    since_ns: int,
    until_ns: int | None = None,
    ops: Sequence[str] | None = None,
) -> WindowFigures:
    """The figures of `stage` over `[since_ns, until_ns)` (until: now) for `harness.gate.judge`,
    of the operations `ops` (one migration's; None: every operation)."""
    until = time.time_ns() if until_ns is None else until_ns
    filters = Filters(
        stage=stage,
        since_ns=since_ns,
        until_ns=max(until, since_ns + 1),
        ops=None if ops is None else tuple(str(op) for op in ops),
    )
    figures = op_figures(engine, filters)
    return WindowFigures(stage=stage, since_ns=since_ns, until_ns=until, ops=figures)


def op_figures(engine: Engine | Connection, filters: Filters) -> dict[str, OpFigures]:
    """Per operation, each side's calls (by the side routed to), errors, fallbacks and latency
    of its successful calls served without a fallback, and the shadow comparisons and
    mismatches, over the filters (`impl` keeps the rows served by that side and the
    comparisons whose primary it was). What the gate judges for a stage's window, and what
    `harness run` prints for one run (`Filters(run=...)`)."""
    with _connection(engine) as conn:
        groups = _collect(conn, filters, sketches=True)
        s = ShadowComparison
        shadow_q = (
            select(s.op, s.matched, func.count())
            .where(*_shadow_conditions(filters))
            .group_by(s.op, s.matched)
        )
        shadows: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for op, matched, count in conn.execute(shadow_q):
            shadows[op][0] += int(count)
            if not matched:
                shadows[op][1] += int(count)
    ops: dict[str, OpFigures] = {}
    found = {key[1] for key in groups} | set(shadows)
    wanted = [str(op) for op in Operation] if filters.ops is None else list(filters.ops)
    if filters.op is not None:
        wanted = [str(filters.op)]
    names = [*wanted, *sorted(found - set(wanted))] if filters.ops is None else wanted
    for op in names:
        sides: dict[str, SideFigures] = {}
        for side in Impl:
            calls = errors = fallbacks = not_targeted = 0
            latency = LatencySketch()
            peak: float | None = None
            for (_, g_op, routed, served, fell_back, ok, targeted), group in groups.items():
                if g_op != op:
                    continue
                if routed == side.value:
                    calls += group.n
                    errors += 0 if ok else group.n
                    fallbacks += group.n if fell_back else 0
                    not_targeted += 0 if targeted else group.n
                if served == side.value and ok and not fell_back:
                    latency.merge(group.sketch())
                    top = group.latency_max_us
                    peak = top if peak is None or (top is not None and top > peak) else peak
            sides[side.value] = SideFigures(
                calls=calls, errors=errors, fallbacks=fallbacks, latency=latency,
                latency_max_us=peak if latency.n else None, not_targeted=not_targeted,
            )  # fmt: skip
        comparisons, mismatches = shadows.get(op, [0, 0])
        ops[op] = OpFigures(
            op=op,
            rust=sides["rust"],
            python=sides["python"],
            shadow_comparisons=comparisons,
            shadow_mismatches=mismatches,
        )
    return ops


class _connection:
    """`with _connection(engine_or_conn) as conn`: a new connection, or the one given."""

    def __init__(self, source: Engine | Connection) -> None:
        self._source = source
        self._opened: Connection | None = None

    def __enter__(self) -> Connection:
        if isinstance(self._source, Connection):
            return self._source
        self._opened = self._source.connect()
        return self._opened

    def __exit__(self, *exc: object) -> None:
        if self._opened is not None:
            self._opened.close()


# ----- history: latency -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """One line of `harness query latency`: a side's successful calls of one operation.

    Latencies are of successful calls served by `impl` without a fallback, in milliseconds;
    `count` counts them; `calls` counts every call served by `impl` (errors included);
    percentiles are nearest-rank within 1% (see the module docstring).
    """

    bucket: str | None
    op: str
    impl: str
    calls: int
    count: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this row (stable keys)."""
        out = {
            "op": self.op,
            "impl": self.impl,
            "calls": self.calls,
            "count": self.count,
            "mean_ms": self.mean_ms,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }
        if self.bucket is not None:
            out = {"bucket": self.bucket, **out}
        return out


MS_DIGITS: Final = 12
"""Significant digits a figure in ms keeps: every digit a latency is measured with (1 ns over
1000 s), none of the noise of the division by 1000 (0.30000000000000004 is 0.3)."""


def _ms(us: float | None) -> float | None:
    """Microseconds as milliseconds, to `MS_DIGITS` significant digits, never fixed decimals:
    4 decimals of a ms were 0.1 us, 2-5% of a 2-5 us call, beyond the sketch's 1%."""
    return None if us is None else float(f"{us / 1000.0:.{MS_DIGITS}g}")


def _iso(ns: int) -> str:
    return (
        datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def percentile_ms(sketch: LatencySketch, q: float, peak_us: float | None) -> float | None:
    """The sketch's `q` quantile in ms, capped at the exact maximum `peak_us`: the sketch is
    within 1% of the true value, so it may land above the maximum, which no percentile can.
    Only what is shown is capped; the gate judges from the sketch itself. Significant digits,
    not decimals (see `_ms`): what a table shows of it (4 significant digits) stays within the
    sketch's 1% from 1 us to hours."""
    value = sketch.quantile(q)
    if value is not None and peak_us is not None:
        value = min(value, peak_us)
    return _ms(value)


def latency(engine: Engine, filters: Filters) -> list[LatencyRow]:
    """Latency per (bucket,) op and serving side over the filters, ordered by bucket, op, side."""
    with engine.connect() as conn:
        groups = _collect(conn, filters, sketches=True)
    merged: dict[tuple[Any, str, str], list[_Group]] = defaultdict(list)
    calls: dict[tuple[Any, str, str], int] = defaultdict(int)
    for (bucket, op, _routed, served, fell_back, ok, _targeted), group in groups.items():
        key = (bucket, op, served)
        calls[key] += group.n
        if ok and not fell_back:
            merged[key].append(group)
    order = {op.value: i for i, op in enumerate(Operation)}
    rows = []
    for key in sorted(calls, key=lambda k: (k[0] or 0, order.get(k[1], 99), k[2])):
        bucket, op, served = key
        parts = merged.get(key, [])
        count = sum(g.n for g in parts)
        sketch = LatencySketch()
        for g in parts:
            sketch.merge(g.sketch())
        total = sum(g.latency_sum_us for g in parts)
        peak = max((g.latency_max_us for g in parts), default=None) if count else None
        rows.append(
            LatencyRow(
                bucket=None if bucket is None else _iso(bucket),
                op=op,
                impl=served,
                calls=calls[key],
                count=count,
                mean_ms=_ms(total / count) if count else None,
                p50_ms=percentile_ms(sketch, 0.50, peak),
                p95_ms=percentile_ms(sketch, 0.95, peak),
                p99_ms=percentile_ms(sketch, 0.99, peak),
                max_ms=_ms(peak),
            )
        )
    return rows


# ----- history: error and fallback rates -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateRow:
    """One line of `harness query rates`: the calls routed to one side (`impl`) of one operation
    (in one bucket), how many failed for the caller and how many fell back to Python.

    The counts are the gate's (`SideFigures`): `error_rate` = errors / calls, `fallback_rate` =
    fallbacks / calls (None without calls; fallbacks are 0 on the Python side).
    """

    bucket: str | None
    op: str
    impl: str
    calls: int
    errors: int
    fallbacks: int

    @property
    def error_rate(self) -> float | None:
        """errors / calls (None without calls)."""
        return share(self.errors, self.calls)

    @property
    def fallback_rate(self) -> float | None:
        """fallbacks / calls (None without calls)."""
        return share(self.fallbacks, self.calls)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this row (stable keys)."""
        out: dict[str, Any] = {
            "op": self.op,
            "impl": self.impl,
            "calls": self.calls,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "error_rate": self.error_rate,
            "fallback_rate": self.fallback_rate,
        }
        if self.bucket is not None:
            out = {"bucket": self.bucket, **out}
        return out


def rates(engine: Engine, filters: Filters) -> list[RateRow]:
    """Calls, errors and fallbacks per (bucket,) op and ROUTED side, ordered by bucket, op, side.

    Unlike the other queries, `filters.impl` picks the side the calls were routed to (a rate
    is judged per routed side); counts come from the rollups as the gate's do.
    """
    with engine.connect() as conn:
        groups = _collect(conn, replace(filters, impl=None), sketches=False)
    counts: dict[tuple[Any, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (bucket, op, routed, _served, fell_back, ok, _targeted), group in groups.items():
        if filters.impl is not None and routed != filters.impl.value:
            continue
        row = counts[(bucket, op, routed)]
        row[0] += group.n
        row[1] += 0 if ok else group.n
        row[2] += group.n if fell_back else 0
    order = {op.value: i for i, op in enumerate(Operation)}
    return [
        RateRow(
            bucket=None if bucket is None else _iso(bucket),
            op=op,
            impl=routed,
            calls=calls,
            errors=failed,
            fallbacks=fell,
        )
        for (bucket, op, routed), (calls, failed, fell) in sorted(
            counts.items(), key=lambda kv: (kv[0][0] or 0, order.get(kv[0][1], 99), kv[0][2])
        )
    ]


# ----- history: rows ----------------------------------------------------------------------------


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError("limit", limit, f"must be an integer within 1..{MAX_LIMIT}")
    return limit


def _outcome_rows(
    engine: Engine, filters: Filters, condition: ColumnElement[bool], limit: int
) -> list[dict[str, Any]]:
    o = Outcome
    query = (
        select(
            o.ts_ns,
            o.run_id,
            o.op,
            o.stage,
            o.routed,
            o.served,
            o.fell_back,
            o.fallback_reason,
            o.ok,
            o.error_class,
            o.error_message,
            o.latency_us,
            o.attempts,
            o.http_status,
            o.order_id,
            o.custom_tag,
            o.reconciled,
        )
        .where(
            condition,
            _between(o.ts_ns, filters.since_ns, filters.until_ns),
            *_same(o, filters),
        )
        .order_by(o.ts_ns.desc())
        .limit(_limit(limit))
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "time": _iso_precise(int(r.ts_ns)),
            "run": r.run_id,
            "op": r.op,
            "stage": r.stage,
            "routed": r.routed,
            "impl": r.served,
            "fell_back": bool(r.fell_back),
            "fallback_reason": r.fallback_reason,
            "ok": bool(r.ok),
            "error_class": r.error_class,
            "error_message": r.error_message,
            "latency_ms": _ms(float(r.latency_us)),
            "attempts": r.attempts,
            "http_status": r.http_status,
            "order_id": r.order_id,
            "custom_tag": r.custom_tag,
            "reconciled": bool(r.reconciled),
        }
        for r in rows
    ]


def _iso_precise(ns: int) -> str:
    stamp = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{(ns % 1_000_000_000) // 1000:06d}Z"


def reconciled(engine: Engine, filters: Filters) -> dict[str, int]:
    """Calls settled by a look-up after an attempt of unknown outcome, per operation (only
    those that had any): a placement found by its customTag, a modify/cancel found applied."""
    o = Outcome
    query = (
        select(o.op, func.count())
        .where(
            o.reconciled.is_(True),
            _between(o.ts_ns, filters.since_ns, filters.until_ns),
            *_same(o, filters),
        )
        .group_by(o.op)
    )
    with engine.connect() as conn:
        return {str(op): int(n) for op, n in conn.execute(query)}


def errors(engine: Engine, filters: Filters, limit: int = 50) -> list[dict[str, Any]]:
    """Failed calls, newest first (`impl`: the side whose error the caller got)."""
    return _outcome_rows(engine, filters, Outcome.ok.is_(False), limit)


def fallbacks(engine: Engine, filters: Filters, limit: int = 50) -> list[dict[str, Any]]:
    """Calls routed to Rust and served by Python, newest first, with the reason."""
    return _outcome_rows(engine, filters, Outcome.fell_back.is_(True), limit)


def shadow(
    engine: Engine, filters: Filters, limit: int = 50, *, mismatches_only: bool = False
) -> list[dict[str, Any]]:
    """Shadow comparisons, newest first (`impl` filters the primary side)."""
    s = ShadowComparison
    conditions = _shadow_conditions(filters)
    if mismatches_only:
        conditions.append(s.matched.is_(False))
    query = select(s).where(*conditions).order_by(s.ts_ns.desc()).limit(_limit(limit))
    with engine.connect() as conn:
        rows = conn.execute(query).all()  # Core rows: one attribute per column
    return [
        {
            "time": _iso_precise(r.ts_ns),
            "run": r.run_id,
            "op": r.op,
            "stage": r.stage,
            "key": r.routing_key,
            "primary": r.primary,
            "shadow": r.shadow,
            "matched": bool(r.matched),
            "timeframe": r.timeframe,
            "bar_index": r.bar_index,
            "field": r.field,
            "primary_value": r.primary_value,
            "shadow_value": r.shadow_value,
            "primary_ms": _ms(r.primary_latency_us),
            "shadow_ms": _ms(r.shadow_latency_us),
            "shadow_error": r.shadow_error,
            "bars_in": r.bars_in,
        }
        for r in rows
    ]


def events(engine: Engine, filters: Filters, limit: int = 50) -> list[dict[str, Any]]:
    """Rollout events, newest first (`op` filters breaker events; `stage` either end)."""
    e = RolloutEvent
    conditions = [_between(e.ts_ns, filters.since_ns, filters.until_ns)]
    if filters.op is not None:
        conditions.append(e.op == str(filters.op))
    if filters.migration is not None:  # its own events, and those of every migration at once
        conditions.append(or_(e.migration == filters.migration, e.migration.is_(None)))
    if filters.stage is not None:
        conditions.append(or_(e.from_stage == filters.stage, e.to_stage == filters.stage))
    if filters.run is not None:
        conditions.append(e.run_id == filters.run)
    query = select(e).where(*conditions).order_by(e.ts_ns.desc()).limit(_limit(limit))
    with engine.connect() as conn:
        rows = conn.execute(query).all()  # Core rows: one attribute per column
    return [
        {
            "time": _iso_precise(r.ts_ns),
            "kind": r.kind,
            "migration": r.migration or "all",
            "op": r.op,
            "from_stage": r.from_stage,
            "to_stage": r.to_stage,
            "who": r.who,
            "reason": r.reason,
            "forced": bool(r.forced),
            "run": r.run_id,
            "host": r.host,
            "pid": r.pid,
            "gate": r.gate,
        }
        for r in rows
    ]


def runs(engine: Engine, filters: Filters, limit: int = 50) -> list[dict[str, Any]]:
    """Runs, newest first (`run` picks one by id or id prefix); `reason` says why a failed
    run failed."""
    r = Run
    conditions = [_between(r.started_ns, filters.since_ns, filters.until_ns)]
    if filters.run is not None:
        conditions.append(r.id.startswith(filters.run, autoescape=True))
    query = select(r).where(*conditions).order_by(r.started_ns.desc()).limit(_limit(limit))
    with engine.connect() as conn:
        rows = conn.execute(query).all()  # Core rows: one attribute per column
    return [
        {
            "run": x.id,
            "started": _iso_precise(x.started_ns),
            "ended": None if x.ended_ns is None else _iso_precise(x.ended_ns),
            "status": x.status,
            "kind": x.kind,
            "host": x.host,
            "pid": x.pid,
            "user": x.os_user,
            "version": x.version,
            "native_available": bool(x.native_available),
            "rows_recorded": x.rows_recorded,
            "rows_dropped": x.rows_dropped,
            "reason": _run_reason(x.summary),
        }
        for x in rows
    ]


def _run_reason(summary: str | None) -> str | None:
    """Why a run failed, as its row's summary holds it (None for a run that did not fail)."""
    if not summary:
        return None
    try:
        reason = json.loads(summary).get("reason")
    except (ValueError, AttributeError):
        return None
    return None if reason is None else str(reason)


def percentiles(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    """Nearest-rank percentiles of raw values (numpy `inverted_cdf`): the reference the sketch's
    answers are tested against."""
    array = np.asarray(values, dtype=np.float64)
    return [float(np.quantile(array, q, method="inverted_cdf")) for q in qs]


# ----- totals since the beginning (the metrics exporter) ------------------------------------------


def call_totals(conn: Connection) -> dict[tuple[str | None, str, str, str, bool, bool], int]:
    """Every call ever recorded, counted per (migration, op, routed, served, fell_back, ok).

    Read as every query reads all time (`_plan(None, None)`: clean hour rollups, the minutes of
    dirty hours, dirty minutes raw), so each (op, routed) sum equals `rates(Filters())`'s calls
    and the errors and fallbacks split out of it equal its errors and fallbacks. `migration` is
    None only for a raw row written without one (older schema or by hand)."""
    plan = _plan(conn, None, None)
    r, o = OutcomeRollup, Outcome
    key = ("migration", "op", "routed", "served", "fell_back", "ok")
    totals: dict[tuple[str | None, str, str, str, bool, bool], int] = defaultdict(int)
    rolled = [getattr(r, k) for k in key]
    counted = select(*rolled, func.sum(r.n)).where(plan.rollups).group_by(*rolled)
    raw = [getattr(o, k) for k in key]
    listed = select(*raw, func.count()).where(plan.raw).group_by(*raw)
    for query in (counted, listed):
        for row in conn.execute(query):
            migration, op, routed, served, fell_back, ok, n = tuple(row)
            totals[(migration, op, routed, served, bool(fell_back), bool(ok))] += int(n)
    return dict(totals)
