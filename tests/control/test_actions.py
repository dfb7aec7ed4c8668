"""Rollout actions on the store, on SQLite and PostgreSQL: each one refused with nothing written,
or done with exactly one event carrying who, why and the gate's figures; the automatic rollback
on a critical FAIL, once however many processes see it."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from waitkit import wait_until

from harness.config import compose
from harness.control import actions
from harness.control.monitor import GateMonitor
from harness.operations import Operation
from harness.recorder import OutcomeRecord, Recorder
from harness.store.db import open_engine
from harness.store.models import RolloutEvent
from harness.store.runs import start_run
from harness.store.state import ensure_state, set_stage, trip_breaker


@pytest.fixture
def engine(store_url):
    engine = open_engine(store_url)
    yield engine
    engine.dispose()


def events(engine) -> list[RolloutEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(RolloutEvent).order_by(RolloutEvent.ts_ns)))


SOAKED = ["gate.min_soak_s=0"]


def test_promote_is_refused_while_the_gate_does_not_pass_and_nothing_is_written(engine):
    cfg = compose([])  # min_soak_s 300: a fresh stage is INCONCLUSIVE
    ensure_state(engine, "off")
    with pytest.raises(actions.ActionError, match=r"INCONCLUSIVE.*soak.*not promoted"):
        actions.promote(engine, cfg, who="ana")
    assert [e.kind for e in events(engine)] == ["start"]
    assert actions.current_state(engine, cfg).stage == "off"


def test_promote_on_pass_moves_one_stage_with_the_gate_in_its_event(engine):
    cfg = compose(SOAKED)
    ensure_state(engine, "off")
    result = actions.promote(engine, cfg, who="ana", reason="off is quiet")
    assert (result.before.stage, result.after.stage, result.forced) == ("off", "shadow", False)
    event = events(engine)[-1]
    assert (event.kind, event.who, event.reason, event.forced) == (
        "promote",
        "ana",
        "off is quiet",
        False,
    )
    assert json.loads(event.gate)["verdict"] == "PASS"


def test_a_forced_promotion_needs_a_reason_and_is_marked_forced(engine):
    cfg = compose([])
    ensure_state(engine, "off")
    with pytest.raises(actions.ActionInputError, match="needs a reason"):
        actions.promote(engine, cfg, force=True)
    result = actions.promote(engine, cfg, force=True, reason="drill", who="ops")
    assert result.forced and result.after.stage == "shadow"
    event = events(engine)[-1]
    assert (event.kind, event.forced, event.reason) == ("promote", True, "drill")
    assert json.loads(event.gate)["verdict"] == "INCONCLUSIVE"


def test_there_is_nothing_above_the_last_stage_or_below_the_first(engine):
    cfg = compose(SOAKED)
    ensure_state(engine, "production")
    with pytest.raises(actions.ActionError, match="last stage"):
        actions.promote(engine, cfg)
    set_stage(engine, "off", kind="rollback")
    with pytest.raises(actions.ActionError, match="first stage"):
        actions.rollback(engine, cfg)


def test_rollback_goes_one_stage_down_or_to_a_named_lower_stage(engine):
    cfg = compose([])
    ensure_state(engine, "staging_50")
    assert actions.rollback(engine, cfg, who="ops").after.stage == "staging"
    with pytest.raises(actions.ActionError, match="not below"):
        actions.rollback(engine, cfg, to="production")
    with pytest.raises(actions.ActionInputError, match="not on this ladder"):
        actions.rollback(engine, cfg, to="nope")
    assert actions.rollback(engine, cfg, to="off", reason="bad fills").after.stage == "off"
    kinds = [(e.kind, e.from_stage, e.to_stage) for e in events(engine)]
    assert kinds[1:] == [("rollback", "staging_50", "staging"), ("rollback", "staging", "off")]


def test_kill_unkill_and_breaker_reset_are_events(engine):
    cfg = compose([])
    ensure_state(engine, "canary")
    assert actions.kill(engine, cfg, who="ops", reason="halt").after.kill
    assert not actions.unkill(engine, cfg, who="ops", reason="resume").after.kill
    with pytest.raises(actions.ActionError, match="not open"):
        actions.reset_breaker(engine, cfg, Operation.PLACE_ORDER)
    trip_breaker(engine, "place_order", failures=5, reason="five failures")
    status = actions.status(engine, cfg)
    assert status["breakers"]["place_order"]["open"] is True
    actions.reset_breaker(engine, cfg, Operation.PLACE_ORDER, who="ops", reason="fixed")
    assert [e.kind for e in events(engine)][1:] == [
        "kill",
        "unkill",
        "breaker_trip",
        "breaker_reset",
    ]
    assert all(e.gate for e in events(engine)[1:3])  # kill and unkill carry the verdict


def test_an_open_breaker_of_one_migration_does_not_refuse_another_migrations_action(engine):
    # Each migration's expectation is read with its own operations' breakers only: the
    # compare-and-set must compare the same view, or a bars action is refused as "the state
    # moved" because an orders breaker is open (seen: every migration promoted together).
    cfg = compose(SOAKED)
    ensure_state(engine, "canary")
    ensure_state(engine, "canary", migration="bars")
    trip_breaker(engine, "place_order", failures=5, reason="five failures")
    bars = actions.promote(engine, cfg, migration="bars", force=True, reason="bars first")
    assert (bars.before.stage, bars.after.stage) == ("canary", "staging")
    both = actions.promote(engine, cfg, force=True, reason="together")
    assert {part.migration: part.after.stage for part in both.parts} == {
        "orders": "staging",
        "bars": "staging_50",
    }
    actions.kill(engine, cfg, migration="bars", reason="look")
    assert not actions.unkill(engine, cfg, migration="bars", reason="looked").after.kill
    assert actions.status(engine, cfg)["breakers"]["place_order"]["open"] is True


def test_status_has_the_stage_percentages_flags_and_verdict(engine):
    cfg = compose([])
    ensure_state(engine, "canary")
    status = actions.status(engine, cfg)
    assert status["stage"] == "canary" and status["next_stage"] == "staging"
    # Only orders has a state: bars is shown at the stage its first run starts, 0% to Rust.
    assert status["percent"] == {
        op.value: 0.0 if op == "aggregate_bars" else 5.0 for op in Operation
    }
    assert status["kill"] is False and status["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE")
    orders, bars = status["migrations"]["orders"], status["migrations"]["bars"]
    assert (orders["stage"], orders["started"], bars["stage"], bars["started"]) == (
        "canary", True, "off", False,
    )  # fmt: skip
    assert orders["operations"] == ["place_order", "modify_order", "cancel_order"]
    assert orders["targets"] == {"symbols": [], "accounts": []}


def seed_rust_errors(engine, stage: str, tmp_path, *, n: int = 300, errors: int = 150) -> None:
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    recorder = Recorder(engine, compose([]).db.recorder, spill_dir=tmp_path, name=run_id)
    now = time.time_ns()
    for i in range(n):
        failed = i < errors
        for side in ("rust", "python"):
            recorder.record(
                OutcomeRecord(
                    now + i * 1000,
                    run_id,
                    "place_order",
                    stage,
                    side,
                    side,
                    False,
                    None,
                    not (failed and side == "rust"),
                    "BrokerUnavailableError" if failed and side == "rust" else None,
                    "connection lost" if failed and side == "rust" else None,
                    90_000.0,
                    1,
                    None,
                    None,
                    None,
                    None,
                )
            )
    assert recorder.flush(30)
    recorder.close()


def test_a_critical_fail_rolls_the_stage_back_once_however_many_processes_judge(engine, tmp_path):
    cfg = compose(["gate.check_interval_s=3600"])
    since = ensure_state(engine, "canary").stage_since_ns
    # The rows seeded next must fall inside the stage's window, which opens at its start.
    wait_until(lambda: time.time_ns() > since, what="the clock past the stage's start")
    seed_rust_errors(engine, "canary", tmp_path)
    verdict = actions.verdict(engine, cfg)
    assert [c.criterion.value for c in verdict.critical_failures()] == ["error_rate"]
    applied = []
    first = GateMonitor(engine, cfg, on_rollback=applied.append)
    second = GateMonitor(engine, cfg)  # another process seeing the same FAIL
    assert first.check_once() is True
    assert second.check_once() is False  # the stage moved: shadow's window has no FAIL
    assert [s.migrations["orders"].stage for s in applied] == ["shadow"]  # every migration's
    rollbacks = [e for e in events(engine) if e.kind == "auto_rollback"]
    assert len(rollbacks) == 1
    event = rollbacks[0]
    assert (event.from_stage, event.to_stage, event.who) == ("canary", "shadow", "gate")
    assert "error_rate" in event.reason
    assert json.loads(event.gate)["verdict"] == "FAIL"


def test_the_monitor_leaves_a_killed_rollout_alone(engine, tmp_path):
    cfg = compose([])
    ensure_state(engine, "canary")
    seed_rust_errors(engine, "canary", tmp_path)
    actions.kill(engine, cfg, reason="already halted")
    assert GateMonitor(engine, cfg).check_once() is False
    assert actions.current_state(engine, cfg).stage == "canary"
