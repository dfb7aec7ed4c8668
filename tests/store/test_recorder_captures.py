"""The recorder's captures (`record_capture`): made on the writer's thread, kept when they fit
`max_bytes`, counted when not; a migration's expired captures deleted as new ones are written;
captures wait through a database outage and are written once it ends."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from harness.config import RecorderConfig
from harness.recorder import CaptureRecord, Recorder
from harness.router.capture import FORMAT, decode, encode
from harness.store.models import Capture

from .kit import wait_for
from .test_recorder_faults import Outage

pytestmark = pytest.mark.timeout(120)

FAST = RecorderConfig(batch_size=200, flush_interval_s=0.05, retry_s=0.1)
DAY_NS = 86_400 * 1_000_000_000


MADE_ON: list[str] = []
"""The threads the payloads were made on."""


def capture(run_id: str, ts_ns: int, document: dict[str, Any], **changes: Any) -> CaptureRecord:
    def payload() -> bytes:
        MADE_ON.append(threading.current_thread().name)
        return encode(document)

    row = CaptureRecord(
        ts_ns, run_id, "orders", "place_order", "rust", "b1", FORMAT, payload, 65536, DAY_NS
    )
    return row._replace(**changes)


def stored(engine) -> list[Any]:
    with engine.connect() as conn:
        table = Capture.__table__
        return list(conn.execute(select(table).order_by(table.c.ts_ns)).all())


def test_captures_are_made_off_the_callers_thread_kept_when_they_fit_and_expired_ones_go(
    store, tmp_path
):
    engine, run_id = store
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id, run_id=run_id)
    now = time.time_ns()
    old = capture(run_id, now - 2 * DAY_NS, {"n": 0})  # past its retention of a day
    recorder.record_capture(old)
    assert recorder.flush(30)
    assert [c.ts_ns for c in stored(engine)] == [old.ts_ns]  # kept until a newer one is written
    fits = capture(run_id, now, {"n": 1})
    big = capture(run_id, now + 1, {"n": "x" * 5000, "r": list(range(3000))}, max_bytes=256)
    recorder.record_capture(fits)
    recorder.record_capture(big)
    assert recorder.flush(30)
    rows = stored(engine)
    assert [decode(c.payload) for c in rows] == [{"n": 1}]  # the expired one deleted
    assert rows[0].size == len(rows[0].payload) and rows[0].build_id == "b1"
    assert MADE_ON and threading.current_thread().name not in MADE_ON
    stats = recorder.close()
    assert (stats.captures_written, stats.captures_oversize, stats.captures_dropped) == (2, 1, 0)


def test_captures_wait_through_an_outage_and_are_written_after(store, tmp_path):
    engine, run_id = store
    outage = Outage(engine, "read-only")
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id, run_id=run_id)
    outage.on = True
    recorder.record_capture(capture(run_id, time.time_ns(), {"n": 1}))
    during = wait_for(recorder, lambda s: not s.db_ok)
    assert during.captures_written == during.captures_dropped == 0
    assert len(stored(engine)) == 0  # a read needs no write
    outage.on = False
    assert recorder.flush(60), recorder.stats()
    stats = recorder.close()
    assert stats.captures_written == 1 and stats.captures_dropped == 0
    assert len(stored(engine)) == 1
