"""The automatic promotion on the store, on SQLite and PostgreSQL: the gate monitor promotes a
migration one stage on a PASS, with an `auto_promote` event carrying the verdict, never while
its kill flag is set or one of its breakers is open, never outside its trading hours, never
above `auto_promote_until`, once however many processes judge, and never on a state that moved
while it judged. `quick` gate: `off` PASSes at once (no soak, nothing to judge at 0%), so each
check can make one step and the next stage must gather its own evidence."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from harness.config import compose
from harness.control import actions
from harness.control.monitor import GateMonitor
from harness.store.db import open_engine
from harness.store.models import RolloutEvent
from harness.store.state import EventKind, ensure_state, set_stage, trip_breaker

pytestmark = pytest.mark.timeout(180)

AUTO = ["gate=quick", "gate.auto_promote=true", "gate.check_interval_s=3600"]
GLOBEX = [
    "gate.trading_hours.tz=America/Chicago",
    "gate.trading_hours.open=17:00",
    "gate.trading_hours.close=16:00",
    "gate.trading_hours.days=[sun,mon,tue,wed,thu]",
]


@pytest.fixture
def engine(store_url):
    engine = open_engine(store_url)
    yield engine
    engine.dispose()


def events(engine, kind: str = EventKind.AUTO_PROMOTE) -> list[RolloutEvent]:
    with Session(engine) as session:
        query = select(RolloutEvent).where(RolloutEvent.kind == kind)
        return list(session.scalars(query.order_by(RolloutEvent.ts_ns)))


def stages(engine, cfg) -> dict[str, str]:
    return {m: actions.current_state(engine, cfg, m).stage for m in ("orders", "bars")}


def start(engine, stage: str = "off") -> None:
    for migration in ("orders", "bars"):
        ensure_state(engine, stage, migration=migration)


def ns(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000


def test_a_pass_promotes_one_stage_with_the_verdict_in_its_event(engine):
    cfg = compose(AUTO)
    start(engine)
    promoted = []
    monitor = GateMonitor(engine, cfg, on_promote=promoted.append)
    assert monitor.check_once() is True
    assert stages(engine, cfg) == {"orders": "shadow", "bars": "shadow"}
    assert monitor.promotions == 2
    assert {m: s.stage for m, s in promoted[-1].migrations.items()} == stages(engine, cfg)
    # shadow has no evidence yet: INCONCLUSIVE, so the next check makes no step.
    assert monitor.check_once() is False
    assert stages(engine, cfg) == {"orders": "shadow", "bars": "shadow"}
    made = sorted(events(engine), key=lambda e: e.migration)
    assert [(e.migration, e.from_stage, e.to_stage) for e in made] == [
        ("bars", "off", "shadow"), ("orders", "off", "shadow"),
    ]  # fmt: skip
    for event in made:
        # Who: the monitor, on this host, in this process (as the automatic rollback says it).
        assert (event.who, event.forced) == ("gate", False)
        assert event.host and event.pid
        assert "automatic promotion" in event.reason and "up to staging_50" in event.reason
        gate = json.loads(event.gate)
        assert (gate["verdict"], gate["stage"], gate["migration"]) == (
            "PASS", "off", event.migration,
        )  # fmt: skip
    assert events(engine, EventKind.PROMOTE) == []


def test_it_stops_at_auto_promote_until_and_leaves_a_migration_without_it_alone(engine):
    cfg = compose([*AUTO, "rollout.migrations.orders.gate.auto_promote=false",
                   "rollout.migrations.bars.gate.auto_promote_until=shadow"])  # fmt: skip
    start(engine)
    monitor = GateMonitor(engine, cfg)
    assert monitor.check_once() is True
    set_stage(engine, "shadow", kind=EventKind.PROMOTE, migration="orders", who="ana")
    # bars stands at its bound; orders' PASS is not acted on (its auto_promote is off).
    set_stage(engine, "off", kind=EventKind.ROLLBACK, migration="orders", who="ana")
    assert monitor.check_once() is False
    assert stages(engine, cfg) == {"orders": "off", "bars": "shadow"}
    assert [(e.migration, e.to_stage) for e in events(engine)] == [("bars", "shadow")]
    set_stage(engine, "off", kind=EventKind.ROLLBACK, migration="bars", who="ana")
    cfg_at_bound = compose([*AUTO, "gate.auto_promote_until=off"])
    held = GateMonitor(engine, cfg_at_bound)
    assert held.check_once() is False
    assert held.held == {
        "orders": "at or above auto_promote_until (off)",
        "bars": "at or above auto_promote_until (off)",
    }


def test_no_promotion_while_the_kill_flag_is_set(engine):
    cfg = compose(AUTO)
    start(engine)
    actions.kill(engine, cfg, migration="orders", reason="drill")
    monitor = GateMonitor(engine, cfg)
    assert monitor.check_once() is True  # bars only
    assert stages(engine, cfg) == {"orders": "off", "bars": "shadow"}
    assert monitor.held == {"orders": "the kill flag is set"}
    actions.kill(engine, cfg, reason="everything")  # the global flag
    set_stage(engine, "off", kind=EventKind.ROLLBACK, migration="bars", who="ana")
    assert monitor.check_once() is False
    assert stages(engine, cfg) == {"orders": "off", "bars": "off"}
    actions.unkill(engine, cfg)
    assert monitor.check_once() is True
    assert stages(engine, cfg) == {"orders": "shadow", "bars": "shadow"}


def test_no_promotion_while_one_of_the_migrations_breakers_is_open(engine):
    cfg = compose(AUTO)
    start(engine)
    assert trip_breaker(engine, "place_order", failures=5, reason="5 failures", migration="orders")
    monitor = GateMonitor(engine, cfg)
    assert monitor.check_once() is True
    # The orders breaker holds orders only; bars' breakers are its own.
    assert stages(engine, cfg) == {"orders": "off", "bars": "shadow"}
    assert monitor.held["orders"] == "the place_order breaker is open"
    actions.reset_breaker(engine, cfg, "place_order", who="ana")
    assert monitor.check_once() is True
    assert stages(engine, cfg)["orders"] == "shadow"


def test_no_promotion_outside_trading_hours(engine):
    cfg = compose([*AUTO, *GLOBEX])
    start(engine)
    saturday = ns(datetime(2026, 10, 31, 17, 0, tzinfo=UTC))  # noon in Chicago
    monitor = GateMonitor(engine, cfg, now_ns=lambda: saturday)
    assert monitor.check_once() is False
    assert stages(engine, cfg) == {"orders": "off", "bars": "off"}
    assert monitor.held["orders"].startswith("outside trading hours (mon,tue,wed,thu,sun 17:00")
    monday = ns(datetime(2026, 11, 2, 15, 0, tzinfo=UTC))  # 09:00 in Chicago
    assert GateMonitor(engine, cfg, now_ns=lambda: monday).check_once() is True
    assert stages(engine, cfg) == {"orders": "shadow", "bars": "shadow"}


def test_several_processes_promote_once(engine, store_url):
    cfg = compose(AUTO)
    start(engine)
    other = open_engine(store_url)
    try:
        first, second = GateMonitor(engine, cfg), GateMonitor(other, cfg)
        assert first.check_once() is True
        assert second.check_once() is False  # shadow's window is its own: INCONCLUSIVE
    finally:
        other.dispose()
    assert len(events(engine)) == 2  # one per migration
    assert stages(engine, cfg) == {"orders": "shadow", "bars": "shadow"}


def test_a_state_that_moved_while_it_judged_is_not_promoted(engine, store_url, monkeypatch):
    cfg = compose([*AUTO, "rollout.migrations.bars.gate.auto_promote=false"])
    start(engine)
    other = open_engine(store_url)
    judged = actions.verdict

    def judge_while_a_breaker_trips(*args, **kwargs):
        verdict = judged(*args, **kwargs)
        trip_breaker(other, "cancel_order", failures=5, reason="5 failures", migration="orders")
        return verdict

    monkeypatch.setattr(actions, "verdict", judge_while_a_breaker_trips)
    try:
        assert GateMonitor(engine, cfg).check_once() is False
    finally:
        other.dispose()
    assert stages(engine, cfg)["orders"] == "off"
    assert events(engine) == []


# ----- as a person meets it: the real `harness` commands ----------------------------------------


def test_status_gate_and_query_events_say_it_as_a_person_reads_it(engine, store_url, tmp_path):
    from .test_cli import harness

    db = f"db.url={store_url}"
    cfg = compose([*AUTO, db])
    start(engine)
    assert GateMonitor(engine, cfg).check_once() is True
    on = ["gate.auto_promote=true", "rollout.migrations.bars.gate.auto_promote_until=canary",
          *(f"rollout.migrations.orders.{o}" for o in GLOBEX)]  # fmt: skip
    shown = harness("status", db, *on, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert (
        "automatic promotion on, up to staging_50, only in trading hours "
        "mon,tue,wed,thu,sun 17:00 -> 16:00 next day (America/Chicago)"
    ) in shown.stdout
    assert (
        "bars: since" in shown.stdout and "automatic promotion on, up to canary\n" in shown.stdout
    )
    data = json.loads(harness("status", "--json", db, *on, cwd=tmp_path).stdout)
    assert data["migrations"]["bars"]["auto_promote"] == {
        "on": True, "until": "canary", "trading_hours": None,
    }  # fmt: skip
    assert data["migrations"]["orders"]["auto_promote"]["trading_hours"].endswith(
        "(America/Chicago)"
    )
    judged = harness("gate", "--migration", "bars", db, cwd=tmp_path)
    assert "automatic promotion: off" in judged.stdout  # the shipped gate: off
    listed = json.loads(harness("query", "events", "--json", db, cwd=tmp_path).stdout)
    made = [e for e in listed if e["kind"] == "auto_promote"]
    assert sorted((e["migration"], e["from_stage"], e["to_stage"], e["who"]) for e in made) == [
        ("bars", "off", "shadow", "gate"), ("orders", "off", "shadow", "gate"),
    ]  # fmt: skip
    assert {e["gate"]["verdict"] for e in made} == {"PASS"}


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "gate.auto_promote_until=production",
            "invalid gate.auto_promote_until='production': must be below the last stage",
        ),
        ("gate.trading_hours.tz=Mars/Base", "invalid gate.trading_hours.tz='Mars/Base'"),
        (
            "gate.trading_hours.tz=America/Chicago",
            "invalid gate.trading_hours.open=None: must be set",
        ),
    ],
)
def test_a_bad_setting_stops_the_command_with_one_line(store_url, tmp_path, override, line):
    from .test_cli import harness

    done = harness("status", f"db.url={store_url}", "gate.auto_promote=true", override,
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert line in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""


def test_a_stage_no_ladder_has_is_refused_even_with_automatic_promotion_off():
    from harness.config import ConfigError

    with pytest.raises(ConfigError) as refused:
        compose(["gate.auto_promote_until=staging_5O"])  # a typo, noticed before it matters
    assert (refused.value.field, refused.value.value) == ("gate.auto_promote_until", "staging_5O")
    assert compose(["rollout=by_symbol", "gate.auto_promote_until=mnq"]).gate.auto_promote_until
