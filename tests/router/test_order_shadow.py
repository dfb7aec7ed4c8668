"""Order shadows over real HTTP against the simulator: every sampled place, modify and cancel
is compared with what the other side would have sent and read, the difference is named, and
the shadow sends nothing (the simulator's request counts judge)."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import harness
from harness.config import HarnessConfig
from harness.errors import OrderRejectedError
from harness.operations import Impl
from harness.orders import OrderType
from harness.orders.codec import Codec, Request
from harness.orders.models import PlacedOrder
from harness.sim import FaultRule, Simulator

from .conftest import make_config
from .kit import ACCOUNT, EXPIRED_MNQ, MNQ, rows

ORDER_OPS = ("place_order", "modify_order", "cancel_order")


@pytest.fixture
async def open_shadowed(
    base_config: HarnessConfig, sim: Simulator
) -> AsyncIterator[Callable[..., harness.Harness]]:
    """`open_shadowed(url, stage, rate)`: a harness at `stage` whose every stage samples order
    shadows at `rate` (the shipped ladder's shipped rates otherwise)."""
    opened: list[harness.Harness] = []

    def make(url: str, stage: str, rate: float | None = None) -> harness.Harness:
        cfg = make_config(base_config, url, sim.url, stage=stage)
        if rate is not None:
            cfg.rollout.stages = [
                dataclasses.replace(s, shadow_sample_rate=rate) for s in cfg.rollout.stages
            ]
        h = harness.open(config=cfg)
        opened.append(h)
        return h

    yield make
    for h in opened:
        await h.aclose()


async def round_trips(h: harness.Harness, prefix: str) -> None:
    """A market order, a resting stop modified then cancelled: every order mutation once."""
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag=f"{prefix}-m")
    placed = await h.orders.place_order(
        ACCOUNT, MNQ, "sell", 1, type=OrderType.STOP, stop_price=1000.0, custom_tag=f"{prefix}-s"
    )
    await h.orders.modify_order(ACCOUNT, placed.order_id, stop_price=1000.25)
    await h.orders.cancel_order(ACCOUNT, placed.order_id)


def comparisons(url: str) -> list[dict[str, Any]]:
    return rows(url, "SELECT * FROM shadow_comparisons ORDER BY ts_ns, id")


def settle(h: harness.Harness) -> None:
    assert h.wait_for_shadows(30)
    assert h.recorder.flush(10)


async def test_the_shadow_stage_compares_every_order_call_and_sends_nothing_more(
    store_url, open_shadowed, sim, tmp_path
):
    # The same calls without shadows first, on a database of their own (a stage is stored).
    plain_url = f"sqlite:///{tmp_path / 'plain.db'}"
    plain = open_shadowed(plain_url, "off")
    await round_trips(plain, "plain")
    settle(plain)
    sent_without_shadow = sim.stats()["requests"]
    assert comparisons(plain_url) == []
    await plain.aclose()
    sim.reset()

    h = open_shadowed(store_url, "shadow")
    await round_trips(h, "shadowed")
    settle(h)
    assert sim.stats()["requests"] == sent_without_shadow
    assert [o["customTag"] for o in sim.ledger()] == ["shadowed-m", "shadowed-s"]
    found = comparisons(store_url)
    assert [(r["op"], r["primary"], r["shadow"], r["matched"]) for r in found] == [
        ("place_order", "python", "rust", True),
        ("place_order", "python", "rust", True),
        ("modify_order", "python", "rust", True),
        ("cancel_order", "python", "rust", True),
    ]
    assert all(r["migration"] == "orders" and r["stage"] == "shadow" for r in found)
    assert h.stats().shadows.mismatched == 0


