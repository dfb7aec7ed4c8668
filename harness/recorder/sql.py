"""How the recorder's rows go into SQL: bulk inserts that never double a row, and what a
failed write means (the database is unavailable, or it refused the data).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

__all__ = ["BulkInsert", "Failure", "classify"]

_PRIMARY_KEYS: Final = frozenset({"pk_outcomes", "pk_shadow_comparisons"})


class Failure(Enum):
    """Why a write failed (`classify`)."""

    UNAVAILABLE = "the database is unavailable"
    REFUSED = "the database refused the data"
    DUPLICATE = "rows of the batch are in already"


def classify(exc: BaseException) -> Failure:
    """Whether a failed write means the database is unavailable (wait and retry: the rows are
    fine) or refused this data (isolate the row: retrying cannot help).

    Unavailable: every DB-API error but those below (OperationalError: unreachable, locked,
    disk full, read-only SQLite, I/O error; InterfaceError: connection lost; InternalError:
    PostgreSQL's read-only transaction; a server-side ProgrammingError: a missing table or
    privilege, the same for every row; a closed connection), SQLAlchemy's own errors (pool
    time-out), and OSError.
    Refused: DataError, IntegrityError (but the primary key's, which is a replay: DUPLICATE),
    a ProgrammingError raised by the driver about a value (a type it cannot send), and any
    other exception (TypeError, ValueError, OverflowError: a value the driver could not
    convert), since what was not foreseen must not stop the rows behind it. The names are
    PEP 249's, so this holds for sqlite3 and psycopg, and for psycopg's own errors raised
    outside SQLAlchemy (the COPY path).
    """
    if isinstance(exc, SQLAlchemyError) and not isinstance(exc, DBAPIError):
        return Failure.UNAVAILABLE
    orig: BaseException = exc.orig if isinstance(exc, DBAPIError) else exc  # type: ignore[assignment]
    names = {cls.__name__ for cls in type(orig).__mro__}
    if "IntegrityError" in names:
        diag = getattr(orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None)
        if getattr(orig, "sqlstate", None) == "23505" and constraint in _PRIMARY_KEYS:
            return Failure.DUPLICATE
        return Failure.REFUSED
    if "DataError" in names:
        return Failure.REFUSED
    if "ProgrammingError" in names:
        server = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorcode", None)
        # sqlite3 says "Cannot operate on a closed database" as a ProgrammingError too.
        closed = "closed" in str(orig).lower()
        return Failure.UNAVAILABLE if server or closed else Failure.REFUSED
    if "Error" in names or isinstance(orig, OSError | MemoryError):
        return Failure.UNAVAILABLE
    return Failure.REFUSED


class BulkInsert:
    """Whole batches of rows into `table`, written so that a batch written again (its commit
    was not acknowledged, or a spill file is replayed) inserts nothing twice.

    - SQLite: `INSERT ... ON CONFLICT DO NOTHING` built by SQLAlchemy Core, compiled once, run
      with the driver's `executemany`. Per-row parameter processing in `Connection.execute`
      cost as much as SQLite's own insert (profiled: 0.7 s of 2.3 s for 50,000 rows); the rows
      here are already plain ints, floats, strings, bools and None in column order.
    - PostgreSQL: psycopg's `COPY ... FROM STDIN` straight into the table (about 2x the rows/s
      of a COPY into a staging table moved by `INSERT ... ON CONFLICT`, and 3x `executemany`,
      measured here). A row already there fails the COPY on the primary key (`classify`:
      DUPLICATE): the batch is then written with `INSERT ... ON CONFLICT DO NOTHING`
      (`tolerant`), which only a replay needs.
    """

    def __init__(self, engine: Engine, table: Table, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self.copy = engine.dialect.name == "postgresql"
        self.positions: list[int] | None = None
        dialect: Any = postgresql if self.copy else sqlite
        stmt = dialect.insert(table).on_conflict_do_nothing()
        compiled = stmt.compile(dialect=engine.dialect, column_keys=list(columns))
        self.sql = str(compiled)
        names = compiled.positiontup if compiled.positional else None
        self.positions = None if names is None else [columns.index(n) for n in names]
        if self.copy:
            quote = engine.dialect.identifier_preparer.quote  # `primary` is a reserved word
            quoted = ", ".join(quote(name) for name in columns)
            self.copy_sql = f"COPY {quote(table.name)} ({quoted}) FROM STDIN"

    def rows(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        """Driver parameters for `rows` (tuples in `columns` order)."""
        if self.positions is None:
            columns = self.columns
            return [dict(zip(columns, r, strict=True)) for r in rows]
        if self.positions == list(range(len(self.columns))):
            return rows
        order = self.positions
        return [tuple(r[i] for i in order) for r in rows]

    def execute(
        self, conn: Connection, rows: list[tuple[Any, ...]], *, tolerant: bool = False
    ) -> None:
        """Insert the batch `rows` (the id first) in the caller's transaction."""
        if not rows:
            return
        if not self.copy or tolerant:
            conn.exec_driver_sql(self.sql, self.rows(rows))
            return
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(self.copy_sql) as stream:  # type: ignore[union-attr]
            for row in rows:
                stream.write_row(row)
