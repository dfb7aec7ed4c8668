"""Routed order execution over real HTTP against the simulator: which side serves each call,
what a Rust failure leads to, and that no fallback ever duplicates an order (the simulator's
ledger judges after every test)."""

from __future__ import annotations

import pytest

from harness.errors import (
    BrokerUnavailableError,
    InvalidInputError,
    NativePanicError,
    OrderRejectedError,
)
from harness.operations import Impl, Operation
from harness.orders import OrderClient, OrderStatus, OrderType
from harness.router import orders as routed_orders
from harness.sim import FaultRule

from .kit import ACCOUNT, EXPIRED_MNQ, MNQ, Flaky, outcomes, requests

PLACE = "/api/Order/place"
MODIFY = "/api/Order/modify"
CANCEL = "/api/Order/cancel"
SEARCH = "/api/Order/search"


def not_sent() -> BrokerUnavailableError:
    return BrokerUnavailableError(
        "connect failed (deliberate)", endpoint=PLACE, attempts=1, maybe_sent=False
    )


def panic() -> NativePanicError:
    return NativePanicError("rust panicked: deliberately, in a test")


async def resting_stop(h, tag: str | None = None) -> int:
    """A sell stop far below the market: it rests Open."""
    placed = await h.orders.place_order(
        ACCOUNT, MNQ, "sell", 1, type=OrderType.STOP, stop_price=1000.0, custom_tag=tag
    )
    return placed.order_id


def sides(url: str, op: str) -> list[tuple[str, str, bool]]:
    return [(r["routed"], r["served"], r["fell_back"]) for r in outcomes(url) if r["op"] == op]


async def test_orders_satisfy_the_order_client_protocol(open_harness):
    h = open_harness()
    assert isinstance(h.orders, OrderClient)


async def test_every_routed_call_is_one_outcome_row(open_harness, sqlite_url, sim):
    h = open_harness(stage="staging_50")
    placed = await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="row-1")
    order_id = await resting_stop(h, "row-2")
    await h.orders.modify_order(ACCOUNT, order_id, stop_price=1000.25)
    await h.orders.cancel_order(ACCOUNT, order_id)
    assert h.recorder.flush(10)
    got = outcomes(sqlite_url)
    assert [r["op"] for r in got] == [
        "place_order",
        "place_order",
        "modify_order",
        "cancel_order",
    ]
    first = got[0]
    assert first["custom_tag"] == "row-1" and first["routing_key"] == "row-1"
    assert first["order_id"] == placed.order_id and first["stage"] == "staging_50"
    assert first["ok"] and first["latency_us"] > 0 and first["attempts"] == 1
    assert first["routed"] == h.router.decide(Operation.PLACE_ORDER, "row-1").value
    assert got[2]["order_id"] == order_id and got[2]["routing_key"] == str(order_id)
    assert all(r["run_id"] == h.run_id for r in got)


async def test_a_placement_without_a_tag_gets_one_before_routing(open_harness, sqlite_url, sim):
    h = open_harness(stage="staging_50")
    placed = await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    assert placed.custom_tag.startswith("hx-")
    assert h.recorder.flush(10)
    (row,) = outcomes(sqlite_url)
    assert row["routing_key"] == placed.custom_tag == row["custom_tag"]
    assert row["routed"] == h.router.decide(Operation.PLACE_ORDER, placed.custom_tag).value
    assert [o["customTag"] for o in sim.ledger()] == [placed.custom_tag]


async def test_placements_are_sticky_per_custom_tag(open_harness, sqlite_url):
    h = open_harness(stage="staging_50")
    for i in range(12):
        await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag=f"sticky-{i}")
    assert h.recorder.flush(10)
    rows = outcomes(sqlite_url)
    for r in rows:
        assert r["routed"] == h.router.decide(Operation.PLACE_ORDER, r["custom_tag"]).value
        assert r["served"] == r["routed"]
    assert {r["served"] for r in rows} == {"rust", "python"}


