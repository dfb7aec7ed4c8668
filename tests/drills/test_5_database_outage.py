"""Drill 5, database outage: PostgreSQL (a cluster of the drill's own) stopped for 10 s in the
middle of a `harness run` and started again on its port; and the SQLite store locked by another
process (`BEGIN EXCLUSIVE`) for 10 s. Each outage lasts until the recorder has spilled too (the
drill judges the spill and its replay): on a loaded machine fewer calls fit in 10 s.

The round trips go on meanwhile (the store is off the hot path); the recorder buffers, spills
past a small `buffer_rows` to its spill file, and replays when the database is back. After the
run, the store's rows of the run equal the calls the run made (its own count, `calls_made`, and
the run row's `rows_recorded`), no row is there twice, and no spill file is left.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.recorder import SPILL_PREFIX

from .kit import finish, harness, rows, start, summary, total, wait_for_outcomes, wait_until

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

OUTAGE_S = 10.0
RUN = (
    "run", "--json", "workload.trades=40", "workload.pace_ms=700", "broker.sim.profile=bench",
    "rollout.start_stage=staging_50",
    # Past 50 rows waiting in memory, the oldest go to the spill file: the drill sees it used.
    "db.recorder.buffer_rows=50", "db.recorder.retry_s=0.5",
)  # fmt: skip
LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()  # held until the drill ends the outage
    con.execute("COMMIT")
    """
)


def _outage(folder: Path) -> float:
    """Let the outage last OUTAGE_S (the drill's scenario), and on until the recorder has
    spilled rows to its file in `folder`; how long it lasted in all, in seconds."""
    began = time.monotonic()
    time.sleep(OUTAGE_S)
    wait_until(lambda: list(folder.glob(f"{SPILL_PREFIX}*")), 120, "rows spilled during the outage")
    return round(time.monotonic() - began, 1)


def _judge(figures, label: str, url: str, folder: Path, out: str, err: str) -> None:
    data = summary(out, err)
    run_id = data["run"]
    stored = rows(
        url,
        "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM outcomes WHERE run_id = :run",
        run=run_id,
    )[0]
    # The same call twice would repeat its start time, operation and key.
    doubled = rows(
        url,
        "SELECT count(*) AS n FROM (SELECT ts_ns, op, routing_key FROM outcomes "
        "WHERE run_id = :run GROUP BY ts_ns, op, routing_key HAVING count(*) > 1) AS d",
        run=run_id,
    )[0]["n"]
    (run_row,) = rows(url, "SELECT status, rows_recorded, rows_dropped, summary FROM runs "
                      "WHERE id = :run", run=run_id)  # fmt: skip
    shadows = rows(
        url, "SELECT count(*) AS n FROM shadow_comparisons WHERE run_id = :run", run=run_id
    )[0]["n"]
    recorder = json.loads(run_row["summary"])["recorder"]
    spills = sorted(p.name for p in folder.glob(f"{SPILL_PREFIX}*"))
    warnings = [line for line in err.splitlines() if "WARNING" in line or "ERROR" in line]
    figures.add(f"{label}: round trips completed", data["round_trips"]["completed"])
    figures.add(f"{label}: calls made / rows stored / distinct ids", (
        total(data, "calls_made"), stored["n"], stored["ids"]
    ))  # fmt: skip
    figures.add(f"{label}: rows spilled to disk / replayed", (
        recorder["spilled"], recorder["replayed"]
    ))  # fmt: skip
    figures.add(f"{label}: rows dropped / doubled", (run_row["rows_dropped"], doubled))
    figures.add(f"{label}: spill files left", len(spills))
    figures.add(f"{label}: log lines (warnings, errors) / tracebacks", (
        len(warnings), err.count("Traceback")
    ))  # fmt: skip

    assert data["status"] == "finished" and data["exit_status"] == 0, err[-3000:]
    assert total(data, "calls_made") == stored["n"] == stored["ids"]
    assert run_row["rows_recorded"] == stored["n"] + shadows  # the recorder's count: both kinds
    assert total(data, "calls") == stored["n"]
    assert run_row["rows_dropped"] == 0 and doubled == 0
    assert recorder["spilled"] > 0 and recorder["replayed"] == recorder["spilled"]
    assert spills == []
    assert "Traceback" not in err, err[-3000:]


@pytest.mark.drill_id(5, "database outage")
def test_postgresql_stopped_for_10_s_loses_and_doubles_nothing(tmp_path: Path, own_pg, figures):
    url = own_pg.url
    upgraded = harness(tmp_path, "db", "upgrade", f"db.url={url}")
    assert upgraded.returncode == 0, upgraded.stderr
    run = start(tmp_path, *RUN, f"db.url={url}")
    wait_for_outcomes(url, 20, run, timeout=90)
    own_pg.stop()
    lasted = _outage(tmp_path)
    own_pg.start()
    out, err = finish(run, timeout=150)
    figures.add("postgresql: outage s", lasted)
    _judge(figures, "postgresql", url, tmp_path, out, err)


@pytest.mark.drill_id(5, "database outage")
def test_sqlite_locked_for_10_s_loses_and_doubles_nothing(tmp_path: Path, figures):
    db = tmp_path / "harness.db"
    url = f"sqlite:///{db}"
    run = start(tmp_path, *RUN)
    wait_for_outcomes(url, 20, run, timeout=90)
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        lasted = _outage(tmp_path)
        locker.communicate("\n", timeout=60)
        assert locker.returncode == 0
    finally:
        if locker.poll() is None:
            locker.kill()
    out, err = finish(run, timeout=150)
    figures.add("sqlite: locked s", lasted)
    _judge(figures, "sqlite", url, tmp_path, out, err)
