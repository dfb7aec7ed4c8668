"""History: rows, newest first: errors, fallbacks, shadow comparisons, events and runs
(`harness query errors|fallbacks|shadow|events|runs`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from harness.errors import InvalidInputError
from harness.gate.figures import ReplayFigures
from harness.store.models import (
    Capture,
    Outcome,
    Replay,
    RolloutEvent,
    Run,
    ShadowComparison,
)
from harness.store.queries.filters import MAX_LIMIT, Filters
from harness.store.queries.latency import to_ms
from harness.store.queries.names import migrations_of_runs, runs_of_migration
from harness.store.queries.plan import same, span
from harness.store.queries.window import connection, shadow_conditions


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
            o.migration,
            o.targeted,
        )
        .where(
            condition,
            span(o.ts_ns, filters.since_ns, filters.until_ns),
            *same(o, filters),
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
            "latency_ms": to_ms(float(r.latency_us)),
            "attempts": r.attempts,
            "http_status": r.http_status,
            "order_id": r.order_id,
            "custom_tag": r.custom_tag,
            "reconciled": bool(r.reconciled),
            "migration": r.migration,
            "targeted": bool(r.targeted),
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
            span(o.ts_ns, filters.since_ns, filters.until_ns),
            *same(o, filters),
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
    conditions = shadow_conditions(filters)
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
            "primary_ms": to_ms(r.primary_latency_us),
            "shadow_ms": to_ms(r.shadow_latency_us),
            "shadow_error": r.shadow_error,
            "bars_in": r.bars_in,
            "migration": r.migration,
        }
        for r in rows
    ]


def events(engine: Engine, filters: Filters, limit: int = 50) -> list[dict[str, Any]]:
    """Rollout events, newest first (`op` filters breaker events; `stage` either end)."""
    e = RolloutEvent
    conditions = [span(e.ts_ns, filters.since_ns, filters.until_ns)]
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
    run failed; `migrations` lists the migrations the run recorded calls of (sorted), and
    `filters.migration` keeps the runs that recorded calls of that one."""
    r = Run
    conditions = [span(r.started_ns, filters.since_ns, filters.until_ns)]
    if filters.run is not None:
        conditions.append(r.id.startswith(filters.run, autoescape=True))
    if filters.build is not None:
        conditions.append(r.build_id.startswith(filters.build, autoescape=True))
    query = select(r).where(*conditions).order_by(r.started_ns.desc())
    with engine.connect() as conn:
        if filters.migration is not None:
            query = query.where(r.id.in_(runs_of_migration(conn, filters.migration)))
        rows = conn.execute(query.limit(_limit(limit))).all()  # Core rows: one per column
        touched = migrations_of_runs(conn, [x.id for x in rows])
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
            "build_id": x.build_id,
            "native_available": bool(x.native_available),
            "rows_recorded": x.rows_recorded,
            "rows_dropped": x.rows_dropped,
            "reason": _run_reason(x.summary),
            "migrations": touched.get(x.id, []),
        }
        for x in rows
    ]


def latest_build(engine: Engine | Connection) -> str | None:
    """The `build_id` of the run started last that recorded one (None: no such run): the
    build whose evidence the gate judges with `gate.per_build`."""
    query = (
        select(Run.build_id)
        .where(Run.build_id.is_not(None))
        .order_by(Run.started_ns.desc())
        .limit(1)
    )
    with connection(engine) as conn:
        found = conn.execute(query).scalar()
    return None if found is None else str(found)


def replay_figures(
    engine: Engine | Connection, build_id: str | None, ops: Sequence[str] | None
) -> ReplayFigures:
    """The replay evidence of `build_id` for the gate's `replay` criterion: which of `ops`
    (None: every operation) have captures, and per operation the latest `harness replay` of
    that build (matched, mismatched)."""
    c, r = Capture, Replay
    captured_q = select(c.op).distinct()
    latest_q = select(r.op, r.matched, r.mismatched).order_by(r.ts_ns)
    if ops is not None:
        captured_q = captured_q.where(c.op.in_(list(ops)))
        latest_q = latest_q.where(r.op.in_(list(ops)))
    results: dict[str, tuple[int, int]] = {}
    with connection(engine) as conn:
        captured = sorted(str(op) for (op,) in conn.execute(captured_q))
        if build_id is not None:
            for op, matched, mismatched in conn.execute(latest_q.where(r.build_id == build_id)):
                results[str(op)] = (int(matched), int(mismatched))  # the latest wins
    return ReplayFigures(build_id, tuple(captured), results)


def _run_reason(summary: str | None) -> str | None:
    """Why a run failed, as its row's summary holds it (None for a run that did not fail)."""
    if not summary:
        return None
    try:
        reason = json.loads(summary).get("reason")
    except (ValueError, AttributeError):
        return None
    return None if reason is None else str(reason)
