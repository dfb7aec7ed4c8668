"""The control plane's read-only halves: `overview` (what `status` and the dashboard show) and
`plan_promote` / `plan_rollback` (what a confirmation shows), checked exactly as the actions
check, writing nothing; and the actions built on them writing one event each."""

from __future__ import annotations

import time

import pytest
import storekit
from sqlalchemy import func, select

from harness.config import compose
from harness.control import actions
from harness.operations import Operation
from harness.store.db import open_store
from harness.store.models import RolloutEvent

pytestmark = pytest.mark.timeout(120)

MINUTE = 60 * storekit.SECOND_NS


@pytest.fixture
def engine(store_url):
    engine = open_store(store_url)
    yield engine
    engine.dispose()


def events(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RolloutEvent)).scalar_one())


def failing_canary(engine, tmp_path, now):
    """Stage canary entered 20 minutes ago, Rust failing half its place_order calls."""
    storekit.set_stage(engine, "canary", now - 20 * MINUTE)
    run = storekit.new_run(engine, now - 20 * MINUTE)
    traffic = [storekit.Traffic(Operation.PLACE_ORDER, 400, rust_share=0.5, rust_error_rate=0.5)]
    rows = storekit.outcomes(run, "canary", now - 20 * MINUTE, now - MINUTE, traffic)
    storekit.record(engine, tmp_path, rows, now_ns=now)


def test_a_refused_plan_says_what_promote_says_and_writes_nothing(engine, tmp_path):
    now = time.time_ns()
    failing_canary(engine, tmp_path, now)
    cfg = compose([])
    before = events(engine)
    with pytest.raises(actions.ActionError) as planned:
        actions.plan_promote(engine, cfg, now_ns=now)
    with pytest.raises(actions.ActionError) as acted:
        actions.promote(engine, cfg)
    assert "the gate says FAIL for stage 'canary'" in str(planned.value)
    assert "place_order error_rate: FAIL" in str(planned.value)
    assert str(planned.value) == str(acted.value)
    assert events(engine) == before
    assert actions.current_state(engine, cfg).stage == "canary"


def test_a_plan_shows_the_stages_and_percentages_that_would_change(engine, tmp_path):
    now = time.time_ns()
    failing_canary(engine, tmp_path, now)
    cfg = compose([])
    before = events(engine)
    forced = actions.plan_promote(engine, cfg, force=True, now_ns=now)
    assert (forced.from_stage.name, forced.to_stage.name, forced.forced) == (
        "canary",
        "staging",
        True,
    )
    assert forced.percent_changes()[0] == (Operation.PLACE_ORDER, 5.0, 25.0)
    back = actions.plan_rollback(engine, cfg, now_ns=now)
    assert (back.from_stage.name, back.to_stage.name) == ("canary", "shadow")
    with pytest.raises(actions.ActionError, match="not below"):
        actions.plan_rollback(engine, cfg, to="production")
    assert events(engine) == before


def test_a_forced_promotion_needs_a_reason_and_is_recorded_as_forced(engine, tmp_path):
    now = time.time_ns()
    failing_canary(engine, tmp_path, now)
    cfg = compose([])
    with pytest.raises(actions.ActionError, match="needs a reason"):
        actions.promote(engine, cfg, force=True, reason="  ")
    result = actions.promote(engine, cfg, force=True, reason="vendor outage", who="ops")
    # Every migration together, each judged on its own window and named in its own event.
    assert result.summary().splitlines() == [
        "promote: orders: canary -> staging (FORCED: the gate said FAIL)",
        "promote: bars: canary -> staging (FORCED: the gate said INCONCLUSIVE)",
    ]
    rows = actions_events(engine, "promote")
    assert sorted((r.migration, r.who, r.reason, r.forced, r.to_stage) for r in rows) == [
        ("bars", "ops", "vendor outage", True, "staging"),
        ("orders", "ops", "vendor outage", True, "staging"),
    ]


def actions_events(engine, kind):
    with engine.connect() as conn:
        return conn.execute(select(RolloutEvent).where(RolloutEvent.kind == kind)).all()


def test_status_is_the_overview_in_json(engine, tmp_path):
    now = time.time_ns()
    failing_canary(engine, tmp_path, now)
    cfg = compose([])
    view = actions.overview(engine, cfg)
    data = actions.status(engine, cfg)
    assert data["stage"] == view.state.stage == "canary"
    assert data["next_stage"] == view.next_stage.name == "staging"
    assert data["verdict"] == view.verdict.result.value == "FAIL"
    assert data["native_available"] is view.native_available is True
    place = view.figures.of(Operation.PLACE_ORDER)
    assert place.calls == 400
    assert place.served_by_rust == place.rust.calls - place.rust.fallbacks
    assert place.rust.error_rate == place.rust.errors / place.rust.calls


def test_a_stage_entered_after_now_is_judged_over_an_empty_window(engine):
    # Another machine's clock may run ahead: its promotion's stage_since is "in the future".
    cfg = compose([])
    storekit.set_stage(engine, "canary", storekit.NOW_NS + 5 * storekit.SECOND_NS)
    view = actions.overview(engine, cfg, now_ns=storekit.NOW_NS)
    assert view.verdict.since_ns == view.verdict.until_ns
    assert view.figures.of(Operation.PLACE_ORDER).calls == 0


def test_a_refusal_names_the_failing_criteria_first(engine, tmp_path):
    now = time.time_ns()
    failing_canary(engine, tmp_path, now)
    with pytest.raises(actions.ActionError) as refused:
        actions.plan_promote(engine, compose([]), now_ns=now)
    listed = str(refused.value).split("(", 1)[1]
    assert listed.startswith("place_order error_rate: FAIL")
