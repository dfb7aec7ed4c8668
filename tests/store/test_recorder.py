"""The recorder: every row arrives exactly once, through outages, overflow and restarts.

Counts are the judge: rows in `outcomes`, distinct ids, and the sum of `outcome_rollups.n`
must all equal the rows handed to `record`; no spill file may remain.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import orjson
import pgcluster
import pytest
from sqlalchemy import func, select

from harness.config import RecorderConfig
from harness.operations import shipped_migration
from harness.recorder import (
    SPILL_PREFIX,
    OutcomeRecord,
    Recorder,
)
from harness.recorder import writer as writer_module
from harness.recorder.writer import _Batch, _Status
from harness.store.db import open_engine, sqlite_path, upgrade
from harness.store.models import Outcome, OutcomeRollup, ShadowComparison
from harness.store.rollups import HOUR_NS, MINUTE_NS, compact
from harness.store.runs import start_run

from .kit import counts, outcome, shadow, wait_for

FAST = RecorderConfig(batch_size=2_000, flush_interval_s=0.05, retry_s=0.1)


def test_100000_rows_from_8_concurrent_tasks_arrive_exactly_once(store, tmp_path):
    engine, run_id = store
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id)

    async def task(k: int) -> None:
        for i in range(k, 100_000, 8):
            recorder.record(outcome(run_id, i))
            if i % 512 == k:
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(task(k) for k in range(8)))

    asyncio.run(main())
    stats = recorder.close()
    assert (stats.enqueued, stats.written, stats.dropped, stats.pending) == (100_000, 100_000, 0, 0)
    assert counts(engine) == (100_000, 100_000, 100_000)
    with engine.connect() as conn:
        hourly = conn.execute(
            select(func.sum(OutcomeRollup.n)).where(OutcomeRollup.period_ns == HOUR_NS)
        ).scalar_one()
    assert hourly == 100_000  # the hour's rollup, folded from its minutes
    assert not list(tmp_path.glob(f"{SPILL_PREFIX}*"))


def test_a_replayed_batch_whose_commit_was_lost_inserts_nothing_twice(store, tmp_path):
    engine, run_id = store
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id)
    rows = [(f"{i:032x}", *outcome(run_id, i)) for i in range(500)]
    compared = shadow(run_id, 0, stage="shadow", routing_key="MNQ|5m", bars_in=3000)
    batch = _Batch(rows, [("s" * 32, *compared)])
    assert recorder._write(batch, own=True) is _Status.WRITTEN
    compact(engine)
    # The commit happened, but the writer did not learn it: written again, nothing doubles.
    assert recorder._write(batch, own=True) is _Status.WRITTEN
    recorder.close()
    assert counts(engine) == (500, 500, 500)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ShadowComparison)).scalar_one() == 1


def test_rollups_hold_the_counts_and_latencies_of_their_minute(store, tmp_path):
    engine, run_id = store
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id)
    for i in range(3_000):
        recorder.record(outcome(run_id, i, ok=i % 10 != 0))
    recorder.close()
    with engine.connect() as conn:
        total = conn.execute(
            select(func.sum(OutcomeRollup.n), func.sum(OutcomeRollup.latency_sum_us)).where(
                OutcomeRollup.period_ns == MINUTE_NS
            )
        ).one()
        errors = conn.execute(
            select(func.sum(OutcomeRollup.n)).where(
                OutcomeRollup.ok.is_(False), OutcomeRollup.period_ns == MINUTE_NS
            )
        ).scalar_one()
        raw_sum = conn.execute(select(func.sum(Outcome.latency_us))).scalar_one()
    assert total[0] == 3_000 and errors == 300
    assert total[1] == pytest.approx(raw_sum)


def test_overflowing_the_queue_spills_instead_of_refusing(store, tmp_path):
    engine, run_id = store
    tiny = RecorderConfig(queue_bound=100, batch_size=50, flush_interval_s=5.0, retry_s=0.1)
    recorder = Recorder(engine, tiny, spill_dir=tmp_path, name=run_id)
    for i in range(5_000):
        recorder.record(outcome(run_id, i))
    stats = recorder.close()
    assert stats.overflowed > 0 and stats.dropped == 0
    assert counts(engine) == (5_000, 5_000, 5_000)
    assert not list(tmp_path.glob(f"{SPILL_PREFIX}*"))


LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()  # held until the test lets go (`unlock`), however long that takes
    con.execute("COMMIT")
    """
)


def lock(path: Path) -> subprocess.Popen[str]:
    """Another process holding an exclusive lock on the SQLite file at `path` until `unlock`."""
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    return locker


def unlock(locker: subprocess.Popen[str]) -> None:
    """Let the lock go; the locker must end cleanly."""
    locker.communicate("\n", timeout=60)
    assert locker.returncode == 0


@pytest.mark.timeout(90)
def test_sqlite_locked_by_another_process_loses_and_doubles_nothing(sqlite_url, tmp_path):
    engine = open_engine(sqlite_url)
    upgrade(engine)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    small = RecorderConfig(batch_size=200, flush_interval_s=0.05, buffer_rows=500, retry_s=0.2)
    spill = tmp_path / "spill"
    recorder = Recorder(engine, small, spill_dir=spill, name=run_id)
    for i in range(1_000):
        recorder.record(outcome(run_id, i))
    assert recorder.flush(30)
    locker = lock(sqlite_path(engine))
    for i in range(1_000, 6_000):
        recorder.record(outcome(run_id, i))
        if i % 250 == 0:
            time.sleep(0.05)
    during = wait_for(recorder, lambda s: not s.db_ok and s.spilled > 0)
    assert during.written == 1_000  # nothing got through the lock; past 500 rows: spilled
    unlock(locker)
    assert recorder.flush(60)
    stats = recorder.close()
    assert (stats.written, stats.dropped) == (6_000, 0)
    assert counts(engine) == (6_000, 6_000, 6_000)
    assert not list(spill.glob(f"{SPILL_PREFIX}*")), "the spill file must be gone"
    engine.dispose()


