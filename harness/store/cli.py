"""`harness db upgrade | downgrade | current | history | rebuild-rollups` and `harness query ...`:
the store by hand.

`harness db` covers every Alembic verb a user needs, so an installed harness (which ships no
`alembic.ini`) never needs the `alembic` command: `upgrade [REVISION]`, `downgrade REVISION`
(both atomic and serialised, `harness.store.schema`; `--sql` prints the SQL for the configured
database's dialect instead, touching no database), `current [--json]`, `history [--json]`.
Alembic's `stamp` is left out on purpose: the schema exists only through the migrations, and an
offline script stamps its own revision.

`harness query latency|rates|errors|fallbacks|shadow|events|runs` answers from the configured
database with filters `--op` (any operation the store has calls of, a bot's registered ones
included), `--migration`, `--impl`, `--since`/`--until` (a duration back from now such as
`1h`, or an ISO-8601 timestamp), `--stage`, `--run`, and `--bucket 5m` for a time series
(latency, rates). An unknown `--op` or `--migration` is refused (exit 2) naming the known
ones. A table by default, `--json` (a list of objects with stable keys; an event's `gate` is
the verdict at that moment as an object; a run's `migrations` a list) or `--csv`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from harness.config import HarnessConfig, redact_url
from harness.errors import InvalidInputError
from harness.operations import Impl, Operation
from harness.output import print_csv, print_json, print_table
from harness.store import queries
from harness.store.db import (
    SCHEMA_REVISION,
    current_revision,
    open_engine,
    open_store,
    require_existing,
)
from harness.store.rollups import MINUTE_NS

__all__ = ["Db", "Query"]

DB_ACTIONS = ("upgrade", "downgrade", "current", "history", "rebuild-rollups", "prune")


class Db:
    """`harness db upgrade | downgrade | current | history | rebuild-rollups | prune`."""

    help = "create, upgrade or downgrade the store's schema (Alembic), or show its revision"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness db`."""
        parser.add_argument(
            "action",
            choices=DB_ACTIONS,
            help="upgrade: run the migrations (to the head, or REVISION); downgrade: revert them "
            "to REVISION (`base`: no schema); current: print the revision; history: list the "
            "migrations; rebuild-rollups: recompute every minute's rollups from the raw "
            "outcomes (a repair); prune: delete raw outcomes, shadow comparisons and captures "
            "older than --older-than (rollups, events and runs stay)",
        )
        parser.add_argument(
            "revision",
            nargs="?",
            help="upgrade: the target (default head); downgrade: the target, required; with "
            "--sql, a range FROM:TO too",
        )
        parser.add_argument(
            "--sql",
            action="store_true",
            help="upgrade/downgrade: print the SQL for the database's dialect, change nothing",
        )
        parser.add_argument("--json", action="store_true", help="current/history/prune: print JSON")
        parser.add_argument(
            "--older-than",
            metavar="AGE",
            help="prune: the age of the raw rows to delete, e.g. 30d, 12h (at least 1h)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="prune: count what would go, delete nothing"
        )

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Do it; prints the database (password hidden) and the revision."""
        action = args.action
        migrates = action in ("upgrade", "downgrade")
        if args.revision is not None and not migrates:
            raise InvalidInputError("revision", args.revision, f"`db {action}` takes none")
        if args.sql and not migrates:
            raise InvalidInputError("--sql", True, "only `db upgrade` and `db downgrade` print SQL")
        if args.json and action not in ("current", "history", "prune"):
            reason = "only `db current`, `db history` and `db prune` print JSON"
            raise InvalidInputError("--json", True, reason)
        if action != "prune":
            if args.older_than is not None:
                raise InvalidInputError("--older-than", args.older_than, "only `db prune` takes it")
            if args.dry_run:
                raise InvalidInputError("--dry-run", True, "only `db prune` takes it")
        if action == "downgrade" and args.revision is None:
            reason = "`db downgrade` needs the revision to go back to (`harness db history`)"
            raise InvalidInputError("revision", None, reason)
        if migrates:
            return _migrate(args, cfg)
        if action == "current":
            return _current(args, cfg)
        if action == "history":
            return _history(args, cfg)
        if action == "prune":
            return _prune(args, cfg)
        from harness.store.rollups import rebuild

        engine = open_store(cfg.db.url)
        try:
            minutes = rebuild(engine)
        finally:
            engine.dispose()
        print(f"{redact_url(cfg.db.url)}: rollups of {minutes} minutes recomputed")
        return 0


def _iso(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prune(args: argparse.Namespace, cfg: HarnessConfig) -> int:
    """`db prune --older-than AGE [--dry-run] [--json]`: see `harness.store.retention`."""
    from harness.store.retention import MIN_AGE_NS, prune

    if args.older_than is None:
        raise InvalidInputError("--older-than", None, "`db prune` needs an age, e.g. 30d")
    age = queries.parse_duration(args.older_than, "--older-than", "30d, 12h, 2w")
    if age < MIN_AGE_NS:
        reason = "at least 1h: younger minutes may not be folded into their rollups yet"
        raise InvalidInputError("--older-than", args.older_than, reason)
    engine = open_store(cfg.db.url)
    try:
        result = prune(engine, age, dry_run=args.dry_run)
    finally:
        engine.dispose()
    if args.json:
        print_json({"url": redact_url(cfg.db.url), **result.to_dict()})
        return 0
    verb = "would delete" if result.dry_run else "deleted"
    line = (
        f"{redact_url(cfg.db.url)}: {verb} {result.outcomes:,} outcomes and "
        f"{result.shadow_comparisons:,} shadow comparisons before "
        f"{_iso(result.before_ns)}, {result.captures:,} captures older than "
        f"{args.older_than}; rollups, events, runs and replay results kept"
    )
    if result.kept_for_stage is not None:
        line += f"; raw rows kept from the start of stage {result.kept_for_stage}"
    if result.stopped_at_ns is not None:
        line += (
            f"; stopped at {_iso(result.stopped_at_ns)}, a minute not yet folded "
            "into its rollup (run it again later)"
        )
    print(line)
    return 0


def _migrate(args: argparse.Namespace, cfg: HarnessConfig) -> int:
    from harness.store import schema

    revision = args.revision or "head"
    if args.sql:
        schema.offline_sql(cfg.db.url, args.action, revision, sys.stdout)
        return 0
    if args.action == "downgrade":
        require_existing(cfg.db.url)  # nothing to take back from a file that is not there
    engine = open_engine(cfg.db.url)
    try:
        change = schema.migrate(engine, args.action, revision)
    finally:
        engine.dispose()
    before, after = change.before or "empty", change.after or "none"
    what = "already current" if change.before == change.after else f"{before} -> {after}"
    print(f"{redact_url(cfg.db.url)}: schema revision {after} ({what})")
    return 0


def _current(args: argparse.Namespace, cfg: HarnessConfig) -> int:
    """`db current`: exit 0 when current, 1 when not (a database to upgrade, or written by a
    newer harness), 2 when it cannot be read. Read-only: never creates or changes anything."""
    from harness.store import schema

    require_existing(cfg.db.url)  # a read: never leave an empty file behind
    engine = open_engine(cfg.db.url, read_only=True)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    current = revision == SCHEMA_REVISION
    if args.json:
        print_json(
            {
                "url": redact_url(cfg.db.url),
                "revision": revision,
                "head": SCHEMA_REVISION,
                "current": current,
            }
        )
        return 0 if current else 1
    if current:
        state = "current"
    elif revision is not None and not schema.is_known(revision):
        state = f"written by a newer harness: this one knows up to {SCHEMA_REVISION}"
    else:
        state = f"this harness needs {SCHEMA_REVISION}: run `harness db upgrade`"
    print(f"{redact_url(cfg.db.url)}: schema revision {revision or 'none'} ({state})")
    return 0 if current else 1


def _history(args: argparse.Namespace, cfg: HarnessConfig) -> int:
    """`db history`: the shipped migrations, newest first, the database's revision marked when
    it can be read (read-only; a database that is missing or unreachable marks none)."""
    from harness.store import schema
    from harness.store.db import StoreUnavailableError

    current: str | None = None
    try:
        require_existing(cfg.db.url)
        engine = open_engine(cfg.db.url, read_only=True)
        try:
            current = current_revision(engine)
        finally:
            engine.dispose()
    except StoreUnavailableError:
        pass  # history is about the migrations; the database is only a mark on them
    rows = [{**row, "current": row["revision"] == current} for row in schema.history()]
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        marks = [m for m, on in (("head", row["head"]), ("current", row["current"])) if on]
        tail = f" ({', '.join(marks)})" if marks else ""
        print(f"{row['down_revision'] or 'base'} -> {row['revision']}{tail}: {row['doc']}")
    return 0


BUCKET_EXAMPLES = "1m, 5m, 15m, 1h, 1d"  # every one valid: buckets are whole minutes
KINDS = ("latency", "rates", "errors", "fallbacks", "shadow", "events", "runs")
COLUMNS: dict[str, list[str]] = {
    "latency": [
        "migration",
        "op",
        "impl",
        "calls",
        "not_targeted",
        "count",
        "mean_ms",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
    ],
    "rates": [
        "migration",
        "op",
        "impl",
        "calls",
        "not_targeted",
        "errors",
        "fallbacks",
        "error_rate",
        "fallback_rate",
    ],
    "errors": [
        "time",
        "op",
        "impl",
        "stage",
        "error_class",
        "error_message",
        "order_id",
        "custom_tag",
        "run",
    ],
    "fallbacks": [
        "time",
        "op",
        "stage",
        "fallback_reason",
        "ok",
        "error_class",
        "latency_ms",
        "custom_tag",
        "run",
    ],
    "shadow": [
        "time",
        "op",
        "stage",
        "key",
        "primary",
        "shadow",
        "matched",
        "timeframe",
        "bar_index",
        "field",
        "primary_value",
        "shadow_value",
        "shadow_error",
    ],
    "events": [
        "time",
        "kind",
        "migration",
        "op",
        "from_stage",
        "to_stage",
        "who",
        "reason",
        "forced",
    ],
    "runs": [
        "run",
        "started",
        "ended",
        "status",
        "kind",
        "host",
        "pid",
        "build_id",
        "native_available",
        "rows_recorded",
        "rows_dropped",
        "migrations",
    ],
}
NUMERIC = [
    "calls",
    "not_targeted",
    "errors",
    "fallbacks",
    "error_rate",
    "fallback_rate",
    "count",
    "mean_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "latency_ms",
    "bar_index",
    "pid",
    "rows_recorded",
    "rows_dropped",
]


class Query:
    """`harness query KIND [filters]`."""

    help = "latency, rates, errors, fallbacks, shadow comparisons, events or runs from the store"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness query`."""
        parser.add_argument("kind", choices=KINDS, help="what to list")
        parser.add_argument(
            "--op",
            help="one operation: any the store has calls of (a registered one too), e.g. "
            + ", ".join(op.value for op in Operation),
        )
        parser.add_argument(
            "--migration", help="one migration's calls (events: its own and those of all)"
        )
        parser.add_argument(
            "--impl",
            choices=[i.value for i in Impl],
            help="the side that served (rates: the side routed to; shadow: the primary)",
        )
        parser.add_argument(
            "--since", help="a duration back from now (1h, 30m, 7d) or an ISO-8601 time"
        )
        parser.add_argument("--until", help="the same forms as --since (default: now)")
        parser.add_argument("--stage", help="one stage's outcomes")
        parser.add_argument("--run", help="one run's outcomes (its id, or an id prefix for runs)")
        parser.add_argument(
            "--build", help="the outcomes of runs of one native build (its build_id, or a prefix)"
        )
        parser.add_argument(
            "--bucket", help="latency or rates as a time series in buckets of this size (5m, 1h)"
        )
        parser.add_argument(
            "--limit", type=int, default=50, help="rows listed at most (default 50)"
        )
        parser.add_argument(
            "--mismatches", action="store_true", help="shadow: only the comparisons that differed"
        )
        form = parser.add_mutually_exclusive_group()
        form.add_argument("--json", action="store_true", help="a JSON list of objects")
        form.add_argument("--csv", action="store_true", help="CSV with a header line")

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Answer the query."""
        since = None if args.since is None else queries.parse_instant(args.since, "since")
        until = None if args.until is None else queries.parse_instant(args.until, "until")
        bucket = (
            None
            if args.bucket is None
            else queries.parse_duration(args.bucket, "bucket", BUCKET_EXAMPLES)
        )
        # Checked here too, so that the message shows what was typed, not nanoseconds.
        if since is not None and until is not None and since >= until:
            raise InvalidInputError("since", args.since, f"must be before --until {args.until}")
        if bucket is not None and bucket % MINUTE_NS:
            reason = f"must be whole minutes, such as {BUCKET_EXAMPLES}"
            raise InvalidInputError("bucket", args.bucket, reason)
        filters = queries.Filters(
            op=args.op,
            migration=args.migration,
            impl=None if args.impl is None else Impl(args.impl),
            stage=args.stage,
            run=args.run,
            build=args.build,
            since_ns=since,
            until_ns=until,
            bucket_ns=bucket,
        )
        if args.bucket is not None and args.kind not in ("latency", "rates"):
            reason = "only `query latency` and `query rates` have buckets"
            raise InvalidInputError("bucket", args.bucket, reason)
        engine = open_store(cfg.db.url, read_only=True)
        try:
            check_names(args, engine, cfg)
            rows = _rows(args, engine, filters)
        finally:
            engine.dispose()
        columns = (["bucket"] if args.bucket else []) + COLUMNS[args.kind]
        if args.json:
            print_json(rows)
            return 0
        if args.kind == "runs":  # one cell each: a run's migrations as `bars, orders`
            rows = [{**row, "migrations": ", ".join(row["migrations"])} for row in rows]
        if args.csv:
            print_csv(rows, columns)
        else:
            print_table(f"{args.kind} ({len(rows)} rows)", columns, rows, right=NUMERIC)
        return 0


def check_names(args: argparse.Namespace, engine: Any, cfg: HarnessConfig) -> None:
    """Refuse an `--op`, `--migration` or `--stage` that neither the store nor the config
    knows, a `--run` the store has no row of, and a `--build` no run's `build_id` starts
    with, naming the known ones (a typo would otherwise print an empty table, read as "no
    calls"). The built-in operations and the configured ones and stages are known before any
    call was recorded. `args` has `op` and `migration`, perhaps `stage`, `build` and `run`
    (None: not given); `InvalidInputError` (field `op`, `migration`, `stage`, `build` or
    `run`). Also `harness export outcomes`'s and `harness report`'s check, made before a file
    is touched."""
    stage, build = getattr(args, "stage", None), getattr(args, "build", None)
    run = getattr(args, "run", None)
    if (args.op, args.migration, stage, build, run) == (None,) * 5:
        return
    with engine.connect() as conn:
        if run is not None and not queries.known_runs(conn, 1, run_id=run):
            latest = queries.known_runs(conn)
            known = f"latest: {', '.join(latest)}" if latest else "the store has no run yet"
            raise InvalidInputError("run", run, f"no such run; {known}")
        if stage is not None:
            stages = {*queries.known_stages(conn), *cfg.rollout.stage_names()}
            if stage not in stages:
                reason = f"no such stage; known: {', '.join(sorted(stages))}"
                raise InvalidInputError("stage", stage, reason)
        if build is not None and not queries.known_builds(conn, 1, prefix=build):
            latest = queries.known_builds(conn)
            known = f"latest: {', '.join(latest)}" if latest else "no run has a build_id yet"
            reason = f"no run's build_id starts with it; {known}"
            raise InvalidInputError("build", build, reason)
        if args.op is not None:
            configured = [op for name in cfg.rollout.migration_names() for op in
                          cfg.rollout.operations_of(name)]  # fmt: skip
            ops = {*queries.known_ops(conn), *(op.value for op in Operation), *configured}
            if args.op not in ops:
                reason = f"no such operation; known: {', '.join(sorted(ops))}"
                raise InvalidInputError("op", args.op, reason)
        if args.migration is not None:
            names = {*queries.known_migrations(conn), *cfg.rollout.migration_names()}
            if args.migration not in names:
                reason = f"no such migration; known: {', '.join(sorted(names))}"
                raise InvalidInputError("migration", args.migration, reason)


def _rows(args: argparse.Namespace, engine: Any, filters: queries.Filters) -> list[dict[str, Any]]:
    kind = args.kind
    if kind == "latency":
        return [row.to_dict() for row in queries.latency(engine, filters)]
    if kind == "rates":
        return [row.to_dict() for row in queries.rates(engine, filters)]
    if kind == "errors":
        return queries.errors(engine, filters, args.limit)
    if kind == "fallbacks":
        return queries.fallbacks(engine, filters, args.limit)
    if kind == "shadow":
        return queries.shadow(engine, filters, args.limit, mismatches_only=args.mismatches)
    if kind == "events":
        return [_gate_as_object(row) for row in queries.events(engine, filters, args.limit)]
    return queries.runs(engine, filters, args.limit)


def _gate_as_object(row: dict[str, Any]) -> dict[str, Any]:
    """An event with its gate snapshot as a JSON object (the store keeps it as JSON text), so
    that `--json` is one document, not a document holding another as a string. A snapshot that
    is not valid JSON (never written so, but a store may be edited) stays the text it is."""
    text = row.get("gate")
    if not isinstance(text, str):
        return row
    try:
        return {**row, "gate": json.loads(text)}
    except ValueError:
        return row
