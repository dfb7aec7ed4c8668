"""Seeding a store for the control-plane and dashboard tests, through the real recorder.

Outcomes and shadow comparisons go through `harness.recorder.Recorder` (as a running harness
writes them) and the rollups are compacted as the recorder's writer would; the rollout state,
runs and events are written with the store's own functions, with times the test chooses (so a
stage can have been entered ten minutes ago, and a snapshot test sees the same screen every
time).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, delete, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.engine import make_url

from harness.config import HarnessConfig, RecorderConfig, compose
from harness.operations import Operation, shipped_migration
from harness.recorder import OutcomeRecord, Recorder, ShadowRecord
from harness.store.db import open_engine, open_store
from harness.store.models import MigrationState, RolloutEvent, RolloutState, Run
from harness.store.rollups import compact
from harness.store.runs import start_run
from harness.store.state import ensure_state, write_event

SECOND_NS = 1_000_000_000
NOW_NS = 1_796_083_200 * SECOND_NS  # 2026-12-01T00:00:00Z: the pinned clock of the tests


@dataclass(frozen=True)
class Traffic:
    """What one operation's calls look like in a seeded window."""

    op: Operation
    calls: int
    rust_share: float = 0.05
    rust_error_rate: float = 0.0
    python_error_rate: float = 0.0
    fallback_rate: float = 0.0
    rust_median_us: float = 1_000.0
    python_median_us: float = 2_000.0


def set_stage(
    engine: Engine,
    stage: str,
    since_ns: int,
    *,
    kill: bool = False,
    migrations: tuple[str, ...] = ("orders", "bars"),
) -> None:
    """Put `migrations` at `stage`, entered at `since_ns` (creating their state if needed)."""
    for migration in migrations:
        ensure_state(engine, stage, migration=migration)
    with engine.begin() as conn:
        conn.execute(
            update(MigrationState)
            .where(MigrationState.migration.in_(migrations))
            .values(
                stage=stage,
                stage_since_ns=since_ns,
                kill=kill,
                kill_reason="seeded kill" if kill else None,
                version=MigrationState.version + 1,
                updated_ns=since_ns,
            )
        )
        conn.execute(
            update(RolloutState)
            .where(RolloutState.id == 1)
            .values(version=RolloutState.version + 1, updated_ns=since_ns)
        )


def new_run(engine: Engine, started_ns: int, *, native: bool = True) -> str:
    """A run row started at `started_ns` (the native module available or not)."""
    run_id = start_run(
        engine,
        kind="test",
        config={},
        native_available=native,
        native_error=None if native else "ImportError: seeded: no native module",
    )
    with engine.begin() as conn:
        conn.execute(
            update(Run).where(Run.id == run_id).values(started_ns=started_ns, host="seed-host")
        )
    return run_id


def outcomes(
    run_id: str,
    stage: str,
    since_ns: int,
    until_ns: int,
    traffic: Iterable[Traffic],
    seed: int = 3,
) -> list[OutcomeRecord]:
    """Outcomes spread over `[since_ns, until_ns)`, drawn from `traffic` with a fixed seed."""
    rng = np.random.default_rng(seed)
    rows: list[OutcomeRecord] = []
    for t in traffic:
        ts = np.sort(rng.integers(since_ns, until_ns, t.calls))
        for i in range(t.calls):
            rust = rng.random() < t.rust_share
            fell_back = rust and rng.random() < t.fallback_rate
            served = "python" if fell_back or not rust else "rust"
            ok = rng.random() >= (t.rust_error_rate if rust else t.python_error_rate)
            median = t.rust_median_us if served == "rust" else t.python_median_us
            rows.append(
                OutcomeRecord(
                    int(ts[i]),
                    run_id,
                    t.op.value,
                    stage,
                    "rust" if rust else "python",
                    served,
                    fell_back,
                    "BrokerUnavailableError: connection reset" if fell_back else None,
                    ok,
                    None if ok else "OrderRejectedError",
                    None
                    if ok
                    else f"Order/place rejected: code 2, insufficient margin on call {i} "
                    "(the broker's full message, longer than a table cell can show)",
                    float(median * rng.lognormal(0.0, 0.25)),
                    1,
                    200,
                    None,
                    None,
                    None,
                    # As the router records it: the operation's migration.
                    migration=shipped_migration(t.op.value),
                )
            )
    rows.sort(key=lambda r: r.ts_ns)
    return rows


