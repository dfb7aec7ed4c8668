"""Drill 13, read-only database: a PostgreSQL server (a cluster of the drill's own) made read-only
in the middle of a `harness run` (`default_transaction_read_only = on`, reloaded: what a
failover to a standby or a storage-full guard does; every write then fails with the server's
"cannot execute INSERT in a read-only transaction").

- With a writable spill folder: the database is unavailable, not refusing rows; nothing is
  dropped; what it did not take waits in the spill file (exit status 0), the summary gives this
  process's figures (the run's own row could not be updated), and the next run, once the server
  is writable again, writes it all.
- With the spill folder read-only too (a tmpfs remounted read-only): the rows are lost, counted:
  the summary says how many though the run row still says 0, and the exit status is 4.

In both `recorded + dropped + left in the spill file = calls made`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .kit import (
    SHORT_RUN,
    finish,
    harness,
    read_only,
    recorder_figures,
    rows,
    small_disk,
    start,
    summary,
    wait_for_outcomes,
)

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

RUN = SHORT_RUN


def _set_read_only(url: str, on: bool) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            value = "on" if on else "off"
            conn.execute(text(f"ALTER SYSTEM SET default_transaction_read_only = {value}"))
            conn.execute(text("SELECT pg_reload_conf()"))
    finally:
        admin.dispose()


def _run_made_read_only(own_pg, folder: Path, *extra: str) -> tuple[dict, int, str]:
    url = own_pg.url
    upgraded = harness(folder, "db", "upgrade", f"db.url={url}")
    assert upgraded.returncode == 0, upgraded.stderr
    run = start(folder, *RUN, f"db.url={url}", *extra)
    wait_for_outcomes(url, 20, run, timeout=90)
    _set_read_only(url, True)
    out, err = finish(run, timeout=150)
    return summary(out, err), run.returncode, err


def _judge(figures, label: str, url: str, data: dict, code: int, err: str) -> dict[str, int]:
    got = recorder_figures(figures, label, url, data, code, err)
    (run_row,) = rows(
        url, "SELECT status, rows_recorded, rows_dropped FROM runs WHERE id = :run", run=data["run"]
    )
    figures.add(f"{label}: its run row (status, rows_recorded, rows_dropped)", (
        run_row["status"], run_row["rows_recorded"], run_row["rows_dropped"]
    ))  # fmt: skip
    assert "read-only transaction" in err  # the server's own refusal, logged once
    # The run row kept the count it had when the server turned read-only; the summary did not.
    assert run_row["status"] == "running" and run_row["rows_recorded"] == got["stored"]
    return got


@pytest.mark.drill_id(13, "read-only database")
def test_a_read_only_server_drops_nothing_and_the_next_run_writes_it(
    tmp_path: Path, own_pg, figures
):
    data, code, err = _run_made_read_only(own_pg, tmp_path)
    got = _judge(figures, "spill folder writable", own_pg.url, data, code, err)
    assert code == 0, err[-3000:]
    assert data["recorder"]["dropped"] == 0 and data["recorder"]["in_spill"] > 0
    _set_read_only(own_pg.url, False)
    after = harness(tmp_path, *RUN, "workload.trades=1", f"db.url={own_pg.url}")
    assert after.returncode == 0, after.stderr[-3000:]
    stored = rows(
        own_pg.url, "SELECT count(*) AS n FROM outcomes WHERE run_id = :run", run=data["run"]
    )
    figures.add("spill folder writable: rows of the run in the store after the next run", (
        stored[0]["n"], got["made"]
    ))  # fmt: skip
    assert stored[0]["n"] == got["made"]
    assert not list(tmp_path.glob("harness-spill-*"))


@pytest.mark.drill_id(13, "read-only database")
def test_a_read_only_server_and_spill_folder_lose_rows_counted_and_exit_3(
    tmp_path: Path, own_pg, figures
):
    with small_disk(tmp_path / "spill", 1024) as spill:
        read_only(spill)
        data, code, err = _run_made_read_only(
            own_pg, tmp_path, f"db.recorder.spill_dir={spill}", "db.recorder.buffer_rows=20"
        )
        _judge(figures, "spill folder read-only", own_pg.url, data, code, err)
        assert code == 4, err[-3000:]
        assert data["recorder"]["dropped"] > 0 and data["recorder"]["in_spill"] == 0
        assert "DROPPED" in err
    _set_read_only(own_pg.url, False)
