"""The Python client's account reads and last resort (`open_orders`, `open_positions`,
`retrieve_bars`, `close_position`): not migrated operations, so the Python side alone serves
them (the routed client delegates to it). Against the simulator over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from orderkit import ACCOUNT, MNQ, requests

from harness import projectx as px
from harness.errors import InvalidInputError, OrderRejectedError
from harness.orders import AccountReads, ClientSettings
from harness.orders.python import PythonOrderClient
from harness.sim import Simulator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def python(settings: ClientSettings) -> AsyncIterator[PythonOrderClient]:
    async with PythonOrderClient(settings) as client:
        yield client


async def test_bars_come_oldest_first_on_the_tick_grid(python, clean_sim: Simulator):
    assert isinstance(python, AccountReads)
    end = datetime.now(UTC)
    bars = await python.retrieve_bars("MNQ", start=end - timedelta(days=1), end=end, limit=90)
    assert len(bars) == 90  # the most recent 90 of the day's minutes
    stamps = [b.t for b in bars]
    assert stamps == sorted(stamps) and len(set(stamps)) == 90  # the gateway sent newest first
    assert all(b.t.tzinfo is not None for b in bars)
    assert end - stamps[-1] < timedelta(minutes=1)  # the forming minute is included
    for bar in bars:
        assert bar.l <= min(bar.o, bar.c) <= max(bar.o, bar.c) <= bar.h
        for price in (bar.o, bar.h, bar.l, bar.c):
            assert price * 4 == int(price * 4)  # MNQ's grid: quarters
    assert requests(clean_sim, px.HISTORY_RETRIEVE_BARS) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"limit": 0}, "limit"), ({"limit": 20_001}, "limit"), ({"unit": 9}, "unit")],
)
async def test_bad_bar_requests_are_refused_before_sending(python, clean_sim, kwargs, field):
    end = datetime.now(UTC)
    args = {"start": end - timedelta(hours=1), "end": end, "limit": 10, **kwargs}
    with pytest.raises(InvalidInputError) as refused:
        await python.retrieve_bars(MNQ, **args)
    assert refused.value.field == field
    assert requests(clean_sim, px.HISTORY_RETRIEVE_BARS) == 0


async def test_open_orders_and_positions_and_closing_one(python):
    assert await python.open_orders(ACCOUNT) == []
    assert await python.open_positions(ACCOUNT) == []
    await python.place_market_order(ACCOUNT, MNQ, "buy", 2, custom_tag="reads-entry")
    price = (await python.retrieve_bars(MNQ, start=datetime.now(UTC) - timedelta(hours=1),
                                        end=datetime.now(UTC), limit=1))[-1].c  # fmt: skip
    stop = await python.place_order(
        ACCOUNT, MNQ, "sell", 2, type=px.OrderType.STOP, stop_price=price - 50.0,
        custom_tag="reads-stop",
    )  # fmt: skip
    (working,) = await python.open_orders(ACCOUNT)
    assert (working.id, working.custom_tag, working.status) == (stop.order_id, "reads-stop", 1)
    (held,) = await python.open_positions(ACCOUNT)
    assert (held.contract_id, held.type, held.size) == (MNQ, px.PositionType.LONG, 2)
    await python.close_position(ACCOUNT, "MNQ")
    assert await python.open_positions(ACCOUNT) == []
    with pytest.raises(OrderRejectedError):  # nothing left to close
        await python.close_position(ACCOUNT, MNQ)
    await python.cancel_order(ACCOUNT, stop.order_id)
    assert await python.open_orders(ACCOUNT) == []
