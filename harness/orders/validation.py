"""Checks on a caller's arguments, made before anything is sent: the one table of messages.

Both implementations refuse the same inputs with the same `InvalidInputError(field, value,
reason)`: these checks run once, in Python, for both (`harness.orders.args`; the Rust client
receives the checked values); only the tick grid is checked by each side's build step, once the
contract is known (`rust/src/orders/prices.rs` mirrors that rule word for word). The conformance
suite (`tests/orders/test_validation.py`) compares the texts on both sides.

| field        | accepted                                | reason (the exact text)              |
| ------------ | --------------------------------------- | ------------------------------------ |
| account_id   | int in 1..2**63-1 (bool refused)        | must be a positive integer           |
| contract_id  | str, not blank                          | must be a contract symbol or id      |
| side         | Side, 0/1, "buy"/"sell" (any case)      | must be Side, 0/1 or 'buy'/'sell'    |
| size         | int in 1..2**63-1 (bool refused)        | must be a positive integer           |
| type         | OrderType / int 1..7 (bool refused)     | must be an OrderType                 |
| *_price      | None, or finite int/float (bool refused)| must be a finite number              |
| custom_tag   | None, or a non-empty str                | must be a non-empty string           |
| custom_tag   | at most 128 characters (code points)    | must be at most 128 characters,      |
|              |                                         |   not {N}         (one line)         |
| custom_tag   | no control character (U+0000..U+001F,   | must not hold control characters or  |
|              |   U+007F..U+009F), no lone surrogate    |   lone surrogates (one line)         |
| brackets     | None, or {stop_loss?, take_profit?:     | must map stop_loss/take_profit to    |
|              |   {ticks, type: ints, -2**63..2**63-1}} |   {ticks, type}   (one line)         |
| order_id     | int in 1..2**63-1 (bool refused)        | must be a positive integer           |
| modify       | value None: no field to change given    | give at least one of size,           |
|              |                                         |   limit_price, stop_price,           |
|              |                                         |   trail_price     (one line)         |
| *_price      | value None; the order type needs it     | required by order type {TYPE}        |
| *_price      | given; the order type does not take it  | does not apply to order type {TYPE}  |
| contract_id  | value: the key, stripped; not resolved  | unknown contract                     |
| *_price      | value: float(price); off the tick grid  | not on the tick grid of {tick}       |

The value is the caller's own object (so `str(err)` reads `invalid size=0: must be a positive
integer`), except the last two rows, and a tag too long, whose value is its first 20 characters
and `...` (a megabyte of tag is not repeated in the message). `{tick}` prints as both languages
print a float (0.25); `{TYPE}` is the `OrderType` name (LIMIT).

The customTag limits: the API documents none, so the tag is held to what the harness can keep
and the gateway can take. 128 characters is the width of `outcomes.custom_tag` (String(128)), the
column the fallback reconciles by: a longer tag would be sent whole but recorded cut, and never
found again. Control characters and lone surrogates are refused because a lone surrogate cannot
be encoded as the UTF-8 the JSON body is sent in, and control characters are what no order
entry form lets a trader type (and what would replay as terminal escapes on every screen that
lists tags). The simulator refuses the same tags (code 2, OrderRejected).

Which price each order type takes (`TYPE_PRICES`; the API reads `limitPrice`, `stopPrice` and
`trailPrice` "as the type needs"): LIMIT limit_price; STOP stop_price; TRAILING_STOP trail_price;
MARKET, JOIN_BID, JOIN_ASK none. STOP_LIMIT is left to the broker (Order/place does not list it).

Order of checks: place_order: account_id, contract_id, side, size, type, limit_price, stop_price,
trail_price, custom_tag, brackets, the prices the type takes (limit, stop, trail; before anything
is sent), then (after resolving the contract) the tick grid in the order limit, stop, trail.
modify_order: account_id, order_id, size (when given), the prices, the "at least one" rule,
then (when a price is given, after learning the order's contract) the tick grid in the order
limit, stop, trail. cancel_order / get_order: account_id, order_id. find_order_by_tag:
account_id, then the tag (field custom_tag).

The tick-grid rule (`on_tick_grid`, `snap_to_tick`; the same float arithmetic on both sides):
a price is on the grid when `price / tick` is within 1e-6 of an integer n, and is then SENT as
the grid value itself, the double nearest to n x tick computed in decimal from the tick's
shortest printed form (MGC, tick 0.1: 2621.8999999999996 is sent as 2621.9). Prices 2**53 ticks
or more from zero, and contracts without a positive tick, are sent as given. modify_order learns
the order's contract from the orders this client placed, else from `Order/searchById` (the
contract then comes from the cache or `Contract/searchById`); an order the broker does not know
is modified as given (the broker answers NotFound), and a read that fails ends the call with
its error before the modify is sent.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, TypeGuard

from harness.errors import InvalidInputError
from harness.projectx import OrderType

__all__ = [
    "BRACKETS",
    "CONTRACT_KEY",
    "CUSTOM_TAG",
    "CUSTOM_TAG_LENGTH",
    "CUSTOM_TAG_TEXT",
    "MAX_CUSTOM_TAG",
    "MODIFY_NOTHING",
    "ORDER_TYPE",
    "POSITIVE_INT",
    "PRICE",
    "PRICE_NOT_TAKEN",
    "PRICE_REQUIRED",
    "SIDE",
    "TICK_GRID",
    "TYPE_PRICES",
    "UNKNOWN_CONTRACT",
    "brackets",
    "contract_key",
    "custom_tag",
    "grid_prices",
    "new_custom_tag",
    "on_tick_grid",
    "order_type",
    "positive_int",
    "price",
    "prices_for_type",
    "side",
    "snap_to_tick",
    "tick_grid_error",
    "unknown_contract",
]

POSITIVE_INT: Final = "must be a positive integer"
CONTRACT_KEY: Final = "must be a contract symbol or id"
SIDE: Final = "must be Side, 0/1 or 'buy'/'sell'"
ORDER_TYPE: Final = "must be an OrderType"
PRICE: Final = "must be a finite number"
CUSTOM_TAG: Final = "must be a non-empty string"
MAX_CUSTOM_TAG: Final = 128
"""Longest customTag in characters: the width of the `outcomes.custom_tag` column."""
CUSTOM_TAG_LENGTH: Final = "must be at most 128 characters, not {length}"
CUSTOM_TAG_TEXT: Final = "must not hold control characters or lone surrogates"
_TAG_SHOWN: Final = 20
_TAG_FORBIDDEN: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
BRACKETS: Final = "must map stop_loss/take_profit to {ticks, type}"
MODIFY_NOTHING: Final = "give at least one of size, limit_price, stop_price, trail_price"
UNKNOWN_CONTRACT: Final = "unknown contract"
TICK_GRID: Final = "not on the tick grid of {tick}"
PRICE_REQUIRED: Final = "required by order type {type}"
PRICE_NOT_TAKEN: Final = "does not apply to order type {type}"

PRICE_FIELDS: Final = ("limit_price", "stop_price", "trail_price")
# The price fields each order type takes; a type not listed (STOP_LIMIT) is not checked.
TYPE_PRICES: Final[Mapping[int, tuple[str, ...]]] = {
    OrderType.LIMIT: ("limit_price",),
    OrderType.MARKET: (),
    OrderType.STOP: ("stop_price",),
    OrderType.TRAILING_STOP: ("trail_price",),
    OrderType.JOIN_BID: (),
    OrderType.JOIN_ASK: (),
}
# At or beyond this many ticks every double is an integer count of ticks: nothing to snap.
_EXACT_STEPS: Final = 2.0**53


_I64_MAX: Final = 2**63 - 1


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _in_i64(value: int) -> bool:
    """Within a 64-bit integer: what the wire (and the Rust client) can carry."""
    return -_I64_MAX - 1 <= value <= _I64_MAX


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
    """None, or a customTag the gateway and the store can take: a non-empty string of at most
    `MAX_CUSTOM_TAG` (128) characters, none of them a control character (U+0000..U+001F,
    U+007F..U+009F) or a lone surrogate. `InvalidInputError` (field `custom_tag`) otherwise; for
    a tag too long its value is the tag's first 20 characters and `...`, its reason the length.
    """
    if value is None:
        return None
    if not (isinstance(value, str) and value):
        raise InvalidInputError("custom_tag", value, CUSTOM_TAG)
    if len(value) > MAX_CUSTOM_TAG:
        shown = value[:_TAG_SHOWN] + "..."
        raise InvalidInputError("custom_tag", shown, CUSTOM_TAG_LENGTH.format(length=len(value)))
    # Printable ASCII (every generated tag) is accepted without the search: 60 ns, not 300.
    if not (value.isascii() and value.isprintable()) and _TAG_FORBIDDEN.search(value):
        raise InvalidInputError("custom_tag", value, CUSTOM_TAG_TEXT)
    return value


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
        if not (_is_int(ticks) and _is_int(kind) and _in_i64(ticks) and _in_i64(kind)):
            raise InvalidInputError("brackets", value, BRACKETS)
        return {"ticks": int(ticks), "type": int(kind)}

    return one("stop_loss"), one("take_profit")


def unknown_contract(key: str) -> InvalidInputError:
    """The error for a contract that does not resolve."""
    return InvalidInputError("contract_id", key, UNKNOWN_CONTRACT)


def prices_for_type(order_type: int, given: Mapping[str, Any]) -> None:
    """Refuse a missing price the type needs, or a price the type does not take.

    `given` maps each of `PRICE_FIELDS` to the caller's value (None when left out); the first
    offending field, in the order limit, stop, trail, is raised as `InvalidInputError`.
    """
    takes = TYPE_PRICES.get(order_type)
    if takes is None:
        return
    for name in PRICE_FIELDS:
        value = given.get(name)
        if name in takes and value is None:
            reason = PRICE_REQUIRED.format(type=OrderType(order_type).name)
            raise InvalidInputError(name, None, reason)
        if name not in takes and value is not None:
            reason = PRICE_NOT_TAKEN.format(type=OrderType(order_type).name)
            raise InvalidInputError(name, value, reason)


def on_tick_grid(value: float, tick: float) -> bool:
    """Whether `value` sits on the grid of `tick` (float noise of 1e-6 tick tolerated); a value
    2**53 ticks or more from zero is (every double there is a whole count of ticks, and the
    count may overflow to infinity): it is sent as given."""
    if not (math.isfinite(tick) and tick > 0):
        return True
    steps = value / tick
    if not abs(steps) < _EXACT_STEPS:  # every such double is a whole count of ticks (or inf)
        return True
    return abs(steps - round(steps)) <= 1e-6


def snap_to_tick(value: float, tick: float) -> float:
    """`value` (already on the grid by `on_tick_grid`) as the grid value itself.

    n = round(value / tick); the result is the double nearest to n x tick computed exactly in
    decimal from the tick's shortest printed form, so it prints as the grid value in JSON
    (2621.8999999999996 on a 0.1 grid -> 2621.9). A tick that is not a positive finite number,
    or a value 2**53 ticks or more from zero, leaves the value as it is.
    """
    if not (math.isfinite(tick) and tick > 0):
        return value
    steps = value / tick
    if not abs(steps) < _EXACT_STEPS:
        return value
    _, digits, exponent = Decimal(repr(tick)).as_tuple()
    mantissa = int("".join(map(str, digits)))
    return float(f"{round(steps) * mantissa}e{exponent}")


def grid_prices(prices: Mapping[str, float | None], tick: float) -> dict[str, float | None]:
    """Each given price checked against the grid of `tick` and snapped onto it.

    Checked in the order of `prices` (limit, stop, trail); the first one off the grid is raised
    as `InvalidInputError(field, float(value), "not on the tick grid of {tick}")`.
    """
    snapped: dict[str, float | None] = {}
    for name, value in prices.items():
        if value is not None:
            if not on_tick_grid(value, tick):
                raise tick_grid_error(name, value, tick)
            value = snap_to_tick(value, tick)
        snapped[name] = value
    return snapped


def tick_grid_error(field: str, value: float, tick: float) -> InvalidInputError:
    """The error for a price off the contract's tick grid."""
    return InvalidInputError(field, float(value), TICK_GRID.format(tick=tick))


