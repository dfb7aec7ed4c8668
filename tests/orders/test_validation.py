"""Input checks: refused before anything is sent, the field and the value named, same text."""

from __future__ import annotations

import math

import pytest
from orderkit import ACCOUNT, MNQ, requests

from harness.errors import InvalidInputError
from harness.orders import validation as v
from harness.projectx import OrderType, Side

# (call, expected field, expected value, expected reason); each call has exactly one bad input.
PLACE_CASES = [
    ({"size": 0}, "size", 0, v.POSITIVE_INT),
    ({"size": -3}, "size", -3, v.POSITIVE_INT),
    ({"size": 1.5}, "size", 1.5, v.POSITIVE_INT),
    ({"size": True}, "size", True, v.POSITIVE_INT),
    ({"size": "2"}, "size", "2", v.POSITIVE_INT),
    ({"side": "hold"}, "side", "hold", v.SIDE),
    ({"side": 2}, "side", 2, v.SIDE),
    ({"side": None}, "side", None, v.SIDE),
    ({"side": False}, "side", False, v.SIDE),
    ({"account_id": 0}, "account_id", 0, v.POSITIVE_INT),
    ({"account_id": "1001"}, "account_id", "1001", v.POSITIVE_INT),
    ({"contract_id": ""}, "contract_id", "", v.CONTRACT_KEY),
    ({"contract_id": "   "}, "contract_id", "   ", v.CONTRACT_KEY),
    ({"contract_id": 42}, "contract_id", 42, v.CONTRACT_KEY),
    ({"type": 9}, "type", 9, v.ORDER_TYPE),
    ({"type": "limit"}, "type", "limit", v.ORDER_TYPE),
    ({"type": 1, "limit_price": math.nan}, "limit_price", math.nan, v.PRICE),
    ({"type": 1, "limit_price": "100"}, "limit_price", "100", v.PRICE),
    ({"type": 4, "stop_price": math.inf}, "stop_price", math.inf, v.PRICE),
    ({"type": 5, "trail_price": True}, "trail_price", True, v.PRICE),
    ({"custom_tag": ""}, "custom_tag", "", v.CUSTOM_TAG),
    ({"custom_tag": 7}, "custom_tag", 7, v.CUSTOM_TAG),
    ({"brackets": "tight"}, "brackets", "tight", v.BRACKETS),
    ({"brackets": {"stop_loss": {"ticks": "8", "type": 4}}}, "brackets", None, v.BRACKETS),
]


def expected_text(field: str, value: object, reason: str) -> str:
    return str(InvalidInputError(field, value, reason))


@pytest.mark.parametrize(("change", "field", "value", "reason"), PLACE_CASES)
async def test_place_refuses_bad_input_before_sending(
    client, clean_sim, change, field, value, reason
):
    args = {"account_id": ACCOUNT, "contract_id": "MNQ", "side": "buy", "size": 1, **change}
    positional = [args.pop(k) for k in ("account_id", "contract_id", "side", "size")]
    with pytest.raises(InvalidInputError) as info:
        await client.place_order(*positional, **args)
    err = info.value
    assert err.field == field and err.reason == reason
    if value is not None:
        assert str(err) == expected_text(field, value, reason)
    assert requests(clean_sim, "/api/Order/place") == 0


@pytest.mark.parametrize(
    ("field", "price", "type_"),
    [("limit_price", 100.1, 1), ("stop_price", 20000.3, 4), ("trail_price", 1.01, 5)],
)
async def test_price_off_the_tick_grid_is_refused(client, clean_sim, field, price, type_):
    with pytest.raises(InvalidInputError) as info:
        await client.place_order(ACCOUNT, "MNQ", "sell", 1, type=type_, **{field: price})
    assert str(info.value) == expected_text(field, price, "not on the tick grid of 0.25")
    assert requests(clean_sim, "/api/Order/place") == 0


async def test_unresolvable_contract_is_refused_before_placing(client, clean_sim):
    with pytest.raises(InvalidInputError) as info:
        await client.place_market_order(ACCOUNT, "ZZZ", "buy", 1)
    assert str(info.value) == expected_text("contract_id", "ZZZ", v.UNKNOWN_CONTRACT)
    assert requests(clean_sim, "/api/Order/place") == 0


