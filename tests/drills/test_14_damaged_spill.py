"""Drill 14, damaged spill file: a `harness run` ends while its SQLite database is locked by another
process, so what the database did not take is left in its spill file (one row a line); the
file is then damaged between runs, as a crash or a bad disk does: a line in the middle
corrupted, the last line torn. The next `harness run` on the folder replays it.

The rows of the damaged lines are counted (the summary's `earlier_lost`, an ERROR log line, a
`rows_dropped` event) and the exit status is 4; every readable row, those after the corrupt
line included, reaches the store; the damaged file is kept aside as it was found
(`...jsonl.damaged-<time>`, owner-only), never deleted.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from .kit import SHORT_RUN, finish, rows, sqlite_locked, start, summary, total, wait_for_outcomes

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

RUN = SHORT_RUN


@pytest.mark.drill_id(14, "damaged spill file")
def test_a_damaged_spill_file_is_counted_kept_and_its_readable_rows_written(
    tmp_path: Path, figures
):
    db = tmp_path / "harness.db"
    url = f"sqlite:///{db}"
    first = start(tmp_path, *RUN)
    wait_for_outcomes(url, 20, first, timeout=90)
    with sqlite_locked(db):  # held past the run's end: what is left goes to its spill file
        out, err = finish(first, timeout=200)
    left = summary(out, err)
    assert first.returncode == 0, err[-3000:]
    spill = Path(left["recorder"]["spill_file"])
    spilled = left["recorder"]["in_spill"]
    lines = spill.read_bytes().split(b"\n")
    assert len(lines) == spilled + 1 and lines[-1] == b""  # one row a line
    middle = len(lines) // 2
    lines[middle] = lines[middle][:30] + b"\x00\xff#corrupted#" + lines[middle][50:]
    damaged = b"\n".join(lines[:-2]) + b"\n" + lines[-2][: len(lines[-2]) // 2]
    spill.write_bytes(damaged)

    second = start(tmp_path, *RUN, "workload.trades=1")
    out2, err2 = finish(second, timeout=150)
    data = summary(out2, err2)
    recorder = data["recorder"]
    stored = rows(url, "SELECT count(*) AS n FROM outcomes WHERE run_id = :run", run=left["run"])
    event = rows(url, "SELECT reason FROM rollout_events WHERE kind = 'rows_dropped'")
    kept = [Path(p) for p in recorder["damaged_files"]]
    figures.add("first run: calls made / recorded / left in its spill file", (
        total(left, "calls_made"), left["recorder"]["rows"], spilled
    ))  # fmt: skip
    figures.add("damage: lines corrupted in the middle / torn at the end", (1, 1))
    figures.add("next run: rows replayed into the store / lost, counted", (
        stored[0]["n"] - left["recorder"]["rows"], recorder["earlier_lost"]
    ))  # fmt: skip
    figures.add("next run: exit status / damaged file kept / tracebacks", (
        second.returncode, ", ".join(p.name for p in kept), err2.count("Traceback")
    ))  # fmt: skip
    assert second.returncode == 4 == data["exit_status"], err2[-3000:]
    assert recorder["earlier_lost"] == 2 and recorder["dropped"] == 0
    assert stored[0]["n"] == total(left, "calls_made") - 2  # every readable row, none twice
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    assert kept[0].name.startswith(spill.name + ".damaged-")
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    assert not spill.exists()
    assert len(event) == 1 and "2 unreadable line(s)" in event[0]["reason"]
    assert "unreadable line" in err2 and "Traceback" not in err2