def shadows(
    run_id: str, stage: str, times_ns: Sequence[int], *, mismatches: int = 0
) -> list[ShadowRecord]:
    """Aggregation shadow comparisons at `times_ns`; the last `mismatches` differ at a bar."""
    out = []
    for i, ts in enumerate(times_ns):
        differs = i >= len(times_ns) - mismatches
        out.append(
            ShadowRecord(
                ts_ns=int(ts),
                run_id=run_id,
                op=Operation.AGGREGATE_BARS.value,
                stage=stage,
                routing_key=f"MNQ:5m:{i}",
                primary="python",
                shadow="rust",
                matched=not differs,
                timeframe="5m" if differs else None,
                bar_index=12 if differs else None,
                field="close" if differs else None,
                primary_value="21034.25" if differs else None,
                shadow_value="21034.5" if differs else None,
                primary_latency_us=9_000.0,
                shadow_latency_us=45.0,
                shadow_error=None,
                bars_in=240,
                migration=shipped_migration(Operation.AGGREGATE_BARS),
            )
        )
    return out


def record(
    engine: Engine,
    spill_dir: Path,
    rows: Sequence[OutcomeRecord],
    shadow_rows: Sequence[ShadowRecord] = (),
    *,
    now_ns: int,
) -> None:
    """Write rows through the recorder, then compact every minute ended before `now_ns`."""
    recorder = Recorder(
        engine, RecorderConfig(flush_interval_s=0.05), spill_dir=spill_dir, name="seed"
    )
    try:
        for row in rows:
            recorder.record(row)
        for shadow in shadow_rows:
            recorder.record_shadow(shadow)
        assert recorder.flush(60), "the recorder did not flush the seeded rows"
    finally:
        recorder.close()
    while compact(engine, now_ns=now_ns):
        pass


def event(engine: Engine, kind: str, ts_ns: int, **values: object) -> None:
    """One `rollout_events` row at `ts_ns` (who defaults to `seed`)."""
    values.setdefault("who", "seed")
    host = values.pop("host", "seed-host")
    with engine.begin() as conn:
        write_event(conn, kind, ts_ns=ts_ns, **values)  # type: ignore[arg-type]
        conn.execute(
            update(RolloutEvent).where(RolloutEvent.ts_ns == ts_ns).values(host=host, pid=4242)
        )


def gate_json(verdict: str) -> str:
    """A minimal stored gate JSON, as the events hold it."""
    return json.dumps({"verdict": verdict, "criteria": []})


MINUTE_NS = 60 * SECOND_NS

TRAFFIC = (
    Traffic(
        Operation.PLACE_ORDER,
        600,
        rust_share=0.25,
        rust_error_rate=0.02,
        python_error_rate=0.01,
        fallback_rate=0.02,
        rust_median_us=300.0,
        python_median_us=2_400.0,
    ),
    Traffic(
        Operation.MODIFY_ORDER, 300, rust_share=0.25, rust_median_us=280.0, python_median_us=2_300.0
    ),
    Traffic(
        Operation.CANCEL_ORDER, 250, rust_share=0.25, rust_median_us=250.0, python_median_us=2_100.0
    ),
    Traffic(
        Operation.AGGREGATE_BARS,
        900,
        rust_share=0.25,
        rust_median_us=40.0,
        python_median_us=9_000.0,
    ),
)
"""A staging rollout's traffic: a quarter to Rust, some place_order errors and fallbacks."""


@dataclass
class Seeded:
    """A seeded store: its URL, an engine on it, the run written, the pinned now."""

    url: str
    engine: Engine
    run_id: str
    now_ns: int
    stage: str

    def config(self, *overrides: str) -> HarnessConfig:
        """The harness config on this store."""
        return compose([f"db.url={self.url}", *overrides])


