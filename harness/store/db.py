"""Opening the database: engines tuned for SQLite (WAL) and PostgreSQL (psycopg 3), and the
schema check every command makes.

The schema revision the code expects is `SCHEMA_REVISION` (a test keeps it equal to Alembic's
head), so the check on every start is one `SELECT` on `alembic_version`, without loading
Alembic; only a database at another revision takes the slow path of `harness.store.schema`
(wait for a schema change another process is making, create the schema of a new SQLite file).
Errors name what to do: `SchemaError` says which command fixes the schema,
`StoreUnavailableError` says which database could not be reached (password hidden).

A SQLite file is created owner-only (0600: it holds the resolved configuration of every run and
sits beside the credentials a bot uses); SQLite gives its `-wal` and `-shm` files the mode of the
database file, so they are 0600 too. A command that only reads opens the store read-only
(`read_only=True`): a SQLite URI with `mode=ro`, which reads a copy, a backup or a file on a
read-only mount that the process cannot write; PostgreSQL sessions with
`default_transaction_read_only`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError

from harness.config import redact_url
from harness.errors import HarnessError

__all__ = [
    "MIGRATIONS_DIR",
    "SCHEMA_REVISION",
    "SchemaError",
    "StoreUnavailableError",
    "can_write",
    "current_revision",
    "ensure_schema",
    "error_line",
    "open_engine",
    "open_store",
    "require_existing",
    "unavailable_error",
    "upgrade",
    "url_secrets",
    "write_transaction",
]

SCHEMA_REVISION: Final = "0007"
"""The Alembic revision this code reads and writes (kept equal to the head by a test)."""
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_MS: Final = 2_000
"""How long a SQLite statement waits on another process's lock before failing (readers in WAL
mode are not blocked by writers)."""
SQLITE_OPEN_WAIT_S: Final = 60.0
"""How long opening a SQLite store retries while another process holds the file locked in a
way no busy timeout waits for (`retry_while_busy`)."""
SQLITE_WRITE_WAIT_MS: Final = 5_000
"""How long a write transaction of the recorder, the compactor or `harness db prune` waits for
SQLite's write lock (`write_transaction`): many times what another process's transaction holds
it (a recorder batch of 5,000 rows: about 70 ms; 8 processes queued: under 1 s), so several
processes on one file wait their turn instead of failing; a lock held longer (a hung process,
a person's open transaction) makes the recorder buffer and retry, the fallback, not the path."""
NO_WAL_INDEX: Final = frozenset(
    {"SQLITE_READONLY_DIRECTORY", "SQLITE_CANTOPEN", "SQLITE_READONLY_CANTINIT"}
)
"""What SQLite answers a read-only reader when it can neither open nor create a WAL file's
-shm index: a folder it may not write (EACCES), a read-only mount (EROFS), an index it cannot
initialise."""
SQLITE_FILE_MODE: Final = 0o600
"""Permissions of a SQLite file the harness creates (its -wal and -shm files take the same)."""


class SchemaError(HarnessError):
    """The database schema is missing or not the revision this harness needs."""


class StoreUnavailableError(HarnessError):
    """The database cannot be reached or opened (the URL is shown with its password hidden)."""


def create_sqlite_file(path: str) -> None:
    """Create the SQLite file `path` empty with mode 0600 if it does not exist, before SQLite
    creates it with 0644 (less the umask). O_EXCL: of processes racing to create it, one does,
    and the others open the file it made. Errors are left to SQLite to report."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SQLITE_FILE_MODE)
    except OSError:  # it exists (the usual case), or SQLite will say why it cannot be made
        return
    os.close(fd)


def prepare_sqlite_file(path: str) -> None:
    """Before a read-write connection: create the file 0600 if it is new, and refuse one this
    process cannot write (SQLite would open it read-only without a word, and the first write
    would fail in the middle of an action): `sqlite3.OperationalError`."""
    create_sqlite_file(path)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise sqlite3.OperationalError("attempt to write a readonly database")


def _connect_sqlite(path: str) -> sqlite3.Connection:
    """A read-write connection (`prepare_sqlite_file` first), in WAL mode."""
    prepare_sqlite_file(path)
    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_MS / 1000, check_same_thread=False)
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        f"busy_timeout={SQLITE_BUSY_MS}",
        "foreign_keys=ON",
    ):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _connect_sqlite_read_only(path: str) -> sqlite3.Connection:
    """A read-only connection (`mode=ro`) that can neither create nor write the file.

    In WAL mode a reader needs the `-shm` index beside the file: SQLite uses it if it exists
    (even read-only) or creates it if the folder can be written. When neither is possible (a
    folder this process cannot write, or a read-only mount, and the last writer checkpointed
    and removed its -wal and -shm on close), the first read fails (`NO_WAL_INDEX`). With no
    -wal either, the file alone holds every committed change, and it is read with
    `immutable=1` (no locks, no -shm: a snapshot, right for a copy, a backup or a read-only
    mount). A non-empty -wal whose index cannot be made holds changes the file lacks: that is
    an error naming the fix, never a stale answer.
    """
    uri = Path(path).absolute().as_uri()
    conn = sqlite3.connect(
        f"{uri}?mode=ro", uri=True, timeout=SQLITE_BUSY_MS / 1000, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA schema_version").fetchone()  # the first read opens the WAL index
    except sqlite3.OperationalError as exc:
        conn.close()
        if getattr(exc, "sqlite_errorname", "") not in NO_WAL_INDEX:
            raise
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise sqlite3.OperationalError(
                f"{wal.name} holds changes not yet in {Path(path).name}, and the {Path(path).name}"
                f"-shm file SQLite needs to read them cannot be created in {wal.parent} "
                "(read-only): copy the three files to a folder you can write"
            ) from None
        conn = sqlite3.connect(
            f"{uri}?mode=ro&immutable=1",
            uri=True,
            timeout=SQLITE_BUSY_MS / 1000,
            check_same_thread=False,
        )
    conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    conn.execute("PRAGMA query_only=ON")
    return conn


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreUnavailableError(f"not a database URL: {redact_url(url)}") from None


def open_engine(
    url: str,
    *,
    pool_size: int = 5,
    read_timeout_s: float | None = None,
    read_only: bool = False,
) -> Engine:
    """An engine for `url`: SQLite files in WAL mode, PostgreSQL through psycopg 3.

    A `postgresql://` URL is read as `postgresql+psycopg://`. Nothing connects yet (a new
    SQLite file is created, mode 0600, by the first connection). `read_timeout_s` bounds how
    long a PostgreSQL statement may run (`statement_timeout`) and how long sent data may go
    unacknowledged before the connection is dropped (`tcp_user_timeout`), so a reader (the
    dashboard) never waits on a hung server for longer; SQLite statements are already bounded
    by the busy timeout. `read_only`: no connection can write (see the module docstring); a
    SQLite file that does not exist then fails to open instead of being created.
    """
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise StoreUnavailableError("an in-memory SQLite database cannot be shared: use a file")
        connect = _connect_sqlite_read_only if read_only else _connect_sqlite
        return create_engine(parsed, creator=partial(connect, database))
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        connect_args: dict[str, Any] = {"connect_timeout": 5}
        options = []
        if read_timeout_s is not None:
            ms = max(1, round(read_timeout_s * 1000))
            options.append(f"-c statement_timeout={ms}")
            connect_args["tcp_user_timeout"] = ms
        if read_only:
            options.append("-c default_transaction_read_only=on")
        if options:
            connect_args["options"] = " ".join(options)
        return create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=2,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    raise StoreUnavailableError(
        f"unsupported database {redact_url(url)}: use sqlite:///FILE or postgresql+psycopg://..."
    )


_AFTER_COMMIT: Final = "harness.after_commit"
"""`Connection.info` key of the callbacks `begin` runs once its transaction has committed."""


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run `callback` once the transaction of `conn` has committed (never when it rolls back
    or its commit fails), if `begin` (or `write_transaction`) opened it; at once otherwise.
    How an event's alert is sent only for an event that is in the store."""
    callbacks = conn.info.get(_AFTER_COMMIT)
    if callbacks is None:
        callback()
    else:
        callbacks.append(callback)


@contextmanager
def begin(engine: Engine) -> Iterator[Connection]:
    """`engine.begin()` that runs the `after_commit` callbacks once it has committed."""
    with engine.begin() as conn:
        callbacks: list[Callable[[], None]] = []
        conn.info[_AFTER_COMMIT] = callbacks
        try:
            yield conn
        finally:  # the pooled connection's info outlives this transaction
            conn.info.pop(_AFTER_COMMIT, None)
    for callback in callbacks:
        callback()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write, committed at the end of the block (rolled back on error).

    SQLite: `BEGIN IMMEDIATE`, waiting up to `SQLITE_WRITE_WAIT_MS` for the write lock. A
    deferred transaction (the driver's default) that reads first and writes later cannot wait:
    when another process committed since its read began, SQLite answers "database is locked" at
    once (SQLITE_BUSY_SNAPSHOT), busy timeout or not; taking the lock first makes the wait
    plain. The driver sees the open transaction and adds no `BEGIN` of its own. PostgreSQL: an
    ordinary transaction (row locks are taken as rows are written).
    """
    with begin(engine) as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_WRITE_WAIT_MS}")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        yield conn


def require_existing(url: str) -> None:
    """Refuse a SQLite file that does not exist (`StoreUnavailableError` naming the command
    that creates it), so that a read-only command never creates one: SQLite would create an
    empty file on the first connection. A PostgreSQL URL passes (nothing is created there)."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database)
        if not path.exists():
            raise StoreUnavailableError(
                f"no database at {path}: `harness run` creates it, or `harness db upgrade` "
                "(or point db.url / HARNESS_DB_URL at yours)"
            )


def can_write(url: str) -> bool:
    """Whether this process may write the store at `url`: for a SQLite file, the file (if it
    exists) and its folder (where SQLite makes its -wal and -shm files) are writable, as
    `access(2)` says (a read-only mount is refused even to root); a PostgreSQL URL, or one that
    is not a valid URL: True (the server, or the opening, decides)."""
    try:
        parsed = _parse(url)
    except StoreUnavailableError:
        return True
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return True
    path = Path(os.path.abspath(parsed.database))
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(path.parent, os.W_OK | os.X_OK)


def open_store(
    url: str,
    *,
    create_if_empty: bool = False,
    read_only: bool = False,
    read_timeout_s: float | None = None,
) -> Engine:
    """An engine on a database whose schema is current (what every command opens).

    A SQLite file that does not exist is not created (so a typo'd path or a command run in the
    wrong folder does not leave an empty database behind) unless `create_if_empty`, in which
    case the schema is created too. `read_only`: for the commands that only read (`status`,
    `query`, `gate`, `db current`, the dashboard on a store it cannot write): the engine cannot
    write, and nothing is created or changed, the schema included. `read_timeout_s`: see
    `open_engine`. Raises `StoreUnavailableError` or `SchemaError` with the fix named.
    """
    if not create_if_empty:
        require_existing(url)
    engine = open_engine(url, read_timeout_s=read_timeout_s, read_only=read_only)
    try:
        ensure_schema(
            engine, create_if_empty=create_if_empty and not read_only, read_only=read_only
        )
    except BaseException:
        engine.dispose()
        raise
    return engine


def url_secrets(url: str) -> list[str]:
    """The password a database URL carries (empty: none, or not a URL), for the scrubbers of
    texts that leave the process (alerts)."""
    try:
        password = make_url(url).password
    except ArgumentError:
        return []
    return [str(password)] if password else []


def describe(engine: Engine) -> str:
    """The engine's URL with the password hidden."""
    return redact_url(engine.url.render_as_string(hide_password=False))


def error_line(exc: BaseException) -> str:
    """A database error in one line: the driver's first line (SQLAlchemy's wrapper, its
    statement and its help link left out), for logs that repeat while a database is down."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unavailable_error(engine: Engine, exc: Exception) -> StoreUnavailableError:
    """`StoreUnavailableError` for a failure of `engine`: its URL and the first line of the
    driver's message, the password hidden in both."""
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    password = engine.url.password
    if password:
        first = first.replace(str(password), "***")
    path = sqlite_path(engine)
    if path is not None and not can_write(str(engine.url)):
        first += (
            f" ({path.name} or its folder cannot be written by this process: the commands "
            "that only read, such as `harness status`, still work on it)"
        )
    return StoreUnavailableError(f"cannot open the database {describe(engine)}: {first}")


T = TypeVar("T")


def is_busy(exc: BaseException) -> bool:
    """Whether `exc` (a `DBAPIError`, or the driver's own) is SQLite's SQLITE_BUSY."""
    orig = getattr(exc, "orig", exc)
    return str(getattr(orig, "sqlite_errorname", "")).startswith("SQLITE_BUSY")


def retry_while_busy(engine: Engine, work: Callable[[], T]) -> T:
    """`work()`, run again while it fails with SQLITE_BUSY, for up to `SQLITE_OPEN_WAIT_S`
    (backing off from 10 ms to 0.5 s); any other error, or SQLITE_BUSY after that, is raised.

    The busy timeout does not cover every wait on a new file: SQLite answers SQLITE_BUSY at
    once, without calling the busy handler, when waiting could deadlock (a connection reading
    the journal mode while another holds the write lock and needs the file to itself to switch
    it to WAL, as the first process on a new store does). Four processes opening one new store
    at once on a loaded machine met it (drill 15)."""
    if engine.dialect.name != "sqlite":
        return work()
    deadline: float | None = None
    delay = 0.01
    while True:
        try:
            return work()
        except DBAPIError as exc:
            if not is_busy(exc):
                raise
            now = time.monotonic()
            deadline = now + SQLITE_OPEN_WAIT_S if deadline is None else deadline
            if now >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def current_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database (None: no schema yet); a SQLite file
    another process holds locked is waited for (`retry_while_busy`)."""

    def read() -> str | None:
        with engine.connect() as conn:
            if not engine.dialect.has_table(conn, "alembic_version"):
                return None
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])

    try:
        return retry_while_busy(engine, read)
    except (OperationalError, ProgrammingError, DBAPIError) as exc:
        raise unavailable_error(engine, exc) from None


def ensure_schema(
    engine: Engine, *, create_if_empty: bool = False, read_only: bool = False
) -> None:
    """Refuse to run on a schema other than `SCHEMA_REVISION`, naming the command that fixes it.

    The usual case is one `SELECT`. A database at another revision may be in the middle of a
    schema change by another process (a `harness db upgrade`, or a bot creating the schema of a
    new file): that change is waited for and the revision read again, so the process that
    loses a race finds the schema complete instead of failing. With `create_if_empty`, a
    SQLite file that is new or empty (or holds only the empty tables a creation interrupted by
    an older harness left) gets its schema here, under the same lock, so that the first
    `harness run` works without a separate `harness db upgrade`; PostgreSQL never does.
    `read_only`: only waits, never writes. Raises `SchemaError` (the revision, and the fix) or
    `StoreUnavailableError`.
    """
    if current_revision(engine) == SCHEMA_REVISION:
        return
    from harness.store import schema

    schema.settle(engine, create_if_empty=create_if_empty, read_only=read_only)


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Run the Alembic migrations up to `revision`, atomically and under the schema lock (see
    `harness.store.schema`); returns the revision now current."""
    from harness.store import schema

    return schema.migrate(engine, "upgrade", revision).after


def head_revision() -> str:
    """Alembic's head revision of the shipped migrations."""
    from harness.store import schema

    return schema.head_revision()


def sqlite_path(engine: Engine) -> Path | None:
    """The file of a SQLite engine (None for PostgreSQL)."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    return Path(os.path.abspath(engine.url.database))
