"""The store's tables as typed SQLAlchemy 2 models. The schema itself exists only through the
Alembic migrations in `harness/migrations/` (`harness db upgrade`); CI runs `alembic check` so
these models and the migrations cannot drift.

Times are integers: nanoseconds since the Unix epoch, UTC (`*_ns`), the unit the bars use too;
they index and compare cheaply on SQLite and PostgreSQL alike. Latencies are microseconds
(`latency_us`). Ids are 32 hex digits (a UUID4's hex), made by the writer, so that a replay of a
batch whose commit was not acknowledged inserts nothing twice.

What the gate and history read is designed for millions of outcomes:
- `outcome_rollups`: one row per (minute or hour, run, operation, stage, routed side, serving
  side, fell back, succeeded), with the count, latency sum and max, and a latency sketch
  (`harness.sketch`, 1% relative accuracy), recomputed from the raw rows (minutes) or the
  minutes (hours) of buckets marked in `dirty_buckets`. A window's figures merge whole hours,
  then whole minutes at its edges; only the partial minutes at its two ends, and minutes still
  dirty, are read from raw outcomes. So a day's window reads about 24 + 2 x 60 rows per group.
- `outcomes`: every routed call, indexed by time, by run and time, and by customTag; the
  error and fallback listings use partial indexes holding only those rows, so the insert path
  maintains three full indexes and the key.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Breaker",
    "Capture",
    "DirtyBucket",
    "MigrationState",
    "Outcome",
    "OutcomeRollup",
    "Replay",
    "Retention",
    "RolloutEvent",
    "RolloutState",
    "Run",
    "ShadowComparison",
]

# Stable constraint names, so migrations name what they create the same on both databases.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(32)
OP = String(32)
MIGRATION = String(32)
SIDE = String(8)
STAGE = String(64)


class Base(DeclarativeBase):
    """Declarative base of every table of the store."""

    metadata = MetaData(naming_convention=NAMING)


class Run(Base):
    """One process that routed calls: `harness run`, a bot's `harness.open()`, a drill."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    started_ns: Mapped[int] = mapped_column(BigInteger)
    ended_ns: Mapped[int | None] = mapped_column(BigInteger)
    # running, finished, interrupted, failed; died: found dead by a later run (runs.py)
    status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # run (harness run), bot (harness.open)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    os_user: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(32))
    native_available: Mapped[bool] = mapped_column(Boolean)
    native_error: Mapped[str | None] = mapped_column(Text)
    build_id: Mapped[str | None] = mapped_column(String(80))  # 0006; older runs: NULL
    config: Mapped[str] = mapped_column(Text)  # the resolved config as JSON, secrets redacted
    rows_recorded: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    summary: Mapped[str | None] = mapped_column(Text)  # JSON summary written at the end

    __table_args__ = (Index(None, "started_ns"),)


