"""Fixtures shared by the suites that touch the store: a fresh, migrated database per test.

`store_url` runs a test twice: on a SQLite file and on PostgreSQL. The PostgreSQL server is
given by `HARNESS_TEST_PG_URL` (a URL whose user may create databases, e.g.
`postgresql+psycopg://harness@127.0.0.1:55432/postgres`); each test gets its own database,
created from a template migrated once per session, and dropped after. Without the variable the
PostgreSQL variants FAIL (never skip): CI starts a throwaway server and sets it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

PG_ENV = "HARNESS_TEST_PG_URL"
PG_TEMPLATE = "harness_test_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the head once per session (copying it is much faster)."""
    from harness.store.db import open_engine, upgrade

    path = tmp_path_factory.mktemp("store") / "template.db"
    engine = open_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh migrated SQLite database file for this test."""
    target = tmp_path / "harness.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server URL of `HARNESS_TEST_PG_URL`, with a migrated template database."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.fail(f"{PG_ENV} is not set: the PostgreSQL variants need a server (see .ci/run)")
    from harness.store.db import open_engine, upgrade

    admin = open_engine(url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_TEMPLATE} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {PG_TEMPLATE}"))
    admin.dispose()
    template = open_engine(_with_database(url, PG_TEMPLATE))
    upgrade(template)
    template.dispose()
    return url


def _with_database(url: str, database: str) -> str:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.set(database=database).render_as_string(hide_password=False)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL database for this test (dropped after)."""
    from harness.store.db import open_engine

    name = f"harness_test_{uuid.uuid4().hex[:12]}"
    admin = open_engine(pg_server)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {PG_TEMPLATE}"))
    try:
        yield _with_database(pg_server, name)
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database, once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
