"""The `Order/*` paths: place (checked as the real gateway checks, filled at once when
marketable, resting otherwise), modify, cancel, and the three searches."""

from __future__ import annotations

from typing import Any

from harness import projectx as px
from harness.errors import InvalidInputError
from harness.orders.validation import custom_tag
from harness.sim.gateway.book import Order
from harness.sim.gateway.broker import Broker
from harness.sim.gateway.wire import fail, ok, req_int, req_price, req_str, req_time

_INT32_MAX = 2**31 - 1
_LIMIT, _MARKET, _STOP, _TRAIL = 1, 2, 4, 5
_JOIN_BID, _JOIN_ASK = 6, 7
_PRICED = {_LIMIT: "limitPrice", _STOP: "stopPrice", _TRAIL: "trailPrice"}
_PLACE_ACCOUNT, _PLACE_REJECTED = int(px.PlaceCode.ACCOUNT_NOT_FOUND), 2
_PLACE_CONTRACT = int(px.PlaceCode.CONTRACT_NOT_FOUND)
_PLACE_INACTIVE = int(px.PlaceCode.CONTRACT_NOT_ACTIVE)


def _tag_problem(tag: str) -> str | None:
    """Why the gateway refuses a customTag (None: it takes it). The clients' own rule
    (`harness.orders.validation.custom_tag`: at most 128 characters, no control character), so
    a tag the clients refuse before sending is one the simulated broker refuses too. An empty
    tag is left to the duplicate rule, as before (no client sends one)."""
    if not tag:
        return None
    try:
        custom_tag(tag)
    except InvalidInputError as exc:
        return exc.reason
    return None


