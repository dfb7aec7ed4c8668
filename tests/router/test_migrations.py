"""Migrations, targeting and the bot's own operations, on a real store and simulator.

Each migration climbs its own ladder (bars to production while orders stay at canary); a
stage's targets send only the targeted calls to Rust and record the rest as not targeted;
`register_operation` routes a bot's callables through the same path as the built-ins.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from harness.config import Criterion, OpCriteria, Percentages, StageConfig, TargetsConfig
from harness.control import actions
from harness.errors import ConfigError
from harness.gate.verdict import Outcome
from harness.operations import Impl, Operation
from harness.orders import OrderType
from harness.store.state import EventKind, set_stage

from .kit import ACCOUNT, MNQ, minute_bars, outcomes, rows

MES = "CON.F.US.MES.Z26"


def _bars() -> dict[str, np.ndarray]:
    return minute_bars(30)


async def test_bars_climb_to_production_while_orders_stay_at_canary(store_url, open_harness):
    h = open_harness(url=store_url, stage="canary")
    set_stage(h.engine, "production", kind=EventKind.PROMOTE, migration="bars", who="ana")
    h.refresh()
    assert h.state.stages[Operation.AGGREGATE_BARS] == "production"
    assert h.state.stages[Operation.PLACE_ORDER] == "canary"
    assert h.router.decide(Operation.AGGREGATE_BARS, "any key") is Impl.RUST
    h.bars.aggregate(_bars(), "5m", contract="MNQ")
    assert h.recorder.flush(10)
    got = [(r["op"], r["stage"], r["migration"], r["served"]) for r in outcomes(store_url)]
    assert got == [("aggregate_bars", "production", "bars", "rust")]
    events = rows(store_url, "SELECT kind, migration, to_stage FROM rollout_events ORDER BY ts_ns")
    assert [(e["kind"], e["migration"], e["to_stage"]) for e in events][-1] == (
        "promote", "bars", "production"
    )  # fmt: skip
    # The other migration's state did not move.
    states = rows(store_url, "SELECT migration, stage FROM migration_state ORDER BY migration")
    assert [(s["migration"], s["stage"]) for s in states] == [
        ("bars", "production"), ("orders", "canary"),
    ]  # fmt: skip


async def test_a_stage_targeting_mnq_sends_only_mnq_to_rust(store_url, open_harness):
    h = open_harness(url=store_url, stage="off")
    mnq_only = StageConfig("mnq", Percentages(100.0), 0.0, TargetsConfig(symbols=["MNQ"]))
    for name in ("orders", "bars"):  # the by_symbol ladder's idea: MNQ at 100% first
        h.config.rollout.migrations[name].stages = [StageConfig("off", Percentages(0.0)), mnq_only]
    set_stage(h.engine, "mnq", kind=EventKind.PROMOTE, who="ana")  # every migration together
    h.refresh()
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    await h.orders.place_market_order(ACCOUNT, MES, "buy", 1)
    h.bars.aggregate(_bars(), "5m", contract="MNQ")
    h.bars.aggregate(_bars(), "5m", contract="MES")
    assert h.recorder.flush(10)
    got = [(r["op"], r["routed"], bool(r["targeted"])) for r in outcomes(store_url)]
    assert got == [
        ("place_order", "rust", True), ("place_order", "python", False),
        ("aggregate_bars", "rust", True), ("aggregate_bars", "python", False),
    ]  # fmt: skip


async def test_modify_and_cancel_of_an_order_not_targeted_are_recorded_not_targeted(
    store_url, open_harness
):
    # They follow the placing side; before, an MES order's modify and cancel were recorded as
    # targeted, so the figures showed them as "hashed to Python" at a 100% stage.
    h = open_harness(url=store_url, stage="off")
    mnq_only = StageConfig("mnq", Percentages(100.0), 0.0, TargetsConfig(symbols=["MNQ"]))
    h.config.rollout.migrations["orders"].stages = [StageConfig("off", Percentages(0.0)), mnq_only]
    set_stage(h.engine, "mnq", kind=EventKind.PROMOTE, migration="orders", who="ana")
    h.refresh()
    for contract in (MNQ, MES):
        placed = await h.orders.place_order(
            ACCOUNT, contract, "sell", 1, type=OrderType.STOP, stop_price=1000.0
        )
        await h.orders.modify_order(ACCOUNT, placed.order_id, stop_price=1000.25)
        await h.orders.cancel_order(ACCOUNT, placed.order_id)
    assert h.recorder.flush(10)
    got = [(r["op"], r["routed"], bool(r["targeted"])) for r in outcomes(store_url)]
    assert got == [
        ("place_order", "rust", True), ("modify_order", "rust", True),
        ("cancel_order", "rust", True),
        ("place_order", "python", False), ("modify_order", "python", False),
        ("cancel_order", "python", False),
    ]  # fmt: skip


def test_accounts_targeting_admits_only_the_accounts_listed():
    from harness.router.snapshot import Targets

    targets = Targets(frozenset(), frozenset({12345}))
    assert targets.admits({"account": 12345, "symbol": "MES"})
    assert not targets.admits({"account": 999})
    assert not targets.admits({"symbol": "MNQ"})  # no account to match: not targeted
    assert not targets.admits(None)
    both = Targets(frozenset({"MNQ"}), frozenset({12345}))
    assert both.admits({"account": 12345, "symbol": "CON.F.US.MNQ.Z26"})
    assert not both.admits({"account": 12345, "symbol": "CON.F.US.MES.Z26"})


async def test_a_registered_sync_operation_falls_back_and_records(store_url, open_harness):
    h = open_harness(url=store_url, stage="production")
    calls: list[str] = []

    def python_side(x: int) -> int:
        calls.append("python")
        return x * 2

    def rust_side(x: int) -> int:
        calls.append("rust")
        if x < 0:
            raise RuntimeError("rust side broke")
        return x * 2

    double = h.register_operation("double", python=python_side, rust=rust_side)
    assert double(3) == 6
    assert double(-1) == -2  # the Rust failure reruns on Python (idempotent)
    assert calls == ["rust", "rust", "python"]
    assert h.register_operation("double", python=python_side, rust=rust_side) is double
    with pytest.raises(ConfigError, match="registered already"):
        h.register_operation("double", python=rust_side, rust=python_side)
    with pytest.raises(ConfigError, match="built-in"):
        h.register_operation("place_order", python=python_side, rust=rust_side)
    assert h.recorder.flush(10)
    got = [
        (r["op"], r["migration"], r["served"], bool(r["fell_back"])) for r in outcomes(store_url)
    ]
    assert got == [("double", "double", "rust", False), ("double", "double", "python", True)]
    starts = rows(store_url, "SELECT migration FROM rollout_events WHERE kind = 'start'")
    assert {s["migration"] for s in starts} == {"orders", "bars", "double"}


async def test_a_non_idempotent_operation_is_never_repeated(store_url, open_harness):
    h = open_harness(url=store_url, stage="production")
    calls: list[str] = []

    async def python_side(x: int) -> int:
        calls.append("python")
        return x

    async def rust_side(x: int) -> int:
        calls.append("rust")
        raise RuntimeError("sent, maybe")

    send = h.register_operation("send", python=python_side, rust=rust_side, idempotent=False)
    with pytest.raises(RuntimeError, match="sent, maybe"):
        await send(1)
    assert calls == ["rust"]
    with pytest.raises(TypeError, match="both"):
        h.register_operation("mixed", python=python_side, rust=lambda x: x)


async def test_a_registered_operation_is_shadowed_and_a_mismatch_recorded(store_url, open_harness):
    h = open_harness(url=store_url, stage="shadow")  # 0% live, every call shadowed
    square = h.register_operation(
        "square", python=lambda x: x * x, rust=lambda x: x * x + (1 if x == 3 else 0),
        key=lambda x: (str(x), {"symbol": "MNQ"}),
    )  # fmt: skip
    assert [square(x) for x in (2, 3)] == [4, 9]
    assert h.wait_for_shadows(30)
    assert h.recorder.flush(10)
    got = rows(
        store_url,
        "SELECT routing_key, matched, primary_value, shadow_value, migration "
        "FROM shadow_comparisons ORDER BY routing_key",
    )
    assert [(g["routing_key"], bool(g["matched"])) for g in got] == [("2", True), ("3", False)]
    assert (got[1]["primary_value"], got[1]["shadow_value"]) == ("9", "10")
    assert got[1]["migration"] == "square"


async def test_a_registered_operation_trips_its_breaker(store_url, open_harness):
    h = open_harness(url=store_url, stage="production", rollout__breaker__failures=2)

    def broken(x: int) -> int:
        raise RuntimeError("no")

    op = h.register_operation("flaky", python=lambda x: x, rust=broken)
    for i in range(3):
        assert op(i) == i
    assert "flaky" in h.state.open_breakers
    assert h.router.decide("flaky", "0") is Impl.PYTHON
    for _ in range(100):
        h.refresh()
        trips = rows(
            store_url, "SELECT op, migration FROM rollout_events WHERE kind = 'breaker_trip'"
        )
        if trips:
            break
        await asyncio.sleep(0.05)
    assert [(t["op"], t["migration"]) for t in trips] == [("flaky", "flaky")]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_a_registered_operations_bad_input_is_the_callers_error(
    store_url, open_harness, is_async
):
    """Rust raising ValueError (or TypeError) for bad input reaches the caller as it is: no
    rerun on Python, no breaker failure; `caller_errors=()` makes it a fallback again."""
    h = open_harness(url=store_url, stage="production", rollout__breaker__failures=2)
    calls: list[str] = []

    def check(side: str, window: int) -> int:
        calls.append(side)
        if window <= 0:
            raise ValueError(f"window must be > 0, got {window}")
        return window

    def make(side: str) -> Any:
        if is_async:

            async def run_async(window: int) -> int:
                return check(side, window)

            return run_async

        def run(window: int) -> int:
            return check(side, window)

        return run

    async def call(op: Any, window: int) -> int:
        got = op(window)
        return int(await got) if is_async else int(got)

    ema = h.register_operation("ema", python=make("python"), rust=make("rust"))
    for _ in range(3):
        with pytest.raises(ValueError, match="window must be > 0"):
            await call(ema, 0)
    assert calls == ["rust"] * 3  # never rerun on Python
    assert "ema" not in h.state.open_breakers
    assert h.router.decide("ema", "0") is Impl.RUST
    assert await call(ema, 5) == 5

    calls.clear()
    every = h.register_operation(
        "ema_all", python=make("python"), rust=make("rust"), caller_errors=()
    )
    with pytest.raises(ValueError, match="window must be > 0"):
        await call(every, 0)
    assert calls == ["rust", "python"]  # any exception falls back, as the bot asked
    with pytest.raises(TypeError, match="caller_errors"):
        h.register_operation("ema_bad", python=make("python"), rust=make("rust"),
                             caller_errors=("ValueError",))  # fmt: skip
    assert h.recorder.flush(10)
    got = [
        (r["op"], r["served"], bool(r["fell_back"]), r["error_class"] is not None)
        for r in outcomes(store_url)
    ]
    assert got == [("ema", "rust", False, True)] * 3 + [("ema", "rust", False, False)] + [
        ("ema_all", "python", True, True)
    ]


BARS_CRITERIA = OpCriteria(
    min_samples=1, max_fallback_rate=0.5, max_error_rate=0.5, max_error_excess=0.5,
    max_p50_ratio=None, max_p99_ratio=None, not_slower=False, min_shadow_comparisons=0,
    critical=[Criterion.error_rate, Criterion.fallback_rate],
)  # fmt: skip
"""Lenient enough that a few hundred clean aggregations pass each stage, strict enough that a
Rust side failing every call FAILs `fallback_rate` (critical) within a few hundred calls."""


async def test_two_migrations_climb_judge_and_roll_back_on_their_own(store_url, open_harness):
    """bars climbs to production on its own evidence while orders stays at canary; each has its
    own verdict and events; bars' Rust side failing rolls back bars alone."""
    h = open_harness(
        url=store_url, stage="off", gate__min_soak_s=0, gate__check_interval_s=0.1,
        gate__ops={"aggregate_bars": BARS_CRITERIA},
        rollout__breaker__failures=1_000_000,  # the gate, not the breaker, is on trial here
    )  # fmt: skip
    engine, cfg = h.engine, h.config
    calls = 0

    def aggregate_until_bars_passes() -> None:
        nonlocal calls
        for _ in range(40):
            if actions.verdict(engine, cfg, migration="bars").result is Outcome.PASS:
                return
            for _ in range(25):
                calls += 1
                h.bars.aggregate(_bars(), "5m", contract=f"K{calls}")
            assert h.recorder.flush(10)
        raise AssertionError(f"bars never passed: {actions.verdict(engine, cfg, migration='bars')}")

    for _ in range(2):  # orders: off -> shadow -> canary, then it stays
        actions.promote(engine, cfg, migration="orders", who="ana")
    for _ in range(5):  # bars: off -> shadow -> canary -> staging -> staging_50 -> production
        aggregate_until_bars_passes()
        actions.promote(engine, cfg, migration="bars", who="ana")
    h.refresh()
    stages = {m: actions.current_state(engine, cfg, m).stage for m in ("orders", "bars")}
    assert stages == {"orders": "canary", "bars": "production"}
    assert h.state.stages[Operation.AGGREGATE_BARS] == "production"
    assert h.state.stages[Operation.PLACE_ORDER] == "canary"
    verdicts = actions.verdicts(engine, cfg)
    assert (verdicts["orders"].migration, verdicts["orders"].stage) == ("orders", "canary")
    assert (verdicts["bars"].migration, verdicts["bars"].stage) == ("bars", "production")
    assert {c.op for c in verdicts["bars"].criteria} <= {"aggregate_bars", None}
    promotions = rows(
        store_url, "SELECT migration, to_stage FROM rollout_events WHERE kind = 'promote' "
        "ORDER BY ts_ns",
    )  # fmt: skip
    assert [(p["migration"], p["to_stage"]) for p in promotions] == [
        ("orders", "shadow"), ("orders", "canary"), ("bars", "shadow"), ("bars", "canary"),
        ("bars", "staging"), ("bars", "staging_50"), ("bars", "production"),
    ]  # fmt: skip

    # bars' Rust side now fails every call: its fallbacks FAIL the critical fallback_rate and
    # the harness's own monitor rolls bars back, one stage, and nothing else.
    h.bars.use_engine(Impl.RUST, "router.raising_engine")
    for _ in range(200):
        if actions.current_state(engine, cfg, "bars").stage != "production":
            break
        for _ in range(10):
            calls += 1
            h.bars.aggregate(_bars(), "5m", contract=f"K{calls}")
        assert h.recorder.flush(10)
        await asyncio.sleep(0.05)
    stages = {m: actions.current_state(engine, cfg, m).stage for m in ("orders", "bars")}
    assert stages == {"orders": "canary", "bars": "staging_50"}
    rollbacks = rows(
        store_url, "SELECT migration, from_stage, to_stage, who FROM rollout_events "
        "WHERE kind = 'auto_rollback'",
    )  # fmt: skip
    assert rollbacks == [
        {"migration": "bars", "from_stage": "production", "to_stage": "staging_50", "who": "gate"}
    ]
