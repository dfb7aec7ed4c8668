"""The gate's window: per-operation figures of a stage, of one run, or of any filters."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.sql.elements import ColumnElement

from harness.gate.figures import OpFigures, SideFigures, WindowFigures
from harness.operations import Impl, Operation
from harness.sketch import LatencySketch
from harness.store.models import (
    ShadowComparison,
)
from harness.store.queries.filters import Filters
from harness.store.queries.groups import collect
from harness.store.queries.plan import runs_of_build, span


def shadow_conditions(filters: Filters) -> list[ColumnElement[bool]]:
    """The filters on shadow comparisons (`impl`: the primary side)."""
    s = ShadowComparison
    conditions = [span(s.ts_ns, filters.since_ns, filters.until_ns)]
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
    if filters.build is not None:
        conditions.append(s.run_id.in_(runs_of_build(filters.build)))
    return conditions


def window_figures(
    engine: Engine | Connection,
    stage: str,
    since_ns: int,
    until_ns: int | None = None,
    ops: Sequence[str] | None = None,
    build: str | None = None,
) -> WindowFigures:
    """The figures of `stage` over `[since_ns, until_ns)` (until: now) for `harness.gate.judge`,
    of the operations `ops` (one migration's; None: every operation), of the runs of `build`
    (a `build_id` or its prefix; None: every build)."""
    until = time.time_ns() if until_ns is None else until_ns
    filters = Filters(
        stage=stage,
        since_ns=since_ns,
        until_ns=max(until, since_ns + 1),
        ops=None if ops is None else tuple(str(op) for op in ops),
        build=build,
    )
    figures = op_figures(engine, filters)
    return WindowFigures(stage=stage, since_ns=since_ns, until_ns=until, ops=figures)


def op_figures(engine: Engine | Connection, filters: Filters) -> dict[str, OpFigures]:
    """Per operation, each side's calls (by the side routed to), errors, fallbacks and latency
    of its successful calls served without a fallback, and the shadow comparisons and
    mismatches, over the filters (`impl` keeps the rows served by that side and the
    comparisons whose primary it was). What the gate judges for a stage's window, and what
    `harness run` prints for one run (`Filters(run=...)`)."""
    with connection(engine) as conn:
        groups = collect(conn, filters, sketches=True)
        s = ShadowComparison
        shadow_q = (
            select(s.op, s.matched, func.count())
            .where(*shadow_conditions(filters))
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
            for (_, g_op, routed, served, fell_back, ok, targeted, _), group in groups.items():
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


class connection:
    """`with connection(engine_or_conn) as conn`: a new connection, or the one given."""

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
