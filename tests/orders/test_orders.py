"""Placing, modifying and cancelling orders, and how the broker's refusals are mapped."""

from __future__ import annotations

import re

import pytest
from orderkit import ACCOUNT, MNQ, orders_tagged, requests

from harness.errors import NotFoundError, OrderRejectedError
from harness.projectx import OrderStatus, OrderType, Side


async def test_market_order_is_placed_and_filled(client, clean_sim):
    placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 2)
    assert re.fullmatch(r"hx-[0-9a-f]{24}", placed.custom_tag)
    assert (placed.reconciled, placed.attempts) == (False, 1)
    order = await client.get_order(ACCOUNT, placed.order_id)
    assert order is not None
    assert (order.contract_id, order.type, order.side, order.size) == (MNQ, 2, 0, 2)
    assert order.status == OrderStatus.FILLED and order.fill_volume == 2
    assert order.custom_tag == placed.custom_tag
    assert order.creation_timestamp is not None and order.creation_timestamp.tzinfo is not None
    [row] = orders_tagged(clean_sim, placed.custom_tag)
    assert row["id"] == placed.order_id


async def test_generated_tags_are_unique(client):
    first = await client.place_market_order(ACCOUNT, MNQ, Side.ASK, 1)
    second = await client.place_market_order(ACCOUNT, MNQ, Side.ASK, 1)
    assert first.custom_tag != second.custom_tag
    assert first.order_id != second.order_id


async def test_limit_order_rests_then_is_modified_and_cancelled(client, clean_sim):
    below = clean_sim.price(MNQ) - 500.0
    placed = await client.place_order(
        ACCOUNT, "MNQ", "BUY", 1, type=OrderType.LIMIT, limit_price=below, custom_tag="lim-1"
    )
    assert placed.custom_tag == "lim-1"
    order = await client.find_order_by_tag(ACCOUNT, "lim-1")
    assert order is not None and order.status == OrderStatus.OPEN
    assert order.limit_price == below and order.id == placed.order_id
    await client.modify_order(ACCOUNT, placed.order_id, limit_price=below - 0.25, size=3)
    order = await client.get_order(ACCOUNT, placed.order_id)
    assert (order.limit_price, order.size) == (below - 0.25, 3)
    await client.cancel_order(ACCOUNT, placed.order_id)
    order = await client.get_order(ACCOUNT, placed.order_id)
    assert order.status == OrderStatus.CANCELLED
    assert requests(clean_sim, "/api/Order/modify") == 1
    assert requests(clean_sim, "/api/Order/cancel") == 1


async def test_stop_order_rests_at_its_price(client, clean_sim):
    above = clean_sim.price(MNQ) + 500.0
    placed = await client.place_order(
        ACCOUNT, MNQ, 0, 1, type=OrderType.STOP, stop_price=above, custom_tag="stop-1"
    )
    order = await client.get_order(ACCOUNT, placed.order_id)
    assert (order.type, order.stop_price, order.status) == (4, above, OrderStatus.OPEN)
    await client.modify_order(ACCOUNT, placed.order_id, stop_price=above + 1.0)
    assert (await client.get_order(ACCOUNT, placed.order_id)).stop_price == above + 1.0


async def test_duplicate_tag_is_rejected_with_code_2(client, clean_sim):
    await client.place_market_order(ACCOUNT, "MNQ", "sell", 1, custom_tag="dup")
    with pytest.raises(OrderRejectedError) as info:
        await client.place_market_order(ACCOUNT, "MNQ", "sell", 1, custom_tag="dup")
    err = info.value
    assert type(err) is OrderRejectedError
    assert (err.endpoint, err.error_code, err.http_status) == ("/api/Order/place", 2, 200)
    assert (err.maybe_sent, err.attempts) == (False, 1)
    assert "dup" in err.error_message
    assert len(orders_tagged(clean_sim, "dup")) == 1


async def test_cancel_of_unknown_order_is_not_found(client):
    with pytest.raises(NotFoundError) as info:
        await client.cancel_order(ACCOUNT, 424242)
    err = info.value
    assert (err.endpoint, err.error_code, err.http_status, err.maybe_sent) == (
        "/api/Order/cancel",
        2,
        200,
        False,
    )


async def test_modify_of_unknown_order_is_not_found(client):
    with pytest.raises(NotFoundError) as info:
        await client.modify_order(ACCOUNT, 424242, size=2)
    assert (info.value.endpoint, info.value.error_code) == ("/api/Order/modify", 2)


async def test_modify_of_filled_order_is_rejected_not_missing(client):
    placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1)
    with pytest.raises(OrderRejectedError) as info:
        await client.modify_order(ACCOUNT, placed.order_id, size=2)
    err = info.value
    assert type(err) is OrderRejectedError
    assert (err.endpoint, err.error_code, err.maybe_sent) == ("/api/Order/modify", 3, False)


async def test_second_cancel_is_rejected(client, clean_sim):
    placed = await client.place_order(
        ACCOUNT, "MNQ", "buy", 1, type=1, limit_price=clean_sim.price(MNQ) - 300.0
    )
    await client.cancel_order(ACCOUNT, placed.order_id)
    with pytest.raises(OrderRejectedError) as info:
        await client.cancel_order(ACCOUNT, placed.order_id)
    assert type(info.value) is OrderRejectedError and info.value.error_code == 3


async def test_unknown_account_is_rejected_with_code_1(client):
    with pytest.raises(OrderRejectedError) as info:
        await client.place_market_order(9999, "MNQ", "buy", 1)
    assert (type(info.value), info.value.error_code) == (OrderRejectedError, 1)


async def test_brackets_are_sent_and_refused_by_a_non_oco_account(client, clean_sim):
    with pytest.raises(OrderRejectedError) as info:
        await client.place_order(
            ACCOUNT, "MNQ", "buy", 1, brackets={"stop_loss": {"ticks": 8, "type": 4}}
        )
    assert info.value.error_code == 2 and "Bracket" in info.value.error_message
    assert clean_sim.ledger() == []