class OrderPaths(Broker):
    """`Order/place`, `Order/modify`, `Order/cancel`, `Order/search`, `Order/searchOpen`,
    `Order/searchById`."""

    def order_place(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/place`: validate, create, and fill at once when marketable."""
        account_id = req_int(body, "accountId")
        contract_id = req_str(body, "contractId")
        order_type = req_int(body, "type")
        side = req_int(body, "side")
        size = req_int(body, "size")
        limit_price = req_price(body, "limitPrice")
        stop_price = req_price(body, "stopPrice")
        trail_price = req_price(body, "trailPrice")
        tag = req_str(body, "customTag", required=False)
        account = self.accounts.get(account_id)
        if account is None:
            return fail(_PLACE_ACCOUNT, f"Account {account_id} not found.", orderId=None)
        contract = self.contracts.get(contract_id)
        if contract is None:
            return fail(_PLACE_CONTRACT, f"Contract {contract_id} not found.", orderId=None)
        if not contract.active:
            return fail(_PLACE_INACTIVE, f"Contract {contract_id} is not active.", orderId=None)
        problem = None
        if side != 0 and side != 1:
            problem = f"Invalid side {side}."
        elif size <= 0 or size > _INT32_MAX:
            problem = f"Invalid order size {size}: must be within 1..{_INT32_MAX}."
        elif body.get("stopLossBracket") is not None or body.get("takeProfitBracket") is not None:
            problem = "Brackets require the account to be in Auto OCO bracket mode."
        elif tag is not None and (tag_problem := _tag_problem(tag)) is not None:
            problem = f"Invalid custom tag: {tag_problem}."
        elif tag is not None and (account.id, tag) in self.tags:
            problem = f"An order with custom tag '{tag}' already exists on this account."
        if problem is not None:
            return fail(_PLACE_REJECTED, problem, orderId=None)
        current = self.price(contract.id, now)
        limit_ticks = stop_ticks = None
        if order_type in _PRICED:
            name = _PRICED[order_type]
            value = limit_price if order_type == _LIMIT else stop_price
            value = trail_price if order_type == _TRAIL else value
            if value is None:
                return fail(_PLACE_REJECTED, f"{name} is required for order type {order_type}.",
                            orderId=None)  # fmt: skip
            ticks = contract.ticks(value)
            if ticks is None or ticks <= 0:
                return fail(_PLACE_REJECTED,
                            f"Invalid {name} {value}: not a multiple of the tick size "
                            f"{contract.tick_size}.", orderId=None)  # fmt: skip
            if order_type == _LIMIT:
                limit_ticks = ticks
            else:  # CHOICE: a trailing stop rests as a plain stop at trailPrice
                stop_ticks = ticks
        elif order_type in (_JOIN_BID, _JOIN_ASK):
            # CHOICE: no spread is modelled; join bid/ask rest one tick off the last price.
            limit_ticks = current - 1 if order_type == _JOIN_BID else current + 1
        elif order_type != _MARKET:
            message = f"Order type {order_type} is not supported by Order/place."
            return fail(_PLACE_REJECTED, message, orderId=None)
        self._next_order += 1
        order = Order(
            self._next_order,
            account.id,
            contract,
            order_type,
            side,
            size,
            now,
            tag,
        )
        order.limit_ticks = limit_ticks
        order.stop_ticks = stop_ticks
        self.orders[order.id] = order
        self.orders_by_account[account.id].append(order)
        if tag is not None:
            self.tags[(account.id, tag)] = order
        if order_type == _MARKET or self._marketable(order, current):
            # CHOICE: marketable limits and stops already through the price fill at once.
            self._fill(order, current, now)
        else:
            self.open_orders[order.id] = order
        oid: Any = str(order.id) if self.settings.string_ids else order.id
        return {"orderId": oid, **ok()}

    def _open_order(
        self, body: dict[str, Any], codes: type[px.ModifyCode] | type[px.CancelCode]
    ) -> Order | dict[str, Any]:
        account_id = req_int(body, "accountId")
        order_id = req_int(body, "orderId")
        if account_id not in self.accounts:
            return fail(codes.ACCOUNT_NOT_FOUND, f"Account {account_id} not found.")
        order = self.orders.get(order_id)
        if order is None or order.account_id != account_id:
            return fail(codes.ORDER_NOT_FOUND, f"Order {order_id} not found.")
        if order.status != px.OrderStatus.OPEN:
            # CHOICE: an order that exists but is no longer open is Rejected (3), not NotFound.
            status = px.OrderStatus(order.status).name.title()
            return fail(codes.REJECTED, f"Order {order_id} is not open (status {status}).")
        return order

    def order_modify(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/modify`: change size or the price the order's type uses."""
        size = req_int(body, "size", required=False)
        prices = {n: req_price(body, n) for n in ("limitPrice", "stopPrice", "trailPrice")}
        found = self._open_order(body, px.ModifyCode)
        if isinstance(found, dict):
            return found
        order = found
        code = px.ModifyCode.REJECTED
        given = {n: v for n, v in prices.items() if v is not None}
        if size is None and not given:
            return fail(code, "Nothing to modify: send size or a price.")
        if size is not None and not (0 < size <= 2**31 - 1):
            return fail(code, f"Invalid order size {size}: must be greater than 0.")
        t = px.OrderType
        usable = {
            t.LIMIT: "limitPrice",
            t.JOIN_BID: "limitPrice",
            t.JOIN_ASK: "limitPrice",
            t.STOP: "stopPrice",
            t.TRAILING_STOP: "trailPrice",
        }.get(px.OrderType(order.type))
        new_ticks = None
        for name, value in given.items():
            if name != usable:
                return fail(code, f"{name} does not apply to an order of type {order.type}.")
            new_ticks = order.contract.ticks(value)
            if new_ticks is None or new_ticks <= 0:
                return fail(code, f"Invalid {name} {value}: not on the tick grid.")
        if size is not None:
            order.size = size
        if new_ticks is not None:
            if usable == "limitPrice":
                order.limit_ticks = new_ticks
            else:
                order.stop_ticks = new_ticks
        order.updated = now
        if self._marketable(order, self.price(order.contract.id, now)):
            self._fill(order, self.price(order.contract.id, now), now)
        return ok()

    def order_cancel(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/cancel`."""
        found = self._open_order(body, px.CancelCode)
        if isinstance(found, dict):
            return found
        found.status = int(px.OrderStatus.CANCELLED)
        found.updated = now
        self.open_orders.pop(found.id, None)
        return ok()

    def order_search(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/search`: orders created in [startTimestamp, endTimestamp or now]."""
        account_id = req_int(body, "accountId")
        start = req_time(body, "startTimestamp")
        end = req_time(body, "endTimestamp", required=False)
        if account_id not in self.accounts:
            return fail(1, f"Account {account_id} not found.", orders=[])
        rows = [
            self._order_payload(o)
            for o in self.orders_by_account[account_id]
            if start <= o.created and (end is None or o.created <= end)
        ]
        return {"orders": rows, **ok()}

    def order_search_open(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/searchOpen`."""
        account_id = req_int(body, "accountId")
        if account_id not in self.accounts:
            return fail(1, f"Account {account_id} not found.", orders=[])
        rows = [self._order_payload(o) for o in self.open_orders.values()
                if o.account_id == account_id]  # fmt: skip
        return {"orders": rows, **ok()}

    def order_search_by_id(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/searchById`: one `order`; none -> success false (CHOICE: code 1)."""
        account_id = req_int(body, "accountId")
        order_id = req_int(body, "orderId")
        order = self.orders.get(order_id)
        if order is None or order.account_id != account_id:
            return fail(1, f"Order {order_id} not found.", order=None)
        return {"order": self._order_payload(order), **ok()}
