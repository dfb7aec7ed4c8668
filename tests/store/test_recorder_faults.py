"""The recorder under rows the database refuses, a database that is unavailable in the ways a
disk or a server fails, and spill files that are damaged: what can be written is, what cannot
is counted, and the writer never stops.

The judge is arithmetic: once closed, `written + dropped + in_spill` equals the rows handed
in, and the store holds exactly the rows written.
"""

from __future__ import annotations

import logging
import math
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, event, func, select

from harness.config import RecorderConfig
from harness.errors import InvalidInputError
from harness.recorder import SPILL_PREFIX, Recorder
from harness.store.db import open_engine
from harness.store.models import Outcome, RolloutEvent, ShadowComparison
from harness.store.runs import start_run

from .kit import counts, outcome, shadow, wait_for

pytestmark = pytest.mark.timeout(120)

FAST = RecorderConfig(batch_size=200, flush_interval_s=0.05, retry_s=0.1)


class Outage:
    """Makes every connection the recorder checks out fail its writes as a read-only database
    (SQLite `query_only`, PostgreSQL `default_transaction_read_only`: the servers' own errors)
    or a full disk does (SQLite `max_page_count` at the file's size: SQLITE_FULL), while on."""

    def __init__(self, engine: Engine, kind: str) -> None:
        self.engine, self.kind, self.on = engine, kind, False
        event.listen(engine, "checkout", self._checkout)

    def _checkout(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_conn.cursor()
        try:
            if self.engine.dialect.name == "postgresql":
                cursor.execute(f"SET default_transaction_read_only = {'on' if self.on else 'off'}")
                dbapi_conn.commit()
            elif self.kind == "read-only":
                cursor.execute(f"PRAGMA query_only = {int(self.on)}")
            else:
                cursor.execute("PRAGMA page_count")
                pages = cursor.fetchone()[0]
                cursor.execute(f"PRAGMA max_page_count = {pages if self.on else 1 << 30}")
        finally:
            cursor.close()


def events(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            select(RolloutEvent.kind, RolloutEvent.reason, RolloutEvent.run_id).where(
                RolloutEvent.kind == "rows_dropped"
            )
        ).all()


def test_a_row_the_database_refuses_is_dropped_alone_and_the_rest_written(store, tmp_path, caplog):
    engine, run_id = store
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id)
    ghost = "f" * 32  # no such run: the foreign key refuses this row, however it is made to fit
    for i in range(1_000):
        recorder.record(outcome(ghost if i == 617 else run_id, i))
    for i in range(10):
        recorder.record_shadow(shadow(run_id, i))
    with caplog.at_level(logging.ERROR, logger="harness.recorder"):
        assert recorder.flush(60), recorder.stats()
        for i in range(1_000, 1_100):  # rows behind it are written as usual
            recorder.record(outcome(run_id, i))
        stats = recorder.close()
    assert (stats.enqueued, stats.written, stats.dropped, stats.refused) == (1_110, 1_109, 1, 1)
    assert stats.in_spill == 0 and stats.pending == 0
    assert counts(engine) == (1_099, 1_099, 1_099)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ShadowComparison)).scalar_one() == 10
    dropped = [r.getMessage() for r in caplog.records if "DROPPED" in r.getMessage()]
    assert len(dropped) == 1 and ghost in dropped[0]  # logged once, with the row
    (event_row,) = events(engine)
    assert ghost in event_row.reason
    assert "1 row(s) refused" in event_row.reason


