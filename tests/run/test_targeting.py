"""A stage that targets MNQ, proved on a real `harness run` over MNQ and MES: only MNQ's calls go
to Rust, and the store, `harness query` and the run summary all say that MES's calls went to
Python because the stage did not target them (not because of the hash)."""

from __future__ import annotations

import io
import json

import pytest

from harness.run.summary import print_summary

from .kit import FAST, harness, rows, summary

pytestmark = pytest.mark.timeout(300)

PER_TRIP = {"aggregate_bars": 1, "place_order": 3, "modify_order": 2, "cancel_order": 1}
MIGRATION = {"aggregate_bars": "bars", "place_order": "orders", "modify_order": "orders",
             "cancel_order": "orders"}  # fmt: skip


def test_a_stage_targeting_mnq_sends_only_mnq_to_rust_and_says_why_mes_did_not_go(tmp_path):
    # Round trip i trades symbols[i % 2]: trips 0, 2, 4 on MNQ, 1, 3, 5 on MES. `mnq` is the
    # by_symbol ladder's stage sending 100% of MNQ (and nothing else) to Rust, in both
    # migrations. The shared ladder (`rollout.stages`, which `rollout.start_stage` is checked
    # against and the summary's gate line judges) gets the same stage.
    shared = (
        "rollout.stages=[{name:'off',percent:0},{name:mnq,percent:100,targets:{symbols:[MNQ]}}]"
    )
    done = harness(
        tmp_path, "run", "--json", "workload.trades=6", "rollout=by_symbol", shared,
        "rollout.start_stage=mnq", *FAST,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = summary(done)
    assert data["symbols"] == ["MNQ", "MES"]
    for entry in data["ops"]:
        op, half = entry["op"], 3 * PER_TRIP[entry["op"]]
        assert entry["migration"] == MIGRATION[op]
        assert entry["calls"] == 2 * half, entry
        assert entry["to_rust"] == entry["served_by_rust"] == half, entry  # MNQ's, every one
        assert entry["not_targeted"] == half, entry  # MES's, every one: not the hash

    # The store: every call to Rust was targeted, every call not targeted went to Python, and
    # the aggregations (routed by `SYMBOL|timeframes`) show which symbol was which.
    db = tmp_path / "harness.db"
    outcomes = rows(db, "SELECT op, routed, targeted, routing_key FROM outcomes")
    assert {(r["routed"], r["targeted"]) for r in outcomes} == {("rust", 1), ("python", 0)}
    bars = {(r["routing_key"].split("|")[0], r["routed"], r["targeted"])
            for r in outcomes if r["op"] == "aggregate_bars"}  # fmt: skip
    assert bars == {("MNQ", "rust", 1), ("MES", "python", 0)}

    # `harness query rates`: MES's calls are the Python side's, all of them not targeted.
    query = harness(tmp_path, "query", "rates", "--run", data["run"], "--json")
    assert query.returncode == 0, query.stderr
    rates = {(r["op"], r["impl"]): r for r in json.loads(query.stdout)}
    for op, per_trip in PER_TRIP.items():
        python, rust = rates[(op, "python")], rates[(op, "rust")]
        assert (python["calls"], python["not_targeted"]) == (3 * per_trip, 3 * per_trip), op
        assert (rust["calls"], rust["not_targeted"]) == (3 * per_trip, 0), op
        assert python["migration"] == rust["migration"] == MIGRATION[op]
    one = harness(tmp_path, "query", "latency", "--migration", "bars", "--json")
    assert one.returncode == 0, one.stderr
    assert {r["op"] for r in json.loads(one.stdout)} == {"aggregate_bars"}

    # The printed summary's table has the column, read by its header.
    out = io.StringIO()
    print_summary(data, out)
    lines = out.getvalue().splitlines()
    header = next([c.strip() for c in line.split("┃")] for line in lines if "┃" in line)
    cells = {
        row["op"]: row
        for row in (dict(zip(header, [c.strip() for c in line.split("│")], strict=False))
                    for line in lines if "│" in line)
    }  # fmt: skip
    for op, per_trip in PER_TRIP.items():
        assert cells[op]["migration"] == MIGRATION[op]
        assert cells[op]["not targeted"] == str(3 * per_trip), cells[op]
