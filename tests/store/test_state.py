"""The live rollout state: created once, changed only by compare-and-set actions with events."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from harness.store.db import open_engine, upgrade
from harness.store.models import RolloutEvent
from harness.store.state import (
    EventKind,
    StateConflictError,
    ensure_state,
    read_state,
    reset_breaker,
    set_kill,
    set_stage,
    trip_breaker,
)


@pytest.fixture
def engine(db_url):
    engine = open_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def events(engine) -> list[RolloutEvent]:
    with engine.connect() as conn:
        rows = conn.execute(select(RolloutEvent).order_by(RolloutEvent.ts_ns)).all()
    return [row[0] if not hasattr(row, "kind") else row for row in rows]


def test_state_is_created_once_even_when_processes_race(engine):
    results = []

    def start() -> None:
        results.append(ensure_state(engine, "off", who="racer"))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {(s.stage, s.version) for s in results} == {("off", 1)}
    assert [e.kind for e in events(engine)] == [EventKind.START]


def test_promotion_moves_the_stage_opens_a_window_and_writes_one_event(engine):
    first = ensure_state(engine, "off", migration="orders")
    moved = set_stage(
        engine,
        "shadow",
        kind=EventKind.PROMOTE,
        migration="orders",  # its version: the migration's own, as `first`'s
        who="ana",
        reason="soaked",
        gate={"verdict": "PASS"},
    )
    assert (moved.stage, moved.version) == ("shadow", first.version + 1)
    assert moved.stage_since_ns > first.stage_since_ns
    last = events(engine)[-1]
    assert (last.kind, last.from_stage, last.to_stage, last.who, last.reason) == (
        "promote",
        "off",
        "shadow",
        "ana",
        "soaked",
    )
    assert '"verdict": "PASS"' in last.gate


def test_a_stale_expectation_changes_nothing(engine):
    ensure_state(engine, "canary")
    set_stage(engine, "off", kind=EventKind.AUTO_ROLLBACK, expect_stage="canary")
    with pytest.raises(StateConflictError, match="the stage is now 'off', not 'canary'"):
        set_stage(engine, "off", kind=EventKind.AUTO_ROLLBACK, expect_stage="canary")
    assert [e.kind for e in events(engine)] == ["start", "auto_rollback"]


def test_kill_and_unkill_are_events_and_state(engine):
    ensure_state(engine, "canary")
    killed = set_kill(engine, True, who="ops", reason="fills look wrong")
    assert killed.kill and killed.kill_reason == "fills look wrong"
    unkilled = set_kill(engine, False, who="ops", reason="fixed")
    assert not unkilled.kill and unkilled.kill_reason is None
    assert [e.kind for e in events(engine)][-2:] == ["kill", "unkill"]


def test_breaker_trips_once_and_resets(engine):
    ensure_state(engine, "canary")
    assert trip_breaker(engine, "place_order", failures=5, reason="5 Rust failures in 60 s")
    assert not trip_breaker(engine, "place_order", failures=6, reason="again")
    with engine.connect() as conn:
        state = read_state(conn)
    assert state is not None and state.open_breakers == frozenset({"place_order"})
    assert reset_breaker(engine, "place_order", who="ops", reason="fixed")
    assert not reset_breaker(engine, "place_order")
    with engine.connect() as conn:
        assert read_state(conn).open_breakers == frozenset()  # type: ignore[union-attr]
    assert [e.kind for e in events(engine)][1:] == ["breaker_trip", "breaker_reset"]


def test_an_unchanged_version_costs_no_second_query(engine):
    ensure_state(engine, "off")
    with engine.connect() as conn:
        known = read_state(conn)
        assert read_state(conn, known) is known