@pytest.mark.timeout(120)
def test_postgres_stopped_and_restarted_loses_and_doubles_nothing(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="harness-pg-outage-"))
    folder.chmod(0o755)
    try:
        url = pgcluster.start(folder)
        engine = open_engine(url)
        upgrade(engine)
        run_id = start_run(engine, kind="test", config={}, native_available=True)
        small = RecorderConfig(batch_size=200, flush_interval_s=0.05, buffer_rows=400, retry_s=0.2)
        recorder = Recorder(engine, small, spill_dir=tmp_path, name=run_id)
        for i in range(1_000):
            recorder.record(outcome(run_id, i))
        assert recorder.flush(30)
        pgcluster.stop(folder)
        for i in range(1_000, 4_000):
            recorder.record(outcome(run_id, i))
            if i % 200 == 0:
                time.sleep(0.05)
        wait_for(recorder, lambda s: not s.db_ok and s.spilled > 0)
        pgcluster.start(folder)
        assert recorder.flush(60)
        stats = recorder.close()
        assert (stats.written, stats.dropped) == (4_000, 0)
        assert stats.spilled > 0
        assert counts(engine) == (4_000, 4_000, 4_000)
        assert not list(tmp_path.glob(f"{SPILL_PREFIX}*"))
        engine.dispose()
    finally:
        pgcluster.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def test_closing_while_the_database_is_down_spills_for_the_next_recorder(sqlite_url, tmp_path):
    engine = open_engine(sqlite_url)
    upgrade(engine)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    locker = lock(sqlite_path(engine))
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id)
    for i in range(700):
        recorder.record(outcome(run_id, i))
    stats = recorder.close(timeout=1.0)
    assert stats.spilled == 700 and stats.dropped == 0
    assert len(list(tmp_path.glob(f"{SPILL_PREFIX}*"))) == 1
    unlock(locker)
    later = Recorder(engine, FAST, spill_dir=tmp_path, name="next-run")
    assert later.flush(30)
    later.close()
    assert counts(engine) == (700, 700, 700)
    assert not list(tmp_path.glob(f"{SPILL_PREFIX}*"))
    engine.dispose()


def test_a_spill_file_written_before_the_reconciled_column_is_replayed(sqlite_url, tmp_path):
    # A spill line of schema 0001 has one outcome column fewer: it replays as not reconciled.
    engine = open_engine(sqlite_url)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    width_0001 = OutcomeRecord._fields.index("reconciled")  # 0002 and 0004 added columns after
    old = [(f"{i:032x}", *outcome(run_id, i)[:width_0001]) for i in range(3)]
    line = orjson.dumps({"b": "b" * 32, "o": old, "s": []}) + b"\n"  # a batch a line, then
    (tmp_path / f"{SPILL_PREFIX}dead-run.jsonl").write_bytes(line)
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name="next-run")
    assert recorder.flush(30)
    recorder.close()
    with engine.connect() as conn:
        rows = conn.execute(select(Outcome.reconciled, Outcome.migration, Outcome.targeted)).all()
    shipped = shipped_migration(outcome(run_id, 0).op)
    assert [tuple(r) for r in rows] == [(False, shipped, True)] * 3
    assert not list(tmp_path.glob(f"{SPILL_PREFIX}*"))
    engine.dispose()


def sleeps_of(thread: threading.Thread) -> int:
    """How often `thread` has gone to sleep and been woken (its voluntary context switches,
    from /proc): a count the machine's load does not change, unlike a time."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(status.split("voluntary_ctxt_switches:")[1].split()[0])


def test_the_writer_wakes_once_per_batch_not_once_per_row(store, tmp_path, monkeypatch):
    """Rows queued below `batch_size` wait for their batch's deadline: the writer thread sleeps
    through them (it used to be woken by every shadow row, and every outcome past the batch
    size took a lock to set the wake-up again). The caller yields the CPU after each row, so
    a writer woken per row would get to run each time. The rollup compaction is put off: on a
    loaded machine the loop can outlast its 5 s, and a compaction's database round trips are
    context switches too (seen: 65 on PostgreSQL)."""
    monkeypatch.setattr(writer_module, "COMPACT_EVERY_S", 3600.0)
    engine, run_id = store
    slow = RecorderConfig(batch_size=5_000, flush_interval_s=3600.0, retry_s=0.1)
    recorder = Recorder(engine, slow, spill_dir=tmp_path, name=run_id)
    writer = recorder._thread
    wait_for(recorder, lambda _: recorder._awaiting_rows)  # asleep on an empty queue
    before = sleeps_of(writer)
    for i in range(1_000):
        recorder.record(outcome(run_id, i))
        recorder.record_shadow(shadow(run_id, i))
        os.sched_yield()
    woken = sleeps_of(writer) - before
    assert woken <= 20, f"the writer woke {woken} times for 2,000 rows"
    assert recorder.flush(60)
    assert recorder.close().written == 2_000
    assert counts(engine)[0] == 1_000
