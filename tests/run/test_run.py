"""`harness run` end to end: real subprocesses in empty folders, the embedded simulator, the store
read back directly and through `harness query`."""

from __future__ import annotations

import fcntl
import json
import select
import signal
from collections import Counter
from pathlib import Path

import pytest

from .kit import FAST, harness, read_stderr_until, rows, start, summary, wait_for_outcomes

pytestmark = pytest.mark.timeout(300)

OPS = ("place_order", "modify_order", "cancel_order", "aggregate_bars")
SUMMARY_KEYS = {
    "run",
    "build_id",
    "status",
    "exit_status",
    "interrupted_by",
    "stage",
    "elapsed_s",
    "account_id",
    "symbols",
    "concurrency",
    "budget_wait_s",
    "round_trips",
    "ops",
    "recorder",
    "gate",
    "problems",
    "leftovers",
    "stale_runs",
    "crashed",
    "native",
    "env_kill",
    "shadows",
}
OP_KEYS = {
    "op",
    "migration",
    "not_targeted",
    "calls",
    "calls_made",
    "to_rust",
    "served_by_rust",
    "rust_share",
    "fallbacks",
    "errors",
    "reconciled",
    "shadow_comparisons",
    "shadow_mismatches",
    "rust",
    "python",
}
SIDE_KEYS = {"calls", "count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}


def calls_per_trip(modifies: int = 2) -> dict[str, int]:
    """What one round trip calls when nothing goes wrong: bars, entry, stop, moves, cancel, exit."""
    return {"aggregate_bars": 1, "place_order": 3, "modify_order": modifies, "cancel_order": 1}


def test_default_run_from_an_empty_folder_prints_the_table_and_fills_harness_db(tmp_path):
    done = harness(tmp_path, "run", "workload.trades=4", *FAST)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "4/4 round trips completed" in out
    for name in OPS:
        assert name in out
    assert "gate for orders at stage off:" in out and "gate for bars at stage off:" in out
    assert "recorded: 28 of 28 calls (dropped: 0)" in out
    db = tmp_path / "harness.db"
    assert db.exists()
    (run,) = rows(db, "SELECT id, status, kind, rows_recorded, rows_dropped FROM runs")
    assert (run["status"], run["kind"], run["rows_dropped"]) == ("finished", "run", 0)
    outcomes = rows(db, "SELECT op, ok, custom_tag FROM outcomes WHERE run_id = ?", run["id"])
    assert run["rows_recorded"] == len(outcomes) == 28
    assert Counter(o["op"] for o in outcomes) == {k: 4 * v for k, v in calls_per_trip().items()}
    assert all(o["ok"] for o in outcomes)
    tags = [o["custom_tag"] for o in outcomes if o["op"] == "place_order"]
    assert len(tags) == len(set(tags)) == 12  # entry, stop and exit of each trip, once each
    assert {t.rsplit("-", 1)[1] for t in tags} == {"entry", "stop", "exit"}


def test_json_summary_has_stable_keys_and_agrees_with_harness_query(tmp_path):
    done = harness(tmp_path, "run", "--json", "workload.trades=6", *FAST)
    assert done.returncode == 0, done.stderr
    data = summary(done)
    assert set(data) == SUMMARY_KEYS
    listed = json.loads(harness(tmp_path, "query", "runs", "--json").stdout)
    assert data["build_id"] is not None and [r["build_id"] for r in listed] == [data["build_id"]]
    assert [o["op"] for o in data["ops"]] == list(OPS)
    assert (data["status"], data["exit_status"], data["interrupted_by"]) == ("finished", 0, None)
    assert data["round_trips"] == {
        "planned": 6,
        "started": 6,
        "completed": 6,
        "failed": 0,
        "cancelled": 0,
        "stopped_out": 0,
    }
    assert data["symbols"] == ["MNQ", "MES"] and data["concurrency"] == 2
    assert data["leftovers"]["found"] == {
        "open_orders": [],
        "open_positions": [],
        "unknown_tags": [],
        "read_error": None,
    }  # the account is flat: checked through reads at the end
    assert data["leftovers"]["after_sweep"] is None
    assert data["problems"] == [] and data["crashed"] is None and data["stale_runs"] == []
    assert data["recorder"] == {
        "rows": 42,
        "dropped": 0,
        "in_spill": 0,
        "spill_file": None,
        "earlier_lost": 0,
        "damaged_files": [],
    }
    assert data["gate"]["stage"] == "off" and data["gate"]["verdict"] in (
        "PASS",
        "FAIL",
        "INCONCLUSIVE",
    )
    each = data["gate"]["migrations"]
    assert [(m, v["migration"], v["stage"]) for m, v in each.items()] == [
        ("orders", "orders", "off"), ("bars", "bars", "off"),
    ]  # fmt: skip

    query = harness(tmp_path, "query", "latency", "--run", data["run"], "--json")
    assert query.returncode == 0, query.stderr
    latency = {(r["op"], r["impl"]): r for r in json.loads(query.stdout)}
    for entry in data["ops"]:
        assert set(entry) == OP_KEYS
        assert entry["calls"] == entry["calls_made"] == 6 * calls_per_trip()[entry["op"]]
        assert entry["to_rust"] == entry["served_by_rust"] == 0  # stage off: all Python
        assert entry["rust_share"] == 0.0
        assert (entry["fallbacks"], entry["errors"], entry["reconciled"]) == (0, 0, 0)
        for side in ("rust", "python"):
            assert set(entry[side]) == SIDE_KEYS
            row = latency.get((entry["op"], side))
            if row is None:
                assert entry[side]["calls"] == 0
                continue
            for key in SIDE_KEYS:
                assert entry[side][key] == row[key], (entry["op"], side, key)
        assert entry["python"]["count"] == entry["calls"]
        assert entry["python"]["p50_ms"] is not None and entry["python"]["p99_ms"] is not None


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_run_finishes_the_trips_in_flight_flushes_and_prints(
    tmp_path: Path, signum: signal.Signals, status: int
):
    # The demo profile (~90 ms a call): 40 round trips would take about 15 s.
    run = start(tmp_path, "run", "--json", "workload.trades=40")
    db = tmp_path / "harness.db"
    wait_for_outcomes(db, 10, run, timeout=90)
    run.send_signal(signum)
    out, err = run.communicate(timeout=120)
    assert run.returncode == status, err
    data = json.loads(out)
    assert data["interrupted_by"] == signum.name and data["exit_status"] == status
    trips = data["round_trips"]
    assert 0 < trips["started"] < 40
    assert trips["completed"] + trips["failed"] == trips["started"]  # none left half-way
    assert trips["cancelled"] == 0
    assert data["leftovers"]["found"]["open_positions"] == []  # the account is flat
    assert data["leftovers"]["found"]["open_orders"] == []
    (row,) = rows(db, "SELECT id, status, rows_recorded FROM runs")
    assert row["status"] == "interrupted"
    stored = rows(db, "SELECT count(*) AS n FROM outcomes WHERE run_id = ?", row["id"])[0]["n"]
    made = sum(o["calls_made"] for o in data["ops"])
    assert stored == made == row["rows_recorded"] == sum(o["calls"] for o in data["ops"])
    assert made > 0


def test_staging_50_sends_some_of_every_operation_to_rust(tmp_path):
    # An aggregation is routed by `SYMBOL|timeframes` (one key per symbol): at 50% and the
    # shipped salt, MNQ's lands on Rust and MES's on Python. Orders are routed by their random
    # customTags: 20 trips make every side certain (a miss has odds of about 2^-19).
    done = harness(
        tmp_path, "run", "--json", "workload.trades=20", "rollout.start_stage=staging_50", *FAST
    )
    assert done.returncode == 0, done.stderr
    data = summary(done)
    assert data["stage"] == "staging_50"
    for entry in data["ops"]:
        assert 0 < entry["served_by_rust"] < entry["calls"], entry
        assert entry["rust"]["calls"] == entry["served_by_rust"]
        assert entry["python"]["calls"] == entry["calls"] - entry["served_by_rust"]
        assert entry["rust"]["p50_ms"] is not None


def test_the_environment_kill_switch_sends_nothing_to_rust(tmp_path):
    done = harness(
        tmp_path, "run", "--json", "workload.trades=6", "rollout.start_stage=staging_50", *FAST,
        env={"TOPSTEPX_USE_RUST": "false"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = summary(done)
    assert data["stage"] == "staging_50" and data["env_kill"] is True
    for entry in data["ops"]:
        assert entry["calls"] > 0
        assert entry["to_rust"] == entry["served_by_rust"] == entry["rust"]["calls"] == 0


def test_a_run_on_postgresql(tmp_path, pg_url):
    done = harness(tmp_path, "run", "--json", "workload.trades=4", f"db.url={pg_url}", *FAST)
    assert done.returncode == 0, done.stderr
    data = summary(done)
    assert data["status"] == "finished"
    assert (data["recorder"]["rows"], data["recorder"]["dropped"]) == (28, 0)
    assert not (tmp_path / "harness.db").exists()
    query = harness(tmp_path, "query", "runs", f"db.url={pg_url}", "--json")
    assert query.returncode == 0, query.stderr
    (run,) = json.loads(query.stdout)
    assert (run["run"], run["status"], run["kind"], run["rows_recorded"]) == (
        data["run"],
        "finished",
        "run",
        28,
    )


def test_a_second_sigint_cancels_the_trips_in_flight_and_still_flushes_and_sweeps(tmp_path):
    run = start(tmp_path, "run", "--json", "workload.trades=40")
    db = tmp_path / "harness.db"
    wait_for_outcomes(db, 10, run, timeout=90)
    run.send_signal(signal.SIGINT)
    # Two signals pending at once are delivered as one: the second goes once the first is seen.
    seen = read_stderr_until(run, "SIGINT: no new round trips")
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    err = seen + err
    assert "SIGINT again: cancelling the round trips in flight" in err
    data = json.loads(out)
    trips = data["round_trips"]
    assert trips["completed"] + trips["failed"] + trips["cancelled"] == trips["started"]
    # A cancelled trip may leave its position or stop: found (exit 1), then swept.
    left = data["leftovers"]["found"]
    dirty = bool(left["open_orders"] or left["open_positions"])
    assert run.returncode == (1 if dirty else 130) == data["exit_status"]
    final = data["leftovers"]["after_sweep"] or left
    assert final["open_orders"] == [] and final["open_positions"] == []  # flat in the end
    (row,) = rows(db, "SELECT id, status, rows_recorded FROM runs")
    assert row["status"] == "interrupted"
    stored = rows(db, "SELECT count(*) AS n FROM outcomes WHERE run_id = ?", row["id"])[0]["n"]
    assert stored == sum(o["calls_made"] for o in data["ops"]) == row["rows_recorded"]


def test_signals_while_the_summary_is_written_are_noted_and_it_comes_out_whole(tmp_path):
    """The first Ctrl-C stops the run; a second one, a SIGTERM and a third Ctrl-C arrive while
    the summary is being written: each is noted on stderr, the summary comes out whole, the
    exit status is the first signal's."""
    run = start(tmp_path, "run", "--json", "workload.trades=40")
    assert run.stdout is not None
    # A pipe of one page: the JSON summary (about 8 KB) cannot go in one write, so the process
    # stays inside that write until the test reads. Output on stdout = inside the summary.
    fcntl.fcntl(run.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    wait_for_outcomes(tmp_path / "harness.db", 10, run, timeout=90)
    run.send_signal(signal.SIGINT)
    ready, _, _ = select.select([run.stdout.fileno()], [], [], 120)
    assert ready, "no summary on stdout within 120 s"
    seen = ""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        run.send_signal(signum)  # the next once this one is noted (two pending merge into one)
        seen += read_stderr_until(run, f"{signum.name}: the round trips are over")
    out, err = run.communicate(timeout=60)
    err = seen + err
    assert run.returncode == 130, err
    assert len(out) > 4096  # the signals did land while the summary was being written
    data = json.loads(out)
    assert (data["interrupted_by"], data["exit_status"], data["status"]) == (
        "SIGINT",
        130,
        "interrupted",
    )
    assert "Traceback" not in err
    notes = [line for line in err.splitlines() if "the round trips are over" in line]
    assert [n.split(":")[0] for n in notes] == ["SIGINT", "SIGTERM", "SIGINT"], err
