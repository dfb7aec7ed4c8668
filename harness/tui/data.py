"""What the dashboard reads on every refresh, and the database handle it reads it through.

No Textual here: `load_snapshot` is the whole of a refresh's database work (timed by
`benches/tui_refresh.py`, tested without a terminal), and it reads only through the functions
the CLI uses: `harness.control.actions.overview` (the stage, the gate's window figures and
verdict, breakers, the native module; what `harness status` and `harness gate` print) and
`harness.store.queries.latency` / `rates` over the chart window (what `harness query latency
--op OP --bucket 1m` and `harness query rates --op OP --bucket 1m` print). Every read is of
rollups plus the partial minutes at a window's edges, so a refresh's cost is bounded by the
window's length and the number of groups, not by how many outcomes are stored.

The per-operation figures cover the current stage's window, `[stage entered, now)`: the
window the gate judges, so the table and the verdict always agree. The charts cover the last
`CHART_WINDOW_NS` in one-minute buckets, across stage changes, for the one operation charted
(reading every operation's series each second would cost more than the rest of the refresh).

The stage the rollout left last (`StageLeft`: which, from when to when, by which event) comes
from the event log with every refresh (two indexed rows); its figures, over the window it had
(what the gate judged when it was left), are read only while the person asks to see them
(`w` on the overview): after a rollback the new stage's window is empty, and the figures that
led to it are the ones to look at.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine, or_, select
from sqlalchemy.exc import SQLAlchemyError

from harness.config import HarnessConfig, StageConfig, redact_url
from harness.control import actions
from harness.errors import HarnessError
from harness.gate.figures import WindowFigures
from harness.operations import Impl, Operation
from harness.store.db import open_store, unavailable_error
from harness.store.models import RolloutEvent
from harness.store.queries import (
    Filters,
    LatencyRow,
    RateRow,
    latency,
    percentile_ms,
    rates,
    window_figures,
)
from harness.store.rollups import MINUTE_NS
from harness.store.state import STAGE_EVENT_KINDS, EventKind, LiveState
from harness.tui import scope

__all__ = [
    "CHART_BUCKET_NS",
    "CHART_WINDOW_NS",
    "OpRow",
    "Point",
    "Snapshot",
    "StageLeft",
    "Store",
    "failure_text",
    "load_snapshot",
    "stage_left",
]

CHART_WINDOW_NS: Final = 30 * MINUTE_NS
"""How far back the charts reach."""
CHART_BUCKET_NS: Final = MINUTE_NS
"""One point of a chart: a minute (the rollups' own grain, so a point is one rollup read)."""


@dataclass(frozen=True, slots=True)
class OpRow:
    """One operation's line of the overview: its figures over the current stage's window.

    Rates are fractions (None without calls); latencies are milliseconds of the successful
    calls each side served without a fallback, nearest-rank within the sketch's 1%. `percent`
    is the stage's configured percentage to Rust (None: a stage left that is no longer on the
    configured ladder).
    """

    op: str
    percent: float | None
    calls: int
    rust_share: float | None
    to_python: int
    not_targeted: int
    fallback_rate: float | None
    error_rate_rust: float | None
    error_rate_python: float | None
    p50_rust_ms: float | None
    p50_python_ms: float | None
    p99_rust_ms: float | None
    p99_python_ms: float | None
    shadow_comparisons: int
    shadow_mismatches: int
    breaker_open: bool
    migration: str | None = None


@dataclass(frozen=True, slots=True)
class Point:
    """One minute of one operation in the charts; `minute` is minutes before now (<= 0)."""

    minute: float
    p50_rust_ms: float | None = None
    p50_python_ms: float | None = None
    error_rate_rust: float | None = None
    error_rate_python: float | None = None
    fallback_rate: float | None = None


@dataclass(frozen=True, slots=True)
class StageLeft:
    """The stage the rollout was at before the current one, as the event log records it.

    Its window is `[since_ns, until_ns)`: from the event that entered it (None when the log
    does not hold it: its figures then cover every outcome recorded at that stage before
    `until_ns`) to the event that left it, `left_by` (`promote`, `auto_promote`,
    `rollback` or `auto_rollback`), which entered the current stage. ns since the epoch.
    """

    stage: str
    since_ns: int | None
    until_ns: int
    left_by: str


def stage_left(engine: Engine, state: LiveState) -> StageLeft | None:
    """The stage left when the current one was entered (None: the rollout started at the
    current stage, or the log holds no event that entered it). Two rows of the event log,
    read by its (kind, ts_ns) index: of `state.migration` and of actions on every migration
    at once (its NULL), or with `state.migration` None of any (the events of one step of
    every migration taken as one)."""
    e = RolloutEvent
    # Distinct: a promotion or rollback of every migration at once writes one event per
    # migration, all alike but for the migration; they are one step of the rollout here.
    query = (
        select(e.kind, e.ts_ns, e.from_stage, e.to_stage)
        .distinct()
        .where(e.kind.in_(STAGE_EVENT_KINDS), e.ts_ns <= state.stage_since_ns)
        .order_by(e.ts_ns.desc())
        .limit(2)
    )
    if state.migration is not None:
        query = query.where(or_(e.migration == state.migration, e.migration.is_(None)))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return None
    entered = rows[0]
    if entered.kind == EventKind.START or entered.to_stage != state.stage:
        return None
    if entered.from_stage is None:
        return None
    before = rows[1] if len(rows) > 1 and rows[1].to_stage == entered.from_stage else None
    return StageLeft(
        stage=entered.from_stage,
        since_ns=None if before is None else int(before.ts_ns),
        until_ns=int(entered.ts_ns),
        left_by=entered.kind,
    )


def _rows(
    window: WindowFigures,
    stage: StageConfig | None,
    view: actions.Overview,
    migration: str | None,
) -> list[OpRow]:
    """One `OpRow` per operation of `window`, in its order, at `stage` (None: not on the
    ladder)."""
    rows = []
    for op, figures in window.ops.items():
        rust, python = figures.rust, figures.python
        breaker = view.breakers.get(op)
        rows.append(
            OpRow(
                op=op,
                percent=None if stage is None else stage.percent.of(op),
                calls=figures.calls,
                rust_share=figures.rust_share,
                to_python=python.calls,
                not_targeted=python.not_targeted,
                fallback_rate=rust.fallback_rate,
                error_rate_rust=rust.error_rate,
                error_rate_python=python.error_rate,
                p50_rust_ms=percentile_ms(rust.latency, 0.50, rust.latency_max_us),
                p50_python_ms=percentile_ms(python.latency, 0.50, python.latency_max_us),
                p99_rust_ms=percentile_ms(rust.latency, 0.99, rust.latency_max_us),
                p99_python_ms=percentile_ms(python.latency, 0.99, python.latency_max_us),
                shadow_comparisons=figures.shadow_comparisons,
                shadow_mismatches=figures.shadow_mismatches,
                breaker_open=breaker is not None and breaker.is_open,
                migration=migration,
            )
        )
    return rows


@dataclass(frozen=True)
class Snapshot:
    """One refresh: the rollout now, and the chart window's series (see the module docstring).

    `taken_ns` is the moment the window ends (the dashboard's clock), ns since the epoch.
    `migration` is the scope shown (None: every migration at once): `overview` is its
    overview (stage, ladder, verdict, kill, breakers: what the gate screen and the actions act
    on); `migrations` holds every migration's own, each over its own stage's window, in the
    order `harness.tui.scope.migration_names` gives. `left` is the stage the scope left last;
    `left_figures` its window's figures, when they were asked for (`load_snapshot(...,
    with_left=True)`).
    """

    taken_ns: int
    overview: actions.Overview
    chart_op: str = Operation.PLACE_ORDER
    latency: list[LatencyRow] = field(default_factory=list)
    rates: list[RateRow] = field(default_factory=list)
    chart_since_ns: int = 0
    left: StageLeft | None = None
    left_figures: WindowFigures | None = None
    migration: str | None = None
    migrations: dict[str, actions.Overview] = field(default_factory=dict)

    def ops(self) -> list[OpRow]:
        """The per-operation lines of the scope: of every migration (each over its own
        stage's window), or of the one chosen; each migration's operations in its order."""
        rows = []
        for name, view in self.migrations.items():
            if self.migration is None or name == self.migration:
                rows.extend(_rows(view.figures, view.stage, view, name))
        if not self.migrations:  # no migration in the config nor the store: the overview's
            rows = _rows(self.overview.figures, self.overview.stage, self.overview, None)
        return rows

    def op_names(self) -> list[str]:
        """The operations of the scope, in table order (what `c` and `o` cycle through)."""
        return [row.op for row in self.ops()]

    def left_ops(self) -> list[OpRow] | None:
        """The per-operation lines of the stage left last, over its window (None: not read)."""
        if self.left_figures is None:
            return None
        view = self.overview
        stage = next((s for s in view.ladder if s.name == self.left_figures.stage), None)
        return _rows(self.left_figures, stage, view, self.migration)

    def series(self, op: str) -> list[Point]:
        """`op`'s chart points, oldest first: one per minute that saw a call of it (empty for an
        operation other than `chart_op`: its series was not read)."""
        points: dict[str, dict[str, float | None]] = {}
        for row in self.latency:
            if row.op == op and row.bucket is not None:
                points.setdefault(row.bucket, {})[f"p50_{row.impl}_ms"] = row.p50_ms
        for rate in self.rates:
            if rate.op == op and rate.bucket is not None:
                point = points.setdefault(rate.bucket, {})
                point[f"error_rate_{rate.impl}"] = rate.error_rate
                if rate.impl == Impl.RUST.value:
                    point["fallback_rate"] = rate.fallback_rate
        out = []
        for bucket in sorted(points):
            start_ns = _parse_iso_ns(bucket)
            minute = (start_ns - self.taken_ns) / MINUTE_NS
            out.append(Point(minute=minute, **points[bucket]))
        return out


def _parse_iso_ns(text: str) -> int:
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(stamp.astimezone(UTC).timestamp()) * 1_000_000_000


def load_snapshot(
    engine: Engine,
    cfg: HarnessConfig,
    now_ns: int,
    *,
    chart_op: str = Operation.PLACE_ORDER,
    chart_window_ns: int = CHART_WINDOW_NS,
    with_left: bool = False,
    migration: str | None = None,
) -> Snapshot:
    """Everything one refresh shows, as of `now_ns`, for the scope `migration` (None: every
    migration), with `chart_op`'s series for the charts and, with `with_left`, the figures of
    the stage the scope left last (see the module docstring).

    Raises what the store raises (`SQLAlchemyError`, `StoreUnavailableError`, `SchemaError`)
    and `ActionError` when the store's stage is not on the configured ladder.
    """
    views = {
        name: actions.overview(engine, cfg, now_ns, migration=name)
        for name in scope.migration_names(engine, cfg)
    }
    view = views.get(migration) if migration is not None else None
    if view is None:
        view = actions.overview(engine, cfg, now_ns, migration=migration)
    since = now_ns - chart_window_ns
    since -= since % CHART_BUCKET_NS
    window = Filters(op=chart_op, since_ns=since, until_ns=now_ns, bucket_ns=CHART_BUCKET_NS)
    left = stage_left(engine, view.state)
    left_figures = None
    if with_left and left is not None:
        # The window the gate judged when the stage was left (the same `window_figures`).
        ops = None if migration is None else list(view.figures.ops)
        left_figures = window_figures(engine, left.stage, left.since_ns or 0, left.until_ns, ops)
    return Snapshot(
        taken_ns=now_ns,
        overview=view,
        chart_op=chart_op,
        latency=latency(engine, window),
        rates=rates(engine, window),
        chart_since_ns=since,
        left=left,
        left_figures=left_figures,
        migration=migration,
        migrations=views,
    )


def failure_text(exc: BaseException, engine: Engine | None = None) -> str:
    """One line for a person about a failed read: the database (password hidden) and the
    driver's first line for a database error, the message for the harness's own errors."""
    if isinstance(exc, SQLAlchemyError) and engine is not None:
        return str(unavailable_error(engine, exc))
    if isinstance(exc, HarnessError):
        return str(exc)
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}".rstrip(": ")


class Store:
    """The dashboard's handle on the configured database, shared by its worker threads.

    The engine is opened on first use (`open_store`: the schema is checked, a missing SQLite
    file is an error, never created) and dropped after a failure (`reset`), so the next
    refresh reconnects instead of reusing a broken pool. `where` is the URL with the password
    hidden: the only form of it the dashboard ever shows.
    """

    def __init__(self, url: str, opener: Callable[[str], Engine] = open_store) -> None:
        self._url = url
        self._opener = opener
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """The database URL, password hidden."""
        return redact_url(self._url)

    def engine(self) -> Engine:
        """The open engine (opened now if needed; raises what `open_store` raises)."""
        with self._lock:
            if self._engine is None:
                self._engine = self._opener(self._url)
            return self._engine

    def reset(self) -> None:
        """Drop the engine and its pooled connections (the next use opens a fresh one)."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def failure_text(self, exc: BaseException) -> str:
        """`failure_text` with this store's engine (for the password and the URL)."""
        with self._lock:
            engine = self._engine
        text = failure_text(exc, engine)
        password = _password(self._url)
        return text.replace(password, "***") if password else text


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except ArgumentError:
        return None
    return None if password is None else str(password)
