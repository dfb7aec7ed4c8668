"""A store written by the harness at commit 8f2c5a9 (schema 0002, before migrations existed)
upgrades in place with every row and event kept, and `harness status` and `harness query` work
on it; on SQLite (the file that code wrote) and on PostgreSQL (the same rows, restored through
the 0002 schema, whose migration files are unchanged since).

`tests/fixtures/store-8f2c5a9.db` was made with that commit's own code and native module:
`harness run` (4 trips at off, 3 at shadow, 4 at staging_50, 2 while killed, on the embedded
simulator), forced promotions off -> shadow -> canary -> staging -> staging_50, the modify
breaker tripped through that code's `trip_breaker`, a kill, an unkill and a rollback to staging
(docs/store.md, "A store from before migrations").
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, MetaData, insert, select

from harness.store.db import open_engine, upgrade
from harness.store.schema import head_revision

pytestmark = pytest.mark.timeout(300)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "store-8f2c5a9.db"
KEPT = ("runs", "outcomes", "rollout_events", "shadow_comparisons", "breakers")
SHIPPED = {"place_order": "orders", "modify_order": "orders", "cancel_order": "orders",
           "aggregate_bars": "bars"}  # fmt: skip


def old_tables() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the fixture, as the old code wrote it."""
    conn = sqlite3.connect(f"file:{FIXTURE}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: [dict(r) for r in conn.execute(f"SELECT * FROM {n}")] for n in names}
    finally:
        conn.close()


def plain(value: Any) -> Any:
    """A value as both databases give it back (booleans as 0/1)."""
    return int(value) if isinstance(value, bool) else value


def restore_on_postgresql(url: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """The fixture's rows into an empty PostgreSQL database at schema 0002."""
    engine = open_engine(url)
    try:
        assert upgrade(engine, "0002") == "0002"
        meta = MetaData()
        meta.reflect(engine)
        with engine.begin() as conn:
            for table in meta.sorted_tables:  # runs before the rows that name them
                if table.name == "alembic_version" or not tables.get(table.name):
                    continue
                flags = [c.name for c in table.columns if isinstance(c.type, Boolean)]
                rows = [
                    {**row, **{f: None if row[f] is None else bool(row[f]) for f in flags}}
                    for row in tables[table.name]
                ]
                conn.execute(insert(table), rows)
    finally:
        engine.dispose()


@pytest.fixture
def old_store(db_url):
    """The URL of a store as 8f2c5a9 left it, and its rows."""
    tables = old_tables()
    assert [r["version_num"] for r in tables["alembic_version"]] == ["0002"]
    if db_url.startswith("sqlite"):
        shutil.copyfile(FIXTURE, db_url.removeprefix("sqlite:///"))
    else:
        restore_on_postgresql(db_url, tables)
    return db_url, tables


def harness(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "TOPSTEPX"))}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True, text=True, timeout=120, env={**env, "HARNESS_DB_URL": url},
    )  # fmt: skip


def new_tables(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = open_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {
                table.name: [
                    {k: plain(v) for k, v in row._mapping.items()}
                    for row in conn.execute(select(table))
                ]
                for table in meta.sorted_tables
            }
    finally:
        engine.dispose()


def test_an_8f2c5a9_store_upgrades_with_every_row_and_event_kept(old_store):
    url, old = old_store
    assert len(old["outcomes"]) == 91 and len(old["rollout_events"]) == 9  # the fixture itself
    done = harness(url, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    new = new_tables(url)
    assert [r["version_num"] for r in new["alembic_version"]] == [head_revision()]

    # Every row of every kept table, every old column's value unchanged.
    for name in KEPT:
        assert len(new[name]) == len(old[name]), name
        key = "op" if name == "breakers" else "id"
        before = {r[key]: r for r in old[name]}
        for row in new[name]:
            was = before[row[key]]
            assert {c: row[c] for c in was} == was, (name, row[key])
    # What the upgrade added: the migration each row belongs to; events before migrations
    # existed acted on everything (NULL, shown as `all`); every old call was targeted.
    for row in new["outcomes"]:
        assert (row["migration"], row["targeted"]) == (SHIPPED[row["op"]], 1)
    assert {r["migration"] for r in new["shadow_comparisons"]} == {"bars"}
    assert {r["migration"] for r in new["rollout_events"]} == {None}
    # The one rollout state became one per shipped migration: same stage, since and kill.
    [state] = old["rollout_state"]
    moved = {r["migration"]: r for r in new["migration_state"]}
    assert set(moved) == {"orders", "bars"}
    for row in moved.values():
        assert (row["stage"], row["stage_since_ns"], row["kill"]) == (
            state["stage"], state["stage_since_ns"], state["kill"],
        )  # fmt: skip
    assert state["stage"] == "staging" and state["kill"] == 0

    # The commands read it: status, and the history by operation and by migration.
    status = harness(url, "status")
    assert status.returncode == 0, status.stderr
    assert "staging" in status.stdout and "OPEN" in status.stdout  # the modify breaker
    events = harness(url, "query", "events", "--json", "--limit", "100")
    assert events.returncode == 0, events.stderr
    shown = json.loads(events.stdout)
    listed = sorted(old["rollout_events"], key=lambda e: e["ts_ns"], reverse=True)
    assert [(e["kind"], e["reason"], e["migration"]) for e in shown] == [
        (e["kind"], e["reason"], "all") for e in listed
    ]
    rates = harness(url, "query", "rates", "--json")
    assert rates.returncode == 0, rates.stderr
    got = json.loads(rates.stdout)
    assert sum(r["calls"] for r in got) == 91 and sum(r["not_targeted"] for r in got) == 0
    assert {(r["op"], r["migration"]) for r in got} == set(SHIPPED.items())
    runs = harness(url, "query", "runs", "--migration", "bars", "--json")
    assert runs.returncode == 0, runs.stderr
    assert {r["run"] for r in json.loads(runs.stdout)} == {r["id"] for r in old["runs"]}
    modify = harness(url, "query", "latency", "--op", "modify_order", "--json")
    assert modify.returncode == 0, modify.stderr
    assert sum(r["calls"] for r in json.loads(modify.stdout)) == sum(
        1 for r in old["outcomes"] if r["op"] == "modify_order"
    )
