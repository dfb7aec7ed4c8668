"""Schema changes (issue 20): each whole upgrade is atomic, whatever revision it runs; two
processes changing or checking the schema at once both succeed; what an older harness's
interrupted change left is cleared; a schema a newer harness wrote is refused by every command,
in one line, with nothing changed."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, inspect, text

# harness.store.schema is imported where it is used, so that the rest of this file also runs
# against a harness from before it (the faults it fixed were reproduced that way).
from harness.cli import main
from harness.store.db import (
    MIGRATIONS_DIR,
    SCHEMA_REVISION,
    StoreUnavailableError,
    open_engine,
    open_store,
    upgrade,
)
from harness.store.models import Base

from .schemakit import fingerprint

pytestmark = pytest.mark.timeout(300)

KIT = Path(__file__).with_name("schemakit.py")
LOCK_STATEMENTS = ("BEGIN IMMEDIATE", "pg_advisory_xact_lock")


def seed_0001(engine: Engine) -> None:
    """A run and one of its outcomes, written at revision 0001."""
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


def outcome_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT id FROM outcomes ORDER BY id"))]


@pytest.fixture
def clean(db_url: str, request: pytest.FixtureRequest) -> dict[str, object]:
    """The fingerprint of a clean schema at the head on `db_url`'s backend: the session's
    template, migrated once from nothing."""
    if db_url.startswith("sqlite"):
        return fingerprint(f"sqlite:///{request.getfixturevalue('sqlite_template')}")
    return fingerprint(request.getfixturevalue("pg_template_url"))


# ----- atomic ----------------------------------------------------------------------------------


def _fail_at_the_stamp(_conn, _cursor, statement, *_args) -> None:
    words = statement.lstrip().upper()
    if "ALEMBIC_VERSION" in words and words.startswith(("INSERT", "UPDATE")):
        raise RuntimeError("killed at the revision stamp")


@pytest.mark.parametrize("start", [None, "0001"], ids=["creation", "0001-to-0002"])
def test_a_change_that_fails_at_its_last_statement_leaves_the_schema_as_it_was(db_url, start):
    engine = open_engine(db_url)
    if start is not None:
        upgrade(engine, start)
        seed_0001(engine)
    before = fingerprint(db_url)
    event.listen(Engine, "before_cursor_execute", _fail_at_the_stamp)
    try:
        with pytest.raises(Exception, match="killed at the revision stamp"):
            upgrade(engine)
    finally:
        event.remove(Engine, "before_cursor_execute", _fail_at_the_stamp)
    assert fingerprint(db_url) == before  # not one table, column or index of it kept
    assert upgrade(engine) == SCHEMA_REVISION
    if start is not None:
        assert outcome_ids(engine) == ["o1"]
    engine.dispose()


THROWAWAY = '''"""A throwaway revision of the tests: rebuilds `runs` (a parent table) in batch mode.

