"""Drill 6, hard kill: `harness run` SIGKILLed in the middle of a round trip (its stop working,
its position open), then run again on the same database and broker (a `harness sim` process).

The database stays consistent (SQLite's integrity check; `harness query` counts the dead run's
rows as stored); the
next run reports the dead run with the orders and the position it left; refused while they are
there, it starts cleanly with `workload.sweep_stale=true`, which cancels them and closes the
position; the dead run is then marked `died` and not reported again.

What the kill cost: the broker counts the routed calls it received (placements, stop moves,
cancels, bar reads, each of which is one aggregation); minus the rows stored, that is at most
the rows the recorder still held (bounded by its flush interval, 0.2 s) plus the calls in
flight when the process died. A SIGINT or SIGTERM costs nothing: the same difference is 0.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from .kit import (
    OPEN,
    finish,
    gateway,
    harness,
    mid_trip,
    open_positions,
    orders_of,
    projectx,
    rows,
    start,
    summary,
    total,
    wait_for_outcomes,
    wait_until,
)

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

ROUTED_PATHS = (
    "/api/Order/place",
    "/api/Order/modify",
    "/api/Order/cancel",
    "/api/History/retrieveBars",
)
LONG_RUN = ("run", "workload.trades=400", "workload.modifies=20", "workload.rate_limit=false")
CANCELLED = 3
FLUSH_INTERVAL_S = 0.2  # the recorder's default (db.recorder.flush_interval_s)
WORKERS = 2  # round trips in flight: one per symbol of the default MNQ, MES


def broker_calls(sim) -> int:
    """Routed calls the broker has received so far (one request each: no faults here)."""
    requests = sim.stats()["requests"]
    return sum(requests.get(path, 0) for path in ROUTED_PATHS)


@pytest.mark.drill_id(6, "hard kill")
def test_a_killed_run_is_reported_swept_and_costs_at_most_the_unflushed_rows(
    tmp_path: Path, figures
) -> None:
    db = tmp_path / "harness.db"
    url = f"sqlite:///{db}"
    sim = gateway(rate_limit=False, latency_ms=15.0)
    try:
        overrides, env = projectx(sim)
        before = broker_calls(sim)
        killed = start(tmp_path, *LONG_RUN, *overrides, env=env)
        wait_for_outcomes(url, 60, killed, timeout=90)
        wait_until(mid_trip(sim), 30, "a round trip with its stop working")
        first_ns = rows(url, "SELECT min(ts_ns) AS t FROM outcomes")[0]["t"]
        killed.send_signal(signal.SIGKILL)
        killed_ns = time.time_ns()
        killed.communicate(timeout=30)
        sent = broker_calls(sim) - before
        (dead,) = rows(url, "SELECT id, status FROM runs")
        stored = rows(url, "SELECT count(*) AS n FROM outcomes")[0]["n"]
        left = {o["id"] for o in orders_of(sim.ledger(), dead["id"]) if o["status"] == OPEN}
        held = {p["contractId"] for p in open_positions(sim, 1001)}
        with sqlite3.connect(db) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]

        refused = harness(tmp_path, "run", "workload.trades=2", *overrides, env=env)
        done = harness(
            tmp_path, "run", "--json", "workload.trades=4", "workload.sweep_stale=true",
            *overrides, env=env,
        )  # fmt: skip
        data = summary(done.stdout, done.stderr)
        ledger = {o["id"]: o for o in sim.ledger()}
        positions_after = open_positions(sim, 1001)
        again = harness(tmp_path, "run", "--json", "workload.trades=2", *overrides, env=env)
        latency = harness(tmp_path, "query", "latency", "--run", dead["id"], "--json")
    finally:
        sim.stop()

    (report,) = data["stale_runs"]
    (died,) = rows(url, "SELECT status, rows_recorded FROM runs WHERE id = :run", run=dead["id"])
    # What the store's queries (rollups, and raw rows where minutes are still dirty) count.
    rolled = sum(r["calls"] for r in json.loads(latency.stdout))
    rate = sent / ((killed_ns - first_ns) / 1e9)  # calls a second at this run's pace
    bound = rate * FLUSH_INTERVAL_S + WORKERS
    figures.add("SIGKILL: calls the broker received / rows stored", (sent, stored))
    figures.add("SIGKILL: rows the kill cost at most (unflushed, or in flight)", sent - stored)
    figures.add(f"SIGKILL: calls in one flush interval (0.2 s at {rate:.0f}/s) + 2 in flight",
                round(bound, 1))  # fmt: skip
    figures.add("SIGKILL: database integrity check, run row left", (integrity, dead["status"]))
    figures.add("SIGKILL: orders left open / positions left", (len(left), sorted(held)))
    figures.add("next run without sweep_stale: exit status", refused.returncode)
    figures.add("next run with sweep_stale: exit status, cancelled, closed", (
        done.returncode, len(report["swept"]["cancelled"]), report["swept"]["closed"]
    ))  # fmt: skip
    figures.add("dead run afterwards: status, rows counted, rows its queries count", (
        died["status"], died["rows_recorded"], rolled
    ))  # fmt: skip

    assert dead["status"] == "running" and integrity == "ok"
    # Bounded by the recorder's flush interval (five of them allowed: a loaded machine's
    # commit takes time too) and the calls in flight.
    assert 0 <= sent - stored <= rate * 5 * FLUSH_INTERVAL_S + WORKERS
    assert left and held  # the kill landed mid-trip: a working stop and an open position
    assert refused.returncode == 1 and "workload.sweep_stale=true" in refused.stderr
    assert f"earlier run {dead['id']}" in refused.stderr
    assert done.returncode == 0, done.stderr
    assert report["run"] == dead["id"] and {o["id"] for o in report["open_orders"]} == left
    assert {p["contract_id"] for p in report["open_positions"]} == held
    assert set(report["swept"]["cancelled"]) == left and set(report["swept"]["closed"]) == held
    assert report["swept"]["failed"] == [] and report["status"] == "died"
    assert all(ledger[i]["status"] == CANCELLED for i in left)
    assert positions_after == []
    assert (died["status"], died["rows_recorded"], rolled) == ("died", stored, stored)
    assert again.returncode == 0 and summary(again.stdout)["stale_runs"] == []


@pytest.mark.drill_id(6, "hard kill")
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_costs_no_row(
    tmp_path: Path, figures, signum: signal.Signals, status: int
) -> None:
    url = f"sqlite:///{tmp_path / 'harness.db'}"
    sim = gateway(rate_limit=False, latency_ms=15.0)
    try:
        overrides, env = projectx(sim)
        before = broker_calls(sim)
        run = start(tmp_path, *LONG_RUN, "--json", *overrides, env=env)
        wait_for_outcomes(url, 60, run, timeout=90)
        run.send_signal(signum)
        out, err = finish(run, timeout=120)
        sent = broker_calls(sim) - before
    finally:
        sim.stop()
    data = summary(out, err)
    stored = rows(url, "SELECT count(*) AS n FROM outcomes")[0]["n"]
    figures.add(f"{signum.name}: calls the broker received / rows stored / rows lost", (
        sent, stored, sent - stored
    ))  # fmt: skip
    assert run.returncode == status == data["exit_status"]
    assert sent == stored == total(data, "calls_made") == total(data, "calls")
