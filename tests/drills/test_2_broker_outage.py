"""Drill 2, broker outage: the gateway (a `harness sim` process) is stopped for 10 s in the middle
of a `harness run` at 50% Rust, then started again on the same port (later than 10 s if no call
made during the outage is in the store yet: on a loaded machine fewer calls fit in 10 s).

So that "no duplicates, the account ends flat" can be judged across the restart, the broker keeps
its book in a file (`harness sim --state-file`): written when it stops, read when it starts, as a
real broker's book outlives an outage of its gateway. Every routed call made while it was down
must fail cleanly (a `BrokerUnavailableError` row, nothing sent), the run must carry on once it
is back, no customTag may be placed twice, and the final sweep must leave the account flat.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .kit import (
    OPEN,
    duplicates,
    finish,
    gateway,
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

OUTAGE_S = 10.0
TRADES = 40


def failed_since(db: str, since_ns: int) -> int:
    """Calls started at or after `since_ns` that the store holds as failed to reach the broker
    (0 while the store cannot be read)."""
    sql = (
        "SELECT count(*) AS n FROM outcomes WHERE ts_ns >= :since "
        "AND error_class = 'BrokerUnavailableError'"
    )
    try:
        return int(rows(db, sql, since=since_ns)[0]["n"])
    except Exception:  # locked by the writer, or not created yet: the caller polls again
        return 0


@pytest.mark.drill_id(2, "broker outage")
def test_a_broker_outage_fails_calls_cleanly_and_the_run_resumes(tmp_path: Path, figures) -> None:
    book = tmp_path / "broker-book.json"
    db = f"sqlite:///{tmp_path / 'harness.db'}"
    settings = {"rate_limit": False, "latency_ms": 40.0, "state_file": str(book)}
    sim = gateway(**settings)
    port = int(sim.url.rsplit(":", 1)[1])
    overrides, env = projectx(sim)
    try:
        run = start(
            tmp_path, "run", "--json", f"workload.trades={TRADES}", "workload.rate_limit=false",
            "workload.pace_ms=100", "workload.modifies=20", "rollout.start_stage=production",
            "workload.symbols=[MNQ,MES,MGC,EP]", "workload.concurrency=4",
            "broker.retry_delays_s=[0.2,0.4]", *overrides, env=env,
        )  # fmt: skip
        wait_for_outcomes(db, 25, run, timeout=90)
        wait_until(mid_trip(sim), 30, "a round trip with its stop working")
        down_ns = time.time_ns()
        sim.stop()  # SIGTERM: the book is written, the port closed
        assert book.exists()
        time.sleep(OUTAGE_S)  # the outage the drill is named for, and on until it shows:
        wait_until(lambda: failed_since(db, down_ns), 120, "a call failed by the outage, stored")
        sim = gateway(**settings, port=port)
        up_ns = time.time_ns()
        out, err = finish(run, timeout=150)
        data = summary(out, err)
        ledger = sim.ledger()
        positions = open_positions(sim, data["account_id"])
    finally:
        sim.stop()

    outcomes = rows(db, "SELECT * FROM outcomes WHERE run_id = :run", run=data["run"])
    # Calls wholly inside the outage (started after the stop, ended before the restart).
    in_gap = [
        o for o in outcomes if o["ts_ns"] >= down_ns and o["ts_ns"] + o["latency_us"] * 1000 < up_ns
    ]
    after = [o for o in outcomes if o["ts_ns"] >= up_ns]
    mine = orders_of(ledger, data["run"])
    events = rows(db, "SELECT kind, op, to_stage, reason FROM rollout_events ORDER BY ts_ns")
    trips = [e["op"] for e in events if e["kind"] == "breaker_trip"]
    rollbacks = [e["to_stage"] for e in events if e["kind"] == "auto_rollback"]
    rust_failures = [o for o in outcomes if o["routed"] == "rust" and o["fell_back"]]
    figures.add("outage s", round((up_ns - down_ns) / 1e9, 1))
    figures.add("round trips intended / completed / with problems", (
        TRADES, data["round_trips"]["completed"], data["round_trips"]["failed"]
    ))  # fmt: skip
    figures.add("routed calls made wholly in the outage", len(in_gap))
    figures.add("of them failed cleanly (BrokerUnavailableError, recorded)", sum(
        1 for o in in_gap if not o["ok"] and o["error_class"] == "BrokerUnavailableError"
    ))  # fmt: skip
    figures.add("of them routed to Rust (fell back, Python failed too)", sum(
        1 for o in in_gap if o["routed"] == "rust" and o["fell_back"]
    ))  # fmt: skip
    unavailable_after = [o for o in after if o["error_class"] == "BrokerUnavailableError"]
    figures.add("routed calls after the restart / failing to reach the broker", (
        len(after), len(unavailable_after)
    ))  # fmt: skip
    figures.add("rows stored / calls made", (total(data, "calls"), total(data, "calls_made")))
    figures.add("orders the broker holds (this run)", len(mine))
    figures.add("duplicate orders", duplicates(mine))
    open_at_end = [o for o in mine if o["status"] == OPEN]
    figures.add("orders open at the end / open positions", (len(open_at_end), len(positions)))
    found = data["leftovers"]["found"]
    swept = len(found["open_orders"]) + len(found["open_positions"])
    figures.add("found by the final check, then swept", swept)
    figures.add("Rust calls that fell back (in and around the outage)", len(rust_failures))
    figures.add("breakers tripped by the outage", trips or "none")
    figures.add("automatic rollbacks (to stage)", rollbacks or "none")
    figures.add("exit status", data["exit_status"])

    assert in_gap, "no routed call was made while the broker was down"
    for row in in_gap:
        assert not row["ok"] and row["error_class"] == "BrokerUnavailableError", row
    assert after and unavailable_after == []  # the run carried on once it was back
    # The broker failed both sides, not Rust: no breaker may open (before the fix, the calls of
    # the outage opened all three). A Rust call refused just before the broker came back whose
    # Python fallback then got through still counts; a few such, per operation, stay under the
    # default 5 a minute.
    assert trips == []
    # NOT asserted: the gate's critical error_rate and fallback_rate count these calls against
    # Rust, so the automatic rollback may move the stage down during the outage (the figure
    # above shows it; a finding left to the gate's owner, see the report).
    assert duplicates(mine) == 0
    assert open_at_end == [] and positions == []
    final = data["leftovers"]["after_sweep"] or data["leftovers"]["found"]
    assert final["open_orders"] == [] and final["open_positions"] == []
    assert total(data, "calls") == total(data, "calls_made") == len(outcomes)
    assert data["recorder"]["dropped"] == 0
