"""What a decision report holds, read from the store: one `Section` per migration, each over
its window (the current stage since it began, the latest time `--stage` was current, or
`--since`/`--until`), with the gate's verdict, the figures per operation and side, the time
series the pictures are drawn from, the shadow mismatches and the events of the window.

Everything here is data (no HTML, no pictures): `harness.report.html` and
`harness.report.markdown` lay it out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import Engine, func, or_, select

from harness.config import HarnessConfig
from harness.control import actions
from harness.errors import InvalidInputError
from harness.gate.verdict import Verdict
from harness.store import queries
from harness.store.models import RolloutEvent, ShadowComparison
from harness.store.queries.window import shadow_conditions
from harness.store.rollups import MINUTE_NS
from harness.store.state import STAGE_EVENT_KINDS

POINTS: Final = 60
"""About how many buckets a picture's time axis has: the bucket is the window / 60, rounded up
to whole minutes (the rollups' grain)."""

MISMATCHES_SHOWN: Final = 50
EVENTS_SHOWN: Final = 500


@dataclass(frozen=True, slots=True)
class Window:
    """One migration's report window `[since_ns, until_ns)` (ns since the epoch, UTC) of
    `stage`, and how it was chosen (`how`: one line for the reader)."""

    migration: str
    stage: str
    since_ns: int
    until_ns: int
    how: str


@dataclass(frozen=True, slots=True)
class SideRow:
    """One operation's side in the window: `calls`, `errors`, `fallbacks` of the calls ROUTED to
    it (the gate's counts), latency percentiles in ms of its successful calls SERVED without a
    fallback (`count` of them; None without any)."""

    op: str
    side: str
    calls: int
    errors: int
    fallbacks: int
    error_rate: float | None
    fallback_rate: float | None
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True, slots=True)
class Section:
    """One migration's part of the report (see the module docstring).

    `latency_series` and `rate_series` are `queries.latency` / `queries.rates` rows as dicts
    with a `bucket` (ISO-8601 UTC) every `bucket_ns`; `mismatches` the newest shadow
    comparisons that differed (their first difference: timeframe, bar_index, field, the two
    values, or the shadow's error), `shadow_compared` / `shadow_mismatched` the window's counts.
    """

    window: Window
    verdict: Verdict
    sides: tuple[SideRow, ...]
    bucket_ns: int
    latency_series: tuple[dict[str, Any], ...]
    rate_series: tuple[dict[str, Any], ...]
    shadow_compared: int
    shadow_mismatched: int
    mismatches: tuple[dict[str, Any], ...]
    events: tuple[dict[str, Any], ...]


