"""Orders over HTTP: place, modify, cancel, the searches, and every documented error code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from simkit import ACCOUNT, MNQ, Api

from harness.projectx import CancelCode, ModifyCode, OrderStatus, PlaceCode

ORDER_KEYS = {
    "id", "accountId", "contractId", "symbolId", "creationTimestamp", "updateTimestamp",
    "status", "type", "side", "size", "limitPrice", "stopPrice", "fillVolume", "filledPrice",
    "customTag",
}  # fmt: skip


def _since(minutes: float = 5) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def _resting_buy(api: Api, **fields) -> int:
    """A buy limit far below the market: it rests Open."""
    below = api.sim.price(MNQ) - 500
    body = api.place(type=1, limitPrice=below, **fields)
    assert body["success"], body
    return body["orderId"]


def _get(api: Api, order_id: int) -> dict:
    return api.call("/api/Order/searchById", {"accountId": ACCOUNT, "orderId": order_id})["order"]


def test_market_order_fills_at_once_with_an_int64_id(api: Api) -> None:
    body = api.place(size=3, customTag="m-1")
    assert body == {
        "orderId": body["orderId"],
        "success": True,
        "errorCode": 0,
        "errorMessage": None,
    }
    assert isinstance(body["orderId"], int) and body["orderId"] > 2**32
    order = _get(api, body["orderId"])
    assert set(order) == ORDER_KEYS
    assert order["status"] == OrderStatus.FILLED and order["fillVolume"] == 3
    assert order["filledPrice"] % 0.25 == 0 and order["customTag"] == "m-1"
    assert order["creationTimestamp"].endswith("+00:00")


def test_order_ids_are_distinct_and_increasing(api: Api) -> None:
    ids = [api.place()["orderId"] for _ in range(3)]
    assert ids == sorted(set(ids))


def test_duplicate_custom_tag_on_one_account_is_code_2(api: Api) -> None:
    assert api.place(customTag="dup")["success"]
    again = api.place(customTag="dup")
    assert (again["success"], again["errorCode"]) == (False, PlaceCode.ORDER_REJECTED)
    assert "dup" in again["errorMessage"]
    other_account = api.place(accountId=1002, customTag="dup")
    assert other_account["success"] is True  # unique per account, not globally
    assert [o["customTag"] for o in api.sim.ledger()] == ["dup", "dup"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"accountId": 999}, PlaceCode.ACCOUNT_NOT_FOUND),
        ({"contractId": "CON.F.US.XYZ.Z26"}, PlaceCode.CONTRACT_NOT_FOUND),
        ({"contractId": "CON.F.US.MNQ.U26"}, PlaceCode.CONTRACT_NOT_ACTIVE),
        ({"size": 0}, PlaceCode.ORDER_REJECTED),
        ({"size": -2}, PlaceCode.ORDER_REJECTED),
        ({"side": 2}, PlaceCode.ORDER_REJECTED),
        ({"type": 3, "limitPrice": 100.0, "stopPrice": 100.0}, PlaceCode.ORDER_REJECTED),
        ({"type": 1}, PlaceCode.ORDER_REJECTED),  # a limit without limitPrice
        ({"type": 1, "limitPrice": 100.1}, PlaceCode.ORDER_REJECTED),  # off the 0.25 grid
        ({"type": 4, "stopPrice": 100.30}, PlaceCode.ORDER_REJECTED),
        ({"stopLossBracket": {"ticks": 10, "type": 4}}, PlaceCode.ORDER_REJECTED),
    ],
)
def test_place_rejections_carry_the_documented_code(api: Api, fields: dict, code: int) -> None:
    body = api.place(**fields)
    assert body["success"] is False and body["errorCode"] == code
    assert body["orderId"] is None and body["errorMessage"]
    assert api.sim.ledger() == []


@pytest.mark.parametrize("missing", ["accountId", "contractId", "type", "side", "size"])
def test_place_without_a_required_field_is_400(api: Api, missing: str) -> None:
    body = {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": 0, "size": 1}
    del body[missing]
    resp = api.raw("/api/Order/place", body)
    assert resp.status_code == 400 and missing in resp.json()["errors"]


def test_wrongly_typed_field_is_400(api: Api) -> None:
    resp = api.raw(
        "/api/Order/place",
        {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": 0, "size": "one"},
    )
    assert resp.status_code == 400


def test_limit_order_rests_open_and_shows_in_search_open(api: Api) -> None:
    order_id = _resting_buy(api, customTag="rest")
    order = _get(api, order_id)
    assert order["status"] == OrderStatus.OPEN and order["fillVolume"] == 0
    assert order["filledPrice"] is None and order["limitPrice"] % 0.25 == 0
    open_ids = [
        o["id"] for o in api.call("/api/Order/searchOpen", {"accountId": ACCOUNT})["orders"]
    ]
    assert open_ids == [order_id]


def test_stop_order_rests_until_the_price_goes_through_it(api: Api) -> None:
    above = api.sim.price(MNQ) + 500
    body = api.place(type=4, side=0, stopPrice=above)
    assert _get(api, body["orderId"])["status"] == OrderStatus.OPEN


def test_marketable_limit_fills_at_once(api: Api) -> None:
    body = api.place(type=1, side=0, limitPrice=api.sim.price(MNQ) + 100)
    assert _get(api, body["orderId"])["status"] == OrderStatus.FILLED


def test_modify_changes_price_and_size_of_an_open_order(api: Api) -> None:
    order_id = _resting_buy(api)
    new_price = api.sim.price(MNQ) - 400.25
    body = api.call("/api/Order/modify", {"accountId": ACCOUNT, "orderId": order_id,
                                          "limitPrice": new_price})  # fmt: skip
    assert body == {"success": True, "errorCode": 0, "errorMessage": None}
    api.call("/api/Order/modify", {"accountId": ACCOUNT, "orderId": order_id, "size": 4})
    order = _get(api, order_id)
    assert (order["limitPrice"], order["size"], order["status"]) == (new_price, 4, OrderStatus.OPEN)


def test_modify_into_the_market_fills(api: Api) -> None:
    order_id = _resting_buy(api)
    api.call("/api/Order/modify", {"accountId": ACCOUNT, "orderId": order_id,
                                   "limitPrice": api.sim.price(MNQ) + 50})  # fmt: skip
    assert _get(api, order_id)["status"] == OrderStatus.FILLED


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"accountId": 999}, ModifyCode.ACCOUNT_NOT_FOUND),
        ({"orderId": 6_999_999_999}, ModifyCode.ORDER_NOT_FOUND),
        ({"accountId": 1002}, ModifyCode.ORDER_NOT_FOUND),  # another account's order
        ({"limitPrice": 100.13}, ModifyCode.REJECTED),  # off the grid
        ({"size": 0}, ModifyCode.REJECTED),
        ({"stopPrice": 100.0}, ModifyCode.REJECTED),  # not a field of a limit order
        ({}, ModifyCode.REJECTED),  # nothing to change
    ],
)
def test_modify_errors_carry_the_documented_code(api: Api, change: dict, code: int) -> None:
    order_id = _resting_buy(api)
    body = api.call("/api/Order/modify", {"accountId": ACCOUNT, "orderId": order_id, **change})
    assert (body["success"], body["errorCode"]) == (False, code)


def test_modify_or_cancel_of_a_filled_order_is_rejected_code_3(api: Api) -> None:
    order_id = api.place()["orderId"]
    body = api.call("/api/Order/modify", {"accountId": ACCOUNT, "orderId": order_id, "size": 2})
    assert (body["success"], body["errorCode"]) == (False, ModifyCode.REJECTED)
    body = api.call("/api/Order/cancel", {"accountId": ACCOUNT, "orderId": order_id})
    assert (body["success"], body["errorCode"]) == (False, CancelCode.REJECTED)
    assert "not open" in body["errorMessage"]


def test_cancel_then_cancel_again(api: Api) -> None:
    order_id = _resting_buy(api)
    body = api.call("/api/Order/cancel", {"accountId": ACCOUNT, "orderId": order_id})
    assert body == {"success": True, "errorCode": 0, "errorMessage": None}
    assert _get(api, order_id)["status"] == OrderStatus.CANCELLED
    again = api.call("/api/Order/cancel", {"accountId": ACCOUNT, "orderId": order_id})
    assert (again["success"], again["errorCode"]) == (False, CancelCode.REJECTED)
    assert api.call("/api/Order/searchOpen", {"accountId": ACCOUNT})["orders"] == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"accountId": 999}, CancelCode.ACCOUNT_NOT_FOUND),
        ({"orderId": 6_999_999_999}, CancelCode.ORDER_NOT_FOUND),
    ],
)
def test_cancel_errors_carry_the_documented_code(api: Api, change: dict, code: int) -> None:
    order_id = _resting_buy(api)
    body = api.call("/api/Order/cancel", {"accountId": ACCOUNT, "orderId": order_id, **change})
    assert (body["success"], body["errorCode"]) == (False, code)


@pytest.mark.parametrize("path", ["/api/Order/modify", "/api/Order/cancel"])
def test_modify_and_cancel_without_order_id_are_400(api: Api, path: str) -> None:
    assert api.raw(path, {"accountId": ACCOUNT}).status_code == 400


def test_search_finds_orders_in_the_window_and_by_tag(api: Api) -> None:
    first = api.place(customTag="s-1")["orderId"]
    second = _resting_buy(api, customTag="s-2")
    body = api.call("/api/Order/search", {"accountId": ACCOUNT, "startTimestamp": _since()})
    assert [o["id"] for o in body["orders"]] == [first, second]
    assert all(set(o) == ORDER_KEYS for o in body["orders"])
    tagged = [o for o in body["orders"] if o["customTag"] == "s-2"]
    assert [o["status"] for o in tagged] == [OrderStatus.OPEN]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = api.call("/api/Order/search", {"accountId": ACCOUNT, "startTimestamp": future})
    assert later["orders"] == []
    z = api.call("/api/Order/search", {"accountId": ACCOUNT,
                                       "startTimestamp": "2020-01-01T00:00:00Z",
                                       "endTimestamp": _since(-1)})  # fmt: skip
    assert len(z["orders"]) == 2


def test_search_requires_a_start_timestamp(api: Api) -> None:
    assert api.raw("/api/Order/search", {"accountId": ACCOUNT}).status_code == 400


def test_search_by_id_of_a_missing_order_is_success_false(api: Api) -> None:
    body = api.call("/api/Order/searchById", {"accountId": ACCOUNT, "orderId": 123})
    assert body["success"] is False and body["order"] is None and body["errorCode"] == 1


def test_string_ids_setting_prints_order_ids_as_numeric_strings(api: Api) -> None:
    api.sim.set_faults([], string_ids=True)
    body = api.place(customTag="str")
    assert isinstance(body["orderId"], str) and body["orderId"].isdigit()
    order_id = int(body["orderId"])
    order = _get(api, order_id)  # the simulator accepts the number back
    assert order["id"] == body["orderId"]
    rows = api.call("/api/Order/search", {"accountId": ACCOUNT, "startTimestamp": _since()})
    assert [o["id"] for o in rows["orders"]] == [body["orderId"]]
    trades = api.call("/api/Trade/search", {"accountId": ACCOUNT, "startTimestamp": _since()})
    assert [t["orderId"] for t in trades["trades"]] == [body["orderId"]]
    assert api.sim.ledger()[0]["id"] == order_id  # the inspection view keeps numbers


def test_join_bid_join_ask_and_trailing_stop_rest_open(api: Api) -> None:
    price = api.sim.price(MNQ)
    join_bid = api.place(type=6, side=0)["orderId"]
    join_ask = api.place(type=7, side=1)["orderId"]
    trailing = api.place(type=5, side=1, trailPrice=price - 300)["orderId"]
    rows = {o["id"]: o for o in api.call("/api/Order/searchOpen", {"accountId": ACCOUNT})["orders"]}
    assert set(rows) == {join_bid, join_ask, trailing}
    assert rows[join_bid]["limitPrice"] < rows[join_ask]["limitPrice"]
    assert rows[trailing]["stopPrice"] == price - 300
    body = {"accountId": ACCOUNT, "orderId": trailing, "trailPrice": price - 200}
    assert api.call("/api/Order/modify", body)["success"] is True
    assert _get(api, trailing)["stopPrice"] == price - 200
    assert api.sim.stats()["internal_errors"] == []
