"""The schema exists only through the migrations, and every command refuses an outdated one."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from harness.store.db import (
    SCHEMA_REVISION,
    SchemaError,
    StoreUnavailableError,
    current_revision,
    ensure_schema,
    head_revision,
    open_engine,
    upgrade,
)
from harness.store.models import Base
from harness.store.state import read_states

TABLES = {
    "runs",
    "outcomes",
    "outcome_rollups",
    "shadow_comparisons",
    "rollout_state",
    "breakers",
    "dirty_buckets",
    "retention",
    "migration_state",
    "rollout_events",
    "captures",
    "replays",
    "alembic_version",
}


def test_the_code_expects_the_head_revision():
    assert head_revision() == SCHEMA_REVISION


def test_upgrade_creates_exactly_the_models(db_url):
    engine = open_engine(db_url)
    assert current_revision(engine) is None
    assert upgrade(engine) == SCHEMA_REVISION
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == TABLES
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    assert upgrade(engine) == SCHEMA_REVISION  # idempotent
    engine.dispose()


def test_a_database_without_schema_is_refused_naming_the_fix(db_url):
    engine = open_engine(db_url)
    with pytest.raises(SchemaError, match=r"harness db upgrade"):
        ensure_schema(engine)
    engine.dispose()


def test_an_outdated_schema_is_refused_naming_the_fix(db_url):
    engine = open_engine(db_url)
    upgrade(engine, "0001")
    needs = rf"revision 0001.*needs {SCHEMA_REVISION}.*harness db upgrade"
    with pytest.raises(SchemaError, match=needs):
        ensure_schema(engine, create_if_empty=True)
    engine.dispose()


def test_upgrading_from_0001_keeps_the_outcomes_and_reads_them_as_not_reconciled(db_url):
    engine = open_engine(db_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO runs (id, started_ns, status, kind, host, pid, os_user, version, "
                "native_available, config, rows_recorded, rows_dropped) VALUES ('r1', 1, "
                "'finished', 'bot', 'h', 1, 'u', 'v', true, '{}', 1, 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO outcomes (id, ts_ns, run_id, op, stage, routed, served, fell_back, "
                "ok, latency_us) VALUES ('o1', 1, 'r1', 'place_order', 'off', 'python', "
                "'python', false, true, 5.0)"
            )
        )
    assert upgrade(engine) == SCHEMA_REVISION
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, reconciled FROM outcomes")).all()
    assert [(r[0], bool(r[1])) for r in rows] == [("o1", False)]
    engine.dispose()


def test_an_empty_sqlite_file_is_created_when_asked(empty_sqlite_url):
    engine = open_engine(empty_sqlite_url)
    ensure_schema(engine, create_if_empty=True)
    assert current_revision(engine) == SCHEMA_REVISION
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_an_empty_postgres_database_is_never_created_implicitly(empty_pg_url):
    engine = open_engine(empty_pg_url)
    with pytest.raises(SchemaError, match="harness db upgrade"):
        ensure_schema(engine, create_if_empty=True)
    engine.dispose()


def test_an_unreachable_database_is_a_clear_error_without_the_password():
    engine = open_engine("postgresql+psycopg://bot:s3cret-pw@127.0.0.1:1/nowhere")
    with pytest.raises(StoreUnavailableError) as info:
        current_revision(engine)
    message = str(info.value)
    assert "cannot open the database" in message and "127.0.0.1:1" in message
    assert "s3cret-pw" not in message and "***" in message


@pytest.mark.parametrize(
    ("url", "reason"),
    [("sqlite://", "in-memory"), ("mysql://x@h/db", "unsupported"), ("nonsense", "not a database")],
)
def test_unsupported_urls_are_refused(url, reason):
    with pytest.raises(StoreUnavailableError, match=reason):
        open_engine(url)


ROWS_AT_0002 = {
    "runs": "INSERT INTO runs (id, started_ns, status, kind, host, pid, os_user, version, "
    "native_available, config, rows_recorded, rows_dropped) VALUES ('r1', 1, 'finished', "
    "'bot', 'h', 1, 'u', 'v', true, '{}', 1, 0)",
    "outcomes": "INSERT INTO outcomes (id, ts_ns, run_id, op, stage, routed, served, "
    "fell_back, ok, latency_us, reconciled) VALUES ('o1', 1, 'r1', 'place_order', 'canary', "
    "'rust', 'rust', false, true, 5.0, true)",
    "outcome_rollups": "INSERT INTO outcome_rollups (period_ns, bucket_ns, run_id, op, stage, "
    "routed, served, fell_back, ok, n, latency_sum_us, latency_max_us, sketch) VALUES "
    "(60000000000, 0, 'r1', 'place_order', 'canary', 'rust', 'rust', false, true, 1, 5.0, 5.0, "
    ":sketch)",
    "dirty_buckets": "INSERT INTO dirty_buckets (period_ns, bucket_ns, gen) VALUES (60, 0, 3)",
    "shadow_comparisons": "INSERT INTO shadow_comparisons (id, ts_ns, run_id, op, stage, "
    "\"primary\", shadow, matched) VALUES ('s1', 1, 'r1', 'aggregate_bars', 'canary', 'python', "
    "'rust', true)",
    "rollout_state": "INSERT INTO rollout_state (id, stage, stage_since_ns, kill, kill_reason, "
    "version, updated_ns) VALUES (1, 'canary', 7, true, 'halt', 9, 8)",
    "breakers": "INSERT INTO breakers (op, is_open, opened_ns, reason, failures) VALUES "
    "('place_order', true, 5, '5 failures', 5)",
    "rollout_events": "INSERT INTO rollout_events (id, ts_ns, kind, who, forced, gate) VALUES "
    "('e1', 1, 'promote', 'ana', false, '{\"verdict\": \"PASS\"}')",
}


def test_upgrading_from_0002_keeps_every_row_and_the_stage_reads_no_stored_gate(db_url):
    engine = open_engine(db_url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        for statement in ROWS_AT_0002.values():
            params = {"sketch": b"\x01\x02"} if ":sketch" in statement else {}
            conn.execute(text(statement), params)
    with engine.connect() as conn:
        before = {t: conn.execute(text(f"SELECT * FROM {t}")).all() for t in ROWS_AT_0002}
    assert upgrade(engine, "0003") == "0003"
    with engine.connect() as conn:
        after = {t: conn.execute(text(f"SELECT * FROM {t}")).all() for t in ROWS_AT_0002}
        gate = conn.execute(
            text("SELECT gate_name, gate_fingerprint, gate_settings FROM rollout_state")
        ).all()
    for table, rows in before.items():
        assert len(after[table]) == len(rows) == 1, table
        assert tuple(after[table][0])[: len(rows[0])] == tuple(rows[0]), table
    assert [tuple(r) for r in gate] == [(None, None, None)]
    engine.dispose()


def test_upgrading_to_0005_keeps_every_row_and_moves_the_state_into_each_migration(db_url):
    engine = open_engine(db_url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        for statement in ROWS_AT_0002.values():
            params = {"sketch": b"\x01\x02"} if ":sketch" in statement else {}
            conn.execute(text(statement), params)
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(text("UPDATE rollout_state SET gate_name = 'quick', gate_settings = '{}'"))
    kept = ("runs", "outcomes", "outcome_rollups", "dirty_buckets", "shadow_comparisons",
            "breakers", "rollout_events")  # fmt: skip
    with engine.connect() as conn:
        before = {t: conn.execute(text(f"SELECT * FROM {t}")).mappings().all() for t in kept}
    assert upgrade(engine) == SCHEMA_REVISION
    with engine.connect() as conn:
        after = {t: conn.execute(text(f"SELECT * FROM {t}")).mappings().all() for t in kept}
        states = conn.execute(
            text("SELECT migration, stage, stage_since_ns, kill, kill_reason, gate_name "
                 "FROM migration_state ORDER BY migration")
        ).all()  # fmt: skip
        top = conn.execute(text("SELECT kill, kill_reason FROM rollout_state")).all()
    for table, rows in before.items():  # every row, every old column's value
        assert len(after[table]) == len(rows) == 1, table
        assert {k: after[table][0][k] for k in rows[0]} == dict(rows[0]), table
    assert after["outcomes"][0]["migration"] == "orders" and after["outcomes"][0]["targeted"]
    assert after["outcome_rollups"][0]["migration"] == "orders"
    assert after["shadow_comparisons"][0]["migration"] == "bars"
    assert after["rollout_events"][0]["migration"] is None  # an action of all: `all`
    assert [tuple(r) for r in states] == [
        ("bars", "canary", 7, True, "halt", "quick"),
        ("orders", "canary", 7, True, "halt", "quick"),
    ]
    assert [tuple(r) for r in top] == [(False, None)]
    with engine.connect() as conn:  # what routers read after the upgrade
        state = read_states(conn)
    assert state is not None and state.migrations["orders"].stage == "canary"
    assert state.open_breakers == frozenset({"place_order"})
    engine.dispose()


def test_upgrading_0006_to_0007_keeps_every_row_and_the_downgrade_takes_only_the_new_tables(
    db_url,
):
    engine = open_engine(db_url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        for statement in ROWS_AT_0002.values():
            params = {"sketch": b"\x01\x02"} if ":sketch" in statement else {}
            conn.execute(text(statement), params)
    upgrade(engine, "0006")
    kept = ("runs", "outcomes", "outcome_rollups", "dirty_buckets", "shadow_comparisons",
            "breakers", "rollout_events", "migration_state")  # fmt: skip
    with engine.connect() as conn:
        before = {t: conn.execute(text(f"SELECT * FROM {t}")).mappings().all() for t in kept}
    assert upgrade(engine) == SCHEMA_REVISION == "0007"
    with engine.begin() as conn:
        after = {t: conn.execute(text(f"SELECT * FROM {t}")).mappings().all() for t in kept}
        conn.execute(
            text("INSERT INTO captures (id, ts_ns, run_id, migration, op, served, build_id, "
                 "format, payload, size) VALUES ('c1', 2, 'r1', 'orders', 'place_order', "
                 "'rust', 'b1', 1, :payload, 3)"),
            {"payload": b"\x78\x9c\x03"},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO replays (id, ts_ns, build_id, migration, op, replayed, matched, "
                 "mismatched, skipped) VALUES ('p1', 3, 'b1', 'orders', 'place_order', 1, 1, "
                 "0, 0)")
        )  # fmt: skip
    for table, rows in before.items():
        assert [dict(r) for r in after[table]] == [dict(r) for r in rows], table
    with engine.connect() as conn:
        payload = conn.execute(text("SELECT payload FROM captures")).scalar_one()
    assert bytes(payload) == b"\x78\x9c\x03"
    from harness.store import schema

    schema.migrate(engine, "downgrade", "0006")
    assert current_revision(engine) == "0006"
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        again = {t: conn.execute(text(f"SELECT * FROM {t}")).mappings().all() for t in kept}
    assert "captures" not in tables and "replays" not in tables
    for table, rows in before.items():
        assert [dict(r) for r in again[table]] == [dict(r) for r in rows], table
    assert upgrade(engine) == "0007"
    engine.dispose()


def test_a_file_locked_beyond_the_busy_timeout_is_waited_for_while_opening(tmp_path, monkeypatch):
    # Another process holds a new file locked in a way the busy timeout gives up on (as the
    # first process on a new store does while it switches the file to WAL): opening retries
    # until it is free instead of failing the command.
    from harness.store import db

    path = tmp_path / "h.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    backed_off: list[float] = []

    def sleep(seconds: float) -> None:  # the holder lets go once the opener has backed off
        backed_off.append(seconds)
        if holder.in_transaction:
            holder.execute("COMMIT")

    monkeypatch.setattr(db.time, "sleep", sleep)
    engine = db.open_engine(f"sqlite:///{path}")
    try:
        assert db.current_revision(engine) is None
        db.upgrade(engine)
        assert db.current_revision(engine) == db.SCHEMA_REVISION
    finally:
        engine.dispose()
        holder.close()
    assert backed_off and backed_off[0] == 0.01
