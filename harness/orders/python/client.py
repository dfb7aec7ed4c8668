"""`PythonOrderClient`: the order mutations (place, modify, cancel, close a position) and the
reconciliation of those whose outcome is unknown (`harness.orders.reconcile`); the reads come
from `Lookups`, the sending from `ClientCore`.

Each mutation is check (`harness.orders.args`) -> build (`build.py`) -> send (`_call`) ->
read (`read.py`). When the outcome is unknown (a time-out after the request was written, a
5xx, a lost answer), it is never repeated blindly: a placement looks its customTag up, a modify
or cancel reads the order, and only then is the request repeated on the backoff schedule.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from harness import projectx as px
from harness.errors import BrokerError, InvalidInputError
from harness.orders import validation as check
from harness.orders.args import PlaceArgs, check_market, check_modify, check_order_ref, check_place
from harness.orders.codec import Request
from harness.orders.models import Order, PlacedOrder
from harness.orders.python import build, read
from harness.orders.python.core import REMEMBERED_ORDERS
from harness.orders.python.lookups import Lookups
from harness.orders.python.transport import Ambiguous, Attempts, Reader
from harness.orders.reconcile import cancel_took_effect, modify_took_effect, reconciled_placement

__all__ = ["PythonOrderClient"]

log = logging.getLogger("harness.orders")


def _maybe_sent(error: BrokerError) -> BrokerError:
    """`error` marked as ending a call an earlier attempt of which may have been processed."""
    error.maybe_sent = True
    return error


class PythonOrderClient(Lookups):
    """ProjectX order client in pure Python (httpx); satisfies `harness.orders.OrderClient`.

    It is the reference the Rust client (`harness._native.OrderClient`) must match call for
    call: the same inputs refused with the same messages, the same retries, the same
    reconciliation, the same exceptions (`harness.errors`). One keep-alive connection pool per
    event loop that uses the client; the token and contract caches are shared by every task
    and thread. `harness.orders.trace.traced()` records what a call exchanged.
    """

    async def place_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        type: int = px.OrderType.MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        custom_tag: str | None = None,
        brackets: Mapping[str, Any] | None = None,
    ) -> PlacedOrder:
        """`Order/place`; an unknown outcome is reconciled by customTag, never repeated blindly."""
        args = check_place(
            account_id,
            contract_id,
            side,
            size,
            type=type,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
            custom_tag=custom_tag,
            brackets=brackets,
        )
        return await self._place_checked(args)

    async def place_market_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        custom_tag: str | None = None,
    ) -> PlacedOrder:
        """A market order (the bot's hot path)."""
        args = check_market(account_id, contract_id, side, size, custom_tag)
        return await self._place_checked(args)

    async def _place_checked(self, args: PlaceArgs) -> PlacedOrder:
        contract = await self._resolve(args.contract)
        tag = args.custom_tag or check.new_custom_tag()
        request = build.build_place(args, contract, tag)
        placed = await self._place(args.account_id, tag, request)
        self._remember_contract(placed.order_id, contract.id)
        return placed

    async def _place(self, account_id: int, tag: str, request: Request) -> PlacedOrder:
        path = request.path
        began = time.time()  # the order, if it lands, is created after this
        attempts = Attempts()
        reader = partial(read.read_place, custom_tag=tag)
        uncertain = False
        while True:
            try:
                return await self._call(request, attempts, reader)
            except Ambiguous as exc:
                failure = exc.error
            except BrokerError as exc:
                if not uncertain:
                    raise
                # An earlier attempt's outcome is unknown, and a repeat failed (most likely the
                # duplicate-tag rejection: that attempt landed). Find the order, or say that it
                # may stand.
                found = await self._quiet_find(account_id, tag, began)
                if found is not None:
                    return reconciled_placement(found.id, tag, attempts.n)
                raise _maybe_sent(exc) from None
            uncertain = True
            log.warning("%s outcome unknown (%s): looking up customTag", path, failure)
            found = await self._quiet_find(account_id, tag, began)
            if found is not None:
                return reconciled_placement(found.id, tag, attempts.n)
            delay = self._transport.backoff.delay_after(attempts.n)
            if delay is None:
                raise failure
            await asyncio.sleep(delay)

    def _remember_contract(self, order_id: int, contract_id: str) -> None:
        """Remember an order's contract (its tick grid serves a later modify)."""
        with self._orders_guard:
            self._order_contracts.pop(order_id, None)
            self._order_contracts[order_id] = contract_id
            if len(self._order_contracts) > REMEMBERED_ORDERS:
                del self._order_contracts[next(iter(self._order_contracts))]

    async def _order_tick(self, account_id: int, order_id: int) -> float | None:
        """The tick size of an order's contract; None when the order or its contract is
        unknown (the modify then goes out as given and the broker judges it). A read that
        fails raises its error: the modify is then not sent."""
        with self._orders_guard:
            contract_id = self._order_contracts.get(order_id)
        if contract_id is None:
            order = await self._get_order(account_id, order_id)
            if order is None:
                return None
            contract_id = order.contract_id
            self._remember_contract(order_id, contract_id)
        try:
            return (await self.resolve_contract(contract_id)).tick_size
        except InvalidInputError:
            return None

    async def _quiet_find(self, account_id: int, tag: str, since: float) -> Order | None:
        try:
            return await self._find_by_tag(account_id, tag, since)
        except BrokerError:
            return None

    async def modify_order(
        self,
        account_id: int,
        order_id: int,
        *,
        size: int | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
    ) -> None:
        """`Order/modify`; an unknown outcome is checked against the order before repeating."""
        args = check_modify(
            account_id,
            order_id,
            size=size,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
        )
        tick = None
        if not (args.limit_price is None and args.stop_price is None and args.trail_price is None):
            tick = await self._order_tick(args.account_id, args.order_id)
        request = build.build_modify(args, tick)

        def done(order: Order) -> bool:
            sent = request.body  # the values as sent (snapped): read only when reconciling
            return modify_took_effect(
                order,
                sent.get("size"),
                sent.get("limitPrice"),
                sent.get("stopPrice"),
                sent.get("trailPrice"),
            )

        await self._mutate(request, read.read_modify, args.account_id, args.order_id, done)

    async def cancel_order(self, account_id: int, order_id: int) -> None:
        """`Order/cancel`; an unknown outcome is checked against the order before repeating."""
        account_id, order_id = check_order_ref(account_id, order_id)
        request = build.build_cancel(account_id, order_id)
        await self._mutate(request, read.read_cancel, account_id, order_id, cancel_took_effect)

    async def close_position(self, account_id: int, contract_id: str) -> None:
        """`Position/closeContract`: close the whole position in a contract (symbol or id) by
        a market order. Not repeated when its outcome is unknown (`BrokerUnavailableError`
        with `maybe_sent`): read the positions to learn what happened."""
        account_id = check.positive_int("account_id", account_id)
        contract = await self.resolve_contract(contract_id)
        request = build.build_close_position(account_id, contract.id)
        try:
            await self._call(request, Attempts(), read.read_close_position)
        except Ambiguous as exc:
            raise exc.error from None

    async def _mutate(
        self,
        request: Request,
        reader: Reader[None],
        account_id: int,
        order_id: int,
        done: Callable[[Order], bool],
    ) -> None:
        attempts = Attempts()
        uncertain = False
        while True:
            try:
                await self._call(request, attempts, reader)
                return
            except Ambiguous as exc:
                failure = exc.error
            except BrokerError as exc:
                if not uncertain:
                    raise
                # A repeat failed (refused: maybe because an earlier attempt already did it).
                if await self._quiet_done(account_id, order_id, done):
                    return
                raise _maybe_sent(exc) from None
            uncertain = True
            path = request.path
            log.warning("%s outcome unknown (%s): reading order %d", path, failure, order_id)
            if await self._quiet_done(account_id, order_id, done):
                return
            delay = self._transport.backoff.delay_after(attempts.n)
            if delay is None:
                raise failure
            await asyncio.sleep(delay)

    async def _quiet_done(
        self, account_id: int, order_id: int, done: Callable[[Order], bool]
    ) -> bool:
        try:
            order = await self._get_order(account_id, order_id)
        except BrokerError:
            return False
        return order is not None and done(order)