Revision ID: 9999
Revises: HEAD
"""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "HEAD"
branch_labels = None
depends_on = None


def _recreate():
    # SQLite: the table is copied, dropped and renamed; PostgreSQL alters it in place.
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade():
    op.create_table("scratch", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO scratch (id) VALUES (1)")
    with op.batch_alter_table("runs", recreate=_recreate()) as batch:
        batch.alter_column("host", type_=sa.String(300), existing_type=sa.String(255))
    if FAIL:
        raise RuntimeError("revision 9999 fails half-way")


def downgrade():
    with op.batch_alter_table("runs", recreate=_recreate()) as batch:
        batch.alter_column("host", type_=sa.String(255), existing_type=sa.String(300))
    op.drop_table("scratch")
'''


@pytest.fixture
def throwaway_scripts(tmp_path, monkeypatch):
    """A copy of the shipped migrations plus a revision 9999 after their head; returns a switch
    for its failure."""
    from harness.store import schema

    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    revision = scripts / "versions" / "9999_throwaway.py"

    def write(fail: bool) -> None:
        revision.write_text(f"FAIL = {fail}\n" + THROWAWAY.replace("HEAD", SCHEMA_REVISION))

    write(True)
    monkeypatch.setattr(schema, "MIGRATIONS_DIR", scripts)
    schema._scripts.cache_clear()
    yield write
    schema._scripts.cache_clear()


def test_a_future_revision_is_atomic_without_doing_anything(db_url, throwaway_scripts):
    from harness.store import schema

    engine = open_engine(db_url)
    upgrade(engine, "0002")
    seed_0001(engine)
    upgrade(engine, SCHEMA_REVISION)  # the shipped head; 9999 is the head of this copy
    before = fingerprint(db_url)
    with pytest.raises(RuntimeError, match="fails half-way"):
        schema.migrate(engine, "upgrade", "9999")
    assert fingerprint(db_url) == before  # no scratch table, runs as it was, still the head
    throwaway_scripts(False)
    # Rebuilding a parent table keeps its rows and the rows that refer to them.
    assert schema.migrate(engine, "upgrade", "9999").after == "9999"
    with engine.connect() as conn:
        assert "scratch" in inspect(conn).get_table_names()
        joined = conn.execute(text("SELECT o.id FROM outcomes o JOIN runs r ON r.id = o.run_id"))
        assert [r[0] for r in joined] == ["o1"]
        assert not [t for t in inspect(conn).get_table_names() if t.startswith("_alembic_tmp")]
    assert schema.migrate(engine, "downgrade", SCHEMA_REVISION).after == SCHEMA_REVISION
    # The same tables, columns, keys and indexes (a rebuilt table's CREATE text differs).
    assert fingerprint(db_url)["tables"] == before["tables"]
    engine.dispose()


# ----- serialised ------------------------------------------------------------------------------


def _start_watched(action: str, url: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """`schemakit.py ACTION URL` in a process of its own; its stderr lines arrive in the queue
    (None at the end)."""
    child = subprocess.Popen(
        [sys.executable, str(KIT), action, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")},
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.put(line)
        lines.put(None)  # type: ignore[arg-type]

    threading.Thread(target=pump, daemon=True).start()
    return child, lines


def _wait_for_lock(child: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    """Wait until `child` asks for the schema lock (fail with its output if it ends first)."""
    seen: list[str] = []
    while True:
        line = lines.get(timeout=240)
        if line is None:
            out = child.stdout.read() if child.stdout else ""
            raise AssertionError(f"ended before asking for the lock: {out}{''.join(seen)[-3000:]}")
        seen.append(line)
        if any(lock in line for lock in LOCK_STATEMENTS):
            return


@pytest.mark.parametrize("action", ["harness-open", "cli:status,--json", "upgrade"])
def test_a_process_that_finds_an_upgrade_under_way_waits_and_finds_it_complete(db_url, action):
    if action == "harness-open" and not db_url.startswith("sqlite"):
        action = "cli:gate,--json"  # PostgreSQL: a command that reads the current stage
    from harness.store import schema

    engine = open_engine(db_url)
    upgrade(engine, "0001")
    with schema.locked(engine) as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")  # done, not committed: another process sees 0001
        child, lines = _start_watched(action, db_url)
        _wait_for_lock(child, lines)
    child.communicate(timeout=240)
    tail = []
    while not lines.empty():
        tail.append(lines.get() or "")
    assert child.returncode in (0, 3), "".join(tail)[-3000:]  # gate: 3 INCONCLUSIVE
    assert "Traceback" not in "".join(tail)
    assert fingerprint(db_url)["revision"] == SCHEMA_REVISION
    engine.dispose()


def test_a_schema_lock_held_too_long_is_one_clear_error(db_url, monkeypatch):
    from harness.store import schema

    engine = open_engine(db_url)
    monkeypatch.setattr(schema, "SCHEMA_LOCK_WAIT_S", 0.5)
    held = pytest.raises(StoreUnavailableError, match="another process held it locked for")
    with schema.locked(engine), held:  # another process's schema change, as it were, lasting
        schema.migrate(engine, "upgrade", "head")
    assert schema.migrate(engine, "upgrade", "head").after == SCHEMA_REVISION
    engine.dispose()


def test_processes_creating_one_new_sqlite_file_at_once_all_succeed(tmp_path, sqlite_template):
    url = f"sqlite:///{tmp_path / 'harness.db'}"
    children = [_start_watched(a, url) for a in ("open", "open", "harness-open", "upgrade")]
    for child, lines in children:
        child.communicate(timeout=240)
        output = []
        while not lines.empty():
            output.append(lines.get() or "")
        assert child.returncode == 0, "".join(output)[-3000:]
    assert fingerprint(url) == fingerprint(f"sqlite:///{sqlite_template}")


def test_processes_upgrading_one_postgres_database_at_once_all_succeed(empty_pg_url):
    children = [_start_watched("upgrade", empty_pg_url) for _ in range(3)]
    for child, lines in children:
        child.communicate(timeout=240)
        output = []
        while not lines.empty():
            output.append(lines.get() or "")
        assert child.returncode == 0, "".join(output)[-3000:]
    assert fingerprint(empty_pg_url)["revision"] == SCHEMA_REVISION


# ----- recovered -------------------------------------------------------------------------------

HALF = ("breakers", "dirty_buckets", "outcome_rollups")
"""The first tables 0001 creates: what a kill during an older harness's creation left."""


