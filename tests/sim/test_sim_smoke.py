"""The simulator answers the basic trading round trip over real HTTP."""

from __future__ import annotations

from simkit import ACCOUNT, Api


def test_market_order_round_trip(api: Api) -> None:
    placed = api.place(customTag="smoke-1")
    assert placed["success"] and placed["orderId"] > 2**32
    order = api.call("/api/Order/searchById", {"accountId": ACCOUNT, "orderId": placed["orderId"]})
    assert order["order"]["status"] == 2 and order["order"]["customTag"] == "smoke-1"
    assert [o["id"] for o in api.sim.ledger()] == [placed["orderId"]]
