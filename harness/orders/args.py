"""The arguments of each order call, checked once into typed tuples both clients take.

`check_place` and `check_modify` run the checks of `harness.orders.validation` in its documented
order (the one table of messages) and return plain values: ints, floats, str, None. The Python
client builds its request from them; the Rust client hands them to `harness._native` as they
are, so nothing is checked twice and Rust never inspects a raw Python object. The tick grid is
checked later, in the build step, once the contract is known.

Tuples (`NamedTuple`) rather than dataclasses: they are made on every order call, and a tuple
is built in a fraction of the time and unpacks straight into the native call (built with
`tuple.__new__`, in C, not through the NamedTuple's generated Python `__new__`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from harness.errors import InvalidInputError
from harness.orders import validation as check
from harness.projectx import OrderType

__all__ = [
    "Bracket",
    "ModifyArgs",
    "PlaceArgs",
    "check_market",
    "check_modify",
    "check_order_ref",
    "check_place",
    "check_tag_lookup",
]


class Bracket(NamedTuple):
    """A bracket of `Order/place` (`{ticks, type}`): `ticks` from the fill, `type` an
    `OrderType`, both as the caller gave them (the broker judges them)."""

    ticks: int
    type: int


class PlaceArgs(NamedTuple):
    """A placement after the checks; `contract` is the symbol or id as given (the client
    resolves it), `custom_tag` None when the client is to make one."""

    account_id: int
    contract: str
    side: int
    size: int
    type: int
    limit_price: float | None
    stop_price: float | None
    trail_price: float | None
    custom_tag: str | None
    stop_loss: Bracket | None
    take_profit: Bracket | None


class ModifyArgs(NamedTuple):
    """A modification after the checks: at least one of the four fields is not None."""

    account_id: int
    order_id: int
    size: int | None
    limit_price: float | None
    stop_price: float | None
    trail_price: float | None


_tuple_new = tuple.__new__
_MARKET = int(OrderType.MARKET)


def _bracket(api: dict[str, int] | None) -> Bracket | None:
    return None if api is None else Bracket(api["ticks"], api["type"])


def check_place(
    account_id: Any,
    contract_id: Any,
    side: Any,
    size: Any,
    *,
    type: Any = OrderType.MARKET,
    limit_price: Any = None,
    stop_price: Any = None,
    trail_price: Any = None,
    custom_tag: Any = None,
    brackets: Mapping[str, Any] | None = None,
) -> PlaceArgs:
    """The arguments of `place_order`, checked; raises `InvalidInputError` for the first bad
    one (order: account_id, contract_id, side, size, type, the three prices, custom_tag,
    brackets, then the prices the order type takes)."""
    account = check.positive_int("account_id", account_id)
    contract = check.contract_key(contract_id)
    side_value = check.side(side)
    size_value = check.positive_int("size", size)
    order_type = check.order_type(type)
    limit = check.price("limit_price", limit_price)
    stop = check.price("stop_price", stop_price)
    trail = check.price("trail_price", trail_price)
    tag = check.custom_tag(custom_tag)
    stop_loss, take_profit = check.brackets(brackets)
    check.prices_for_type(
        order_type,
        {"limit_price": limit_price, "stop_price": stop_price, "trail_price": trail_price},
    )
    fields = (account, contract, side_value, size_value, order_type, limit, stop, trail, tag)
    return _tuple_new(PlaceArgs, (*fields, _bracket(stop_loss), _bracket(take_profit)))


def check_market(
    account_id: Any, contract_id: Any, side: Any, size: Any, custom_tag: Any = None
) -> PlaceArgs:
    """`check_place` for a market order (the bot's hot path: only what it can get wrong)."""
    fields = (
        check.positive_int("account_id", account_id),
        check.contract_key(contract_id),
        check.side(side),
        check.positive_int("size", size),
        _MARKET,
        None,
        None,
        None,
        check.custom_tag(custom_tag),
        None,
        None,
    )
    return _tuple_new(PlaceArgs, fields)


def check_modify(
    account_id: Any,
    order_id: Any,
    *,
    size: Any = None,
    limit_price: Any = None,
    stop_price: Any = None,
    trail_price: Any = None,
) -> ModifyArgs:
    """The arguments of `modify_order`, checked (account_id, order_id, size when given, the
    prices, then "at least one field")."""
    account = check.positive_int("account_id", account_id)
    order = check.positive_int("order_id", order_id)
    new_size = None if size is None else check.positive_int("size", size)
    limit = check.price("limit_price", limit_price)
    stop = check.price("stop_price", stop_price)
    trail = check.price("trail_price", trail_price)
    if new_size is None and limit is None and stop is None and trail is None:
        raise InvalidInputError("modify", None, check.MODIFY_NOTHING)
    return _tuple_new(ModifyArgs, (account, order, new_size, limit, stop, trail))


def check_order_ref(account_id: Any, order_id: Any) -> tuple[int, int]:
    """`(account_id, order_id)` of cancel_order / get_order, checked in that order."""
    return check.positive_int("account_id", account_id), check.positive_int("order_id", order_id)


def check_tag_lookup(account_id: Any, tag: Any) -> tuple[int, str]:
    """`(account_id, tag)` of find_order_by_tag: the tag must be given (field custom_tag)."""
    account = check.positive_int("account_id", account_id)
    if check.custom_tag(tag) is None:
        raise InvalidInputError("custom_tag", tag, check.CUSTOM_TAG)
    return account, tag