def _half_created(url: str) -> None:
    """An empty `alembic_version` and the first tables, each committed on its own (as an older
    harness left a SQLite file it was killed while creating)."""
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
    for name in HALF:
        Base.metadata.tables[name].create(engine)
    engine.dispose()


@pytest.mark.parametrize("how", ["upgrade", "open"])
def test_a_creation_an_older_harness_left_half_done_is_finished(db_url, clean, how):
    _half_created(db_url)
    if how == "upgrade" or not db_url.startswith("sqlite"):  # PostgreSQL: never implicitly
        assert main(["db", "upgrade", f"db.url={db_url}"]) == 0
    else:
        open_store(db_url, create_if_empty=True).dispose()
    assert fingerprint(db_url) == clean


def test_a_half_done_creation_holding_rows_is_refused_and_left_alone(db_url, capsys):
    _half_created(db_url)
    engine = open_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO breakers (op, is_open, failures) VALUES ('x', true, 1)"))
    before = fingerprint(db_url)
    assert main(["db", "upgrade", f"db.url={db_url}"]) == 2
    err = capsys.readouterr().err
    assert "harness tables with rows (breakers)" in err and err.count("\n") == 1
    assert fingerprint(db_url) == before
    engine.dispose()


def _copy_of_outcomes(url: str, *, drop_original: bool) -> None:
    """`_alembic_tmp_outcomes` beside (or instead of) `outcomes`, as an older harness's kill
    during the 0001 -> 0002 batch copy left it."""
    engine = open_engine(url)
    with engine.begin() as conn:
        if drop_original:
            conn.execute(text("ALTER TABLE outcomes RENAME TO _alembic_tmp_outcomes"))
        else:
            conn.execute(text("CREATE TABLE _alembic_tmp_outcomes (id VARCHAR(32) PRIMARY KEY)"))
    engine.dispose()


def test_a_batch_copy_an_older_harness_left_is_cleared_and_the_upgrade_done(db_url, clean):
    engine = open_engine(db_url)
    upgrade(engine, "0001")
    seed_0001(engine)
    _copy_of_outcomes(db_url, drop_original=False)
    assert main(["db", "upgrade", f"db.url={db_url}"]) == 0
    assert outcome_ids(engine) == ["o1"]
    with engine.begin() as conn:  # the seeded rows are not part of the comparison
        conn.execute(text("DELETE FROM outcomes"))
        conn.execute(text("DELETE FROM runs"))
    assert fingerprint(db_url) == clean
    engine.dispose()


def test_a_batch_copy_holding_the_only_rows_is_refused_naming_it(db_url, capsys):
    engine = open_engine(db_url)
    upgrade(engine, "0001")
    seed_0001(engine)
    _copy_of_outcomes(db_url, drop_original=True)
    before = fingerprint(db_url)
    assert main(["db", "upgrade", f"db.url={db_url}"]) == 2
    err = capsys.readouterr().err
    assert "has _alembic_tmp_outcomes but no outcomes" in err and err.count("\n") == 1
    assert fingerprint(db_url) == before
    engine.dispose()


# ----- refused ---------------------------------------------------------------------------------

EVERY_COMMAND = [
    (("db", "upgrade"), 2),
    (("db", "downgrade", "0001"), 2),
    (("db", "current"), 1),
    (("db", "current", "--json"), 1),
    (("db", "rebuild-rollups"), 2),
    (("status",), 2),
    (("status", "--json"), 2),
    (("gate",), 2),
    (("query", "runs"), 2),
    (("promote", "--force", "--reason", "x"), 2),
    (("rollback",), 2),
    (("kill",), 2),
    (("unkill",), 2),
    (("breaker",), 2),
    (("breaker", "reset", "--op", "place_order"), 2),
    (("run", "broker.sim.profile=default", "workload.trades=1"), 2),
    (("tui",), 2),
]


