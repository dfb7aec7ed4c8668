"""Operation and implementation names: the one list of what the router can send to Rust or Python.

The values are the names used in configuration (`rollout.stages.N.percent.<operation>`), in the
store (`outcomes.op`, `outcomes.served`) and in every output (`harness query`, the dashboard).
"""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """A migrated hot-path operation; the value is the name used in config and in the store.

    `place_order` covers every order type; `place_market_order` is its shortcut and is routed and
    recorded as `place_order`.
    """

    PLACE_ORDER = "place_order"
    MODIFY_ORDER = "modify_order"
    CANCEL_ORDER = "cancel_order"
    AGGREGATE_BARS = "aggregate_bars"


class Impl(StrEnum):
    """One of the two implementations of every operation."""

    RUST = "rust"
    PYTHON = "python"


ORDER_OPERATIONS = (Operation.PLACE_ORDER, Operation.MODIFY_ORDER, Operation.CANCEL_ORDER)
"""The operations served by an order client (`harness.orders.OrderClient`)."""
