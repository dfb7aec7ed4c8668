"""Alembic environment of the store: migrations run against the URL the harness is given.

`harness db` passes its URL in `config.attributes["url"]` and a connection in
`config.attributes["connection"]` that is already inside the schema lock's one transaction
(`harness.store.schema.locked`); the `alembic` command line takes `-x url=...`, else
`HARNESS_DB_URL`, else `sqlite:///harness.db`, and takes the same lock and transaction here, so
every revision, this one's or a future one's, commits whole or not at all, whoever runs it.
`target_metadata` is the models' metadata, so `alembic check` fails whenever the models and the
migrations disagree.
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy import Connection

from harness.store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    return str(url or os.environ.get("HARNESS_DB_URL") or "sqlite:///harness.db")


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # The whole run is one transaction (the caller's): a kill leaves the schema as it was.
        transaction_per_migration=False,
        # SQLite's DDL is transactional on the migration connection (harness.store.schema);
        # saying so makes an offline (--sql) script one BEGIN ... COMMIT too.
        transactional_ddl=True,
        **options,
    )


def _run(connection: Connection) -> None:
    _configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE by copy on SQLite
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL for `harness db upgrade --sql` (or `alembic upgrade --sql`) without a database."""
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database, inside the schema lock's transaction."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from harness.store.db import open_engine
    from harness.store.schema import locked

    engine = open_engine(_url())
    try:
        with locked(engine) as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