class Outcome(Base):
    """One routed call: which side it was routed to, which served it, how it ended, how long."""

    __tablename__ = "outcomes"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)  # when the call started
    run_id: Mapped[str] = mapped_column(ID, ForeignKey("runs.id"))
    op: Mapped[str] = mapped_column(OP)
    stage: Mapped[str] = mapped_column(STAGE)
    routed: Mapped[str] = mapped_column(SIDE)  # the side the router chose
    served: Mapped[str] = mapped_column(SIDE)  # the side whose answer the caller got
    fell_back: Mapped[bool] = mapped_column(Boolean)
    fallback_reason: Mapped[str | None] = mapped_column(String(255))
    ok: Mapped[bool] = mapped_column(Boolean)
    error_class: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    latency_us: Mapped[float] = mapped_column(Float)  # the caller's wait, fallback included
    attempts: Mapped[int | None] = mapped_column(SmallInteger)
    http_status: Mapped[int | None] = mapped_column(SmallInteger)
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    custom_tag: Mapped[str | None] = mapped_column(String(128))
    routing_key: Mapped[str | None] = mapped_column(String(255))
    # Settled by a look-up after an attempt of unknown outcome: the placement's order found by
    # its customTag, or the modify/cancel found applied (by the client or the router).
    reconciled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The migration the operation belonged to when it was called (0005; older rows: the
    # operation's shipped migration), and whether the stage's targets let it go to Rust at all
    # (False: routed to Python because not targeted, not by the hash; older rows: True).
    migration: Mapped[str | None] = mapped_column(MIGRATION)
    targeted: Mapped[bool] = mapped_column(Boolean, server_default=true())

    __table_args__ = (
        Index(None, "ts_ns"),
        Index(None, "run_id", "ts_ns"),
        Index(None, "custom_tag"),
        # Partial: only the failed and the fallen-back calls (a few percent of the rows), so
        # `harness query errors|fallbacks` stay fast and the inserts pay almost nothing. The
        # predicates are written as queries render `ok.is_(False)`, so the planners use them.
        Index(
            "ix_outcomes_failed_ts_ns",
            "ts_ns",
            sqlite_where=text("ok IS 0"),
            postgresql_where=text("ok IS false"),
        ),
        Index(
            "ix_outcomes_fell_back_ts_ns",
            "ts_ns",
            sqlite_where=text("fell_back IS 1"),
            postgresql_where=text("fell_back IS true"),
        ),
    )


class OutcomeRollup(Base):
    """Outcomes of one minute (`period_ns` = 60 s) or one hour (3,600 s) folded per group:
    count, latency sum and max, a latency sketch.

    Derived data: `harness.store.rollups.compact` recomputes a minute's rows from the raw
    outcomes, and an hour's from its minutes, whenever that bucket is marked dirty, so late
    rows (a replayed spill, another process) and replays are always counted exactly once.
    """

    __tablename__ = "outcome_rollups"

    period_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # start, UTC
    run_id: Mapped[str] = mapped_column(ID, primary_key=True)
    op: Mapped[str] = mapped_column(OP, primary_key=True)
    stage: Mapped[str] = mapped_column(STAGE, primary_key=True)
    routed: Mapped[str] = mapped_column(SIDE, primary_key=True)
    served: Mapped[str] = mapped_column(SIDE, primary_key=True)
    fell_back: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    ok: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    migration: Mapped[str] = mapped_column(MIGRATION, primary_key=True)
    targeted: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    latency_sum_us: Mapped[float] = mapped_column(Float)
    latency_max_us: Mapped[float] = mapped_column(Float)
    sketch: Mapped[bytes] = mapped_column(LargeBinary)  # LatencySketch.to_bytes()

    __table_args__ = (Index(None, "period_ns", "stage", "bucket_ns"),)


class DirtyBucket(Base):
    """A minute or hour whose outcomes changed since its rollups were computed, as one writer
    marked it: one row per (bucket, writer), so that writers never update a row another process
    updates (see `harness.store.rollups`).

    Every recorder batch bumps `gen` of its own marks on the minutes and hours it wrote (in the
    same transaction); the compactor deletes a mark only if `gen` is still what it read before
    reading the rows, so a row written meanwhile leaves the bucket dirty. A bucket is dirty while
    any writer's mark on it is there. Queries read dirty hours from their minutes, and dirty
    minutes from raw rows (schema 0004 added `writer`; marks of before read writer '').
    """

    __tablename__ = "dirty_buckets"

    period_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    writer: Mapped[str] = mapped_column(ID, primary_key=True, server_default="")
    gen: Mapped[int] = mapped_column(BigInteger)


class Retention(Base):
    """How far raw rows were pruned (`harness db prune`): one row, id 1, or none (never).

    Every minute before `raw_before_ns` had its raw outcomes deleted in the same transaction
    that moved this mark, after its rollup was clean: its rollups are the record. A raw outcome
    before the mark was therefore written after the prune (a late row) and is counted in no
    rollup yet; the compactor folds it into its minute's rollup and deletes it (see
    `harness.store.rollups`). Schema 0004.
    """

    __tablename__ = "retention"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    raw_before_ns: Mapped[int] = mapped_column(BigInteger)  # minute-aligned, UTC
    pruned_ns: Mapped[int] = mapped_column(BigInteger)  # when it last moved


class ShadowComparison(Base):
    """One shadow run: the side not chosen also ran, and its result was compared.

    `matched` False carries the first differing bar (`timeframe`, `bar_index`, `field`, both
    values as text); `shadow_error` is set when the shadow side raised where the primary did
    not (or raised something else).
    """

    __tablename__ = "shadow_comparisons"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[str] = mapped_column(ID, ForeignKey("runs.id"))
    op: Mapped[str] = mapped_column(OP)
    stage: Mapped[str] = mapped_column(STAGE)
    routing_key: Mapped[str | None] = mapped_column(String(255))
    primary: Mapped[str] = mapped_column(SIDE)
    shadow: Mapped[str] = mapped_column(SIDE)
    matched: Mapped[bool] = mapped_column(Boolean)
    timeframe: Mapped[str | None] = mapped_column(String(16))
    bar_index: Mapped[int | None] = mapped_column(Integer)
    # a bar column, or an order shadow's path of the first difference (0006: 128, was 16)
    field: Mapped[str | None] = mapped_column(String(128))
    primary_value: Mapped[str | None] = mapped_column(Text)
    shadow_value: Mapped[str | None] = mapped_column(Text)
    primary_latency_us: Mapped[float | None] = mapped_column(Float)
    shadow_latency_us: Mapped[float | None] = mapped_column(Float)
    shadow_error: Mapped[str | None] = mapped_column(Text)
    bars_in: Mapped[int | None] = mapped_column(Integer)
    migration: Mapped[str | None] = mapped_column(MIGRATION)  # 0005; older: the shipped one

    __table_args__ = (
        Index(None, "ts_ns"),
        Index(None, "stage", "ts_ns"),
        Index(None, "matched", "ts_ns"),
    )


class Capture(Base):
    """One captured routed call (0007): its inputs and answers, for `harness replay`.

    `payload` is zlib of UTF-8 JSON (`harness.router.capture`, format `format`): an order
    call's checked arguments, the contract the build used and the serving side's exchanges
    with their raw answers (secrets scrubbed); an aggregation's 1-minute input columns and
    arguments. `size` is the payload's length in bytes (at most the migration's
    `capture.max_bytes`); `build_id` the native module's build of the run that captured it.
    """

    __tablename__ = "captures"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)  # when the call started
    run_id: Mapped[str] = mapped_column(ID, ForeignKey("runs.id"))
    migration: Mapped[str] = mapped_column(MIGRATION)
    op: Mapped[str] = mapped_column(OP)
    served: Mapped[str] = mapped_column(SIDE)
    build_id: Mapped[str | None] = mapped_column(String(80))
    format: Mapped[int] = mapped_column(SmallInteger)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index(None, "ts_ns"), Index(None, "migration", "ts_ns"))


