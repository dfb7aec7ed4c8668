"""Several writers on one database, and retention: writers never wait on each other's rollup
marks, every row reaches its rollup exactly once whoever writes and compacts, several processes
on one SQLite file wait their turn instead of failing, and `harness db prune` deletes raw rows
while every figure stays what it was.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import event, func, select, text

from harness.config import RecorderConfig
from harness.recorder import Recorder
from harness.recorder.writer import _Batch, _Status
from harness.store.db import open_engine, sqlite_path, upgrade
from harness.store.models import DirtyBucket, Outcome, OutcomeRollup, ShadowComparison
from harness.store.queries import Filters, latency, window_figures
from harness.store.retention import prune
from harness.store.rollups import HOUR_NS, MINUTE_NS, compact, raw_before
from harness.store.runs import start_run

from .kit import counts, outcome, shadow

FAST = RecorderConfig(batch_size=500, flush_interval_s=0.02, retry_s=0.1)
T0 = outcome("", 0).ts_ns
FUTURE = 2**62
DAY = 1_440 * MINUTE_NS


def rows_of(run_id: str, start: int, n: int) -> list[tuple[object, ...]]:
    return [(f"{run_id[:16]}{i:016x}", *outcome(run_id, i)) for i in range(start, start + n)]


@pytest.mark.timeout(120)
def test_a_writer_never_waits_on_the_marks_of_another(pg_url, tmp_path):
    """Writer A is stopped inside its batch's transaction, holding its marks on the minute and
    hour; writer B writes rows of the same minute and commits. (Before: one row per bucket, so
    B waited on A's row lock until A committed.)"""
    engine_a, engine_b = open_engine(pg_url), open_engine(pg_url)
    upgrade(engine_a)
    run_a = start_run(engine_a, kind="test", config={}, native_available=True)
    run_b = start_run(engine_b, kind="test", config={}, native_available=True)
    in_batch, release = threading.Event(), threading.Event()

    def hold(conn, cursor, statement, *args):  # after A's marks, before its commit
        if statement.lstrip().upper().startswith("INSERT INTO DIRTY_BUCKETS"):
            in_batch.set()
            release.wait(60)

    event.listen(engine_a, "after_cursor_execute", hold)

    @event.listens_for(engine_b, "connect")
    def bounded(dbapi_conn, record):  # B fails, not hangs, if it would wait on a lock
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")
        dbapi_conn.commit()

    a = Recorder(engine_a, FAST, spill_dir=tmp_path / "a", name=run_a)
    b = Recorder(engine_b, FAST, spill_dir=tmp_path / "b", name=run_b)
    try:
        a_batch = _Batch(rows_of(run_a, 0, 50), [])
        writer_a = threading.Thread(target=a._write, args=(a_batch,), kwargs={"own": True})
        writer_a.start()
        assert in_batch.wait(30)
        b_batch = _Batch(rows_of(run_b, 0, 50), [])  # the same minute, the same hour
        assert b._write(b_batch, own=True) is _Status.WRITTEN
        assert writer_a.is_alive()  # A still holds its transaction open
    finally:
        release.set()
    writer_a.join(30)
    a.close()
    b.close()
    compact(engine_a, now_ns=FUTURE)
    assert counts(engine_a) == (100, 100, 100)
    engine_a.dispose()
    engine_b.dispose()


@pytest.mark.timeout(240)
def test_writers_and_compactors_at_once_count_every_row_exactly_once(db_url, tmp_path):
    """Three recorders (three engines: three processes' connection pools) write rows of the
    same minutes while two compactors run over and over; each row is in its minute's rollup
    once, the hours' rollups agree, no mark is left."""
    engines = [open_engine(db_url) for _ in range(3)]
    upgrade(engines[0])
    runs = [start_run(e, kind="test", config={}, native_available=True) for e in engines]
    recorders = [
        Recorder(e, FAST, spill_dir=tmp_path / f"s{k}", name=r)
        for k, (e, r) in enumerate(zip(engines, runs, strict=True))
    ]
    done = threading.Event()

    def compactor(engine):
        while not done.is_set():
            compact(engine, now_ns=FUTURE)  # every minute counts as ended: the worst case

    threads = [threading.Thread(target=compactor, args=(e,)) for e in engines[:2]]
    for thread in threads:
        thread.start()
    per = 6_000
    for i in range(per):
        for recorder, run_id in zip(recorders, runs, strict=True):
            recorder.record(outcome(run_id, i))
    for recorder in recorders:
        assert recorder.flush(120)
    done.set()
    for thread in threads:
        thread.join(60)
    for recorder in recorders:
        recorder.close()
    while compact(engines[0], now_ns=FUTURE):
        pass
    engine = engines[0]
    assert counts(engine) == (3 * per, 3 * per, 3 * per)
    with engine.connect() as conn:
        hourly = conn.execute(
            select(func.sum(OutcomeRollup.n)).where(OutcomeRollup.period_ns == HOUR_NS)
        ).scalar_one()
        marks = conn.execute(select(func.count()).select_from(DirtyBucket)).scalar_one()
    assert (hourly, marks) == (3 * per, 0)
    for e in engines:
        e.dispose()


@pytest.mark.timeout(120)
def test_sqlite_writes_wait_for_another_process_instead_of_failing(sqlite_url, tmp_path):
    """Another process holds SQLite's write lock for 2.5 s (longer than the 2 s every statement
    waits): a recorder's batch waits its turn and commits, it does not fail as locked."""
    engine = open_engine(sqlite_url)
    upgrade(engine)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id)
    other = sqlite3.connect(str(sqlite_path(engine)), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(2.5, other.execute, args=("COMMIT",))
    releaser.start()
    try:
        assert recorder._write(_Batch(rows_of(run_id, 0, 10), []), own=True) is _Status.WRITTEN
    finally:
        releaser.join()
        other.close()
    recorder.close()
    engine.dispose()


# ----- retention --------------------------------------------------------------------------------


@pytest.fixture
def history(store, tmp_path):
    """6,000 outcomes 420 ms apart (42 minutes) and 20 shadow comparisons, all compacted."""
    engine, run_id = store
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id)
    for i in range(6_000):
        recorder.record(outcome(run_id, i * 60, ok=i % 7 != 0))
    for i in range(20):
        recorder.record_shadow(shadow(run_id, i * 600, stage="canary", routing_key="MNQ|5m"))
    assert recorder.flush(60)
    recorder.close()
    while compact(engine, now_ns=FUTURE):
        pass
    return engine, run_id


