"""Test sessions sharing one PostgreSQL server: `.ci/run` runs the fault drills and the main
suite at once, both on the server it starts (`HARNESS_TEST_PG_URL`). Each session's migrated
template (`tests/conftest.py`) must be its own: a session that dropped and re-made a shared one
pulled it from under the other's copies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from harness.store.db import SCHEMA_REVISION

ROOT = Path(__file__).resolve().parent.parent


def _oid(server: str, database: str) -> int | None:
    engine = create_engine(server)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT oid FROM pg_database WHERE datname = :name"), {"name": database}
            ).scalar()
        return None if found is None else int(found)
    finally:
        engine.dispose()


def test_a_pg_url_is_a_migrated_copy_of_the_template(pg_url):
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert revision == SCHEMA_REVISION


def test_another_session_on_the_same_server_leaves_this_sessions_template_alone(
    pg_server, pg_template_url, tmp_path
):
    template = make_url(pg_template_url).database
    assert template is not None
    before = _oid(pg_server, template)
    assert before is not None, f"this session's template {template} does not exist"

    # A whole second session, as `.ci/run` starts one beside this one, on the same server.
    test_id = f"{Path(__file__).name}::test_a_pg_url_is_a_migrated_copy_of_the_template"
    args = ["-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "other"), test_id]
    other = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=Path(__file__).parent,
        env={**os.environ, "HARNESS_TEST_PG_URL": pg_server},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert other.returncode == 0, other.stdout[-3000:] + other.stderr[-3000:]
    assert "1 passed" in other.stdout

    assert _oid(pg_server, template) == before, "the other session dropped and re-made it"