async def test_modify_and_cancel_follow_the_side_that_placed_the_order(open_harness, sqlite_url):
    h = open_harness(stage="staging_50")
    placed: dict[int, Impl] = {}
    for i in range(10):
        order_id = await resting_stop(h, f"follow-{i}")
        placed[order_id] = h.orders.placed_by(order_id)
    # At 50% about half the ids hash to the other side than their tags: following must win.
    by_id = {oid: h.router.decide(Operation.MODIFY_ORDER, str(oid)) for oid in placed}
    assert any(by_id[oid] is not side for oid, side in placed.items())
    for order_id in placed:
        await h.orders.modify_order(ACCOUNT, order_id, stop_price=1000.5)
        await h.orders.cancel_order(ACCOUNT, order_id)
    assert h.recorder.flush(10)
    for op in ("modify_order", "cancel_order"):
        rows = [r for r in outcomes(sqlite_url) if r["op"] == op]
        assert [Impl(r["served"]) for r in rows] == list(placed.values())


async def test_the_placing_side_of_at_least_the_last_remember_orders_is_kept(
    open_harness, monkeypatch
):
    monkeypatch.setattr(routed_orders, "REMEMBER", 3)
    h = open_harness(stage="production")
    ids = [await resting_stop(h, f"remember-{i}") for i in range(7)]
    assert [h.orders.placed_by(i) for i in ids[-3:]] == [Impl.RUST] * 3
    assert [h.orders.placed_by(i) for i in ids[:3]] == [None] * 3  # bounded: the oldest go


async def test_a_follower_goes_to_python_when_its_side_is_disabled(open_harness, sqlite_url):
    h = open_harness(stage="production")
    order_id = await resting_stop(h, "disabled-1")
    assert h.orders.placed_by(order_id) is Impl.RUST
    h.kill("test: Rust disabled after the placement")
    await h.orders.cancel_order(ACCOUNT, order_id)
    assert h.recorder.flush(10)
    assert sides(sqlite_url, "cancel_order") == [("python", "python", False)]


async def test_unknown_order_ids_are_routed_by_their_id(open_harness, sim, sqlite_url):
    placer = open_harness(stage="production")
    ids = [await resting_stop(placer, f"unknown-{i}") for i in range(8)]
    other = open_harness(stage="staging_50")  # a fresh process-like harness: remembers nothing
    for order_id in ids:
        await other.orders.cancel_order(ACCOUNT, order_id)
    assert other.recorder.flush(10)
    rows = [r for r in outcomes(sqlite_url) if r["op"] == "cancel_order"]
    want = [other.router.decide(Operation.CANCEL_ORDER, str(i)).value for i in ids]
    assert [r["routed"] for r in rows] == want


async def test_place_market_order_is_recorded_as_place_order(open_harness, sqlite_url):
    h = open_harness()
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    assert h.recorder.flush(10)
    assert [r["op"] for r in outcomes(sqlite_url)] == ["place_order"]


@pytest.mark.parametrize("stage", ["off", "production"])
async def test_invalid_input_is_never_a_fallback(open_harness, sqlite_url, sim, stage):
    h = open_harness(stage=stage)
    with pytest.raises(InvalidInputError, match="size"):
        await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 0)
    with pytest.raises(InvalidInputError, match="modify"):
        await h.orders.modify_order(ACCOUNT, 7_000_000_001)
    assert h.recorder.flush(10)
    side = "python" if stage == "off" else "rust"
    rows = outcomes(sqlite_url)
    assert [(r["routed"], r["served"], r["fell_back"], r["ok"]) for r in rows] == [
        (side, side, False, False)
    ] * 2
    assert {r["error_class"] for r in rows} == {"InvalidInputError"}
    assert requests(sim, PLACE) == 0 and requests(sim, MODIFY) == 0
    assert h.stats().calls["place_order"].fell_back == 0


@pytest.mark.parametrize("stage", ["off", "production"])
async def test_a_broker_rejection_is_returned_not_retried(open_harness, sqlite_url, sim, stage):
    h = open_harness(stage=stage)
    with pytest.raises(OrderRejectedError) as rejected:
        await h.orders.place_market_order(ACCOUNT, EXPIRED_MNQ, "buy", 1, custom_tag="expired")
    assert not rejected.value.maybe_sent
    assert requests(sim, PLACE) == 1 and sim.ledger() == []
    assert h.recorder.flush(10)
    (row,) = outcomes(sqlite_url)
    side = "python" if stage == "off" else "rust"
    assert (row["served"], row["fell_back"], row["error_class"]) == (
        side,
        False,
        "OrderRejectedError",
    )


