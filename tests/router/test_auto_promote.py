"""The automatic promotion end to end: a harness open on a real store and the simulator, its
own gate monitor judging live traffic, climbs a migration (`gate.auto_promote` on for it
alone) to the stage before production by itself, one `auto_promote` event per step, and stops
there; the other migration (auto_promote off) stays where it started; the router follows each
step. `bars` on the shipped ladder; `orders` with real orders placed, modified and cancelled on
the simulator, on a short ladder of its own."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from waitkit import wait_until

from harness.config import (
    Criterion,
    OpCriteria,
    Percentages,
    StageConfig,
    TradingHoursConfig,
)
from harness.control import actions
from harness.operations import Operation
from harness.orders import OrderType

from .kit import ACCOUNT, MNQ, minute_bars, rows

LENIENT = OpCriteria(
    min_samples=1, max_fallback_rate=0.5, max_error_rate=0.5, max_error_excess=0.5,
    max_p50_ratio=None, max_p99_ratio=None, not_slower=False, min_shadow_comparisons=0,
    critical=[Criterion.error_rate, Criterion.fallback_rate],
)  # fmt: skip
"""A few clean aggregations pass a stage: the climb, not the statistics, is on trial here."""

CLIMB = ["off", "shadow", "canary", "staging", "staging_50"]


async def test_bars_climbs_to_the_stage_before_production_by_itself_and_stops(
    store_url, open_harness, base_config
):
    migrations = copy.deepcopy(base_config.rollout.migrations)
    migrations["bars"].gate.auto_promote = True
    h = open_harness(
        url=store_url, stage="off", gate__min_soak_s=0, gate__check_interval_s=0.1,
        gate__ops={"aggregate_bars": LENIENT}, rollout__migrations=migrations,
    )  # fmt: skip
    engine, cfg = h.engine, h.config
    bars = minute_bars(30)
    calls = 0

    def stage(migration: str) -> str:
        return actions.current_state(engine, cfg, migration).stage

    # Live traffic until bars reaches its bound: each stage must gather its own evidence.
    for _ in range(400):
        if stage("bars") == "staging_50":
            break
        for _ in range(5):
            calls += 1
            h.bars.aggregate(bars, "5m", contract=f"K{calls}")
        assert h.recorder.flush(10)
        await asyncio.sleep(0.02)
    assert stage("bars") == "staging_50"

    # At its bound bars PASSes and is held there, checked again and again: production stays a
    # person's step.
    monitor = h._monitor
    for _ in range(400):
        if monitor.held.get("bars") == "at or above auto_promote_until (staging_50)":
            break
        for _ in range(5):
            calls += 1
            h.bars.aggregate(bars, "5m", contract=f"K{calls}")
        assert h.recorder.flush(10)
        await asyncio.sleep(0.02)
    assert monitor.held.get("bars") == "at or above auto_promote_until (staging_50)"
    checks = monitor.checks
    wait_until(lambda: monitor.checks >= checks + 3, what="three more checks")
    assert actions.verdict(engine, cfg, migration="bars").result.value == "PASS"
    assert {m: stage(m) for m in ("orders", "bars")} == {"orders": "off", "bars": "staging_50"}

    wait_until(
        lambda: h.refresh() or h.state.stages[Operation.AGGREGATE_BARS] == "staging_50",
        what="the router at staging_50",
    )
    assert h.state.stages[Operation.PLACE_ORDER] == "off"
    steps = rows(
        store_url,
        "SELECT kind, migration, from_stage, to_stage, who, host, pid, gate FROM rollout_events "
        "WHERE kind IN ('promote', 'auto_promote', 'rollback', 'auto_rollback') ORDER BY ts_ns",
    )
    assert [(s["kind"], s["migration"], s["from_stage"], s["to_stage"]) for s in steps] == [
        ("auto_promote", "bars", a, b) for a, b in pairwise(CLIMB)
    ]
    for step in steps:
        assert step["who"] == "gate" and step["host"] and step["pid"]
        assert json.loads(step["gate"])["verdict"] == "PASS"


async def test_orders_climbs_by_itself_on_real_orders_while_bars_stays(
    store_url, open_harness, base_config
):
    migrations = copy.deepcopy(base_config.rollout.migrations)
    orders = migrations["orders"]
    orders.gate.auto_promote = True
    orders.stages = [
        StageConfig("off", Percentages(0.0)),
        StageConfig("half", Percentages(50.0)),
        StageConfig("most", Percentages(90.0)),
        StageConfig("production", Percentages(100.0)),
    ]
    h = open_harness(
        url=store_url, stage="off", gate__min_soak_s=0, gate__check_interval_s=0.1,
        gate__ops={str(op): LENIENT for op in orders.operations}, rollout__migrations=migrations,
    )  # fmt: skip
    engine, cfg = h.engine, h.config

    def stage(migration: str) -> str:
        return actions.current_state(engine, cfg, migration).stage

    monitor = h._monitor
    for _ in range(300):
        if monitor.held.get("orders") == "at or above auto_promote_until (most)":
            break
        placed = await h.orders.place_order(
            ACCOUNT, MNQ, "sell", 1, type=OrderType.STOP, stop_price=1000.0
        )
        await h.orders.modify_order(ACCOUNT, placed.order_id, stop_price=1000.25)
        await h.orders.cancel_order(ACCOUNT, placed.order_id)
        assert h.recorder.flush(10)
        await asyncio.sleep(0.01)
    assert monitor.held.get("orders") == "at or above auto_promote_until (most)"
    assert {m: stage(m) for m in ("orders", "bars")} == {"orders": "most", "bars": "off"}
    steps = rows(
        store_url,
        "SELECT kind, migration, from_stage, to_stage FROM rollout_events "
        "WHERE kind IN ('promote', 'auto_promote', 'rollback', 'auto_rollback') ORDER BY ts_ns",
    )
    assert [(s["kind"], s["migration"], s["from_stage"], s["to_stage"]) for s in steps] == [
        ("auto_promote", "orders", "off", "half"), ("auto_promote", "orders", "half", "most"),
    ]  # fmt: skip
    served = rows(store_url, "SELECT DISTINCT stage, served FROM outcomes WHERE op = 'place_order'")
    assert {("half", "rust"), ("most", "rust")} <= {(r["stage"], r["served"]) for r in served}


async def test_outside_trading_hours_nothing_is_promoted(store_url, open_harness):
    # A session that opens two hours from now (UTC, every day): closed while the test runs.
    now = datetime.now(UTC)
    closed = TradingHoursConfig(
        tz="UTC",
        open=f"{now + timedelta(hours=2):%H:%M}",
        close=f"{now + timedelta(hours=3):%H:%M}",
    )
    h = open_harness(
        url=store_url, stage="off", gate__min_soak_s=0, gate__check_interval_s=0.1,
        gate__auto_promote=True, gate__trading_hours=closed,
    )  # fmt: skip
    monitor = h._monitor
    wait_until(
        lambda: (
            {m: why.startswith("outside trading hours") for m, why in monitor.held.items()}
            == {"orders": True, "bars": True}
        ),
        what="both migrations held outside trading hours",
    )
    checks = monitor.checks
    wait_until(lambda: monitor.checks >= checks + 3, what="three more checks")
    engine = h.engine
    assert actions.verdict(engine, h.config, migration="orders").result.value == "PASS"
    assert {m: actions.current_state(engine, h.config, m).stage for m in ("orders", "bars")} == {
        "orders": "off", "bars": "off",
    }  # fmt: skip
    assert rows(store_url, "SELECT kind FROM rollout_events WHERE kind = 'auto_promote'") == []