@pytest.mark.parametrize(
    ("call", "field", "value", "reason"),
    [
        (lambda c: c.modify_order(ACCOUNT, 5), "modify", None, v.MODIFY_NOTHING),
        (lambda c: c.modify_order(ACCOUNT, 0, size=1), "order_id", 0, v.POSITIVE_INT),
        (lambda c: c.modify_order(ACCOUNT, 5, size=0), "size", 0, v.POSITIVE_INT),
        (
            lambda c: c.modify_order(ACCOUNT, 5, limit_price=math.nan),
            "limit_price",
            math.nan,
            v.PRICE,
        ),
        (lambda c: c.modify_order(-1, 5, size=1), "account_id", -1, v.POSITIVE_INT),
        (lambda c: c.cancel_order(ACCOUNT, "12"), "order_id", "12", v.POSITIVE_INT),
        (lambda c: c.cancel_order(None, 12), "account_id", None, v.POSITIVE_INT),
        (lambda c: c.get_order(ACCOUNT, 2.0), "order_id", 2.0, v.POSITIVE_INT),
        (lambda c: c.find_order_by_tag(ACCOUNT, ""), "custom_tag", "", v.CUSTOM_TAG),
        (lambda c: c.find_order_by_tag(ACCOUNT, None), "custom_tag", None, v.CUSTOM_TAG),
        (lambda c: c.resolve_contract(""), "contract_id", "", v.CONTRACT_KEY),
    ],
)
async def test_other_calls_refuse_bad_input(client, clean_sim, call, field, value, reason):
    with pytest.raises(InvalidInputError) as info:
        await call(client)
    assert str(info.value) == expected_text(field, value, reason)
    assert (info.value.field, info.value.reason) == (field, reason)
    sent = clean_sim.stats()["requests"]
    assert not any(p.startswith("/api/Order/") for p in sent), sent


@pytest.mark.parametrize("side", ["buy", "BUY", "Sell", 0, 1, Side.BID, Side.ASK])
async def test_every_accepted_side_spelling_places(client, clean_sim, side):
    placed = await client.place_market_order(ACCOUNT, MNQ, side, 1)
    [row] = [o for o in clean_sim.ledger() if o["id"] == placed.order_id]
    assert row["side"] == (0 if str(side).lower() in ("buy", "0", "side.bid") else 1)


# ----- each order type takes exactly its own price -------------------------------------------

NEEDED = [
    (OrderType.LIMIT, "limit_price", {}),
    (OrderType.STOP, "stop_price", {}),
    (OrderType.TRAILING_STOP, "trail_price", {}),
    # The needed price is missing even though another one is given.
    (OrderType.LIMIT, "limit_price", {"stop_price": 20000.0}),
]


@pytest.mark.parametrize(("type_", "field", "others"), NEEDED)
async def test_order_type_without_its_price_is_refused_before_sending(
    client, clean_sim, type_, field, others
):
    with pytest.raises(InvalidInputError) as info:
        await client.place_order(ACCOUNT, "MNQ", "buy", 1, type=type_, **others)
    err = info.value
    reason = v.PRICE_REQUIRED.format(type=type_.name)
    assert (err.field, err.value, err.reason) == (field, None, reason)
    assert str(err) == f"invalid {field}=None: required by order type {type_.name}"
    assert requests(clean_sim, "/api/Order/place") == 0
    assert requests(clean_sim, "/api/Contract/search") == 0, "refused before any request"


NOT_TAKEN = [
    (None, "limit_price", {"limit_price": 21000.0}),  # type left out: a market order
    (OrderType.MARKET, "stop_price", {"stop_price": 21000}),
    (OrderType.LIMIT, "stop_price", {"limit_price": 21000.0, "stop_price": 20990.0}),
    (OrderType.STOP, "limit_price", {"stop_price": 21000.0, "limit_price": 20990.0}),
    (OrderType.TRAILING_STOP, "stop_price", {"trail_price": 21000.0, "stop_price": 20990.0}),
    (OrderType.JOIN_BID, "limit_price", {"limit_price": 21000.0}),
    (OrderType.JOIN_ASK, "trail_price", {"trail_price": 21000.0}),
]


@pytest.mark.parametrize(("type_", "field", "prices"), NOT_TAKEN)
async def test_price_the_order_type_does_not_take_is_refused_before_sending(
    client, clean_sim, type_, field, prices
):
    kwargs = dict(prices) if type_ is None else {"type": type_, **prices}
    with pytest.raises(InvalidInputError) as info:
        await client.place_order(ACCOUNT, "MNQ", "buy", 1, **kwargs)
    err = info.value
    name = (type_ or OrderType.MARKET).name
    assert (err.field, err.reason) == (field, v.PRICE_NOT_TAKEN.format(type=name))
    assert str(err) == str(InvalidInputError(field, prices[field], err.reason))
    assert requests(clean_sim, "/api/Order/place") == 0