def seed_rollout(
    url: str, tmp_path: Path, now_ns: int, *, stage: str = "staging", mismatches: int = 1
) -> Seeded:
    """`stage` entered 20 minutes before `now_ns`, 2,050 outcomes of `TRAFFIC` since, 18
    aggregation shadow comparisons (the last `mismatches` of them differing at a bar)."""
    engine = open_store(url)
    since = now_ns - 20 * MINUTE_NS
    set_stage(engine, stage, since)
    run_id = new_run(engine, since - 5 * MINUTE_NS)
    rows = outcomes(run_id, stage, since, now_ns - 5 * SECOND_NS, TRAFFIC)
    compared = shadows(
        run_id, stage, [now_ns - i * MINUTE_NS for i in range(18, 0, -1)], mismatches=mismatches
    )
    record(engine, tmp_path / "spill", rows, compared, now_ns=now_ns)
    return Seeded(url, engine, run_id, now_ns, stage)


def seed_history(
    url: str,
    tmp_path: Path,
    now_ns: int,
    history: Sequence[tuple[str, str, int]],
    traffic: Sequence[Traffic] = TRAFFIC,
    *,
    quiet_last: bool = False,
) -> Seeded:
    """A rollout that went through `history`, `(event kind, stage, minutes before now_ns)` in
    order (`start` first, then `promote` or `rollback` events written as the actions write
    them, from the stage before), with `traffic` recorded in each stage's window (the last
    one up to 5 s before `now_ns`; none there with `quiet_last`, as just after a rollback).
    The state is at the last stage, entered at its time."""
    engine = open_store(url)
    times = [now_ns - minutes * MINUTE_NS for _, _, minutes in history]
    set_stage(engine, history[-1][1], times[-1])
    with engine.begin() as conn:  # the `start` event `ensure_state` wrote at the wall clock
        conn.execute(delete(RolloutEvent))
    run_id = new_run(engine, times[0] - 5 * MINUTE_NS)
    rows: list[OutcomeRecord] = []
    previous: str | None = None
    for i, ((kind, stage, _), since) in enumerate(zip(history, times, strict=True)):
        event(engine, kind, since, from_stage=previous, to_stage=stage, reason=f"seeded {kind}")
        last = i + 1 == len(times)
        until = now_ns - 5 * SECOND_NS if last else times[i + 1]
        if not (last and quiet_last):
            rows += outcomes(run_id, stage, since, until, traffic, seed=3 + i)
        previous = stage
    rows.sort(key=lambda r: r.ts_ns)
    record(engine, tmp_path / "spill", rows, now_ns=now_ns)
    return Seeded(url, engine, run_id, now_ns, history[-1][1])


@contextmanager
def write_lock_held(url: str) -> Iterator[None]:
    """Another process's writer, as a person's action meets it: on SQLite a connection holding
    the database's write lock (`BEGIN IMMEDIATE`), on PostgreSQL a transaction holding the
    rollout state's row (`SELECT ... FOR UPDATE`), until the block ends."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        raw = sqlite3.connect(str(parsed.database), isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")
            yield
            raw.execute("ROLLBACK")
        finally:
            raw.close()
        return
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            holding = conn.begin()
            conn.execute(text("SELECT id FROM rollout_state FOR UPDATE"))
            yield
            holding.rollback()
    finally:
        engine.dispose()


@contextmanager
def commit_before_compare_and_set(
    engine: Engine, interloper: Callable[[], object]
) -> Iterator[list[bool]]:
    """Run `interloper` (which commits through another engine) the first time `engine` is
    about to update the rollout state (the global row or a migration's): another process's
    change landing between an action's read and its compare-and-set, at exactly that moment.
    Yields a list that holds True once it ran."""
    fired: list[bool] = []

    def hook(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        head = statement.lstrip().upper()
        if not fired and head.startswith(("UPDATE ROLLOUT_STATE", "UPDATE MIGRATION_STATE")):
            fired.append(True)
            interloper()

    sa_event.listen(engine, "before_cursor_execute", hook)
    try:
        yield fired
    finally:
        sa_event.remove(engine, "before_cursor_execute", hook)