async def test_a_rust_failure_that_sent_nothing_falls_back_at_once(open_harness, sqlite_url, sim):
    h = open_harness(stage="production")
    h.orders.use_client(
        Impl.RUST, Flaky(h.orders._rust, {"place_market_order": not_sent}, after=False)
    )
    placed = await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="at-once")
    assert not placed.reconciled
    assert requests(sim, SEARCH) == 0  # no reconciliation: nothing could have been sent
    assert [o["customTag"] for o in sim.ledger()] == ["at-once"]
    assert h.recorder.flush(10)
    (row,) = outcomes(sqlite_url)
    assert (row["routed"], row["served"], row["fell_back"], row["ok"]) == (
        "rust",
        "python",
        True,
        True,
    )
    assert row["fallback_reason"].startswith("rust BrokerUnavailableError (not sent); placed")
    assert h.orders.placed_by(placed.order_id) is Impl.PYTHON


async def test_ambiguous_place_is_reconciled_not_duplicated(open_harness, sqlite_url, sim):
    # The placement lands but its answer is lost, and Rust's own look-up fails too: Rust gives
    # up with maybe_sent=True; the router finds the order by its tag and returns it.
    h = open_harness(stage="production", broker__retry_delays_s=[])
    sim.set_faults(
        [
            FaultRule(path=PLACE, kind="drop_after", count=1),
            FaultRule(path=SEARCH, kind="drop_before", count=1),
        ]
    )
    placed = await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="ambiguous-1")
    assert placed.reconciled and placed.custom_tag == "ambiguous-1"
    (order,) = sim.ledger()
    assert order["customTag"] == "ambiguous-1" and order["id"] == placed.order_id
    assert requests(sim, PLACE) == 1
    assert h.recorder.flush(10)
    (row,) = outcomes(sqlite_url)
    assert (row["routed"], row["served"], row["fell_back"], row["ok"]) == (
        "rust",
        "python",
        True,
        True,
    )
    assert "(maybe sent); found by customTag" in row["fallback_reason"]
    assert row["reconciled"]


async def test_ambiguous_place_that_did_not_land_is_placed_once_with_the_same_tag(
    open_harness, sqlite_url, sim
):
    h = open_harness(stage="production", broker__retry_delays_s=[])
    sim.set_faults([FaultRule(path=PLACE, kind="error_before", count=1)])  # 503: maybe sent
    placed = await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="ambiguous-2")
    assert not placed.reconciled and placed.attempts == 2
    assert [o["customTag"] for o in sim.ledger()] == ["ambiguous-2"]
    assert h.recorder.flush(10)
    (row,) = outcomes(sqlite_url)
    assert row["served"] == "python" and row["fell_back"]
    assert "not found by customTag, placed on python with the same tag" in row["fallback_reason"]
    assert not row["reconciled"]  # nothing was found: it was placed


async def test_a_python_refusal_as_duplicate_tag_is_reconciled(open_harness, sqlite_url, sim):
    # Rust's placement lands unanswered; both look-ups (Rust's, then the router's first) fail;
    # the Python placement with the same tag is refused as a duplicate: the router looks again.
    h = open_harness(stage="production", broker__retry_delays_s=[])
    sim.set_faults(
        [
            FaultRule(path=PLACE, kind="drop_after", count=1),
            FaultRule(path=SEARCH, kind="drop_before", count=2),
        ]
    )
    placed = await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="ambiguous-3")
    assert placed.reconciled
    assert [o["customTag"] for o in sim.ledger()] == ["ambiguous-3"]
    assert requests(sim, PLACE) == 2  # Rust's, and Python's refused duplicate
    assert h.recorder.flush(10)
    (row,) = outcomes(sqlite_url)
    assert "python placement refused, then found by customTag" in row["fallback_reason"]
    assert row["reconciled"]


@pytest.mark.parametrize(("stage", "side"), [("production", "rust"), ("off", "python")])
async def test_a_placement_the_client_reconciled_is_recorded_as_reconciled(
    open_harness, sqlite_url, sim, stage, side
):
    # The order is created, the answer is a 500: the client itself finds it by its tag (no
    # fallback), and the row says the call was settled by that look-up.
    h = open_harness(stage=stage, broker__retry_delays_s=[0.01])
    sim.set_faults([FaultRule(path=PLACE, kind="error_after", count=1)])
    placed = await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="settled-1")
    assert placed.reconciled
    await h.orders.place_market_order(ACCOUNT, MNQ, "sell", 1, custom_tag="plain-1")
    assert [o["customTag"] for o in sim.ledger()] == ["settled-1", "plain-1"]
    assert h.recorder.flush(10)
    rows = {r["custom_tag"]: r for r in outcomes(sqlite_url)}
    settled, plain = rows["settled-1"], rows["plain-1"]
    assert (settled["served"], settled["fell_back"], settled["ok"]) == (side, False, True)
    assert settled["reconciled"] and not plain["reconciled"]