class BrokenBuild:
    """A side's codec whose placement body carries the stop price one tick higher."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def build_place(self, args: Any, contract: Any, custom_tag: str) -> Request:
        request = self.inner.build_place(args, contract, custom_tag)
        body = request.body
        if body.get("stopPrice") is not None:
            body["stopPrice"] += 0.25
        import json

        return Request(request.path, json.dumps(body, separators=(",", ":")).encode())


class BrokenRead:
    """A side's codec that reads a refused placement (`success: false`) as placed."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read_place(self, status: int, body: bytes, retry_after: Any = None, **kw: Any) -> Any:
        try:
            return self.inner.read_place(status, body, retry_after, **kw)
        except OrderRejectedError:
            return PlacedOrder(0, kw["custom_tag"], False, kw.get("attempts", 1))


# (stage, shadow rate, the side serving, the side shadowing): the broken side is the shadow.
SIDES = [("shadow", 1.0, Impl.PYTHON, Impl.RUST), ("production", 1.0, Impl.RUST, Impl.PYTHON)]


@pytest.mark.parametrize(("stage", "rate", "serving", "broken"), SIDES)
async def test_a_build_that_changes_one_field_is_named(
    open_shadowed, sqlite_url, sim, stage, rate, serving, broken
):
    h = open_shadowed(sqlite_url, stage, rate)
    assert h.orders.shadow is not None
    h.orders.shadow.use_codec(broken, BrokenBuild(h.orders.shadow.codec(broken)))
    await h.orders.place_order(
        ACCOUNT, MNQ, "sell", 1, type=OrderType.STOP, stop_price=1000.0, custom_tag="broken-b"
    )
    settle(h)
    (row,) = comparisons(sqlite_url)
    assert (row["primary"], row["shadow"], row["matched"]) == (serving.value, broken.value, False)
    assert (row["field"], row["primary_value"], row["shadow_value"]) == (
        "body.stopPrice",
        "1000.0",
        "1000.25",
    )
    assert sim.stats()["requests"].get("/api/Order/place") == 1
    assert [o["customTag"] for o in sim.ledger()] == ["broken-b"]


@pytest.mark.parametrize(("stage", "rate", "serving", "broken"), SIDES)
async def test_a_read_that_misreads_a_refusal_is_named(
    store_url, open_shadowed, sim, stage, rate, serving, broken
):
    h = open_shadowed(store_url, stage, rate)
    assert h.orders.shadow is not None
    h.orders.shadow.use_codec(broken, BrokenRead(h.orders.shadow.codec(broken)))
    with pytest.raises(OrderRejectedError):
        await h.orders.place_market_order(ACCOUNT, EXPIRED_MNQ, "buy", 1, custom_tag="misread")
    settle(h)
    (row,) = comparisons(store_url)
    assert (row["primary"], row["shadow"], row["matched"]) == (serving.value, broken.value, False)
    assert row["field"].endswith(".error_class") and row["field"].startswith("read[")
    assert (row["primary_value"], row["shadow_value"]) == ("OrderRejectedError", "ok")
    assert sim.stats()["requests"].get("/api/Order/place") == 1
    assert sim.ledger() == []


async def test_a_shadow_that_raises_never_reaches_the_caller(open_shadowed, sqlite_url, sim):
    class Raising:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("the shadow side is broken (deliberately)")

    h = open_shadowed(sqlite_url, "shadow")
    assert h.orders.shadow is not None
    h.orders.shadow.use_codec(Impl.RUST, Raising())  # type: ignore[arg-type]
    placed = await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="calm")
    assert placed.custom_tag == "calm"
    settle(h)
    assert comparisons(sqlite_url) == []
    assert h.stats().shadows.failed == 1
    assert [o["customTag"] for o in sim.ledger()] == ["calm"]


async def test_a_rust_call_sampled_after_unsampled_ones_is_compared(open_shadowed, sqlite_url):
    # The Rust client resolved the contract and remembered the order on calls not sampled: the
    # shadow reads both from its caches (no I/O), so the sampled calls are still compared.
    h = open_shadowed(sqlite_url, "production", 0.0)
    placed = await h.orders.place_order(
        ACCOUNT, MNQ, "sell", 1, type=OrderType.STOP, stop_price=1000.0, custom_tag="quiet"
    )
    for stage in h.router.rollout.stages:
        stage.shadow_sample_rate = 1.0
    h.refresh()
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="loud")
    await h.orders.modify_order(ACCOUNT, placed.order_id, stop_price=1000.25)
    settle(h)
    found = comparisons(sqlite_url)
    assert [(r["op"], r["primary"], r["matched"]) for r in found] == [
        ("place_order", "rust", True),
        ("modify_order", "rust", True),
    ]
    assert h.stats().shadows.skipped == 0


