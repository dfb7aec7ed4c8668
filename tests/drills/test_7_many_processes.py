"""Drill 7, many processes: four `harness run` processes (each with its embedded simulator) on one
PostgreSQL database, while a fifth process promotes the rollout (`harness promote --force`).

Each process follows the stage within about a second (from the promotion event's time to the
process's first call at the new stage); a routing key lands on the same side in every process
at a given stage (the aggregations, routed by `SYMBOL|timeframes`, share their keys across the
processes); and nothing is lost: each process's rows equal the calls it made.
"""

from __future__ import annotations

import signal
from collections import defaultdict
from pathlib import Path

import pytest

from .kit import finish, harness, outcome_count, rows, start, summary, total, wait_until

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

PROCESSES = 4
FROM, TO = "staging_50", "production"


@pytest.mark.drill_id(7, "many processes")
def test_four_processes_follow_one_promotion_and_route_alike(tmp_path: Path, pg_url, figures):
    run_args = (
        "run", "--json", f"db.url={pg_url}", f"rollout.start_stage={FROM}",
        "broker.sim.profile=bench", "workload.trades=2000", "workload.pace_ms=60",
    )  # fmt: skip
    folders = [tmp_path / f"p{i}" for i in range(PROCESSES)]
    processes = []
    for folder in folders:
        folder.mkdir()
        processes.append(start(folder, *run_args))
    try:

        def all_running() -> bool:
            found = rows(
                pg_url,
                "SELECT r.id, count(o.id) AS n FROM runs r LEFT JOIN outcomes o "
                "ON o.run_id = r.id WHERE r.status = 'running' GROUP BY r.id",
            )
            return len(found) == PROCESSES and all(r["n"] >= 20 for r in found)

        wait_until(all_running, 120, f"{PROCESSES} runs each with 20 calls recorded")
        promoted = harness(
            tmp_path, "promote", "--force", "--reason", "drill 7", "--json", f"db.url={pg_url}"
        )
        assert promoted.returncode == 0, promoted.stderr
        # Without --migration every migration moves together: one event each, one instant.
        promotions = rows(
            pg_url, "SELECT ts_ns, to_stage, migration FROM rollout_events WHERE kind = 'promote'"
        )
        assert sorted(e["migration"] for e in promotions) == ["bars", "orders"]
        assert {e["to_stage"] for e in promotions} == {TO}
        assert len({e["ts_ns"] for e in promotions}) == 1
        event = promotions[0]
        wait_until(
            lambda: (
                rows(
                    pg_url,
                    "SELECT count(DISTINCT run_id) AS n FROM outcomes WHERE stage = :to",
                    to=TO,
                )[0]["n"]
                == PROCESSES
            ),
            30,
            "every process calling at the new stage",
        )
        baseline = outcome_count(pg_url)
        wait_until(lambda: outcome_count(pg_url) > baseline + 200, 60, "200 more calls")
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
    summaries = []
    for process in processes:
        out, err = finish(process, timeout=120)
        assert process.returncode == 130, err[-3000:]
        summaries.append(summary(out, err))

    switch_ms = []
    for data in summaries:
        first = rows(
            pg_url,
            "SELECT min(ts_ns) AS t FROM outcomes WHERE run_id = :run AND stage = :to",
            run=data["run"],
            to=TO,
        )[0]["t"]
        switch_ms.append(round((first - event["ts_ns"]) / 1e6))
    sides: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    runs_of: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for row in rows(pg_url, "SELECT run_id, op, stage, routing_key, routed FROM outcomes"):
        key = (row["stage"], row["op"], row["routing_key"])
        sides[key].add(row["routed"])
        runs_of[key].add(row["run_id"])
    # Keys routed by the hash and seen in every process: the aggregations' `SYMBOL|timeframes`
    # (placements' keys are their customTags, unique to a run; a modify or cancel follows the
    # side that placed its order, whose id each process's own simulator numbers alike).
    shared = {
        k: v for k, v in sides.items() if k[1] == "aggregate_bars" and len(runs_of[k]) == PROCESSES
    }
    disagreeing = {k: v for k, v in shared.items() if len(v) > 1}
    stored = {
        r["run_id"]: r["n"]
        for r in rows(pg_url, "SELECT run_id, count(*) AS n FROM outcomes GROUP BY run_id")
    }
    figures.add("processes on one PostgreSQL database", PROCESSES)
    figures.add(f"promotion {FROM} -> {TO}: ms from the event to each process's first call",
                sorted(switch_ms))  # fmt: skip
    figures.add("aggregation keys seen in all four processes (per stage)", len(shared))
    figures.add("of them routed to one side in every process", sum(
        1 for v in shared.values() if len(v) == 1
    ))  # fmt: skip
    figures.add("each key's side per stage", sorted(
        f"{k[0]} {k[2].split('|')[0]}: {'/'.join(sorted(v))}" for k, v in shared.items()
    ))  # fmt: skip
    figures.add("per process: calls made = rows stored", [
        (total(d, "calls_made"), stored.get(d["run"])) for d in summaries
    ])  # fmt: skip

    assert max(switch_ms) < 1500, switch_ms  # about a second (refresh_s = 0.5)
    assert min(switch_ms) >= 0
    assert disagreeing == {}
    assert {k[0] for k in shared} == {FROM, TO}  # the shared keys were seen at both stages
    assert {next(iter(v)) for k, v in shared.items() if k[0] == TO} == {"rust"}  # 100%
    for data in summaries:
        assert total(data, "calls_made") == stored[data["run"]] == total(data, "calls")
        assert data["recorder"]["dropped"] == 0
