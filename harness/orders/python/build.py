"""Build: every request of the Python client, as the path and the exact bytes it sends.

Pure (no I/O, no clock): the arguments come checked (`harness.orders.args`), and what a
request needs beyond them is passed in (the resolved contract, a search's start time). The
bodies are compact, ASCII-only JSON (`json.dumps` with `separators=(",", ":")`): the Rust
build (`rust/src/orders/build.rs`) writes the same bytes for the same arguments, floats
printed as Python prints them.

Field order and presence follow what public SDKs send (`shared` API notes): `Order/place`
always carries the three prices (null when unused) and the customTag, the brackets only when
given; `Order/modify` carries only the fields that change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from harness import projectx as px
from harness.orders import validation as check
from harness.orders.args import Bracket, ModifyArgs, PlaceArgs
from harness.orders.codec import Request
from harness.orders.models import Contract

__all__ = [
    "build_accounts",
    "build_bars",
    "build_cancel",
    "build_close_position",
    "build_contract_by_id",
    "build_contract_search",
    "build_login",
    "build_modify",
    "build_open_orders",
    "build_open_positions",
    "build_place",
    "build_search_by_id",
    "build_search_by_tag",
    "build_validate",
    "dumps",
    "iso_utc",
]


def dumps(body: Mapping[str, Any]) -> bytes:
    """`body` as compact ASCII JSON (NaN and infinities refused: the checks keep them out)."""
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def iso_utc(unix_s: float) -> str:
    """`2026-11-24T03:05:40.747022+00:00`: a Unix time as ISO-8601 UTC, microseconds rounded
    half to even (as `datetime.fromtimestamp`; the Rust `clock::iso_utc` rounds alike)."""
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="microseconds")


def _bracket(bracket: Bracket | None) -> dict[str, int] | None:
    return None if bracket is None else {"ticks": bracket.ticks, "type": bracket.type}


def build_place(args: PlaceArgs, contract: Contract, custom_tag: str) -> Request:
    """`Order/place` on the resolved `contract`; prices checked against and snapped onto its
    tick grid in the order limit, stop, trail (`InvalidInputError` for the first off it)."""
    prices = check.grid_prices(
        {
            "limit_price": args.limit_price,
            "stop_price": args.stop_price,
            "trail_price": args.trail_price,
        },
        contract.tick_size,
    )
    body: dict[str, Any] = {
        "accountId": args.account_id,
        "contractId": contract.id,
        "type": args.type,
        "side": args.side,
        "size": args.size,
        "limitPrice": prices["limit_price"],
        "stopPrice": prices["stop_price"],
        "trailPrice": prices["trail_price"],
        "customTag": custom_tag,
    }
    if args.stop_loss is not None:
        body["stopLossBracket"] = _bracket(args.stop_loss)
    if args.take_profit is not None:
        body["takeProfitBracket"] = _bracket(args.take_profit)
    return Request(px.ORDER_PLACE, dumps(body))


def build_modify(args: ModifyArgs, tick_size: float | None) -> Request:
    """`Order/modify`: prices snapped onto the grid of `tick_size` (None: sent as given);
    only the fields given, in the order size, limit, stop, trail."""
    limit, stop, trail = args.limit_price, args.stop_price, args.trail_price
    if tick_size is not None and (limit is not None or stop is not None or trail is not None):
        snapped = check.grid_prices(
            {"limit_price": limit, "stop_price": stop, "trail_price": trail}, tick_size
        )
        limit, stop, trail = snapped["limit_price"], snapped["stop_price"], snapped["trail_price"]
    body: dict[str, Any] = {"accountId": args.account_id, "orderId": args.order_id}
    for name, value in (
        ("size", args.size),
        ("limitPrice", limit),
        ("stopPrice", stop),
        ("trailPrice", trail),
    ):
        if value is not None:
            body[name] = value
    return Request(px.ORDER_MODIFY, dumps(body))


def build_cancel(account_id: int, order_id: int) -> Request:
    """`Order/cancel`."""
    return Request(px.ORDER_CANCEL, dumps({"accountId": account_id, "orderId": order_id}))


def build_search_by_tag(account_id: int, start_unix_s: float) -> Request:
    """`Order/search` from `start_unix_s` (the look-up of an order by customTag)."""
    body = {"accountId": account_id, "startTimestamp": iso_utc(start_unix_s)}
    return Request(px.ORDER_SEARCH, dumps(body))


def build_search_by_id(account_id: int, order_id: int) -> Request:
    """`Order/searchById`."""
    return Request(px.ORDER_SEARCH_BY_ID, dumps({"accountId": account_id, "orderId": order_id}))


def build_login(username: str, api_key: str) -> Request:
    """`Auth/loginKey` (the body carries the API key: never logged or traced)."""
    return Request(px.LOGIN_KEY, dumps({"userName": username, "apiKey": api_key}))


def build_validate() -> Request:
    """`Auth/validate`: no body; the current token goes in the header."""
    return Request(px.VALIDATE, b"")


def build_accounts(only_active: bool) -> Request:
    """`Account/search`."""
    return Request(px.ACCOUNT_SEARCH, dumps({"onlyActiveAccounts": bool(only_active)}))


def build_contract_search(symbol: str) -> Request:
    """`Contract/search` for a symbol, among contracts that are not live-only."""
    return Request(px.CONTRACT_SEARCH, dumps({"searchText": symbol, "live": False}))


def build_contract_by_id(contract_id: str) -> Request:
    """`Contract/searchById`."""
    return Request(px.CONTRACT_SEARCH_BY_ID, dumps({"contractId": contract_id}))


def build_open_orders(account_id: int) -> Request:
    """`Order/searchOpen`."""
    return Request(px.ORDER_SEARCH_OPEN, dumps({"accountId": account_id}))


def build_open_positions(account_id: int) -> Request:
    """`Position/searchOpen`."""
    return Request(px.POSITION_SEARCH_OPEN, dumps({"accountId": account_id}))


def build_close_position(account_id: int, contract_id: str) -> Request:
    """`Position/closeContract`."""
    body = {"accountId": account_id, "contractId": contract_id}
    return Request(px.POSITION_CLOSE_CONTRACT, dumps(body))


def build_bars(
    contract_id: str,
    *,
    start: datetime,
    end: datetime,
    limit: int,
    unit: int,
    unit_number: int,
    include_partial_bar: bool,
    live: bool,
) -> Request:
    """`History/retrieveBars` over [start, end] (aware datetimes, sent in UTC)."""
    body = {
        "contractId": contract_id,
        "live": bool(live),
        "startTime": start.astimezone(UTC).isoformat(timespec="microseconds"),
        "endTime": end.astimezone(UTC).isoformat(timespec="microseconds"),
        "unit": int(unit),
        "unitNumber": unit_number,
        "limit": limit,
        "includePartialBar": bool(include_partial_bar),
    }
    return Request(px.HISTORY_RETRIEVE_BARS, dumps(body))
