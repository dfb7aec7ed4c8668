"""Schema changes: Alembic's migrations, each whole upgrade or downgrade atomic and serialised
between processes. `harness db`, `harness run` / `harness.open()` (the schema of a new SQLite
file) and the `alembic` command line (through `harness/migrations/env.py`) all run them here.

**Atomic.** Every change runs in one transaction with the `alembic_version` stamp: a process
killed at any point leaves the schema as it was before, never half-made. PostgreSQL's DDL is
transactional. SQLite's is too, but the pysqlite driver begins a transaction only before
INSERT/UPDATE/DELETE and runs CREATE/ALTER/DROP in autocommit, so each DDL statement (and each
table Alembic's batch mode copies) was committed on its own. The migration connection therefore
turns the driver's transaction handling off (`isolation_level=None`) and emits `BEGIN
IMMEDIATE` itself: the recipe of SQLAlchemy's pysqlite notes, "Serializable isolation /
Savepoints / Transactional DDL". Alembic, handed a connection already in a transaction, runs
every revision inside it (`transaction_per_migration` stays off), so a future revision is atomic
without doing anything. Foreign keys are off on that connection while it works (batch mode
drops and recreates tables; SQLite ignores the pragma inside a transaction) and `PRAGMA
foreign_key_check` must find nothing before the commit: SQLite's own procedure for schema
changes (sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes").

**Serialised.** `BEGIN IMMEDIATE` takes SQLite's write lock at once; PostgreSQL takes the
transaction-scoped advisory lock `PG_LOCK_KEY`. A second process changing or creating the schema
waits (up to `SCHEMA_LOCK_WAIT_S`), then reads the revision inside the lock and finds the work
done: bots started together on a new file, or `harness db upgrade` beside `harness.open()`,
all succeed. A process that only finds the schema at another revision (`settle`) waits the same
way before it judges, so it never reports a schema that is being completed as it looks.

**Recovered.** Older harnesses committed SQLite DDL statement by statement: a kill during the
creation left some empty tables and an empty `alembic_version`, and a kill during a batch
migration left `_alembic_tmp_<table>` beside the intact table, after which every upgrade failed
("table ... already exists"). Both are removed here, inside the lock, before migrating, when
that is certain to lose nothing: unversioned harness tables only if they are all empty, a batch
copy only if the table it was copied from still exists.

**Refused.** A database at a revision these migrations do not know was written by a newer
harness: every command says so (exit 2) and changes nothing, since going back is that harness's
`downgrade`, not this one's.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final, TextIO

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from harness.errors import InvalidInputError
from harness.store.db import (
    MIGRATIONS_DIR,
    SCHEMA_REVISION,
    SchemaError,
    StoreUnavailableError,
    can_write,
    current_revision,
    describe,
    error_line,
    prepare_sqlite_file,
    retry_while_busy,
    unavailable_error,
)

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

__all__ = [
    "PG_LOCK_KEY",
    "SCHEMA_LOCK_WAIT_S",
    "Change",
    "head_revision",
    "history",
    "is_known",
    "locked",
    "migrate",
    "offline_sql",
    "read_revision",
    "settle",
]

SCHEMA_LOCK_WAIT_S: Final = 60.0
"""How long a schema change, or a process that found the schema changing, waits for the
other process's lock before giving up (a creation takes well under a second; an upgrade that
copies a large table in batch mode takes longer, and other writers wait for it too)."""
PG_LOCK_KEY: Final = 0x6861726E65737321
"""PostgreSQL advisory lock key of schema changes: "harness!" read as a 64-bit integer (advisory
locks are per database, so stores in other databases of a cluster never wait for each other)."""
TMP_PREFIX: Final = "_alembic_tmp_"
"""The name Alembic's batch mode gives the copy of a table it rebuilds."""
VERBS: Final = ("upgrade", "downgrade")


@dataclass(frozen=True, slots=True)
class Change:
    """A schema change as it happened: the revision before and after (None: no schema)."""

    before: str | None
    after: str | None


# ----- the scripts ---------------------------------------------------------------------------