def test_values_no_column_holds_are_made_to_fit_by_the_writer(store, tmp_path):
    # Rows handed to the recorder directly (not through the router, which fits them first).
    engine, run_id = store
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id)
    base = outcome(run_id, 0)
    # A latency that is not a finite number is refused at once, as every API taking a
    # measurement refuses it (it could not be folded into a latency sketch): nothing queued.
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(InvalidInputError, match="latency_us"):
            recorder.record(base._replace(latency_us=value))
    for name in ("primary_latency_us", "shadow_latency_us"):
        with pytest.raises(InvalidInputError, match=name):
            recorder.record_shadow(shadow(run_id, 0, **{name: math.nan}))
    bad = [
        base._replace(order_id=2**64),
        base._replace(order_id=-(2**63) - 1, attempts=40_000, http_status=2**31),
        base._replace(error_message="nul \x00 and \x1b[2J here\nsecond line"),
        base._replace(error_message="surrogate \udcff here"),
        base._replace(custom_tag="t" * 300, routing_key="k\x00" * 200),
        base._replace(latency_us=1e308),  # large finite values stay as they are
        base._replace(latency_us=1.7976931348623157e308),
        base._replace(custom_tag={"not": "text"}),  # type: ignore[arg-type]
        base._replace(op=None),  # type: ignore[arg-type]
        base._replace(ts_ns=np.int64(base.ts_ns)),  # type: ignore[arg-type]
        base._replace(attempts=True, order_id=7.0),  # type: ignore[arg-type]
    ]
    for i, row in enumerate(bad):
        recorder.record(row._replace(ts_ns=row.ts_ns + i))  # a numpy int64 stays one
    odd = {"bar_index": 2**40}
    recorder.record_shadow(shadow(run_id, 0, **odd, primary_value="\x00", timeframe="5m" * 20))
    stats = recorder.close()
    assert (stats.written, stats.dropped, stats.in_spill) == (12, 0, 0)
    with engine.connect() as conn:
        got = conn.execute(select(Outcome.__table__).order_by(Outcome.ts_ns)).all()
        compared = conn.execute(select(ShadowComparison.__table__)).one()
    assert [r.order_id for r in got[:2]] == [None, None]
    assert (got[1].attempts, got[1].http_status) == (None, None)
    assert got[2].error_message == "nul \\x00 and \\x1b[2J here\nsecond line"
    assert got[3].error_message == "surrogate \\udcff here"
    assert got[4].custom_tag == "t" * 128 and got[4].routing_key == ("k\\x00" * 200)[:255]
    assert got[5].latency_us == pytest.approx(1e308)
    assert got[6].latency_us == pytest.approx(1.7976931348623157e308)
    assert got[7].custom_tag == "{'not': 'text'}" and got[8].op == ""
    assert got[9].ts_ns == base.ts_ns + 9 and type(got[9].ts_ns) is int
    assert (got[10].attempts, got[10].order_id) == (None, None)  # a bool, a float: no ints
    assert compared.bar_index is None and compared.primary_value == "\\x00"
    assert compared.timeframe == ("5m" * 20)[:16]


def test_a_read_only_database_is_waited_for_not_taken_for_refused_rows(store, tmp_path):
    engine, run_id = store
    _outage_is_waited_for(engine, run_id, tmp_path, "read-only")


def test_a_full_sqlite_disk_is_waited_for_not_taken_for_refused_rows(sqlite_url, tmp_path):
    # PostgreSQL's full disk is drill 11's: a tablespace on a small tmpfs of its own cluster.
    engine = open_engine(sqlite_url)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    _outage_is_waited_for(engine, run_id, tmp_path, "full")
    engine.dispose()


def _outage_is_waited_for(engine: Engine, run_id: str, tmp_path: Path, kind: str) -> None:
    outage = Outage(engine, kind)
    small = RecorderConfig(batch_size=50, flush_interval_s=0.05, buffer_rows=100, retry_s=0.1)
    recorder = Recorder(engine, small, spill_dir=tmp_path / "spill", name=run_id, run_id=run_id)
    for i in range(100):
        recorder.record(outcome(run_id, i))
    assert recorder.flush(30)
    outage.on = True
    for i in range(100, 400):
        recorder.record(outcome(run_id, i))
    during = wait_for(recorder, lambda s: not s.db_ok and s.in_spill > 0)
    assert during.written == 100 and during.dropped == 0
    word = {"read-only": "read", "full": "full"}[kind]
    assert word in (during.last_error or "").lower(), during.last_error
    spill = Path(during.spill_file or "")
    assert stat.S_IMODE(spill.stat().st_mode) == 0o600  # owner-only, whatever the umask
    outage.on = False
    assert recorder.flush(60), recorder.stats()
    stats = recorder.close()
    assert (stats.written, stats.dropped, stats.in_spill) == (400, 0, 0)
    assert stats.replayed == stats.spilled > 0
    assert counts(engine) == (400, 400, 400)
    assert not list((tmp_path / "spill").glob(f"{SPILL_PREFIX}*"))


