"""Every call ever recorded, counted per group, read as every query reads all time (the
Prometheus exporter, `harness metrics`)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, func, select

from harness.store.models import Outcome, OutcomeRollup
from harness.store.queries.plan import window_plan

__all__ = ["call_totals"]


def call_totals(conn: Connection) -> dict[tuple[str | None, str, str, str, bool, bool], int]:
    """Every call ever recorded, counted per (migration, op, routed, served, fell_back, ok).

    Read as every query reads all time (`window_plan(None, None)`: clean hour rollups, the
    minutes of dirty hours, dirty minutes raw), so each (op, routed) sum equals
    `rates(Filters())`'s calls and the errors and fallbacks split out of it equal its errors and
    fallbacks. `migration` is None only for a raw row written without one (older schema or by
    hand)."""
    plan = window_plan(conn, None, None)
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
