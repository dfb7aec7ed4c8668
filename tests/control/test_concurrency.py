"""Actions meeting other processes, on SQLite and PostgreSQL: a busy database is waited out
within `db.write_wait_s` and then refused naming it; a kill always lands; every other action
carries the state it was decided on and is refused, saying what moved, when that moved before
its compare-and-set. Other processes are real connections committing at exactly the moment
that matters (`storekit.commit_before_compare_and_set`) or holding the write lock."""

from __future__ import annotations

import threading

import pytest
import storekit
from sqlalchemy import select

from harness.config import compose
from harness.control import actions
from harness.control.monitor import GateMonitor
from harness.operations import Operation
from harness.store.db import open_engine
from harness.store.models import RolloutEvent
from harness.store.state import (
    EventKind,
    StateMovedError,
    StoreBusyError,
    ensure_state,
    set_stage,
    trip_breaker,
)

from .test_actions import seed_rust_errors

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def engine(store_url):
    engine = open_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def other(store_url):
    """Another process's connection to the same database."""
    engine = open_engine(store_url)
    yield engine
    engine.dispose()


def kinds(engine) -> list[str]:
    with engine.connect() as conn:
        query = select(RolloutEvent.kind).order_by(RolloutEvent.ts_ns)
        return list(conn.execute(query).scalars())


def config(store_url: str, *overrides: str):
    return compose([f"db.url={store_url}", *overrides])


# ----- a busy database ---------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["kill", "promote", "unkill", "rollback", "reset"])
def test_an_action_waits_out_another_writer_and_lands(engine, store_url, action):
    cfg = config(store_url, "db.write_wait_s=300")  # the holder lets go long before
    ensure_state(engine, "canary")
    if action == "unkill":
        actions.kill(engine, cfg, reason="halt")
    if action == "reset":
        trip_breaker(engine, "place_order", failures=5, reason="5 failures")
    waiting = threading.Event()
    outcome: list[object] = []

    def act() -> None:
        try:
            run = {
                "kill": lambda: actions.kill(engine, cfg, on_busy=told),
                "promote": lambda: actions.promote(
                    engine, cfg, force=True, reason="drill", on_busy=told
                ),
                "unkill": lambda: actions.unkill(engine, cfg, on_busy=told),
                "rollback": lambda: actions.rollback(engine, cfg, on_busy=told),
                "reset": lambda: actions.reset_breaker(
                    engine, cfg, Operation.PLACE_ORDER, on_busy=told
                ),
            }[action]
            outcome.append(run())
        except Exception as exc:  # the assertion below shows it
            outcome.append(exc)

    def told(text: str) -> None:
        outcome.append(text)
        waiting.set()

    with storekit.write_lock_held(store_url):
        worker = threading.Thread(target=act)
        worker.start()
        assert waiting.wait(120), f"the action never reported the busy database: {outcome}"
    worker.join(120)
    said, result = outcome
    assert "is busy (another process holds its write lock)" in str(said)
    assert isinstance(result, actions.ActionResult), result
    assert kinds(engine)[-1] == {"reset": "breaker_reset"}.get(action, action)


def test_a_database_busy_for_longer_than_the_wait_is_one_sentence_naming_it(engine, store_url):
    cfg = config(store_url, "db.write_wait_s=0.2")
    ensure_state(engine, "canary")
    with storekit.write_lock_held(store_url), pytest.raises(StoreBusyError) as refused:
        actions.kill(engine, cfg, reason="halt")
    said = str(refused.value)
    assert said.startswith("the database ") and "is busy" in said and "\n" not in said
    assert ("harness.db" in said) if store_url.startswith("sqlite") else ("test_" in said)
    assert kinds(engine) == ["start"]
    assert not actions.current_state(engine, cfg).kill


# ----- a kill always lands -----------------------------------------------------------------------


@pytest.mark.parametrize("interloper", ["promote", "rollback", "breaker_trip", "kill"])
def test_a_kill_lands_whatever_commits_between_its_read_and_its_write(
    engine, other, store_url, interloper
):
    cfg = config(store_url)
    ensure_state(engine, "canary")

    def meanwhile() -> None:
        if interloper == "breaker_trip":
            trip_breaker(other, "place_order", failures=5, reason="5 failures")
        elif interloper == "kill":  # another person, at the same moment
            actions.kill(other, cfg, who="bob", reason="same incident")
        else:
            target = "staging" if interloper == "promote" else "shadow"
            set_stage(other, target, kind=interloper, who="bob")

    with storekit.commit_before_compare_and_set(engine, meanwhile) as fired:
        result = actions.kill(engine, cfg, who="ops", reason="halt")
    assert fired
    assert result.after.kill and actions.current_state(engine, cfg).kill
    assert result.changed is (interloper != "kill")  # else: already set, and says so
    assert kinds(engine).count("kill") == 1