class Replay(Base):
    """One operation's result of one `harness replay` (0007): how many captured calls the
    installed build (`build_id`) replayed, matched and mismatched, and the first difference.
    The gate's `replay` criterion reads the latest row of each operation for the current
    build (`gate.replay_required`)."""

    __tablename__ = "replays"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    build_id: Mapped[str] = mapped_column(String(80))
    migration: Mapped[str] = mapped_column(MIGRATION)
    op: Mapped[str] = mapped_column(OP)
    replayed: Mapped[int] = mapped_column(Integer)
    matched: Mapped[int] = mapped_column(Integer)
    mismatched: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    first_field: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (Index(None, "build_id", "migration", "ts_ns"),)


class RolloutState(Base):
    """The rollout's global row (`id` = 1): the kill flag that `harness kill` without
    `--migration` sets (every migration, registered ones too, goes to Python), and `version`,
    which grows with every change of any migration, a breaker or this flag, so a reader learns
    of any change by one cheap compare (0005: the stage and its gate moved to
    `migration_state`)."""

    __tablename__ = "rollout_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kill: Mapped[bool] = mapped_column(Boolean)
    kill_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(BigInteger)
    updated_ns: Mapped[int] = mapped_column(BigInteger)


class MigrationState(Base):
    """One migration's live state: its stage, since when, its kill flag, its version.

    `version` grows with every change of this migration (its actions compare and set it);
    `stage_since_ns` opens the current stage's window (what the gate judges); `gate_*` are the
    gate settings that judge it, stored with it when it started (`harness.control.gates`).
    """

    __tablename__ = "migration_state"

    migration: Mapped[str] = mapped_column(MIGRATION, primary_key=True)
    stage: Mapped[str] = mapped_column(STAGE)
    stage_since_ns: Mapped[int] = mapped_column(BigInteger)
    kill: Mapped[bool] = mapped_column(Boolean)
    kill_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(BigInteger)
    updated_ns: Mapped[int] = mapped_column(BigInteger)
    gate_name: Mapped[str | None] = mapped_column(String(255))
    gate_fingerprint: Mapped[str | None] = mapped_column(String(64))
    gate_settings: Mapped[str | None] = mapped_column(Text)


class Breaker(Base):
    """One operation's circuit breaker; a row exists once it has tripped at least once."""

    __tablename__ = "breakers"

    op: Mapped[str] = mapped_column(OP, primary_key=True)
    is_open: Mapped[bool] = mapped_column(Boolean)
    opened_ns: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class RolloutEvent(Base):
    """Every change of the rollout: who, when, why, and the gate's figures at that moment.

    `kind`: promote, auto_promote, rollback, auto_rollback, kill, unkill, breaker_trip,
    breaker_reset, native_unavailable, start (first state). `forced` marks a promotion made
    without a passing gate. `gate` is the verdict as JSON (criteria, figures, bounds) when one
    was judged.
    """

    __tablename__ = "rollout_events"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    op: Mapped[str | None] = mapped_column(OP)
    from_stage: Mapped[str | None] = mapped_column(STAGE)
    to_stage: Mapped[str | None] = mapped_column(STAGE)
    who: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    run_id: Mapped[str | None] = mapped_column(ID)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    gate: Mapped[str | None] = mapped_column(Text)
    # The migration acted on (0005); NULL for events before it and for actions on all
    # migrations at once (a global kill), shown as `all`.
    migration: Mapped[str | None] = mapped_column(MIGRATION)

    __table_args__ = (Index(None, "ts_ns"), Index(None, "kind", "ts_ns"))
