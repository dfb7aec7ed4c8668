"""Operation names: the one list of what the router can send to Rust or Python."""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """A migrated hot-path operation; the value is the name used in config and in the store."""

    PLACE_MARKET_ORDER = "place_market_order"
    MODIFY_ORDER = "modify_order"
    CANCEL_ORDER = "cancel_order"
    AGGREGATE_BARS = "aggregate_bars"