class _TagSource:
    """`hx-` + 12 random hex digits drawn once per process + a 12-hex-digit counter.

    Unique per call within a process, and across processes by the random half (48 bits: two
    processes collide with probability ~1e-14 even among a thousand). A forked child draws its
    own random half (`os.register_at_fork`), so parent and child never repeat each other's tags.
    About 0.15 us a tag, against 2 us for 12 fresh random bytes per call (the router generates a
    tag on every placement that lacks one).
    """

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = "hx-" + secrets.token_hex(6)
        # The counter runs from 2**48 + a random start below 2**40, so `hex(n)` is `0x1` and
        # exactly 12 more digits, zero-padded, for the next 2**52 - 2**48 - 2**40 tags (more
        # than a million years at a million tags a second): `hex(n)[3:]` is the 12-digit
        # counter without a format spec (about 0.1 us a tag less than `f"{n:012x}"`).
        self.counter = itertools.count((1 << 48) | secrets.randbelow(1 << 40))

    def __call__(self) -> str:
        return self.prefix + hex(next(self.counter))[3:]


_tags = _TagSource()


def new_custom_tag() -> str:
    """A fresh customTag: `hx-` and 24 hex digits, unique per call (see `_TagSource`).

    `_TagSource.__call__` written out: the router makes a tag on every placement that lacks
    one, and a second call frame is a fifth of this function's cost."""
    return _tags.prefix + hex(next(_tags.counter))[3:]