@cache
def _scripts() -> ScriptDirectory:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def head_revision() -> str:
    """Alembic's head revision of the shipped migrations."""
    head = _scripts().get_current_head()
    if head is None:  # pragma: no cover - migrations ship with the package
        raise SchemaError("no migrations found")
    return head


def is_known(revision: str) -> bool:
    """Whether `revision` is one of the shipped migrations (False: a newer harness wrote it)."""
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def history() -> list[dict[str, Any]]:
    """Every shipped revision, newest first: `revision`, `down_revision`, `doc` (the first line
    of its docstring), `head`."""
    head = head_revision()
    return [
        {
            "revision": script.revision,
            "down_revision": script.down_revision,
            "doc": (script.doc or "").strip().splitlines()[0] if script.doc else "",
            "head": script.revision == head,
        }
        for script in _scripts().walk_revisions()
    ]


def _config(url: str, connection: Connection | None = None, out: TextIO | None = None) -> Any:
    from alembic.config import Config

    config = Config(output_buffer=out)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _run_alembic(config: Any, verb: str, revision: str, *, sql: bool = False) -> None:
    from alembic import command
    from alembic.util import CommandError

    try:
        if verb == "upgrade":
            command.upgrade(config, revision, sql=sql)
        else:
            command.downgrade(config, revision, sql=sql)
    except CommandError as exc:  # an unknown target, or what offline mode cannot do
        if sql:
            raise InvalidInputError("--sql", f"{verb} {revision}", error_line(exc)) from None
        raise InvalidInputError("revision", revision, error_line(exc)) from None


# ----- the lock ------------------------------------------------------------------------------