def test_a_second_kill_writes_nothing_and_says_the_flag_was_already_set(engine, store_url):
    cfg = config(store_url)
    ensure_state(engine, "canary")
    first = actions.kill(engine, cfg, reason="broker incident")
    second = actions.kill(engine, cfg, reason="again")
    assert first.changed and not second.changed
    assert second.summary() == (
        "kill: the kill flag was already set at stage canary (broker incident): nothing written"
    )
    assert kinds(engine) == ["start", "kill"]
    cleared = actions.unkill(engine, cfg)
    again = actions.unkill(engine, cfg)
    assert cleared.changed and not again.changed
    assert again.summary() == "unkill: the kill flag was not set at stage canary: nothing written"
    assert kinds(engine) == ["start", "kill", "unkill"]


# ----- every other action acts on what was decided -----------------------------------------------


def test_two_forced_promotions_from_the_same_stage_land_once(engine, other, store_url):
    cfg = config(store_url)
    ensure_state(engine, "canary")

    def first() -> None:
        actions.promote(other, cfg, force=True, reason="first", who="ana", from_stage="canary")

    with (
        storekit.commit_before_compare_and_set(engine, first),
        pytest.raises(StateMovedError) as refused,
    ):
        actions.promote(engine, cfg, force=True, reason="second", who="bob", from_stage="canary")
    said = str(refused.value)
    assert "the stage is now 'staging', not 'canary'" in said
    assert "latest event: promote by ana" in said and "nothing was written" in said
    # Asked again later from the stage that person saw: refused at once, nothing skipped.
    with pytest.raises(StateMovedError, match="the stage is now 'staging', not 'canary'"):
        actions.promote(engine, cfg, force=True, reason="second", from_stage="canary")
    assert actions.current_state(engine, cfg).stage == "staging"
    assert kinds(engine) == ["start", "promote"]


def test_a_promotion_decided_before_a_kill_or_a_breaker_trip_is_refused(engine, store_url):
    cfg = config(store_url)
    seen = ensure_state(engine, "canary")
    actions.kill(engine, cfg, reason="incident")
    with pytest.raises(StateMovedError, match=r"the kill flag was set.*latest event: kill"):
        actions.promote(engine, cfg, force=True, reason="drill", seen=seen)
    actions.unkill(engine, cfg)
    seen = actions.current_state(engine, cfg)
    trip_breaker(engine, "cancel_order", failures=5, reason="5 failures")
    with pytest.raises(StateMovedError, match="the cancel_order breaker opened"):
        actions.plan_promote(engine, cfg, force=True, seen=seen)
    assert actions.current_state(engine, cfg).stage == "canary"
    assert "promote" not in kinds(engine)


def test_a_rollback_carries_its_stage_only(engine, other, store_url):
    cfg = config(store_url)
    ensure_state(engine, "staging")

    def trip() -> None:
        trip_breaker(other, "place_order", failures=5, reason="5 failures")

    with storekit.commit_before_compare_and_set(engine, trip) as fired:
        done = actions.rollback(engine, cfg, from_stage="staging", reason="p99 regressed")
    assert fired and done.after.stage == "canary"  # a breaker trip does not stop a rollback

    def promote() -> None:
        set_stage(other, "staging", kind=EventKind.PROMOTE, who="ana")

    with (
        storekit.commit_before_compare_and_set(engine, promote),
        pytest.raises(StateMovedError, match="the stage is now 'staging', not 'canary'"),
    ):
        actions.rollback(engine, cfg, from_stage="canary")
    assert actions.current_state(engine, cfg).stage == "staging"
    assert kinds(engine).count("rollback") == 1


def test_unkill_and_breaker_reset_carry_the_stage_they_were_decided_on(engine, store_url):
    cfg = config(store_url)
    seen = ensure_state(engine, "canary")
    actions.kill(engine, cfg, reason="halt")
    trip_breaker(engine, "place_order", failures=5, reason="5 failures")
    set_stage(engine, "staging_50", kind=EventKind.PROMOTE, who="ana")
    with pytest.raises(StateMovedError, match="the stage is now 'staging_50', not 'canary'"):
        actions.unkill(engine, cfg, seen=seen)
    with pytest.raises(StateMovedError, match="latest event: promote by ana"):
        actions.reset_breaker(engine, cfg, Operation.PLACE_ORDER, from_stage="canary")
    state = actions.current_state(engine, cfg)
    assert state.kill and state.open_breakers == frozenset({"place_order"})
    with pytest.raises(actions.ActionInputError, match="--from 'nope' is not on this ladder"):
        actions.unkill(engine, cfg, from_stage="nope")


def test_the_automatic_rollback_leaves_a_stage_that_moved_while_it_judged(
    engine, other, store_url, tmp_path, monkeypatch
):
    cfg = config(store_url, "gate.check_interval_s=3600")
    ensure_state(engine, "canary")
    seed_rust_errors(engine, "canary", tmp_path)
    judged = actions.verdict

    def judge_while_a_person_promotes(*args, **kwargs):
        verdict = judged(*args, **kwargs)
        set_stage(other, "staging", kind=EventKind.PROMOTE, who="ana", reason="forced")
        return verdict

    monkeypatch.setattr(actions, "verdict", judge_while_a_person_promotes)
    monitor = GateMonitor(engine, cfg)
    assert monitor.check_once() is False  # canary's FAIL is not staging's
    assert actions.current_state(engine, cfg).stage == "staging"
    assert "auto_rollback" not in kinds(engine)
