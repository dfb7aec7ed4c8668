"""The read-only calls of the Python client: accounts, contracts (cached), orders by tag or id,
and the reads a bot makes around its orders (open orders, positions, history bars).

Each is build -> `_read` (send, repeated as reads may be) -> read; the checks of the caller's
arguments come first (`harness.orders.validation`).
"""

from __future__ import annotations

import time
from datetime import datetime
from functools import partial

from harness import projectx as px
from harness.errors import InvalidInputError
from harness.orders import validation as check
from harness.orders.args import check_order_ref, check_tag_lookup
from harness.orders.models import Account, Contract, HistoryBar, Order, Position
from harness.orders.python import build, read
from harness.orders.python.core import ClientCore
from harness.orders.reconcile import RECONCILE_CLOCK_ALLOWANCE_S

__all__ = ["Lookups"]


class Lookups(ClientCore):
    """The reads of `PythonOrderClient`."""

    async def accounts(self, only_active: bool = True) -> list[Account]:
        """`Account/search`."""
        return await self._read(build.build_accounts(only_active), read.read_accounts)

    async def resolve_contract(self, symbol_or_id: str) -> Contract:
        """A contract by symbol (`MNQ`) or full id (`CON.F.US.MNQ.Z26`), cached."""
        return await self._resolve(check.contract_key(symbol_or_id))

    async def _resolve(self, key: str) -> Contract:
        """`resolve_contract` of a key already checked."""
        with self._contracts_guard:
            cached = self._contracts.get(key)
        if cached is not None:
            return cached
        key = key.strip()
        if "." in key:
            reader = partial(read.read_contract_by_id, contract_id=key)
            found = await self._read(build.build_contract_by_id(key), reader)
        else:
            reader = partial(read.read_contract_search, symbol=key)
            found = await self._read(build.build_contract_search(key), reader)
        if found is None:
            raise check.unknown_contract(key)
        with self._contracts_guard:
            self._contracts[key] = found
            self._contracts[found.id] = found
        return found

    async def find_order_by_tag(self, account_id: int, tag: str) -> Order | None:
        """The order carrying customTag `tag`, searched over the reconcile look-back window."""
        account_id, tag = check_tag_lookup(account_id, tag)
        return await self._find_by_tag(account_id, tag)

    async def _find_by_tag(
        self, account_id: int, tag: str, since: float | None = None
    ) -> Order | None:
        """The order carrying `tag`, searched from `reconcile_lookback_s` ago, or (a placement's
        own look-up) from `RECONCILE_CLOCK_ALLOWANCE_S` before `since` if that is later."""
        start_s = time.time() - self._settings.reconcile_lookback_s
        if since is not None:
            start_s = max(start_s, since - RECONCILE_CLOCK_ALLOWANCE_S)
        request = build.build_search_by_tag(account_id, start_s)
        return await self._read(request, partial(read.read_search_by_tag, custom_tag=tag))

    async def get_order(self, account_id: int, order_id: int) -> Order | None:
        """One order by id; None when the broker has no such order."""
        account_id, order_id = check_order_ref(account_id, order_id)
        return await self._get_order(account_id, order_id)

    async def _get_order(self, account_id: int, order_id: int) -> Order | None:
        request = build.build_search_by_id(account_id, order_id)
        return await self._read(request, partial(read.read_search_by_id, order_id=order_id))

    async def open_orders(self, account_id: int) -> list[Order]:
        """`Order/searchOpen`: the account's working orders (suspended bracket children are
        left out by the broker)."""
        account_id = check.positive_int("account_id", account_id)
        return await self._read(build.build_open_orders(account_id), read.read_open_orders)

    async def open_positions(self, account_id: int) -> list[Position]:
        """`Position/searchOpen`: the account's open positions."""
        account_id = check.positive_int("account_id", account_id)
        request = build.build_open_positions(account_id)
        return await self._read(request, read.read_open_positions)

    async def retrieve_bars(
        self,
        contract_id: str,
        *,
        start: datetime,
        end: datetime,
        limit: int,
        unit: int = px.BarUnit.MINUTE,
        unit_number: int = 1,
        include_partial_bar: bool = True,
        live: bool = False,
    ) -> list[HistoryBar]:
        """`History/retrieveBars`: the most recent `limit` bars (at most 20,000) of `unit_number`
        `unit`s in [start, end], a symbol or contract id, OLDEST FIRST (the gateway answers
        newest first; this sorts by `t` on receipt). `start`/`end` are aware datetimes.

        Raises `InvalidInputError` for a bad argument, `OrderRejectedError` for the gateway's
        refusal (codes: 1 ContractNotFound, 2 UnitInvalid, 3 UnitNumberInvalid, 4 LimitInvalid),
        `BrokerUnavailableError` for a malformed answer or a broker out of reach.
        """
        limit = check.positive_int("limit", limit)
        if limit > px.MAX_BARS_LIMIT:
            raise InvalidInputError("limit", limit, f"at most {px.MAX_BARS_LIMIT}")
        unit_number = check.positive_int("unit_number", unit_number)
        if unit not in tuple(px.BarUnit):
            raise InvalidInputError("unit", unit, "must be a BarUnit (1..6)")
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise InvalidInputError(name, value, "must be a timezone-aware datetime")
        contract = await self.resolve_contract(contract_id)
        request = build.build_bars(
            contract.id,
            start=start,
            end=end,
            limit=limit,
            unit=unit,
            unit_number=unit_number,
            include_partial_bar=include_partial_bar,
            live=live,
        )
        return await self._read(request, read.read_bars)