def _sqlite_migration_engine(engine: Engine) -> Engine:
    """An engine of one connection at a time on `engine`'s SQLite file whose transactions are
    real for DDL: the driver in autocommit, `BEGIN IMMEDIATE` emitted on SQLAlchemy's begin."""
    path = str(engine.url.database)

    def connect() -> sqlite3.Connection:
        prepare_sqlite_file(path)
        conn = sqlite3.connect(
            path, timeout=SCHEMA_LOCK_WAIT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")  # outside any transaction, as SQLite requires
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")
        return conn

    migration = create_engine(engine.url, creator=connect, poolclass=NullPool)

    @event.listens_for(migration, "begin")
    def begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return migration


def _lock_error(engine: Engine, exc: DBAPIError) -> StoreUnavailableError:
    """The error for a lock not had: held too long by another process (SQLITE_BUSY, or
    PostgreSQL's lock_not_available), or the usual one when it is something else."""
    orig = exc.orig
    busy = str(getattr(orig, "sqlite_errorname", "")).startswith("SQLITE_BUSY")
    if not busy and getattr(orig, "sqlstate", None) != "55P03":
        return unavailable_error(engine, exc)
    return StoreUnavailableError(
        f"cannot change the schema of {describe(engine)}: another process held it locked for "
        f"{SCHEMA_LOCK_WAIT_S:.0f} s ({error_line(exc)})"
    )


@contextmanager
def locked(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the schema lock (see the module docstring): committed if the
    block ends normally (on SQLite after `PRAGMA foreign_key_check` found nothing), rolled back
    if it raises. Raises `StoreUnavailableError` when the lock is not had within
    `SCHEMA_LOCK_WAIT_S`."""
    if engine.dialect.name == "sqlite":
        migration = _sqlite_migration_engine(engine)
        try:
            with migration.connect() as conn:
                try:
                    transaction = conn.begin()  # BEGIN IMMEDIATE: waits for the write lock
                except DBAPIError as exc:
                    raise _lock_error(engine, exc) from None
                with transaction:
                    yield conn
                    _check_foreign_keys(conn)
        finally:
            migration.dispose()
        return
    with engine.begin() as conn:
        wait_ms = round(SCHEMA_LOCK_WAIT_S * 1000)
        conn.execute(text(f"SET LOCAL lock_timeout = {wait_ms}"))
        try:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        except DBAPIError as exc:
            raise _lock_error(engine, exc) from None
        yield conn


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise SchemaError(
            f"the schema change left {len(broken)} rows whose foreign key points nowhere "
            f"(in {', '.join(tables)}): rolled back, nothing changed"
        )


def _wait_for_change(engine: Engine) -> None:
    """Wait until no schema change holds the lock, taking it for an instant and writing
    nothing (a reader's slow path). A SQLite file this process cannot write is not waited for:
    a mode=ro connection cannot take the write lock, and nothing is read wrong for it (the
    revision is read again after)."""
    if engine.dialect.name == "sqlite":
        if not can_write(engine.url.render_as_string(hide_password=False)):
            return
        migration = _sqlite_migration_engine(engine)
        try:
            with migration.connect() as conn:
                try:
                    conn.begin().rollback()
                except DBAPIError as exc:
                    raise _lock_error(engine, exc) from None
        finally:
            migration.dispose()
        return
    with engine.connect() as conn:
        try:
            conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": PG_LOCK_KEY})
        except DBAPIError as exc:
            raise _lock_error(engine, exc) from None
        conn.rollback()


# ----- reading and judging -------------------------------------------------------------------


def read_revision(conn: Connection) -> str | None:
    """The revision stamped in `alembic_version` (None: no table, or no row)."""
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def _newer_error(where: str, revision: str) -> SchemaError:
    from harness import __version__

    return SchemaError(
        f"the database {where} is at schema revision {revision}, which this harness "
        f"({__version__}, schema {SCHEMA_REVISION}) does not know: a newer harness wrote it. "
        "Use that harness (this one reads and changes nothing in a schema it does not know)"
    )


def schema_error(where: str, revision: str | None) -> SchemaError:
    """The `SchemaError` for a database at `revision` (not `SCHEMA_REVISION`): the fix named."""
    if revision is None:
        return SchemaError(f"the database {where} has no harness schema: run `harness db upgrade`")
    if not is_known(revision):
        return _newer_error(where, revision)
    return SchemaError(
        f"the database {where} is at schema revision {revision}, this harness needs "
        f"{SCHEMA_REVISION}: run `harness db upgrade`"
    )


def settle(engine: Engine, *, create_if_empty: bool = False, read_only: bool = False) -> None:
    """The slow path of `ensure_schema`, for a database not at `SCHEMA_REVISION`: wait for a
    schema change in progress, read the revision again, create the schema of an empty SQLite
    file if `create_if_empty`; `SchemaError` naming the fix if it is still not current."""
    where = describe(engine)

    def settled() -> str | None:
        if read_only:
            _wait_for_change(engine)
            return current_revision(engine)
        with locked(engine) as conn:
            revision = read_revision(conn)
            creates = create_if_empty and engine.dialect.name == "sqlite"
            if (
                revision is None
                and creates
                and _clear_interrupted_creation(conn, where, only_if_ours=True)
            ):
                _run_alembic(_config(_url(engine), conn), "upgrade", "head")
                revision = read_revision(conn)
            return revision

    try:
        revision = retry_while_busy(engine, settled)
    except DBAPIError as exc:
        raise unavailable_error(engine, exc) from None
    if revision != SCHEMA_REVISION:
        raise schema_error(where, revision)


def migrate(engine: Engine, verb: str, revision: str) -> Change:
    """`upgrade` or `downgrade` to `revision` (an Alembic revision: `head`, `0001`, `base`...),
    atomically and under the schema lock; the revision before and after, both read inside the
    lock. Leftovers of an older harness's interrupted change are cleared first (module
    docstring). Raises `SchemaError` (a revision a newer harness wrote; nothing changed),
    `InvalidInputError` (an unknown target), `StoreUnavailableError`."""
    if verb not in VERBS:
        raise ValueError(f"verb must be one of {VERBS}, not {verb!r}")
    where = describe(engine)

    def change() -> Change:
        # Retried whole while SQLite answers busy before the lock is had (opening a new file,
        # its journal mode); once the change started, any failure rolls it back and is final.
        before: str | None = None
        started = False
        try:
            with locked(engine) as conn:
                before = read_revision(conn)
                if before is not None and not is_known(before):
                    raise _newer_error(where, before)
                started = True
                if before is None:
                    _clear_interrupted_creation(conn, where, only_if_ours=False)
                else:
                    _clear_batch_copies(conn, where)
                _run_alembic(_config(_url(engine), conn), verb, revision)
                after = read_revision(conn)
        except DBAPIError as exc:
            if not started:  # the database could not be reached, or read
                raise
            raise SchemaError(
                f"{verb} of {where} from revision {before or 'empty'} to {revision} failed: "
                f"{error_line(exc)}; rolled back, nothing changed"
            ) from None
        return Change(before, after)

    try:
        return retry_while_busy(engine, change)
    except DBAPIError as exc:
        raise unavailable_error(engine, exc) from None


def offline_sql(url: str, verb: str, revision: str, out: TextIO) -> None:
    """Write the SQL of `verb` to `revision` for `url`'s dialect to `out`, touching no
    database (Alembic's offline mode): one transaction, `alembic_version` stamped in it.
    `revision` may be a range `FROM:TO` (a downgrade needs one). Nothing is written unless the
    whole script could be made: `InvalidInputError` otherwise (an unknown revision; on SQLite,
    a revision whose batch operation needs the live table, such as 0002)."""
    if verb not in VERBS:
        raise ValueError(f"verb must be one of {VERBS}, not {verb!r}")
    script = io.StringIO()
    try:
        _run_alembic(_config(url, out=script), verb, revision, sql=True)
    except InvalidInputError as exc:
        if "batch mode with dialect sqlite" not in str(exc.reason):
            raise
        reason = (
            "SQLite's changes after 0001 copy tables in batch mode, which reads the live "
            "table: they cannot be printed offline; `harness db upgrade` (without --sql) "
            "applies them to the file, atomically"
        )
        raise InvalidInputError("--sql", exc.value, reason) from None
    out.write(script.getvalue())


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


# ----- leftovers of older harnesses ------------------------------------------------------------


def _harness_tables() -> frozenset[str]:
    from harness.store.models import Base

    return frozenset(Base.metadata.tables) | {"alembic_version"}


def _quote(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def _drop(conn: Connection, name: str) -> None:
    cascade = " CASCADE" if conn.dialect.name == "postgresql" else ""
    conn.execute(text(f"DROP TABLE {_quote(conn, name)}{cascade}"))


def _clear_interrupted_creation(conn: Connection, where: str, *, only_if_ours: bool) -> bool:
    """With no revision stamped: drop the harness tables an interrupted creation left, if every
    one is empty (nothing can be lost); `SchemaError` if one holds rows. Tables of other
    applications are left alone; with `only_if_ours` (creating a SQLite file implicitly) their
    presence makes this return False: that file is not the harness's to fill."""
    tables = set(inspect(conn).get_table_names())
    ours = {t for t in tables if t in _harness_tables() or t.startswith(TMP_PREFIX)}
    if only_if_ours and tables - ours:
        return False
    holding = [
        t
        for t in sorted(ours)
        if conn.execute(text(f"SELECT 1 FROM {_quote(conn, t)} LIMIT 1")).first()
    ]
    if holding:
        raise SchemaError(
            f"the database {where} holds harness tables with rows ({', '.join(holding)}) but no "
            "schema revision, so which migration made them is unknown: restore it from a "
            "backup, or move those rows out and drop the tables, then run `harness db upgrade`"
        )
    for table in sorted(ours):
        _drop(conn, table)
    return True


def _clear_batch_copies(conn: Connection, where: str) -> None:
    """Drop the `_alembic_tmp_<table>` copies an interrupted batch migration left, when
    `<table>` itself is there (the stamped revision describes it; the copy is redone);
    `SchemaError` naming the copy when it is not (its rows may be the only ones left)."""
    tables = set(inspect(conn).get_table_names())
    for copy in sorted(t for t in tables if t.startswith(TMP_PREFIX)):
        original = copy[len(TMP_PREFIX) :]
        if original not in tables:
            raise SchemaError(
                f"the database {where} has {copy} but no {original}: an interrupted upgrade "
                f"left the rows of {original} only in that copy. Restore it from a backup (or "
                f"rename {copy} to {original} by hand if it is complete), then run `harness db "
                "upgrade`"
            )
        _drop(conn, copy)