def test_a_schema_a_newer_harness_wrote_is_refused_by_every_command(db_url, capsys):
    engine = open_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    before = fingerprint(db_url)
    for args, status in EVERY_COMMAND:
        assert main([*args, f"db.url={db_url}"]) == status, args
        out, err = capsys.readouterr()
        text_out = out + err
        assert "Traceback" not in text_out, (args, text_out)
        if status == 2:
            assert err.count("\n") == 1 and "revision 0099" in err, (args, err)
            assert "a newer harness wrote it" in err and "db upgrade`" not in err, (args, err)
        elif "--json" in args:
            assert '"revision": "0099"' in out and '"current": false' in out
        else:
            assert "0099 (written by a newer harness" in out, (args, out)
    assert fingerprint(db_url) == before


# ----- harness db ------------------------------------------------------------------------------


def test_db_current_json_has_stable_keys_and_hides_the_password(db_url, capsys):
    url = db_url
    if not url.startswith("sqlite"):  # trust authentication ignores the password given
        url = url.replace("://harness@", "://harness:s3cret-pw@")
    assert main(["db", "upgrade", "0001", f"db.url={url}"]) == 0
    capsys.readouterr()
    assert main(["db", "current", "--json", f"db.url={url}"]) == 1
    import json

    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["url", "revision", "head", "current"]
    assert (data["revision"], data["head"], data["current"]) == ("0001", SCHEMA_REVISION, False)
    assert "s3cret-pw" not in data["url"]
    assert main(["db", "upgrade", f"db.url={url}"]) == 0
    capsys.readouterr()
    assert main(["db", "current", "--json", f"db.url={url}"]) == 0
    assert json.loads(capsys.readouterr().out)["current"] is True


def test_db_history_downgrade_and_upgrade_cover_what_alembic_did(db_url, capsys):
    assert main(["db", "upgrade", f"db.url={db_url}"]) == 0
    capsys.readouterr()
    assert main(["db", "history", f"db.url={db_url}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"0006 -> {SCHEMA_REVISION} (head, current): captures and")
    assert lines[1].startswith("0005 -> 0006: shadow_comparisons")
    assert lines[2].startswith("0004 -> 0005: Migrations: one")
    assert lines[3].startswith("0003 -> 0004: dirty_buckets.writer")
    assert lines[4].startswith("0002 -> 0003: rollout_state.gate")
    assert lines[-2].startswith("0001 -> 0002: outcomes.reconciled")
    assert lines[-1].startswith("base -> 0001: Initial schema")
    assert main(["db", "downgrade", "0001", f"db.url={db_url}"]) == 0
    assert f"schema revision 0001 ({SCHEMA_REVISION} -> 0001)" in capsys.readouterr().out
    assert fingerprint(db_url)["revision"] == "0001"
    assert main(["db", "downgrade", f"db.url={db_url}"]) == 2  # a revision is required
    assert main(["db", "downgrade", "nosuch", f"db.url={db_url}"]) == 2
    err = capsys.readouterr().err
    assert "invalid revision=None" in err and "invalid revision='nosuch'" in err
    assert fingerprint(db_url)["revision"] == "0001"


def test_db_upgrade_sql_prints_one_transaction_and_touches_no_database(tmp_path, capsys):
    url = "postgresql+psycopg://bot:s3cret-pw@127.0.0.1:1/nowhere"  # nothing listens there
    assert main(["db", "upgrade", "--sql", f"db.url={url}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("BEGIN;") and out.rstrip().endswith("COMMIT;")
    assert "CREATE TABLE outcomes" in out and "ADD COLUMN reconciled" in out
    assert f"UPDATE alembic_version SET version_num='{SCHEMA_REVISION}'" in out
    assert "s3cret-pw" not in out
    assert main(["db", "downgrade", f"{SCHEMA_REVISION}:0001", "--sql", f"db.url={url}"]) == 0
    assert "DROP COLUMN reconciled" in capsys.readouterr().out
    sqlite = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["db", "upgrade", "0001", "--sql", f"db.url={sqlite}"]) == 0
    assert "CREATE TABLE runs" in capsys.readouterr().out
    # SQLite's batch copy needs the live table: refused in one line, nothing printed.
    assert main(["db", "upgrade", "--sql", f"db.url={sqlite}"]) == 2
    out, err = capsys.readouterr()
    assert (
        out == "" and "invalid --sql='upgrade head'" in err and "cannot be printed offline" in err
    )
    assert not (tmp_path / "h.db").exists()
