"""Drill 4, Rust failure: (a) a `harness run` at 100% Rust whose Rust placements panic (a real
panic inside the extension, through a test hook: `panicking_run.py`); (b) a run with the native
module made unimportable (`HARNESS_NO_NATIVE=1`).

The process survives and finishes, Python serves, the store records the fallbacks with their
reason (`harness query fallbacks`) and the native module's absence (`harness status`), and the
circuit breaker trips after `rollout.breaker.failures` panics (a `breaker_trip` event; shown by
`harness status` and `harness breaker`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .kit import finish, harness, ops, rows, start, summary, surfaced_errors, total

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

HOOK = [sys.executable, str(Path(__file__).with_name("panicking_run.py"))]
FAST = ("broker.sim.profile=bench", "rollout.start_stage=production")
TRADES = 30
FAILURES = 5


def _json(done) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.drill_id(4, "Rust failure")
def test_a_rust_panic_falls_back_records_why_and_trips_the_breaker(tmp_path: Path, figures):
    run = start(
        tmp_path, "run", "--json", f"workload.trades={TRADES}",
        f"rollout.breaker.failures={FAILURES}", *FAST, program=HOOK,
    )  # fmt: skip
    out, err = finish(run, timeout=150)
    data = summary(out, err)
    assert run.returncode == 0, err
    placements = ops(data)["place_order"]
    db = f"sqlite:///{tmp_path / 'harness.db'}"
    fallbacks = _json(harness(tmp_path, "query", "fallbacks", "--op", "place_order", "--json"))
    status = harness(tmp_path, "status")
    status_json = _json(harness(tmp_path, "status", "--json"))
    breaker = harness(tmp_path, "breaker")
    trips = rows(db, "SELECT op, reason FROM rollout_events WHERE kind = 'breaker_trip'")

    figures.add("panic: process exit status, round trips completed", (
        run.returncode, f"{data['round_trips']['completed']}/{TRADES}"
    ))  # fmt: skip
    figures.add("panic: placements routed to Rust / served by Rust", (
        placements["to_rust"], placements["served_by_rust"]
    ))  # fmt: skip
    figures.add("panic: fallbacks recorded (fallback rate of Rust placements)", (
        placements["fallbacks"], round(placements["fallbacks"] / max(1, placements["to_rust"]), 3)
    ))  # fmt: skip
    figures.add("panic: reason recorded", fallbacks[0]["fallback_reason"][:90])
    figures.add("panic: breaker trips (event)", [t["op"] for t in trips])
    figures.add("panic: errors surfaced to the workload", surfaced_errors(data))

    assert "NativePanicError" not in err or "Traceback" not in err
    assert data["round_trips"]["completed"] == TRADES and surfaced_errors(data) == 0
    assert data["problems"] == []
    # Exactly `failures` placements reached Rust and panicked; then the breaker sent the rest
    # to Python. Each panicked one was looked up and placed on Python: never lost, never twice.
    # (a placement already routed when the breaker opened still went to Rust: one per worker)
    assert FAILURES <= placements["to_rust"] == placements["fallbacks"] < FAILURES + 2
    assert placements["served_by_rust"] == 0
    assert len(fallbacks) == placements["fallbacks"]
    for row in fallbacks:
        assert row["fallback_reason"].startswith(
            "rust NativePanicError (maybe sent); not found by customTag, placed on python"
        ), row
        assert row["ok"] and row["impl"] == "python"
    assert [t["op"] for t in trips] == ["place_order"]
    assert status_json["breakers"]["place_order"]["open"] is True
    assert "NativePanicError" in status_json["breakers"]["place_order"]["reason"]
    assert "place_order" in status.stdout and "OPEN" in status.stdout
    assert breaker.returncode == 0 and "NativePanicError" in breaker.stdout
    # The fallback rate is shown with its figures by `harness status` (and `harness gate`).
    assert "FAIL orders place_order fallback_rate: rust fallbacks" in status.stdout
    # The other operations stayed on Rust: only the failing one is cut off (the automatic
    # rollback, if its check came during the run, may lower their share, not fail them).
    assert ops(data)["aggregate_bars"]["served_by_rust"] > 0
    assert ops(data)["aggregate_bars"]["fallbacks"] == 0


@pytest.mark.drill_id(4, "Rust failure")
def test_without_the_native_module_python_serves_and_says_why(tmp_path: Path, figures):
    done = harness(
        tmp_path, "run", "--json", f"workload.trades={TRADES}", *FAST,
        env={"HARNESS_NO_NATIVE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = summary(done.stdout, done.stderr)
    status = harness(tmp_path, "status")
    status_json = _json(harness(tmp_path, "status", "--json"))
    db = f"sqlite:///{tmp_path / 'harness.db'}"
    events = rows(db, "SELECT kind, reason FROM rollout_events WHERE kind = 'native_unavailable'")
    (run_row,) = rows(db, "SELECT native_available, native_error FROM runs")

    figures.add("no native module: exit status, round trips completed", (
        done.returncode, f"{data['round_trips']['completed']}/{TRADES}"
    ))  # fmt: skip
    figures.add("no native module: calls served by Python / by Rust", (
        total(data, "calls") - total(data, "served_by_rust"), total(data, "served_by_rust")
    ))  # fmt: skip
    figures.add("no native module: reason recorded (run row, event)", run_row["native_error"])

    assert data["round_trips"]["completed"] == TRADES
    assert total(data, "served_by_rust") == 0 and surfaced_errors(data) == 0
    assert data["problems"] == []
    assert not run_row["native_available"]
    assert run_row["native_error"] == "disabled by HARNESS_NO_NATIVE=1"
    assert [e["reason"] for e in events] == ["disabled by HARNESS_NO_NATIVE=1"]
    assert status_json["native_available"] is False
    assert "UNAVAILABLE: disabled by HARNESS_NO_NATIVE=1" in status.stdout
    assert data["native"] == {"available": False, "error": "disabled by HARNESS_NO_NATIVE=1"}
    assert (
        "native module unavailable"
        in harness(
            tmp_path, "run", "workload.trades=2", *FAST, env={"HARNESS_NO_NATIVE": "1"}
        ).stdout
    )
