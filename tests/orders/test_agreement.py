"""Both sides agree: one scripted session, run on each implementation, compared field by field.

The simulator is reset before each run; order ids keep counting across resets, so they are
compared as "the n-th id this run saw". What moves with the clock (fill prices, timestamps) is
left out of the comparison. Exceptions compare by class and by every
field the taxonomy carries.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from orderkit import ACCOUNT, MNQ, with_settings

from harness.errors import BrokerError, InvalidInputError, NativePanicError
from harness.orders import ClientSettings, OrderClient, open_client
from harness.orders.models import Order, PlacedOrder
from harness.sim import FaultRule, Simulator

Step = tuple[str, list[FaultRule], Callable[[OrderClient, Simulator], Awaitable[Any]]]
FILLED: dict[str, int] = {}  # the id of the first market order of the current run
PLACE = "/api/Order/place"


def fault(path: str, kind: str, count: int | None = 1, **extra: Any) -> list[FaultRule]:
    return [FaultRule(path=path, kind=kind, count=count, **extra)]


async def limit_then_modify_then_cancel(c: OrderClient, sim: Simulator) -> list[Any]:
    price = 1000.0  # far below the market: the buy limit rests
    tag = "agree-limit"
    placed = await c.place_order(
        ACCOUNT, "MNQ", "buy", 1, type=1, limit_price=price, custom_tag=tag
    )
    await c.modify_order(ACCOUNT, placed.order_id, limit_price=price - 1.0, size=2)
    before = await c.get_order(ACCOUNT, placed.order_id)
    await c.cancel_order(ACCOUNT, placed.order_id)
    after = await c.find_order_by_tag(ACCOUNT, tag)
    return [placed, before, after, before.limit_price == price - 1.0]


async def first_market_order(c: OrderClient, sim: Simulator) -> Any:
    placed = await c.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="a1")
    FILLED["id"] = placed.order_id
    return placed


STEPS: list[Step] = [
    ("accounts", [], lambda c, s: c.accounts()),
    ("inactive too", [], lambda c, s: c.accounts(only_active=False)),
    ("contract by symbol", [], lambda c, s: c.resolve_contract("ENQ")),
    ("contract by id", [], lambda c, s: c.resolve_contract("CON.F.US.EP.Z26")),
    ("unknown contract", [], lambda c, s: c.resolve_contract("NOPE")),
    ("market", [], first_market_order),
    ("duplicate", [], lambda c, s: c.place_market_order(ACCOUNT, MNQ, "sell", 1, custom_tag="a1")),
    ("find", [], lambda c, s: c.find_order_by_tag(ACCOUNT, "a1")),
    ("limit lifecycle", [], limit_then_modify_then_cancel),
    ("cancel unknown", [], lambda c, s: c.cancel_order(ACCOUNT, 55555)),
    ("modify unknown", [], lambda c, s: c.modify_order(ACCOUNT, 55555, size=1)),
    ("modify filled", [], lambda c, s: c.modify_order(ACCOUNT, FILLED["id"], size=3)),
    ("get missing", [], lambda c, s: c.get_order(ACCOUNT, 55555)),
    ("bad size", [], lambda c, s: c.place_market_order(ACCOUNT, "MNQ", "buy", 0)),
    ("bad side", [], lambda c, s: c.place_market_order(ACCOUNT, "MNQ", "hold", 1)),
    ("nan price", [], lambda c, s: c.place_order(ACCOUNT, MNQ, 1, 1, type=1, limit_price=math.nan)),
    ("off grid", [], lambda c, s: c.place_order(ACCOUNT, MNQ, 1, 1, type=1, limit_price=1.1)),
    ("empty modify", [], lambda c, s: c.modify_order(ACCOUNT, 1)),
    ("error_after", fault(PLACE, "error_after"),
     lambda c, s: c.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="a2")),
    ("drop_after", fault(PLACE, "drop_after"),
     lambda c, s: c.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="a3")),
    ("drop_before x2", fault(PLACE, "drop_before", count=2),
     lambda c, s: c.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="a4")),
    ("5xx forever", fault(PLACE, "error_before", count=None),
     lambda c, s: c.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="a5")),
    ("429 then ok", fault(PLACE, "rate_limit", count=2, retry_after=0.01),
     lambda c, s: c.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="a6")),
    ("429 forever", fault(PLACE, "rate_limit", count=None, retry_after=0.02),
     lambda c, s: c.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="a7")),
    ("read 5xx forever", fault("/api/Account/search", "error_before", count=None, status=504),
     lambda c, s: c.accounts()),
    ("token expired", fault(PLACE, "expire_token"),
     lambda c, s: c.place_market_order(ACCOUNT, "MNQ", "sell", 1, custom_tag="a8")),
    ("401 twice", fault("/api/Account/search", "expire_token", count=None),
     lambda c, s: c.accounts()),
    ("cancel lost", [], limit_then_modify_then_cancel),
    ("http 400", [], lambda c, s: c.place_order(ACCOUNT, MNQ, "buy", 1, type=3)),
]  # fmt: skip


class Normaliser:
    """What must be equal on both sides: ids as first-seen ordinals, clock fields left out."""

    def __init__(self) -> None:
        self.ids: dict[int, str] = {}

    def order_id(self, raw: int) -> str:
        return self.ids.setdefault(raw, f"#{len(self.ids) + 1}")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, Order):
            fields = dataclasses.asdict(value)
            for moving in ("filled_price", "creation_timestamp", "update_timestamp"):
                fields.pop(moving)
            fields["id"] = self.order_id(value.id)
            return ("Order", fields)
        if isinstance(value, PlacedOrder):
            fields = dataclasses.asdict(value)
            fields["order_id"] = self.order_id(value.order_id)
            return ("PlacedOrder", fields)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return (type(value).__name__, dataclasses.asdict(value))
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        return value

    def error(self, exc: BaseException) -> Any:
        if isinstance(exc, InvalidInputError):
            return (type(exc).__name__, exc.field, self(exc.value), exc.reason, str(exc))
        if isinstance(exc, BrokerError):
            fields = exc._fields()
            for raw, label in self.ids.items():  # the broker's text may name an order id
                fields["error_message"] = (fields["error_message"] or "").replace(str(raw), label)
            return (type(exc).__name__, fields)
        return (type(exc).__name__, str(exc))


async def run_session(impl: str, sim: Simulator, settings: ClientSettings) -> list[Any]:
    """Play every step on a fresh simulator; one record per step."""
    sim.reset()
    records: list[Any] = []
    normalise = Normaliser()
    async with open_client(settings, impl) as client:  # type: ignore[arg-type]
        for name, faults, step in STEPS:
            sim.set_faults(faults)
            try:
                records.append((name, "ok", normalise(await step(client, sim))))
            except Exception as exc:
                records.append((name, "raised", normalise.error(exc)))
    sim.set_faults([])
    return records


async def test_both_sides_agree_on_a_whole_session(sim, settings):
    python = await run_session("python", sim, settings)
    rust = await run_session("rust", sim, settings)
    assert len(python) == len(rust) == len(STEPS)
    for mine, theirs in zip(python, rust, strict=True):
        assert mine == theirs, f"step {mine[0]!r}: python={mine[1:]} rust={theirs[1:]}"
    outcomes = {name: kind for name, kind, _ in python}
    assert outcomes["duplicate"] == outcomes["5xx forever"] == outcomes["401 twice"] == "raised"
    assert outcomes["error_after"] == "ok"


async def test_both_sides_agree_when_the_broker_is_slow(sim, settings):
    # A time-out no normal answer comes near on a loaded machine; slow answers far beyond it.
    quick = with_settings(settings, timeout_s=1.0)
    results = {}
    for impl in ("python", "rust"):
        sim.reset()
        slow_search = fault("/api/Order/search", "slow", delay_ms=15_000)
        sim.set_faults(fault(PLACE, "slow", delay_ms=15_000) + slow_search)
        async with open_client(quick, impl) as client:  # type: ignore[arg-type]
            placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="sl")
        results[impl] = (Normaliser()(placed), [o["customTag"] for o in sim.ledger()])
    assert results["python"] == results["rust"]
    assert results["python"][1] == ["sl"]


async def test_rust_panic_surfaces_as_an_exception_not_a_crash(settings):
    from harness import _native

    native = _native.OrderClient(settings.base_url, settings.username, settings.api_key)
    with pytest.raises(NativePanicError, match="panic"):
        await native._panic_probe()
    assert settings.api_key not in repr(native)