def bucket_for(since_ns: int, until_ns: int) -> int:
    """The pictures' bucket in ns: (until - since) / `POINTS` rounded up to whole minutes."""
    minutes = max(1, -(-(until_ns - since_ns) // (POINTS * MINUTE_NS)))
    return int(minutes * MINUTE_NS)


def window_of(
    engine: Engine,
    cfg: HarnessConfig,
    migration: str,
    *,
    stage: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    now_ns: int | None = None,
) -> Window:
    """`migration`'s report window. Default: its current stage since it began, until now.
    `stage`: the latest time that stage was current (from the stage events: from the event
    that made it current to the next one of the migration, or now if it still is).
    `since_ns`/`until_ns` replace either end. Raises `InvalidInputError("stage", ...)` for a
    stage the migration never was at, `InvalidInputError("since", ...)` for an empty window
    (`"until"` when only `until_ns` was given and it is not after the stage's start)."""
    now = time.time_ns() if now_ns is None else now_ns
    state = actions.current_state(engine, cfg, migration)
    how = f"stage {state.stage}, current since it began"
    begin, end = state.stage_since_ns, now
    if stage is not None and stage != state.stage:
        begin, end = _latest_time_at(engine, migration, stage)
        how = f"stage {stage}, the latest time it was current"
    elif stage is not None:
        how = f"stage {stage}, current since it began"
    if since_ns is not None or until_ns is not None:
        how += "; cut to --since/--until"
    begin = begin if since_ns is None else since_ns
    end = end if until_ns is None else until_ns
    if begin >= end and since_ns is None and until_ns is not None:  # the end the user gave
        reason = f"not after the window's start {queries_iso(begin)} ({how.split(';')[0]})"
        raise InvalidInputError("until", queries_iso(end), reason)
    if begin >= end:
        raise InvalidInputError(
            "since", queries_iso(begin), f"not before the window's end {queries_iso(end)}"
        )
    return Window(migration, stage or state.stage, begin, end, how)


def queries_iso(ns: int) -> str:
    """ns since the epoch as ISO-8601 UTC to the second (`2026-12-01T00:00:00Z`)."""
    from harness.store.queries.latency import iso_seconds

    return iso_seconds(ns)


def _latest_time_at(engine: Engine, migration: str, stage: str) -> tuple[int, int]:
    e = RolloutEvent
    own = or_(e.migration == migration, e.migration.is_(None))
    with engine.connect() as conn:
        began = conn.execute(
            select(func.max(e.ts_ns)).where(own, e.kind.in_(STAGE_EVENT_KINDS), e.to_stage == stage)
        ).scalar()
        if began is None:
            reason = f"migration {migration} was never at this stage (harness query events)"
            raise InvalidInputError("stage", stage, reason)
        ended = conn.execute(
            select(func.min(e.ts_ns)).where(
                own, e.kind.in_(STAGE_EVENT_KINDS), e.ts_ns > began, e.to_stage != stage
            )
        ).scalar()
    return int(began), int(ended) if ended is not None else time.time_ns()


def section(engine: Engine, cfg: HarnessConfig, window: Window) -> Section:
    """The report's section of `window.migration` over `window`."""
    name = window.migration
    state = actions.current_state(engine, cfg, name)
    judged_state = state
    if window.stage != state.stage or window.since_ns != state.stage_since_ns:
        # Another window than the live one: judged by this config's gate settings (the stored
        # ones belong to the current stage's window).
        judged_state = replace(state, stage=window.stage, stage_since_ns=window.since_ns, gate=None)
    verdict = actions.verdict(engine, cfg, judged_state, now_ns=window.until_ns)
    filters = queries.Filters(
        migration=name, stage=window.stage, since_ns=window.since_ns, until_ns=window.until_ns
    )
    bucket = bucket_for(window.since_ns, window.until_ns)
    series = replace(filters, bucket_ns=bucket)
    return Section(
        window=window,
        verdict=verdict,
        sides=tuple(_sides(engine, filters)),
        bucket_ns=bucket,
        latency_series=tuple(r.to_dict() for r in queries.latency(engine, series)),
        rate_series=tuple(r.to_dict() for r in queries.rates(engine, series)),
        shadow_compared=_count(engine, filters, mismatched=False),
        shadow_mismatched=_count(engine, filters, mismatched=True),
        mismatches=tuple(queries.shadow(engine, filters, MISMATCHES_SHOWN, mismatches_only=True)),
        events=tuple(
            queries.events(
                engine,
                queries.Filters(migration=name, since_ns=window.since_ns, until_ns=window.until_ns),
                EVENTS_SHOWN,
            )
        ),
    )


def _count(engine: Engine, filters: queries.Filters, *, mismatched: bool) -> int:
    conditions = shadow_conditions(filters)
    if mismatched:
        conditions.append(ShadowComparison.matched.is_(False))
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(*conditions)).scalar() or 0)


def _sides(engine: Engine, filters: queries.Filters) -> list[SideRow]:
    latency = {(r.op, r.impl): r for r in queries.latency(engine, filters)}
    rows = []
    for rate in queries.rates(engine, filters):
        lat = latency.get((rate.op, rate.impl))
        rows.append(
            SideRow(
                op=rate.op,
                side=rate.impl,
                calls=rate.calls,
                errors=rate.errors,
                fallbacks=rate.fallbacks,
                error_rate=rate.error_rate,
                fallback_rate=rate.fallback_rate,
                count=0 if lat is None else lat.count,
                p50_ms=None if lat is None else lat.p50_ms,
                p95_ms=None if lat is None else lat.p95_ms,
                p99_ms=None if lat is None else lat.p99_ms,
                max_ms=None if lat is None else lat.max_ms,
            )
        )
    return rows


def sections(
    engine: Engine,
    cfg: HarnessConfig,
    migration: str | None,
    *,
    stage: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> list[Section]:
    """The report's sections: `migration`'s, or one per migration `harness gate` judges
    (`actions.acted_on`) when None (those never at `stage` left out). Raises
    `InvalidInputError("migration", ...)` for an unknown one."""
    known = actions.known_migrations(engine, cfg)
    if migration is not None and migration not in known:
        reason = f"no such migration; known: {', '.join(known) or 'none'}"
        raise InvalidInputError("migration", migration, reason)
    names = [migration] if migration is not None else actions.acted_on(engine, cfg)
    out = []
    never: InvalidInputError | None = None
    for name in names:
        try:
            window = window_of(engine, cfg, name, stage=stage, since_ns=since_ns, until_ns=until_ns)
        except InvalidInputError as exc:
            # Every migration's report: one that was never at `--stage` has no section.
            if migration is not None or exc.field != "stage":
                raise
            never = exc
            continue
        out.append(section(engine, cfg, window))
    if not out and never is not None:
        raise InvalidInputError("stage", stage, "no migration was ever at this stage")
    return out
