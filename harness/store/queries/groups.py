"""A window's figures per group (bucket, op, routed, served, fell_back, ok, targeted), summed from
the rollups and the raw outcomes of the window plan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select

from harness.sketch import LatencySketch
from harness.store.models import (
    Outcome,
    OutcomeRollup,
)
from harness.store.queries.filters import Filters
from harness.store.queries.plan import same, window_plan
from harness.store.rollups import HOUR_NS


@dataclass(slots=True)
class Group:
    """Counts and latencies of one (bucket, op, routed, served, fell_back, ok, targeted,
    migration) group."""

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


_KEY = ("op", "routed", "served", "fell_back", "ok", "targeted", "migration")


def _key(
    start: int | None,
    op: str,
    routed: str,
    served: str,
    fell_back: Any,
    ok: Any,
    targeted: Any,
    migration: str | None,
) -> tuple[Any, ...]:
    """A group's key with the flags as bools and a NULL migration as `""` (what the rollups
    fold a row written by hand into, `rollups.fold`), so raw and rolled rows meet."""
    return (start, op, routed, served, bool(fell_back), bool(ok), bool(targeted), migration or "")


def collect(conn: Connection, filters: Filters, *, sketches: bool) -> dict[tuple[Any, ...], Group]:
    """Figures per (bucket start or None, op, routed, served, fell_back, ok, targeted,
    migration) over the filters."""
    bucket = filters.bucket_ns
    hours = bucket is None or bucket % HOUR_NS == 0
    plan = window_plan(conn, filters.since_ns, filters.until_ns, hours=hours)
    groups: dict[tuple[Any, ...], Group] = defaultdict(Group)

    r = OutcomeRollup
    keys = [getattr(r, k) for k in _KEY]
    where = and_(plan.rollups, *same(r, filters))
    by = [r.bucket_ns, *keys] if bucket is not None else keys
    counts = (
        select(*by, func.sum(r.n), func.sum(r.latency_sum_us), func.max(r.latency_max_us))
        .where(where)
        .group_by(*by)
    )
    for row in conn.execute(counts).all():
        values = tuple(row)
        start = None if bucket is None else int(values[0]) - int(values[0]) % bucket
        op, routed, served, fell_back, ok, targeted, migration, n, total, peak = values[-10:]
        group = groups[_key(start, op, routed, served, fell_back, ok, targeted, migration)]
        group.n += int(n)
        group.latency_sum_us += float(total)
        group.latency_max_us = max(group.latency_max_us, float(peak))
    if sketches:
        blobs = select(r.bucket_ns, *keys, r.sketch).where(
            where, r.ok.is_(True), r.fell_back.is_(False)
        )
        for at, *group_key, blob in conn.execute(blobs).all():
            start = None if bucket is None else int(at) - int(at) % bucket
            group = groups[_key(start, *group_key)]
            if group.blobs is None:
                group.blobs = []
            group.blobs.append(bytes(blob))

    o = Outcome
    raw = select(o.ts_ns, *(getattr(o, k) for k in _KEY), o.latency_us).where(
        plan.raw, *same(o, filters)
    )
    for ts, op, routed, served, fell_back, ok, targeted, migration, latency in conn.execute(raw):
        start = None if bucket is None else int(ts) - int(ts) % bucket
        group = groups[_key(start, op, routed, served, fell_back, ok, targeted, migration)]
        group.n += 1
        group.latency_sum_us += float(latency)
        group.latency_max_us = max(group.latency_max_us, float(latency))
        if sketches and ok and not fell_back:
            if group.raw is None:
                group.raw = []
            group.raw.append(float(latency))
    return groups