def test_rows_that_cannot_be_spilled_wait_in_memory_up_to_twice_the_buffer(sqlite_url, tmp_path):
    engine = open_engine(sqlite_url)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    outage = Outage(engine, "read-only")
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the spill folder should be: every spill fails")
    small = RecorderConfig(batch_size=50, flush_interval_s=0.05, buffer_rows=100, retry_s=0.1)
    recorder = Recorder(engine, small, spill_dir=blocked, name=run_id)
    outage.on = True
    for i in range(500):
        recorder.record(outcome(run_id, i))
    during = wait_for(recorder, lambda s: s.pending + s.dropped == 500 and s.dropped > 0)
    # More than buffer_rows wait in memory (the spill failed), at most twice as many.
    assert 150 < during.pending <= 200 and during.dropped == 500 - during.pending
    outage.on = False
    assert recorder.flush(30)
    stats = recorder.close()
    assert stats.written == during.pending and stats.written + stats.dropped == 500
    assert counts(engine)[0] == stats.written
    engine.dispose()


def test_closing_with_the_database_down_spills_even_a_row_json_cannot_hold(sqlite_url, tmp_path):
    engine = open_engine(sqlite_url)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    outage = Outage(engine, "read-only")
    outage.on = True
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id)
    recorder.record(outcome(run_id, 0)._replace(order_id=2**64, error_message="\udcff"))
    recorder.record(outcome(run_id, 1))
    stats = recorder.close(timeout=0.5)  # never raises, and returns
    assert (stats.in_spill, stats.dropped, stats.written) == (2, 0, 0)
    outage.on = False
    later = Recorder(engine, FAST, spill_dir=tmp_path, name="next-run")
    assert later.flush(30)
    after = later.close()
    assert (after.earlier_replayed, after.earlier_lost) == (2, 0)
    with engine.connect() as conn:
        first = conn.execute(select(Outcome.__table__).order_by(Outcome.ts_ns)).first()
    assert first is not None and (first.order_id, first.error_message) == (None, "\\udcff")
    engine.dispose()


def _spill_of(engine: Engine, run_id: str, folder: Path, rows: int) -> Path:
    """A spill file holding `rows` outcome rows, left as a process closing with the database
    read-only leaves it."""
    outage = Outage(engine, "read-only")
    outage.on = True
    recorder = Recorder(engine, FAST, spill_dir=folder, name=run_id)
    for i in range(rows):
        recorder.record(outcome(run_id, i))
    stats = recorder.close(timeout=0.5)
    assert stats.in_spill == rows and stats.spill_file is not None
    outage.on = False
    return Path(stats.spill_file)


def test_a_damaged_spill_file_is_counted_kept_aside_and_its_readable_rows_replayed(store, tmp_path):
    engine, run_id = store
    path = _spill_of(engine, run_id, tmp_path, 300)
    lines = path.read_bytes().split(b"\n")
    assert len(lines) == 301 and lines[-1] == b""  # a row a line
    lines[120] = lines[120][:40] + b"\xff\x00garbage" + lines[120][60:]  # corrupted in the middle
    damaged = b"\n".join(lines[:-2]) + b"\n" + lines[-2][: len(lines[-2]) // 2]  # torn at the end
    path.write_bytes(damaged)
    later_run = start_run(engine, kind="test", config={}, native_available=True)
    later = Recorder(engine, FAST, spill_dir=tmp_path, name=later_run, run_id=later_run)
    assert later.flush(30)
    stats = later.close()
    assert (stats.earlier_replayed, stats.earlier_lost) == (298, 2)
    (kept,) = stats.damaged_files
    assert Path(kept).read_bytes() == damaged  # kept as it was found, never deleted
    assert Path(kept).name.startswith(path.name + ".damaged-")
    assert stat.S_IMODE(Path(kept).stat().st_mode) == 0o600
    assert not path.exists()  # the readable rows are in the store: nothing left to replay
    assert counts(engine) == (298, 298, 298)
    with engine.connect() as conn:
        ts = set(conn.execute(select(Outcome.ts_ns)).scalars())
    assert len(ts) == 298 and outcome(run_id, 299).ts_ns not in ts  # the torn last row
    assert outcome(run_id, 121).ts_ns in ts  # rows after the corrupt line are not lost
    (event_row,) = events(engine)
    assert "2 unreadable line(s)" in event_row.reason and kept in event_row.reason


def test_a_damaged_batch_line_of_the_first_format_counts_its_rows(sqlite_url, tmp_path):
    import orjson

    engine = open_engine(sqlite_url)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    batch = [(f"{i:032x}", *outcome(run_id, i)) for i in range(50)]
    good = orjson.dumps({"b": "a" * 32, "o": batch[:20], "s": []}) + b"\n"
    torn = (orjson.dumps({"b": "b" * 32, "o": batch[20:], "s": []}) + b"\n")[:-900]
    (tmp_path / f"{SPILL_PREFIX}old-run.jsonl").write_bytes(good + torn)
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name="next")
    assert recorder.flush(30)
    stats = recorder.close()
    assert stats.earlier_replayed == 20
    assert 20 <= stats.earlier_lost <= 30  # the ids left in the torn line tell at least this
    engine.dispose()


