"""The `Position/*` and `Trade/search` paths: the open positions, closing one (whole or in part)
by a market order, and the fills."""

from __future__ import annotations

from typing import Any

from harness import projectx as px
from harness.sim.gateway.book import Order
from harness.sim.gateway.broker import Broker
from harness.sim.gateway.wire import fail, ok, req_int, req_str, req_time


class PositionPaths(Broker):
    """`Position/searchOpen`, `Position/closeContract`, `Position/partialCloseContract`,
    `Trade/search`."""

    def position_search_open(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Position/searchOpen`."""
        account_id = req_int(body, "accountId")
        if account_id not in self.accounts:
            return fail(1, f"Account {account_id} not found.", positions=[])
        rows = [p.to_json() for p in self.positions.values() if p.account_id == account_id]
        return {"positions": rows, **ok()}

    def _close(self, body: dict[str, Any], now: float, size: int | None) -> dict[str, Any]:
        account_id = req_int(body, "accountId")
        contract_id = req_str(body, "contractId")
        if account_id not in self.accounts:
            return fail(1, f"Account {account_id} not found.")
        pos = self.positions.get((account_id, contract_id))
        if pos is None:
            # CHOICE: code 2 PositionNotFound (unknown contract included).
            return fail(2, f"No open position in {contract_id}.")
        if size is not None and not (0 < size <= abs(pos.net)):
            return fail(3, f"Invalid size {size}: must be within 1..{abs(pos.net)}.")
        qty = abs(pos.net) if size is None else size
        side = int(px.Side.ASK if pos.net > 0 else px.Side.BID)
        self._next_order += 1
        order = Order(self._next_order, pos.account_id, pos.contract, int(px.OrderType.MARKET),
                      side, qty, now, None)  # fmt: skip
        self.orders[order.id] = order
        self.orders_by_account[pos.account_id].append(order)
        self._fill(order, self.price(pos.contract.id, now), now)
        return ok()

    def position_close(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Position/closeContract`: close the whole position by a market order."""
        return self._close(body, now, None)

    def position_partial_close(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Position/partialCloseContract`: close `size` contracts by a market order."""
        size = req_int(body, "size")
        return self._close(body, now, size)

    def trade_search(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Trade/search`: fills in [startTimestamp, endTimestamp or now]."""
        account_id = req_int(body, "accountId")
        start = req_time(body, "startTimestamp")
        end = req_time(body, "endTimestamp", required=False)
        if account_id not in self.accounts:
            return fail(1, f"Account {account_id} not found.", trades=[])
        rows = [
            t.to_json(self.settings.string_ids)
            for t in self.trades
            if t.account_id == account_id
            and start <= t.created
            and (end is None or t.created <= end)
        ]
        return {"trades": rows, **ok()}