def figures(engine, since, until):
    """What the history and the gate read from outcomes (shadow comparisons have no rollups:
    a pruned window has none, which is why a prune keeps the current stages' windows)."""
    f = Filters(since_ns=since, until_ns=until)
    rows = [r.to_dict() for r in latency(engine, f)]
    gate = window_figures(engine, "canary", since, until)
    sides = {op: (figs.rust, figs.python) for op, figs in gate.ops.items()}
    return rows, sides


def test_prune_deletes_raw_rows_and_every_figure_stays(history):
    engine, _ = history
    span = (T0 - T0 % MINUTE_NS, T0 + 3 * HOUR_NS)  # whole minutes
    before = figures(engine, *span)
    end = T0 + 6_000 * 60 * 7_000_000
    now = end + 2 * DAY
    dry = prune(engine, DAY, dry_run=True, now_ns=now)
    assert (dry.outcomes, dry.shadow_comparisons, dry.dry_run) == (6_000, 20, True)
    assert counts(engine)[0] == 6_000  # a dry run deletes nothing
    done = prune(engine, DAY, now_ns=now)
    assert (done.outcomes, done.shadow_comparisons, done.stopped_at_ns) == (6_000, 20, None)
    assert done.batches >= 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Outcome)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(ShadowComparison)).scalar_one() == 0
        assert raw_before(conn) == (now - DAY) - (now - DAY) % MINUTE_NS
    assert figures(engine, *span) == before
    assert prune(engine, DAY, now_ns=now).outcomes == 0  # again: nothing left to do


def test_a_late_row_in_a_pruned_minute_is_counted_once(history, tmp_path):
    """A row that arrives for a pruned minute (a spill file replayed after a long outage) is
    counted with the rollup while dirty, then folded into it; the minute is never recomputed
    from its raw rows (which would keep only the late row)."""
    engine, run_id = history
    span = (T0 - T0 % MINUTE_NS, T0 + 3 * HOUR_NS)
    now = T0 + 3 * DAY
    (before_rows, before_gate) = figures(engine, *span)
    prune(engine, DAY, now_ns=now)
    recorder = Recorder(engine, FAST, spill_dir=tmp_path / "late", name="late")
    late = outcome(run_id, 5)  # the first minute, pruned
    assert recorder._write(_Batch([("late" + "0" * 28, *late)], []), own=True) is _Status.WRITTEN
    recorder.close()
    dirty_rows, dirty_gate = figures(engine, *span)
    assert sum(r["calls"] for r in dirty_rows) == sum(r["calls"] for r in before_rows) + 1
    assert dirty_gate != before_gate
    compact(engine, now_ns=FUTURE)
    assert figures(engine, *span) == (dirty_rows, dirty_gate)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Outcome)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(DirtyBucket)).scalar_one() == 0
    assert counts(engine)[2] == 6_001


def test_prune_stops_at_a_minute_not_yet_in_its_rollup(history):
    engine, run_id = history
    minute = outcome(run_id, 3_000 * 60).ts_ns
    minute -= minute % MINUTE_NS
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO dirty_buckets (period_ns, bucket_ns, writer, gen) "
                "VALUES (:p, :b, 'x', 1)"
            ),
            {"p": MINUTE_NS, "b": minute},
        )
    with engine.connect() as conn:
        kept = conn.execute(select(func.count()).where(Outcome.ts_ns >= minute)).scalar_one()
    result = prune(engine, DAY, now_ns=T0 + 3 * DAY)
    assert result.stopped_at_ns == minute and result.before_ns == minute
    assert result.outcomes == 6_000 - kept
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Outcome)).scalar_one() == kept
