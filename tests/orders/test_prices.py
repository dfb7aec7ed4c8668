"""Prices on the tick grid: a price a hair off the grid (float noise) is sent exactly on it, for
place and modify, limit, stop and trailing stop; modify checks the grid of the order's contract.

The simulator refuses any price that is not exactly `n * tick` in decimal, so an order that rests
proves the client sent the grid value.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from orderkit import ACCOUNT, requests

from harness.errors import InvalidInputError, NotFoundError, RateLimitedError
from harness.orders import OrderType, open_client
from harness.sim import FaultRule

MGC = "CON.F.US.MGC.Z26"  # tick 0.1
EU6 = "CON.F.US.EU6.Z26"  # tick 0.00005
TICKS_PER_UNIT = {MGC: 10, EU6: 20000}

# (type, price field, side, ticks from the market): each rests instead of filling at once.
RESTING = [
    (OrderType.LIMIT, "limit_price", "buy", -300),
    (OrderType.STOP, "stop_price", "buy", 300),
    (OrderType.TRAILING_STOP, "trail_price", "sell", -300),
]
# The ledger prints a trailing stop's level as its stop price (it rests as a stop).
LEDGER_FIELD = {"limit_price": "limitPrice", "stop_price": "stopPrice", "trail_price": "stopPrice"}


def grid_prices(sim, contract: str) -> Callable[[int], float]:
    """Prices exactly on the contract's grid (the double nearest to n * tick in decimal), by
    their distance in ticks from the market price when this is called."""
    per_unit = TICKS_PER_UNIT[contract]
    market = round(sim.price(contract) * per_unit)
    return lambda ticks_from_market: (market + ticks_from_market) / per_unit


def hair_off(exact: float, direction: int) -> float:
    """The double next to `exact`: what `price + k * tick` in floating point often yields."""
    off = math.nextafter(exact, direction * math.inf)
    assert off != exact
    return off


def ledger_row(sim, order_id: int) -> dict:
    [row] = [o for o in sim.ledger() if o["id"] == order_id]
    return row


@pytest.mark.parametrize("direction", [-1, 1])
@pytest.mark.parametrize(("type_", "field", "side", "ticks"), RESTING)
async def test_price_a_hair_off_the_grid_is_placed_on_the_grid(
    client, clean_sim, type_, field, side, ticks, direction
):
    exact = grid_prices(clean_sim, MGC)(ticks)
    placed = await client.place_order(
        ACCOUNT, MGC, side, 1, type=type_, **{field: hair_off(exact, direction)}
    )
    assert ledger_row(clean_sim, placed.order_id)[LEDGER_FIELD[field]] == exact


async def test_the_literal_float_of_the_issue_is_placed_as_its_grid_value(client, clean_sim):
    limit = 2621.8999999999996  # MGC below the market: the buy limit rests
    assert limit < clean_sim.price(MGC)
    placed = await client.place_order(ACCOUNT, MGC, "buy", 1, type=1, limit_price=limit)
    assert ledger_row(clean_sim, placed.order_id)["limitPrice"] == 2621.9


async def test_a_five_digit_tick_is_snapped_too(client, clean_sim):
    exact = grid_prices(clean_sim, EU6)(-40)
    placed = await client.place_order(
        ACCOUNT, EU6, "buy", 1, type=OrderType.LIMIT, limit_price=hair_off(exact, 1)
    )
    assert ledger_row(clean_sim, placed.order_id)["limitPrice"] == exact


@pytest.mark.parametrize("direction", [-1, 1])
@pytest.mark.parametrize(("type_", "field", "side", "ticks"), RESTING)
async def test_modify_to_a_price_a_hair_off_the_grid_sends_the_grid_value(
    client, clean_sim, type_, field, side, ticks, direction
):
    price = grid_prices(clean_sim, MGC)
    first, moved = price(ticks), price(ticks + (5 if ticks > 0 else -5))
    placed = await client.place_order(ACCOUNT, MGC, side, 1, type=type_, **{field: first})
    await client.modify_order(ACCOUNT, placed.order_id, **{field: hair_off(moved, direction)})
    assert ledger_row(clean_sim, placed.order_id)[LEDGER_FIELD[field]] == moved
    # The client placed the order, so it knew its contract without reading the order.
    assert requests(clean_sim, "/api/Order/searchById") == 0


@pytest.mark.parametrize(("type_", "field", "side", "ticks"), RESTING)
async def test_modify_refuses_a_price_off_the_grid_before_sending(
    client, clean_sim, type_, field, side, ticks
):
    first = grid_prices(clean_sim, MGC)(ticks)
    placed = await client.place_order(ACCOUNT, MGC, side, 1, type=type_, **{field: first})
    off = first + 0.05
    with pytest.raises(InvalidInputError) as info:
        await client.modify_order(ACCOUNT, placed.order_id, **{field: off})
    assert str(info.value) == str(InvalidInputError(field, off, "not on the tick grid of 0.1"))
    assert requests(clean_sim, "/api/Order/modify") == 0


async def test_modify_of_an_order_placed_elsewhere_reads_its_contract_once(
    impl, settings, client, clean_sim
):
    price = grid_prices(clean_sim, MGC)
    placed = await client.place_order(ACCOUNT, MGC, "buy", 1, type=1, limit_price=price(-300))
    moved, last = price(-310), price(-311)
    async with open_client(settings, impl) as other:  # knows nothing of the order
        with pytest.raises(InvalidInputError):
            await other.modify_order(ACCOUNT, placed.order_id, limit_price=moved + 0.03)
        await other.modify_order(ACCOUNT, placed.order_id, limit_price=hair_off(moved, -1))
        await other.modify_order(ACCOUNT, placed.order_id, size=2, limit_price=moved - 0.1)
    row = ledger_row(clean_sim, placed.order_id)
    assert (row["limitPrice"], row["size"]) == (last, 2)
    assert requests(clean_sim, "/api/Order/modify") == 2
    assert requests(clean_sim, "/api/Order/searchById") == 1


async def test_modify_is_not_sent_when_the_order_cannot_be_read(impl, settings, client, clean_sim):
    placed = await client.place_order(
        ACCOUNT, MGC, "buy", 1, type=1, limit_price=grid_prices(clean_sim, MGC)(-300)
    )
    clean_sim.set_faults(rate_limited_reads())
    async with open_client(settings, impl) as other:  # must read the order to learn its tick
        with pytest.raises(RateLimitedError) as info:
            await other.modify_order(ACCOUNT, placed.order_id, limit_price=2000.0)
    assert info.value.endpoint == "/api/Order/searchById"
    assert requests(clean_sim, "/api/Order/modify") == 0


def rate_limited_reads() -> list[FaultRule]:
    return [FaultRule(path="/api/Order/searchById", kind="rate_limit", count=None)]


async def test_modify_of_an_unknown_order_is_left_to_the_broker(client, clean_sim):
    with pytest.raises(NotFoundError):
        await client.modify_order(ACCOUNT, 424242, limit_price=100.03)
    assert requests(clean_sim, "/api/Order/modify") == 1


async def test_a_size_only_modify_needs_no_contract(impl, settings, client, clean_sim):
    first = grid_prices(clean_sim, MGC)(-300)
    placed = await client.place_order(ACCOUNT, MGC, "buy", 1, type=1, limit_price=first)
    async with open_client(settings, impl) as other:
        await other.modify_order(ACCOUNT, placed.order_id, size=3)
    assert requests(clean_sim, "/api/Order/searchById") == 0
    assert ledger_row(clean_sim, placed.order_id)["size"] == 3
