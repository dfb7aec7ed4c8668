"""Helpers of the schema tests and of the schema drill (tests/drills/test_11_schema.py).

- `fingerprint(url)`: a database's schema as comparable data (tables, columns, keys, indexes,
  and on SQLite the `CREATE` text itself), to say that a schema is complete and equal to a
  clean one;
- `act(action, url, kill_at=...)`: what a command does to the schema (`harness db upgrade`,
  the store opening of `harness run`), counting every point where the process could die (each
  SQL statement, before and after it is sent, and each commit) and SIGKILLing itself at point
  `kill_at`: a kill at an exact, seeded spot instead of a timer's guess;
- run as a script, the same in a process of its own, printing each point to stderr as it
  reaches it (`POINT n before|after|commit SQL...`), so that a test can wait until another
  process reaches the schema lock:

      python tests/store/schemakit.py [--kill-at N] ACTION URL
      ACTION: upgrade | upgrade:REVISION | open | harness-open | cli:ARG,ARG...
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text

ACTIONS = ("upgrade", "open", "harness-open", "cli")


class Points:
    """Counts the points where a process could die; SIGKILLs itself at `kill_at`, reports each
    point to `report` (or nowhere)."""

    def __init__(
        self, kill_at: int | None = None, report: Callable[[str], None] | None = None
    ) -> None:
        self.kill_at = kill_at
        self.report = report
        self.count = 0

    def reach(self, kind: str, statement: str = "") -> None:
        """One more point; die here if it is the one."""
        self.count += 1
        if self.report is not None:
            first = statement.strip().splitlines()[0] if statement.strip() else ""
            self.report(f"POINT {self.count} {kind} {first}")
        if self.count == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def install(self) -> None:
        """Watch every engine of this process (SQLAlchemy's class-level events)."""
        event.listen(
            Engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_a: self.reach("before", statement),
        )
        event.listen(
            Engine,
            "after_cursor_execute",
            lambda _c, _cur, statement, *_a: self.reach("after", statement),
        )
        event.listen(Engine, "commit", lambda _c: self.reach("commit"))


def act(action: str, url: str) -> Any:
    """Do `action` to the store at `url` as the command would (see the module docstring)."""
    name, _, argument = action.partition(":")
    if name == "upgrade":
        from harness.store.db import open_engine, upgrade

        engine = open_engine(url)
        try:
            return upgrade(engine, argument or "head")
        finally:
            engine.dispose()
    if name == "open":  # the store as `harness run` / `harness.open()` opens it
        from harness.store.db import open_store

        open_store(url, create_if_empty=True).dispose()
        return None
    if name == "harness-open":  # the whole of `harness.open()`, closed at once
        import harness

        harness.open([f"db.url={url}", "broker.sim.profile=default"]).close()
        return None
    if name == "cli":
        from harness.cli import main

        return main([*argument.split(","), f"db.url={url}"])
    raise ValueError(f"unknown action {action!r} (one of {ACTIONS})")


def fingerprint(url: str) -> dict[str, Any]:
    """The schema at `url` as plain data: each table's columns (name, type, nullable,
    default), primary key, foreign keys and indexes (with their WHERE clauses), the revision;
    on SQLite also each object's `CREATE` statement, whitespace normalised."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = inspect(conn)
            tables: dict[str, Any] = {}
            for table in sorted(found.get_table_names()):
                tables[table] = {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                        for c in found.get_columns(table)
                    ],
                    "pk": found.get_pk_constraint(table),
                    "fks": sorted(
                        (fk["name"] or "", tuple(fk["constrained_columns"]), fk["referred_table"])
                        for fk in found.get_foreign_keys(table)
                    ),
                    "indexes": sorted(
                        (
                            ix["name"] or "",
                            tuple(str(c) for c in ix["column_names"]),
                            bool(ix["unique"]),
                            str(
                                sorted(
                                    (k, str(v)) for k, v in ix.get("dialect_options", {}).items()
                                )
                            ),
                        )
                        for ix in found.get_indexes(table)
                    ),
                }
            revision = None
            if "alembic_version" in tables:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
                revision = None if row is None else row[0]
            sql: list[tuple[str, str]] = []
            if engine.dialect.name == "sqlite":
                for name, created in conn.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
                ):
                    sql.append((name, re.sub(r"\s+", " ", created).strip()))
    finally:
        engine.dispose()
    return {"revision": revision, "tables": tables, "sql": sql}


def _options(index: Any) -> dict[str, Any]:
    """An index's dialect options (`sqlite_where`, `postgresql_where`: partial indexes)."""
    return dict(index.get("dialect_options") or {})


def main(argv: list[str]) -> int:
    """The script: one action in this process, each point reported on stderr."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-at", type=int, default=None)
    parser.add_argument("action")
    parser.add_argument("url")
    args = parser.parse_args(argv)
    points = Points(args.kill_at, report=lambda line: print(line, file=sys.stderr, flush=True))
    points.install()
    result = act(args.action, args.url)
    print(f"POINTS {points.count}", flush=True)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    raise SystemExit(main(sys.argv[1:]))
