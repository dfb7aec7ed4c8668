"""Read: an answer's HTTP status and raw body -> the result, or the error the client raises.

Pure (no I/O, no clock). `read_answer` judges every answer alike: HTTP 200 with a JSON object
whose `success` is true and whose `errorCode` agrees (absent, null or 0) is a success, and its
payload is read per endpoint; `success: false`, or a code that contradicts `success`, is a
business failure (`business_failure`: per endpoint, code 2 of modify/cancel and code 1 of
`Contract/searchById` are `NotFoundError`); 401 `AuthError`, 429 `RateLimitedError`, 5xx and
unreadable bodies `BrokerUnavailableError(maybe_sent=True)`, any other status
`OrderRejectedError`. The Rust read (`rust/src/orders/read.rs`) decides every case alike.

`attempts` is the count of HTTP requests the call has made (the error's `attempts`, and its
text); the send step (`transport.py`) decides from the error's class whether to try again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from harness import projectx as px
from harness.errors import (
    AuthError,
    BrokerError,
    BrokerUnavailableError,
    NotFoundError,
    OrderRejectedError,
    RateLimitedError,
)
from harness.orders.models import (
    Account,
    Contract,
    HistoryBar,
    Order,
    PlacedOrder,
    Position,
    parse_id,
)

__all__ = [
    "business_failure",
    "pick_contract",
    "read_accounts",
    "read_answer",
    "read_bars",
    "read_cancel",
    "read_close_position",
    "read_contract_by_id",
    "read_contract_search",
    "read_modify",
    "read_open_orders",
    "read_open_positions",
    "read_place",
    "read_search_by_id",
    "read_search_by_tag",
    "unavailable",
]

_NOT_FOUND_CODES: Final = {
    px.ORDER_MODIFY: px.ModifyCode.ORDER_NOT_FOUND,
    px.ORDER_CANCEL: px.CancelCode.ORDER_NOT_FOUND,
    px.CONTRACT_SEARCH_BY_ID: px.ContractCode.CONTRACT_NOT_FOUND,
}


# ----- the errors an answer means ---------------------------------------------------------------


def business_failure(path: str, code: Any, message: Any, attempts: int) -> BrokerError:
    """An HTTP-200 `success: false` answer mapped to its class (per endpoint); a code or
    message of the wrong JSON type reads as absent."""
    error_code = code if isinstance(code, int) and not isinstance(code, bool) else None
    error_message = message if isinstance(message, str) else None
    text = f"{path} failed: errorCode={'null' if error_code is None else error_code} "
    text = (text + (error_message or "")).rstrip()
    fields: dict[str, Any] = {
        "endpoint": path,
        "error_code": error_code,
        "error_message": error_message,
        "http_status": 200,
        "attempts": attempts,
        "maybe_sent": False,
    }
    if path in (px.LOGIN_KEY, px.VALIDATE):
        return AuthError(text, **fields)
    if error_code is not None and _NOT_FOUND_CODES.get(path) == error_code:
        return NotFoundError(text, **fields)
    return OrderRejectedError(text, **fields)


def unavailable(
    path: str, what: str, status: int | None, attempts: int, maybe_sent: bool
) -> BrokerUnavailableError:
    """The broker out of reach, or an answer that says nothing (`what` says why)."""
    return BrokerUnavailableError(
        f"{path} unavailable after {attempts} attempts: {what}",
        endpoint=path,
        http_status=status,
        attempts=attempts,
        maybe_sent=maybe_sent,
    )


def _succeeded(data: Mapping[str, Any]) -> bool:
    return data.get("success") is True and data.get("errorCode") in (None, 0)


def read_answer(
    path: str, status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
) -> dict[str, Any]:
    """The JSON object of a successful answer to `path`, or the error it means (module doc)."""
    if status == 200:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise unavailable(path, f"unreadable answer: {exc}", 200, attempts, True) from None
        if not isinstance(data, dict):
            raise unavailable(path, "unreadable answer: not an object", 200, attempts, True)
        if _succeeded(data):
            return data
        raise business_failure(path, data.get("errorCode"), data.get("errorMessage"), attempts)
    if status == 401:
        raise AuthError(
            f"{path} refused the session (HTTP 401)",
            endpoint=path,
            http_status=401,
            attempts=attempts,
        )
    if status == 429:
        raise RateLimitedError(
            f"{path} rate limited (HTTP 429) after {attempts} attempts",
            retry_after=retry_after,
            endpoint=path,
            http_status=429,
            attempts=attempts,
        )
    if status >= 500:
        raise unavailable(path, f"HTTP {status}", status, attempts, True)
    raise OrderRejectedError(
        f"{path} answered HTTP {status}", endpoint=path, http_status=status, attempts=attempts
    )


# ----- the order calls (the codec's reads) -----------------------------------------------------


def read_place(
    status: int,
    body: bytes,
    retry_after: float | None = None,
    *,
    custom_tag: str,
    attempts: int = 1,
) -> PlacedOrder:
    """`Order/place` -> `PlacedOrder`; a success without a readable `orderId` is
    `BrokerUnavailableError(maybe_sent=True)` (the order may stand: reconcile by tag)."""
    data = read_answer(px.ORDER_PLACE, status, body, retry_after, attempts=attempts)
    try:
        order_id = parse_id(data.get("orderId"))
    except ValueError:
        what = "success without an orderId"
        raise unavailable(px.ORDER_PLACE, what, 200, attempts, True) from None
    return PlacedOrder(order_id, custom_tag, False, attempts)


def read_modify(
    status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
) -> None:
    """`Order/modify`: None, or the error."""
    read_answer(px.ORDER_MODIFY, status, body, retry_after, attempts=attempts)


def read_cancel(
    status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
) -> None:
    """`Order/cancel`: None, or the error."""
    read_answer(px.ORDER_CANCEL, status, body, retry_after, attempts=attempts)


def read_search_by_tag(
    status: int,
    body: bytes,
    retry_after: float | None = None,
    *,
    custom_tag: str,
    attempts: int = 1,
) -> Order | None:
    """`Order/search` -> the first order carrying `custom_tag`, or None."""
    data = read_answer(px.ORDER_SEARCH, status, body, retry_after, attempts=attempts)
    for row in data.get("orders") or []:
        if isinstance(row, dict) and row.get("customTag") == custom_tag:
            return Order.from_api(row)
    return None


def read_search_by_id(
    status: int,
    body: bytes,
    retry_after: float | None = None,
    *,
    order_id: int,
    attempts: int = 1,
) -> Order | None:
    """`Order/searchById` -> the order if it is `order_id`; None when the broker answers
    `success: false` (it has no such order) or an answer without it."""
    try:
        data = read_answer(px.ORDER_SEARCH_BY_ID, status, body, retry_after, attempts=attempts)
    except OrderRejectedError as exc:  # NotFoundError included
        if isinstance(exc, NotFoundError) or exc.http_status == 200:
            return None
        raise
    row = data.get("order")
    if not isinstance(row, dict):
        return None
    order = Order.from_api(row)
    return order if order.id == order_id else None


# ----- the other reads ---------------------------------------------------------------------------


def read_accounts(
    status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
) -> list[Account]:
    """`Account/search` -> the accounts."""
    data = read_answer(px.ACCOUNT_SEARCH, status, body, retry_after, attempts=attempts)
    return [Account.from_api(row) for row in data.get("accounts") or []]


def read_contract_by_id(
    status: int,
    body: bytes,
    retry_after: float | None = None,
    *,
    contract_id: str,
    attempts: int = 1,
) -> Contract | None:
    """`Contract/searchById` -> the contract `contract_id` (the answer's `contract`, or the
    older docs' `contracts` list), None when the broker does not know it (code 1)."""
    try:
        data = read_answer(px.CONTRACT_SEARCH_BY_ID, status, body, retry_after, attempts=attempts)
    except NotFoundError:
        return None
    rows = [data["contract"]] if isinstance(data.get("contract"), dict) else []
    rows += [r for r in data.get("contracts") or [] if isinstance(r, dict)]
    for row in rows:
        if str(row.get("id")) == contract_id:
            return Contract.from_api(row)
    return None


def read_contract_search(
    status: int,
    body: bytes,
    retry_after: float | None = None,
    *,
    symbol: str,
    attempts: int = 1,
) -> Contract | None:
    """`Contract/search` -> the contract `symbol` names (`pick_contract`), or None."""
    data = read_answer(px.CONTRACT_SEARCH, status, body, retry_after, attempts=attempts)
    rows = [Contract.from_api(r) for r in data.get("contracts") or [] if isinstance(r, dict)]
    return pick_contract(rows, symbol)


def pick_contract(rows: list[Contract], symbol: str) -> Contract | None:
    """The contract a symbol names among search rows: its own root, the active one first."""
    wanted = symbol.strip().upper()

    def matches(c: Contract) -> bool:
        root = c.symbol_id.rsplit(".", 1)[-1].upper() if c.symbol_id else None
        parts = c.id.split(".")
        return (
            root == wanted
            or c.name.upper() == wanted
            or (len(parts) > 3 and parts[3].upper() == wanted)
        )

    fallback = None
    for c in rows:
        if matches(c):
            if c.active_contract:
                return c
            if fallback is None:
                fallback = c
    return fallback


def read_open_orders(
    status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
) -> list[Order]:
    """`Order/searchOpen` -> the working orders."""
    data = read_answer(px.ORDER_SEARCH_OPEN, status, body, retry_after, attempts=attempts)
    return [Order.from_api(row) for row in data.get("orders") or [] if isinstance(row, dict)]


def read_open_positions(
    status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
) -> list[Position]:
    """`Position/searchOpen` -> the open positions."""
    data = read_answer(px.POSITION_SEARCH_OPEN, status, body, retry_after, attempts=attempts)
    rows = data.get("positions") or []
    return [Position.from_api(row) for row in rows if isinstance(row, dict)]


def read_close_position(
    status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
) -> None:
    """`Position/closeContract`: None, or the error."""
    read_answer(px.POSITION_CLOSE_CONTRACT, status, body, retry_after, attempts=attempts)


def read_bars(
    status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
) -> list[HistoryBar]:
    """`History/retrieveBars` -> the bars OLDEST FIRST (the gateway answers newest first); a
    malformed bar is `BrokerUnavailableError(maybe_sent=False)`, not repeated."""
    data = read_answer(px.HISTORY_RETRIEVE_BARS, status, body, retry_after, attempts=attempts)
    bars: list[HistoryBar] = []
    for i, row in enumerate(data.get("bars") or []):
        try:
            bars.append(HistoryBar.from_api(row))
        except (KeyError, TypeError, ValueError) as exc:
            what = f"malformed bar at index {i}: {type(exc).__name__} {exc}"
            raise unavailable(px.HISTORY_RETRIEVE_BARS, what, 200, attempts, False) from None
    bars.sort(key=lambda bar: bar.t)
    return bars