async def test_unknown_outcome_is_never_reported_as_not_sent(open_harness, sim):
    # Rust's placement lands unanswered and every look-up fails: the caller must hear
    # maybe_sent=True, never a plain rejection that reads as "no order".
    h = open_harness(stage="production", broker__retry_delays_s=[])
    sim.set_faults(
        [
            FaultRule(path=PLACE, kind="drop_after", count=1),
            FaultRule(path=SEARCH, kind="drop_before", count=10),
        ]
    )
    with pytest.raises(BrokerUnavailableError) as unknown:
        await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="ambiguous-4")
    assert unknown.value.maybe_sent
    assert isinstance(unknown.value.__cause__, OrderRejectedError)
    assert [o["customTag"] for o in sim.ledger()] == ["ambiguous-4"]


async def test_a_native_panic_after_sending_is_reconciled_not_duplicated(
    open_harness, sqlite_url, sim
):
    h = open_harness(stage="production")
    h.orders.use_client(Impl.RUST, Flaky(h.orders._rust, {"place_order": panic}, after=True))
    placed = await h.orders.place_order(
        ACCOUNT, MNQ, "buy", 1, type=OrderType.MARKET, custom_tag="panic-1"
    )
    assert placed.reconciled
    assert [o["customTag"] for o in sim.ledger()] == ["panic-1"]
    assert h.recorder.flush(10)
    (row,) = outcomes(sqlite_url)
    assert row["fallback_reason"].startswith("rust NativePanicError (maybe sent); found by")


async def test_a_maybe_sent_modify_already_applied_is_not_repeated(open_harness, sqlite_url, sim):
    h = open_harness(stage="production")
    order_id = await resting_stop(h, "modify-1")
    h.orders.use_client(Impl.RUST, Flaky(h.orders._rust, {"modify_order": panic}, after=True))
    await h.orders.modify_order(ACCOUNT, order_id, stop_price=1001.0)
    assert requests(sim, MODIFY) == 1
    (order,) = sim.ledger()
    assert order["stopPrice"] == 1001.0
    assert h.recorder.flush(10)
    (row,) = [r for r in outcomes(sqlite_url) if r["op"] == "modify_order"]
    assert row["served"] == "python" and "already shows the change" in row["fallback_reason"]
    assert row["reconciled"]


async def test_a_maybe_sent_cancel_not_applied_is_repeated_on_python(open_harness, sqlite_url, sim):
    h = open_harness(stage="production")
    order_id = await resting_stop(h, "cancel-1")
    h.orders.use_client(Impl.RUST, Flaky(h.orders._rust, {"cancel_order": panic}, after=False))
    await h.orders.cancel_order(ACCOUNT, order_id)
    (order,) = sim.ledger()
    assert order["status"] == OrderStatus.CANCELLED and requests(sim, CANCEL) == 1
    assert h.recorder.flush(10)
    (row,) = [r for r in outcomes(sqlite_url) if r["op"] == "cancel_order"]
    assert row["fallback_reason"].endswith(
        "not applied yet, repeated on python: rust panicked: deliberately, in a test"
    )
    assert not row["reconciled"]


async def test_the_env_kill_switch_takes_effect_on_the_next_call(
    open_harness, sqlite_url, monkeypatch
):
    h = open_harness(stage="production")
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    monkeypatch.setenv("TOPSTEPX_USE_RUST", "false")
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    monkeypatch.setenv("TOPSTEPX_USE_RUST", "true")
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    assert h.recorder.flush(10)
    assert [r["served"] for r in outcomes(sqlite_url)] == ["rust", "python", "rust"]


async def test_secrets_never_reach_the_store(open_harness, sqlite_url, sim):
    from .kit import SECRET_KEY, rows

    h = open_harness(stage="production")
    leak = BrokerUnavailableError(f"boom with {SECRET_KEY}", endpoint=PLACE, maybe_sent=False)
    h.orders.use_client(
        Impl.RUST, Flaky(h.orders._rust, {"place_market_order": lambda: leak}, after=False)
    )
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    h.close()
    dump = repr(rows(sqlite_url, "SELECT * FROM outcomes")) + repr(
        rows(sqlite_url, "SELECT * FROM runs")
    )
    assert SECRET_KEY not in dump and "***" in dump