async def test_a_call_compared_after_the_clients_closed_is_still_compared(
    open_shadowed, sqlite_url, monkeypatch
):
    # A bot that exits right after a sampled call: its comparison may run on the shadow
    # threads after the order clients closed and forgot their caches (the contract was
    # resolved by an earlier call, so the sampled call's own exchanges do not hold it).
    h = open_shadowed(sqlite_url, "production", 0.0)
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="resolves")
    for stage in h.router.rollout.stages:
        stage.shadow_sample_rate = 1.0
    h.refresh()
    shadow = h.orders.shadow
    assert shadow is not None
    release = threading.Event()
    compare = shadow.compare

    def late(*args: Any) -> bool | None:
        assert release.wait(30)
        return compare(*args)

    monkeypatch.setattr(shadow, "compare", late)
    await h.orders.place_market_order(ACCOUNT, MNQ, "sell", 1, custom_tag="last")
    await h.orders.aclose()  # the clients forget their sessions and caches
    release.set()
    settle(h)
    assert [(r["op"], r["matched"]) for r in comparisons(sqlite_url)] == [("place_order", True)]
    assert h.stats().shadows.skipped == 0


@pytest.mark.parametrize(("stage", "rate", "serving", "other"), SIDES)
@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(path="/api/Order/place", kind="error_before", count=1),  # a 503: maybe sent
        FaultRule(path="/api/Order/place", kind="error_before", count=1, status=429,
                  retry_after=0.01),
    ],
    ids=["503-looked-up-then-repeated", "429-waited-then-repeated"],
)  # fmt: skip
async def test_a_retried_call_has_every_answer_read_by_both_sides(
    open_shadowed, sqlite_url, sim, stage, rate, serving, other, fault
):
    h = open_shadowed(sqlite_url, stage, rate)
    sim.set_faults([fault])
    placed = await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="again")
    assert placed.attempts == 2
    settle(h)
    (row,) = comparisons(sqlite_url)
    assert (row["primary"], row["shadow"], row["matched"], row["field"]) == (
        serving.value,
        other.value,
        True,
        None,
    )
    assert [o["customTag"] for o in sim.ledger()] == ["again"]
    assert sim.stats()["requests"]["/api/Order/place"] == 2


async def test_a_fractional_rate_samples_the_calls_the_seeded_rngs_pick(open_shadowed, sqlite_url):
    # One draw of each seeded RNG per call at a rate strictly between 0 and 1, whatever the
    # other RNG drew: the calls compared and the calls captured are those the seeds pick.
    h = open_shadowed(sqlite_url, "production", 0.3)
    h.router.rollout.shadow.max_in_flight = 1000  # none skipped: every sampled call compared
    h.router.rollout.migrations["orders"].capture.rate = 0.5
    h.refresh()
    tags = [f"seeded-{i}" for i in range(24)]
    for tag in tags:
        await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag=tag)
    settle(h)
    salt = h.router.rollout.salt
    compare, capture = random.Random(f"{salt}|shadow"), random.Random(f"{salt}|capture")
    picked = [(compare.random() < 0.3, capture.random() < 0.5) for _ in tags]
    compared = {r["routing_key"] for r in comparisons(sqlite_url)}
    ts_of = {r["custom_tag"]: r["ts_ns"] for r in rows(sqlite_url, "SELECT * FROM outcomes")}
    captured = {r["ts_ns"] for r in rows(sqlite_url, "SELECT ts_ns FROM captures")}
    assert [(t in compared, ts_of[t] in captured) for t in tags] == picked
    assert {True} < {c for c, _ in picked} and {True} < {c for _, c in picked}
