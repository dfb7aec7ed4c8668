"""Positions and trades follow from fills; resting orders fill when the price path crosses them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from simkit import ACCOUNT, MNQ, Api

from harness.projectx import OrderStatus
from harness.sim import SimSettings
from harness.sim.gateway import Gateway

POSITION_KEYS = {
    "id",
    "accountId",
    "contractId",
    "creationTimestamp",
    "type",
    "size",
    "averagePrice",
}
TRADE_KEYS = {
    "id", "accountId", "contractId", "creationTimestamp", "price", "profitAndLoss", "fees",
    "side", "size", "voided", "orderId",
}  # fmt: skip


def _since() -> str:
    return (datetime.now(UTC) - timedelta(minutes=5)).isoformat()


def _positions(api: Api) -> list[dict]:
    return api.call("/api/Position/searchOpen", {"accountId": ACCOUNT})["positions"]


def _trades(api: Api) -> list[dict]:
    body = {"accountId": ACCOUNT, "startTimestamp": _since(), "contractId": MNQ}  # extra key
    return api.call("/api/Trade/search", body)["trades"]


def test_fills_build_a_position_and_trades(api: Api) -> None:
    first = api.place(size=2)["orderId"]
    [position] = _positions(api)
    assert set(position) == POSITION_KEYS
    assert (position["type"], position["size"], position["contractId"]) == (1, 2, MNQ)
    [trade] = _trades(api)
    assert set(trade) == TRADE_KEYS
    assert trade["orderId"] == first and trade["profitAndLoss"] is None  # an opening fill
    assert trade["fees"] == 0.74 and trade["voided"] is False and trade["price"] % 0.25 == 0


def test_a_closing_fill_has_profit_and_loss_and_flips_the_position(api: Api) -> None:
    api.place(size=2, side=0)
    api.place(size=3, side=1)
    [position] = _positions(api)
    assert (position["type"], position["size"]) == (2, 1)  # now short 1
    opening, closing = _trades(api)
    assert opening["profitAndLoss"] is None
    expected = (closing["price"] - opening["price"]) * 2 / 0.25 * 0.5
    assert closing["profitAndLoss"] == expected


def test_close_contract_closes_by_market_order(api: Api) -> None:
    api.place(size=2)
    body = api.call("/api/Position/closeContract", {"accountId": ACCOUNT, "contractId": MNQ})
    assert body == {"success": True, "errorCode": 0, "errorMessage": None}
    assert _positions(api) == []
    closer = api.sim.ledger()[-1]
    assert (closer["type"], closer["side"], closer["size"], closer["status"]) == (2, 1, 2, 2)


def test_partial_close_leaves_the_rest(api: Api) -> None:
    api.place(size=3)
    body = {"accountId": ACCOUNT, "contractId": MNQ, "size": 2}
    assert api.call("/api/Position/partialCloseContract", body)["success"] is True
    assert [p["size"] for p in _positions(api)] == [1]
    too_many = api.call("/api/Position/partialCloseContract", body)
    assert too_many["success"] is False and too_many["errorCode"] == 3


def test_closing_without_a_position_is_success_false(api: Api) -> None:
    body = api.call("/api/Position/closeContract", {"accountId": ACCOUNT, "contractId": MNQ})
    assert (body["success"], body["errorCode"]) == (False, 2)
    body = api.call("/api/Position/closeContract", {"accountId": 999, "contractId": MNQ})
    assert (body["success"], body["errorCode"]) == (False, 1)
    assert api.raw("/api/Position/closeContract", {"accountId": ACCOUNT}).status_code == 400


def test_balance_moves_by_fees_and_profit(api: Api) -> None:
    api.place(size=1, side=0)
    api.place(size=1, side=1)
    trades = _trades(api)
    [account] = [
        a
        for a in api.call("/api/Account/search", {"onlyActiveAccounts": True})["accounts"]
        if a["id"] == ACCOUNT
    ]
    expected = 50_000 + trades[1]["profitAndLoss"] - sum(t["fees"] for t in trades)
    assert account["balance"] == round(expected, 2)


# -- triggers, driven by a fake clock (the path is a function of time) --------------------------
T0 = 1_795_000_000.0  # a fixed instant: the test is deterministic under the seed


class Clock:
    """A settable clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _gateway() -> tuple[Gateway, Clock]:
    clock = Clock(T0)
    return Gateway(SimSettings(seed=11), clock=clock), clock


def _place(g: Gateway, clock: Clock, **fields) -> int:
    body = {"accountId": ACCOUNT, "contractId": MNQ, "type": 1, "side": 0, "size": 1, **fields}
    out = g.order_place(body, clock.now)
    assert out["success"], out
    return out["orderId"]


def test_a_buy_limit_fills_at_its_price_when_the_path_comes_down_to_it() -> None:
    g, clock = _gateway()
    path = g.paths[MNQ]
    prices, _ = path.seconds(int(T0) + 1, int(T0) + 3600)
    now_price = path.price_at(int(T0))
    low = int(prices.min())
    assert low < now_price  # the path dips within the hour (true for this seed and instant)
    limit = g.contracts[MNQ].price(low)
    order_id = _place(g, clock, limitPrice=limit)
    assert g.orders[order_id].status == OrderStatus.OPEN
    clock.now = T0 + 3600
    g.sweep(clock.now)
    order = g.orders[order_id].to_json()
    assert order["status"] == OrderStatus.FILLED and order["filledPrice"] == limit
    first_touch = int(T0) + 1 + int((prices <= low).argmax())
    assert order["updateTimestamp"] == datetime.fromtimestamp(first_touch, UTC).isoformat()
    assert [t.order_id for t in g.trades] == [order_id]


def test_a_buy_stop_fills_at_the_first_price_through_it() -> None:
    g, clock = _gateway()
    path = g.paths[MNQ]
    prices, _ = path.seconds(int(T0) + 1, int(T0) + 3600)
    high = int(prices.max())
    assert high > path.price_at(int(T0))
    order_id = _place(g, clock, type=4, stopPrice=g.contracts[MNQ].price(high))
    assert g.orders[order_id].status == OrderStatus.OPEN
    clock.now = T0 + 3600
    g.sweep(clock.now)
    order = g.orders[order_id]
    assert order.status == OrderStatus.FILLED and order.filled_ticks == high


def test_an_order_the_path_never_reaches_stays_open_and_cancel_stops_it() -> None:
    g, clock = _gateway()
    far = g.contracts[MNQ].price(g.paths[MNQ].price_at(int(T0)) - 20_000)
    order_id = _place(g, clock, limitPrice=far)
    watched = _place(g, clock, limitPrice=far)
    g.order_cancel({"accountId": ACCOUNT, "orderId": watched}, clock.now)
    clock.now = T0 + 7200
    g.sweep(clock.now)
    assert g.orders[order_id].status == OrderStatus.OPEN
    assert g.orders[watched].status == OrderStatus.CANCELLED
