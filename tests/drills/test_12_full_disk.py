"""Drill 12, full disk: real file systems that fill up (a tmpfs of a few MiB mounted for the drill,
filled to the last byte mid-run) under `harness run`:

- the SQLite database's disk (the spill file beside it, as by default, on the same disk): the
  rows the run makes after it filled can be neither written nor spilled; they are counted as
  dropped, the summary says so with this process's figures (the run row cannot be updated),
  and the exit status is 4;
- the spill folder's disk, while the SQLite database is locked by another process: rows wait in
  memory up to twice `buffer_rows`, the rest are counted as dropped; exit status 4;
- PostgreSQL's disk (the database in a tablespace on the small disk, a cluster of the drill's
  own): a full disk is an unavailable database, not refused rows: nothing is dropped, what the
  database did not take waits in the spill file (exit status 0), and the next run on the folder
  writes it once the disk has room.

In every case `recorded + dropped + left in the spill file = calls made`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from .kit import (
    SHORT_RUN,
    fill,
    finish,
    harness,
    recorder_figures,
    rows,
    small_disk,
    sqlite_locked,
    start,
    summary,
    wait_for_outcomes,
)

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

RUN = SHORT_RUN


@pytest.mark.drill_id(12, "full disk")
def test_a_full_sqlite_database_disk_loses_rows_counted_and_exits_4(tmp_path: Path, figures):
    with small_disk(tmp_path / "disk", 4 * 1024) as disk:
        url = f"sqlite:///{disk / 'harness.db'}"
        run = start(disk, *RUN, f"db.url={url}")
        wait_for_outcomes(url, 20, run, timeout=90)
        fill(disk)
        out, err = finish(run, timeout=150)
        data = summary(out, err)
        got = recorder_figures(figures, "sqlite database disk", url, data, run.returncode, err)
        assert run.returncode == 4, err[-3000:]
        assert data["recorder"]["dropped"] > 0 and data["recorder"]["in_spill"] == 0
        assert got["stored"] >= 20
        assert "DROPPED" in err  # the ERROR line of the close


@pytest.mark.drill_id(12, "full disk")
def test_a_full_spill_disk_while_the_database_is_locked_exits_4(tmp_path: Path, figures):
    db = tmp_path / "harness.db"
    url = f"sqlite:///{db}"
    with small_disk(tmp_path / "spill", 256) as spill:
        fill(spill)
        run = start(
            tmp_path, *RUN, f"db.url={url}", f"db.recorder.spill_dir={spill}",
            "db.recorder.buffer_rows=20",
        )  # fmt: skip
        wait_for_outcomes(url, 20, run, timeout=90)
        with sqlite_locked(db):  # held to the end of the run: its close cannot write either
            out, err = finish(run, timeout=200)
        data = summary(out, err)
        recorder_figures(figures, "spill disk", url, data, run.returncode, err)
        assert run.returncode == 4, err[-3000:]
        assert data["recorder"]["dropped"] > 0 and data["recorder"]["in_spill"] == 0
        assert not [p for p in spill.iterdir() if p.name != "filler"]


@pytest.mark.drill_id(12, "full disk")
def test_a_full_postgresql_disk_drops_nothing_and_the_next_run_writes_it(
    tmp_path: Path, own_pg, figures
):
    # Mounted where the server may go (pytest's own folders are the tests' user's only).
    where = Path(tempfile.mkdtemp(prefix="harness-drill-pgdisk-"))
    where.chmod(0o755)
    try:
        with small_disk(where / "disk", 24 * 1024, owner="postgres") as disk:
            admin = create_engine(own_pg.url, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(text(f"CREATE TABLESPACE drill_small LOCATION '{disk}'"))
                    conn.execute(text("CREATE DATABASE drill_full TABLESPACE drill_small"))
            finally:
                admin.dispose()
            url = make_url(own_pg.url).set(database="drill_full").render_as_string(False)
            upgraded = harness(tmp_path, "db", "upgrade", f"db.url={url}")
            assert upgraded.returncode == 0, upgraded.stderr
            run = start(tmp_path, *RUN, f"db.url={url}")
            wait_for_outcomes(url, 20, run, timeout=90)
            fill(disk)
            out, err = finish(run, timeout=150)
            data = summary(out, err)
            got = recorder_figures(figures, "postgresql disk", url, data, run.returncode, err)
            assert run.returncode == 0, err[-3000:]
            assert data["recorder"]["dropped"] == 0 and data["recorder"]["in_spill"] > 0
            assert "No space left on device" in err or "could not extend" in err
            (disk / "filler").unlink()
            after = harness(tmp_path, *RUN, "workload.trades=1", f"db.url={url}")
            assert after.returncode == 0, after.stderr[-3000:]
            stored = rows(
                url, "SELECT count(*) AS n FROM outcomes WHERE run_id = :run", run=data["run"]
            )
            figures.add("postgresql disk: rows of the run in the store after the next run", (
                stored[0]["n"], got["made"]
            ))  # fmt: skip
            assert stored[0]["n"] == got["made"]
            assert not list(tmp_path.glob("harness-spill-*"))
            own_pg.stop()  # before the disk goes: the server holds files on it
    finally:
        shutil.rmtree(where, ignore_errors=True)