def test_a_batch_partly_in_already_is_completed_not_doubled(store, tmp_path):
    # A spill file rewritten after a partial replay, or a batch cut in halves, can straddle
    # rows already committed: PostgreSQL's COPY then fails on the key, and is redone.
    from harness.recorder.writer import _Batch

    engine, run_id = store
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id)
    rows = [(f"{i:032x}", *outcome(run_id, i)) for i in range(500)]
    assert recorder._store(_Batch(rows[100:300], []), own=True) == []
    assert recorder._store(_Batch(rows, []), own=True) == []
    recorder.close()
    assert counts(engine) == (500, 500, 500)


def test_a_running_run_shows_its_rows_as_they_are_committed(store, tmp_path):
    from harness.store import queries

    engine, run_id = store
    recorder = Recorder(engine, FAST, spill_dir=tmp_path, name=run_id, run_id=run_id)
    for i in range(700):
        recorder.record(outcome(run_id if i != 350 else "f" * 32, i))  # one row refused
    assert recorder.flush(30)
    (live,) = queries.runs(engine, queries.Filters(run=run_id))
    assert (live["status"], live["rows_recorded"], live["rows_dropped"]) == ("running", 699, 1)
    (event_row,) = events(engine)
    assert event_row.run_id == run_id  # the event names the run that lost the row
    recorder.close()


def test_a_spill_file_made_by_an_older_version_is_made_owner_only(sqlite_url, tmp_path):
    engine = open_engine(sqlite_url)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    path = _spill_of(engine, run_id, tmp_path, 3)
    path.chmod(0o644)
    outage = Outage(engine, "read-only")
    outage.on = True
    again = Recorder(engine, FAST, spill_dir=tmp_path, name=path.name[len(SPILL_PREFIX) : -6])
    for i in range(3, 6):
        again.record(outcome(run_id, i))
    assert again.close(timeout=0.2).in_spill == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes().splitlines()) == 6
    engine.dispose()


def test_what_a_failed_write_means_follows_the_drivers_error_classes():
    import sqlite3

    import psycopg
    import psycopg.errors as pg
    from sqlalchemy import exc as sa

    from harness.recorder.sql import Failure, classify

    down, refused = Failure.UNAVAILABLE, Failure.REFUSED
    cases = [
        (sqlite3.OperationalError("database is locked"), down),
        (sqlite3.OperationalError("database or disk is full"), down),
        (sqlite3.OperationalError("attempt to write a readonly database"), down),
        (sqlite3.ProgrammingError("Cannot operate on a closed database."), down),
        (
            sqlite3.ProgrammingError("Error binding parameter 1: type 'dict' is not supported"),
            refused,
        ),
        (sqlite3.IntegrityError("FOREIGN KEY constraint failed"), refused),
        (pg.DiskFull(), down),
        (pg.ReadOnlySqlTransaction(), down),
        (pg.AdminShutdown(), down),
        (pg.InsufficientPrivilege(), down),  # a revoked grant refuses every row alike
        (psycopg.OperationalError("connection is lost"), down),
        (pg.NumericValueOutOfRange(), refused),
        (pg.StringDataRightTruncation(), refused),
        (pg.ForeignKeyViolation(), refused),
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), refused),
        (psycopg.ProgrammingError("cannot adapt type 'dict'"), refused),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), refused),
        (UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"), refused),
        (OSError(28, "No space left on device"), down),
        (sa.TimeoutError("QueuePool limit reached"), down),
        (sa.OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error")), down),
        (sa.IntegrityError("INSERT", {}, sqlite3.IntegrityError("NOT NULL")), refused),
    ]
    assert [classify(e) for e, _ in cases] == [want for _, want in cases]
