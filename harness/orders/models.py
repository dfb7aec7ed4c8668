"""What the order clients return: frozen dataclasses shared by the Rust and Python sides.

`from_api` reads the gateway's camelCase JSON (order ids as numbers or numeric strings, both
timestamp forms); the Rust client builds these classes itself (positional arguments, timestamps
through `parse_timestamp`). Prices stay floats exactly as parsed: nothing here does arithmetic
on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

__all__ = [
    "Account",
    "Contract",
    "HistoryBar",
    "Order",
    "PlacedOrder",
    "Position",
    "parse_id",
    "parse_timestamp",
]


_I64: Final = range(-(2**63), 2**63)


def parse_id(value: Any) -> int:
    """An id from a JSON number or a numeric string (`"123"`) within 64 bits (the API's ids are
    int64, and the Rust client reads them as such); anything else is a ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not an id: {value!r}")
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        digits = text.removeprefix("-")
        if digits and digits.isascii() and digits.isdigit():
            number = int(text)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or number not in _I64:
        raise ValueError(f"not an id: {value!r}")
    return number


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 timestamp with `Z` or an offset (any count of fractional digits), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    head, sep, frac_tail = text.partition(".")
    if sep:
        # datetime.fromisoformat takes at most 6 fractional digits on every supported Python.
        i = 0
        while i < len(frac_tail) and frac_tail[i].isdigit():
            i += 1
        digits, tail = frac_tail[:i], frac_tail[i:]
        text = f"{head}.{(digits[:6] or '0').ljust(6, '0')}{tail}"
    return datetime.fromisoformat(text)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class Account:
    """A trading account (`Account/search`)."""

    id: int
    name: str
    balance: float
    can_trade: bool
    is_visible: bool
    simulated: bool

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> Account:
        """From the gateway's JSON row."""
        return cls(
            id=parse_id(row["id"]),
            name=str(row.get("name") or ""),
            balance=float(row.get("balance") or 0.0),
            can_trade=bool(row.get("canTrade", False)),
            is_visible=bool(row.get("isVisible", False)),
            simulated=bool(row.get("simulated", False)),
        )


@dataclass(frozen=True, slots=True)
class Contract:
    """A tradable contract (`Contract/search`, `Contract/searchById`)."""

    id: str
    name: str
    description: str
    tick_size: float
    tick_value: float
    active_contract: bool
    symbol_id: str | None

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> Contract:
        """From the gateway's JSON row."""
        return cls(
            id=str(row["id"]),
            name=str(row.get("name") or ""),
            description=str(row.get("description") or ""),
            tick_size=float(row.get("tickSize") or 0.0),
            tick_value=float(row.get("tickValue") or 0.0),
            active_contract=bool(row.get("activeContract", False)),
            symbol_id=row.get("symbolId"),
        )


@dataclass(frozen=True, slots=True)
class Order:
    """One order as the broker reports it (`Order/search`, `Order/searchById`)."""

    id: int
    account_id: int
    contract_id: str
    status: int
    type: int
    side: int
    size: int
    limit_price: float | None
    stop_price: float | None
    fill_volume: int | None
    filled_price: float | None
    custom_tag: str | None
    creation_timestamp: datetime | None
    update_timestamp: datetime | None

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> Order:
        """From the gateway's JSON row (id as number or numeric string)."""
        return cls(
            id=parse_id(row["id"]),
            account_id=parse_id(row.get("accountId", 0)),
            contract_id=str(row.get("contractId") or ""),
            status=int(row.get("status") or 0),
            type=int(row.get("type") or 0),
            side=int(row.get("side") or 0),
            size=int(row.get("size") or 0),
            limit_price=_opt_float(row.get("limitPrice")),
            stop_price=_opt_float(row.get("stopPrice")),
            fill_volume=_opt_int(row.get("fillVolume")),
            filled_price=_opt_float(row.get("filledPrice")),
            custom_tag=row.get("customTag"),
            creation_timestamp=parse_timestamp(row.get("creationTimestamp")),
            update_timestamp=parse_timestamp(row.get("updateTimestamp")),
        )


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """The outcome of a placement: the order id, its tag, and how it was obtained.

    `reconciled` is True when the placement's answer was lost and the order was found by its
    `custom_tag` instead; `attempts` counts the HTTP requests sent to `Order/place`.
    """

    order_id: int
    custom_tag: str
    reconciled: bool
    attempts: int


@dataclass(frozen=True, slots=True)
class Position:
    """An open position (`Position/searchOpen`): `type` 1 long or 2 short (`PositionType`),
    `size` in contracts, `average_price` as the broker reports it."""

    id: int
    account_id: int
    contract_id: str
    type: int
    size: int
    average_price: float
    creation_timestamp: datetime | None

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> Position:
        """From the gateway's JSON row."""
        return cls(
            id=parse_id(row["id"]),
            account_id=parse_id(row.get("accountId", 0)),
            contract_id=str(row.get("contractId") or ""),
            type=int(row.get("type") or 0),
            size=int(row.get("size") or 0),
            average_price=float(row.get("averagePrice") or 0.0),
            creation_timestamp=parse_timestamp(row.get("creationTimestamp")),
        )


@dataclass(frozen=True, slots=True)
class HistoryBar:
    """One bar of `History/retrieveBars`: `t` the gateway's label (UTC; the bar's open on the
    documented sample), prices as parsed, `v` the volume in contracts."""

    t: datetime
    o: float
    h: float
    l: float  # noqa: E741 - OHLCV field names
    c: float
    v: int

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> HistoryBar:
        """From the gateway's JSON row `{t, o, h, l, c, v}`; ValueError/KeyError when malformed."""
        t = parse_timestamp(row["t"])
        if t is None:
            raise ValueError("t is empty")
        return cls(
            t=t,
            o=float(row["o"]),
            h=float(row["h"]),
            l=float(row["l"]),
            c=float(row["c"]),
            v=int(row["v"]),
        )
