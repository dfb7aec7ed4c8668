"""When a mutation's outcome is unknown: how the order clients find out instead of repeating it.

The policy (the same in `rust/src/orders/client.rs`):
- place: look the order up by its customTag; found -> return it (`reconciled=True`); not found
  -> place again with the SAME tag on the backoff schedule. If a repeat is rejected with code 2
  (most likely "duplicate customTag": an earlier attempt landed), look up once more and return
  the order, else raise the rejection.
- cancel: read the order; already cancelled (or pending cancellation) -> success; else cancel
  again. modify: read the order; it already carries the requested fields -> success; else
  modify again. A repeat refused by the broker is checked the same way before it is raised.
- schedule exhausted -> `BrokerUnavailableError(maybe_sent=True)` from the last attempt.
Look-ups that fail are treated as "not found" (the next attempt, or the final error, follows).

A placement's own look-ups search `Order/search` from `RECONCILE_CLOCK_ALLOWANCE_S` before the
call began, not the whole `reconcile_lookback_s` (a day): the order, if it landed, was created
during the call, and a bot that places thousands of orders a day must not download all of them
at every ambiguous answer (the soak drill saw a run slow down five-fold and its memory climb).
The allowance covers a client clock up to that far ahead of the broker's.
"""

from __future__ import annotations

import logging
from typing import Final

from harness.orders.models import Order, PlacedOrder
from harness.projectx import OrderStatus

__all__ = [
    "RECONCILE_CLOCK_ALLOWANCE_S",
    "cancel_took_effect",
    "modify_took_effect",
    "reconciled_placement",
]

log = logging.getLogger("harness.orders")

RECONCILE_CLOCK_ALLOWANCE_S: Final = 300.0
"""How long before a placement call began its own look-ups search (seconds; the Rust client's
`RECONCILE_CLOCK_ALLOWANCE_S` is the same)."""


def reconciled_placement(order_id: int, tag: str, attempts: int) -> PlacedOrder:
    """The result of a placement found by its customTag, logged the same way by both clients."""
    log.warning("placement reconciled: order %d carries customTag %s", order_id, tag)
    return PlacedOrder(order_id, tag, True, attempts)


def _same(want: float | None, have: float | None) -> bool:
    if want is None:
        return True
    if have is None:
        return False
    return abs(want - have) <= 1e-9 * max(abs(want), 1.0)


def cancel_took_effect(order: Order) -> bool:
    """Whether a cancel has already been applied to `order`."""
    return order.status in (OrderStatus.CANCELLED, OrderStatus.PENDING_CANCELLATION)


def modify_took_effect(
    order: Order,
    size: int | None,
    limit_price: float | None,
    stop_price: float | None,
    trail_price: float | None,
) -> bool:
    """Whether `order` already carries every field a modify asked for.

    A trailing stop's level is reported as the stop price (or limit price) of the order.
    """
    trail_level = order.stop_price if order.stop_price is not None else order.limit_price
    return (
        (size is None or size == order.size)
        and _same(limit_price, order.limit_price)
        and _same(stop_price, order.stop_price)
        and _same(trail_price, trail_level)
    )
