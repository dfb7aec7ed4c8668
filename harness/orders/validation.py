"""Checks on a caller's arguments, made before anything is sent: the one table of messages.

Both implementations refuse the same inputs with the same `InvalidInputError(field, value,
reason)`; the Rust side (`rust/src/orders/py.rs`, `client.rs`) mirrors this table word for word,
and the conformance suite (`tests/orders/test_validation.py`) compares the two texts.

| field        | accepted                                | reason (the exact text)              |
| ------------ | --------------------------------------- | ------------------------------------ |
| account_id   | int in 1..2**63-1 (bool refused)        | must be a positive integer           |
| contract_id  | str, not blank                          | must be a contract symbol or id      |
| side         | Side, 0/1, "buy"/"sell" (any case)      | must be Side, 0/1 or 'buy'/'sell'    |
| size         | int in 1..2**63-1 (bool refused)        | must be a positive integer           |
| type         | OrderType / int 1..7 (bool refused)     | must be an OrderType                 |
| *_price      | None, or finite int/float (bool refused)| must be a finite number              |
| custom_tag   | None, or a non-empty str                | must be a non-empty string           |
| brackets     | None, or {stop_loss?, take_profit?:     | must map stop_loss/take_profit to    |
|              |   {ticks: int, type: int}}              |   {ticks, type}   (one line)         |
| order_id     | int in 1..2**63-1 (bool refused)        | must be a positive integer           |
| modify       | value None: no field to change given    | give at least one of size,           |
|              |                                         |   limit_price, stop_price,           |
|              |                                         |   trail_price     (one line)         |
| contract_id  | value: the key, stripped; not resolved  | unknown contract                     |
| *_price      | value: float(price); off the tick grid  | not on the tick grid of {tick}       |

The value is the caller's own object (so `str(err)` reads `invalid size=0: must be a positive
integer`), except the last two rows. `{tick}` prints as both languages print a float (0.25).

Order of checks: place_order: account_id, contract_id, side, size, type, limit_price, stop_price,
trail_price, custom_tag, brackets, then (after resolving the contract) the tick grid in the order
limit, stop, trail. modify_order: account_id, order_id, size (when given), the prices, then the
"at least one" rule. cancel_order / get_order: account_id, order_id. find_order_by_tag:
account_id, then the tag (field custom_tag). The tick-grid rule: `price / tick` within 1e-6 of
an integer (the same float test on both sides).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from typing import Any, Final, TypeGuard

from harness.errors import InvalidInputError
from harness.projectx import OrderType

__all__ = [
    "BRACKETS",
    "CONTRACT_KEY",
    "CUSTOM_TAG",
    "MODIFY_NOTHING",
    "ORDER_TYPE",
    "POSITIVE_INT",
    "PRICE",
    "SIDE",
    "UNKNOWN_CONTRACT",
    "brackets",
    "contract_key",
    "custom_tag",
    "new_custom_tag",
    "on_tick_grid",
    "order_type",
    "positive_int",
    "price",
    "side",
    "tick_grid_error",
    "unknown_contract",
]

POSITIVE_INT: Final = "must be a positive integer"
CONTRACT_KEY: Final = "must be a contract symbol or id"
SIDE: Final = "must be Side, 0/1 or 'buy'/'sell'"
ORDER_TYPE: Final = "must be an OrderType"
PRICE: Final = "must be a finite number"
CUSTOM_TAG: Final = "must be a non-empty string"
BRACKETS: Final = "must map stop_loss/take_profit to {ticks, type}"
MODIFY_NOTHING: Final = "give at least one of size, limit_price, stop_price, trail_price"
UNKNOWN_CONTRACT: Final = "unknown contract"
TICK_GRID: Final = "not on the tick grid of {tick}"


_I64_MAX: Final = 2**63 - 1


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(field: str, value: Any) -> int:
    """An `int` in 1..2**63-1 (bool refused): account_id, order_id, size."""
    if _is_int(value) and 0 < value <= _I64_MAX:
        return int(value)
    raise InvalidInputError(field, value, POSITIVE_INT)


def contract_key(value: Any) -> str:
    """A contract symbol (`MNQ`) or id (`CON.F.US.MNQ.Z26`): a non-blank string."""
    if isinstance(value, str) and value.strip():
        return value
    raise InvalidInputError("contract_id", value, CONTRACT_KEY)


def side(value: Any) -> int:
    """`Side`, 0/1, or "buy"/"sell" (any case) -> 0 (bid) or 1 (ask)."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "buy":
            return 0
        if lowered == "sell":
            return 1
    elif _is_int(value) and value in (0, 1):
        return int(value)
    raise InvalidInputError("side", value, SIDE)


def order_type(value: Any) -> int:
    """An `OrderType` (or its int value 1..7); None means MARKET."""
    if value is None:
        return int(OrderType.MARKET)
    if _is_int(value) and 1 <= value <= 7:
        return int(value)
    raise InvalidInputError("type", value, ORDER_TYPE)


def price(field: str, value: Any) -> float | None:
    """None, or a finite int/float (bool refused)."""
    if value is None:
        return None
    if _is_int(value) or isinstance(value, float):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise InvalidInputError(field, value, PRICE)


def custom_tag(value: Any) -> str | None:
    """None, or a non-empty string."""
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value
    raise InvalidInputError("custom_tag", value, CUSTOM_TAG)


def brackets(value: Any) -> tuple[dict[str, int] | None, dict[str, int] | None]:
    """None or `{"stop_loss"?: {ticks, type}, "take_profit"?: {ticks, type}}` -> API objects."""
    if value is None:
        return None, None
    if not isinstance(value, Mapping):
        raise InvalidInputError("brackets", value, BRACKETS)

    def one(key: str) -> dict[str, int] | None:
        item = value.get(key)
        if item is None:
            return None
        if not isinstance(item, Mapping):
            raise InvalidInputError("brackets", value, BRACKETS)
        ticks, kind = item.get("ticks"), item.get("type")
        if not (_is_int(ticks) and _is_int(kind)):
            raise InvalidInputError("brackets", value, BRACKETS)
        return {"ticks": int(ticks), "type": int(kind)}

    return one("stop_loss"), one("take_profit")


def unknown_contract(key: str) -> InvalidInputError:
    """The error for a contract that does not resolve."""
    return InvalidInputError("contract_id", key, UNKNOWN_CONTRACT)


def on_tick_grid(value: float, tick: float) -> bool:
    """Whether `value` sits on the grid of `tick` (float noise of 1e-6 tick tolerated)."""
    if not (math.isfinite(tick) and tick > 0):
        return True
    steps = value / tick
    return abs(steps - round(steps)) <= 1e-6


def tick_grid_error(field: str, value: float, tick: float) -> InvalidInputError:
    """The error for a price off the contract's tick grid."""
    return InvalidInputError(field, float(value), TICK_GRID.format(tick=tick))


def new_custom_tag() -> str:
    """A fresh random customTag: `hx-` and 24 hex digits (unique per call)."""
    return "hx-" + secrets.token_hex(12)
