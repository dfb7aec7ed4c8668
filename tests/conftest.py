"""Fixtures shared by every suite that touches the store: a database per test, on SQLite and on
PostgreSQL.

- `store_url`: a fresh, migrated database, once on SQLite and once on PostgreSQL (`sqlite_url`,
  `pg_url` for one backend). Made by copying a template migrated once per session.
- `db_url`: a fresh, EMPTY database on each backend (`empty_sqlite_url`, `empty_pg_url`), for
  the tests of the migrations themselves.

PostgreSQL comes from `HARNESS_TEST_PG_URL` (a URL whose user may create databases; `.ci/run`
starts a throwaway cluster and sets it) or, when unset, from a throwaway cluster this session
starts on loopback and stops itself (`tests/pgcluster.py`). A PostgreSQL test whose server
cannot be started or reached fails: it never skips.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pgcluster
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

PG_ENV = "HARNESS_TEST_PG_URL"
PG_TEMPLATE = f"harness_test_template_{os.getpid()}"
"""This session's template database. One name per test process: `.ci/run` runs the drills and
the main suite at once on one server, and a session that dropped and re-made a shared template
pulled it from under the other's copies. The process id is unique among the sessions running;
a template left by a dead session of the same id is dropped before it is made again."""


def _with_database(url: str, database: str) -> str:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database, with a migrated template database."""
    from harness.store.db import open_engine, upgrade

    url = os.environ.get(PG_ENV)
    folder: Path | None = None
    if not url:
        folder = Path(tempfile.mkdtemp(prefix="harness-pg-"))
        folder.chmod(0o755)  # the server runs as `postgres` when the tests run as root
        try:
            url = pgcluster.start(folder)
        except pgcluster.ClusterError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.fail(f"no PostgreSQL for the tests: {exc} (or set {PG_ENV})")
    try:
        admin = open_engine(url)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_TEMPLATE} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {PG_TEMPLATE}"))
        admin.dispose()
        template = open_engine(_with_database(url, PG_TEMPLATE))
        upgrade(template)
        template.dispose()
        yield url
    finally:
        if folder is not None:
            try:
                pgcluster.stop(folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        elif url:  # a server shared with other sessions: leave it as found
            admin = open_engine(url)
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {PG_TEMPLATE} WITH (FORCE)"))
            admin.dispose()


def _pg_database(pg_server: str, template: str | None) -> Iterator[str]:
    from harness.store.db import open_engine

    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = open_engine(pg_server)
    clause = f" TEMPLATE {template}" if template else ""
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE {name}{clause}"))
    try:
        yield _with_database(pg_server, name)
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def template_url(pg_server: str) -> str:
    """URL of the session's PostgreSQL template: a database migrated to the head, cleanly (read
    it, never write it: every `pg_url` is a copy of it)."""
    return _with_database(pg_server, PG_TEMPLATE)


@pytest.fixture
def pg_template_url(pg_server: str) -> str:
    """`template_url` as a fixture: test modules must not import from a conftest (several
    `conftest` modules exist and which one that name finds depends on the collection order)."""
    return template_url(pg_server)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL database for this test (dropped after)."""
    yield from _pg_database(pg_server, PG_TEMPLATE)


@pytest.fixture
def empty_pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped after)."""
    yield from _pg_database(pg_server, None)


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


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    """A SQLite file path for this test, with nothing in it yet."""
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database, once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database, once on SQLite and once on PostgreSQL."""
    name = "empty_sqlite_url" if request.param == "sqlite" else "empty_pg_url"
    return str(request.getfixturevalue(name))
