"""The operations and migrations a store holds calls of, for `harness query`'s `--op` and
`--migration` (any operation, a bot's registered ones included, not a fixed list) and the
migrations of each run.

Every call is either in a rollup or in a minute still marked dirty (`harness.store.rollups`):
so the names are read from `outcome_rollups` (a few rows per minute and group, never the raw
table) plus the raw outcomes of the dirty minutes only (`window_plan` over all time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import CompoundSelect, Connection, Select, func, select, union

from harness.store.models import MigrationState, Outcome, OutcomeRollup, Run
from harness.store.queries.plan import window_plan

__all__ = [
    "known_builds",
    "known_migrations",
    "known_ops",
    "known_runs",
    "known_stages",
    "migrations_of_runs",
    "runs_of_migration",
]


def known_ops(conn: Connection) -> list[str]:
    """Every operation the store has calls of, sorted."""
    raw = window_plan(conn, None, None).raw
    query = union(
        select(OutcomeRollup.op).distinct(),
        select(Outcome.op).where(raw).distinct(),
    )
    return sorted({str(op) for op in conn.execute(query).scalars()})


def known_stages(conn: Connection) -> list[str]:
    """Every stage the store has calls at or a migration in, sorted."""
    raw = window_plan(conn, None, None).raw
    query = union(
        select(MigrationState.stage),
        select(OutcomeRollup.stage).distinct(),
        select(Outcome.stage).where(raw).distinct(),
    )
    return sorted({str(stage) for stage in conn.execute(query).scalars() if stage})


def known_runs(conn: Connection, limit: int = 3, run_id: str | None = None) -> list[str]:
    """The ids of the latest runs, newest first (only `run_id`'s, when given: whether it
    exists)."""
    query = select(Run.id).order_by(Run.started_ns.desc()).limit(limit)
    if run_id is not None:
        query = query.where(Run.id == run_id)
    return [str(found) for found in conn.execute(query).scalars()]


def known_builds(conn: Connection, limit: int = 5, prefix: str | None = None) -> list[str]:
    """The `build_id`s of the latest runs (those starting with `prefix` when given, as
    `--build` matches), newest first by each build's latest run, at most `limit`."""
    last = func.max(Run.started_ns)
    query = (
        select(Run.build_id)
        .where(Run.build_id.is_not(None))
        .group_by(Run.build_id)
        .order_by(last.desc())
        .limit(limit)
    )
    if prefix is not None:
        query = query.where(Run.build_id.startswith(prefix, autoescape=True))
    return [str(build) for build in conn.execute(query).scalars()]


def known_migrations(conn: Connection) -> list[str]:
    """Every migration the store has a state row or calls of, sorted (a call's migration is
    NULL only in a row written by hand: left out)."""
    raw = window_plan(conn, None, None).raw
    query: CompoundSelect[Any] = union(
        select(MigrationState.migration),
        select(OutcomeRollup.migration).distinct(),
        select(Outcome.migration).where(raw, Outcome.migration.is_not(None)).distinct(),
    )
    return sorted({str(name) for name in conn.execute(query).scalars() if name})


def runs_of_migration(conn: Connection, migration: str) -> Select[tuple[str]]:
    """A subquery of the ids of the runs that recorded calls of `migration`."""
    raw = window_plan(conn, None, None).raw
    rolled = select(OutcomeRollup.run_id).where(OutcomeRollup.migration == migration)
    unrolled = select(Outcome.run_id).where(raw, Outcome.migration == migration)
    return select(union(rolled, unrolled).subquery().c[0])


def migrations_of_runs(conn: Connection, run_ids: Sequence[str]) -> dict[str, list[str]]:
    """Run id -> the migrations it recorded calls of, sorted (runs without calls: absent)."""
    if not run_ids:
        return {}
    raw = window_plan(conn, None, None).raw
    r, o = OutcomeRollup, Outcome
    query: CompoundSelect[Any] = union(
        select(r.run_id, r.migration).where(r.run_id.in_(run_ids)).distinct(),
        select(o.run_id, o.migration).where(raw, o.run_id.in_(run_ids)).distinct(),
    )
    found: dict[str, set[str]] = defaultdict(set)
    for run_id, migration in conn.execute(query):
        if migration:
            found[str(run_id)].add(str(migration))
    return {run_id: sorted(names) for run_id, names in found.items()}
