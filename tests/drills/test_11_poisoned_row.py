"""Drill 11, poisoned row: a bot process (`poisoning_bot.py`) whose calls carry values no column
of the store can hold: a cancel of order 2**64 and a modify of order -(2**63)-1 (refused by the
client and recorded as errors), a placement tagged with a NUL byte and a terminal escape, one
with a 300-character tag (both refused by the customTag rule and recorded as errors, the tag
escaped and cut to the column), then 98 ordinary placements; on Rust and on Python (the
environment's kill switch), on SQLite and on PostgreSQL.

Every call is one row (nothing dropped, nothing blocked behind the odd ones), closing returns
and raises nothing, the run row ends `finished` with its count, and the log holds no traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .kit import finish, rows, start

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

BOT = [sys.executable, str(Path(__file__).with_name("poisoning_bot.py"))]
PLACEMENTS = 100
SIDES = {"rust": {}, "python": {"TOPSTEPX_USE_RUST": "false"}}


@pytest.mark.drill_id(11, "poisoned row")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_calls_no_column_can_hold_are_recorded_and_block_nothing(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, figures
):
    url = (
        f"sqlite:///{tmp_path / 'harness.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    for side, env in SIDES.items():
        bot = start(tmp_path, url, str(PLACEMENTS), program=BOT, env=env)
        out, err = finish(bot, timeout=150)
        assert bot.returncode == 0, err[-3000:]
        got = json.loads(out.strip().splitlines()[-1])
        run = got["run"]
        stored = rows(
            url,
            "SELECT count(*) AS n, sum(CASE WHEN served = :side THEN 1 ELSE 0 END) AS on_side "
            "FROM outcomes WHERE run_id = :run",
            run=run,
            side=side,
        )[0]
        (run_row,) = rows(
            url, "SELECT status, rows_recorded, rows_dropped FROM runs WHERE id = :run", run=run
        )
        label = f"{backend}, {side}"
        figures.add(f"{label}: calls made / rows stored / dropped", (
            got["calls_made"], stored["n"], got["dropped"]
        ))  # fmt: skip
        figures.add(f"{label}: exit status / close s / tracebacks", (
            bot.returncode, got["close_s"], err.count("Traceback")
        ))  # fmt: skip
        figures.add(f"{label}: run row status, rows_recorded", (
            run_row["status"], run_row["rows_recorded"]
        ))  # fmt: skip
        assert got["refused_by_client"] == 4
        assert got["calls_made"] == PLACEMENTS + 2 == stored["n"] == stored["on_side"]
        assert got["written"] == stored["n"] and got["dropped"] == 0
        assert (run_row["status"], run_row["rows_recorded"], run_row["rows_dropped"]) == (
            "finished",
            stored["n"],
            0,
        )
        assert "Traceback" not in err, err[-3000:]
