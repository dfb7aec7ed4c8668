"""Order execution against the ProjectX Gateway: one protocol, two implementations.

`open_client(settings, impl="rust"|"python")` returns an `OrderClient`; both implementations take
the same inputs, return the same dataclasses (`harness.orders.models`) and raise the same
exceptions (`harness.errors`). The Python one is `harness.orders.python.PythonOrderClient`
(httpx); the Rust one is `harness.orders._rust.RustOrderClient` over `harness._native`.

Every call is checked once (`args`, by the rules of `validation`), then built, sent and read:
the build and read steps are pure and the same on both sides (`codec`), so the side that did
not serve a call can build its request and read its answers; `trace.traced()` records what a
call exchanged with the broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable

from harness.orders.models import (
    Account,
    Contract,
    HistoryBar,
    Order,
    PlacedOrder,
    Position,
)
from harness.orders.settings import ClientSettings
from harness.projectx import OrderStatus, OrderType, Side

__all__ = [
    "Account",
    "AccountReads",
    "ClientSettings",
    "Contract",
    "HistoryBar",
    "Impl",
    "Order",
    "OrderClient",
    "OrderStatus",
    "OrderType",
    "PlacedOrder",
    "Position",
    "Side",
    "open_client",
]

Impl = Literal["rust", "python"]


@runtime_checkable
class OrderClient(Protocol):
    """What both order clients offer; every method is a coroutine, the client an async CM."""

    async def accounts(self, only_active: bool = True) -> list[Account]:
        """`Account/search`."""
        ...

    async def resolve_contract(self, symbol_or_id: str) -> Contract:
        """A contract by symbol (`MNQ`) or id (`CON.F.US.MNQ.Z26`), cached."""
        ...

    async def place_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        type: int = OrderType.MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        custom_tag: str | None = None,
        brackets: Mapping[str, Any] | None = None,
    ) -> PlacedOrder:
        """`Order/place`, reconciled by customTag when the outcome is unknown."""
        ...

    async def place_market_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        custom_tag: str | None = None,
    ) -> PlacedOrder:
        """A market order."""
        ...

    async def modify_order(
        self,
        account_id: int,
        order_id: int,
        *,
        size: int | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
    ) -> None:
        """`Order/modify`."""
        ...

    async def cancel_order(self, account_id: int, order_id: int) -> None:
        """`Order/cancel`."""
        ...

    async def find_order_by_tag(self, account_id: int, tag: str) -> Order | None:
        """The order carrying customTag `tag`, or None."""
        ...

    async def get_order(self, account_id: int, order_id: int) -> Order | None:
        """One order by id, or None."""
        ...

    async def aclose(self) -> None:
        """Release connections and forget the session."""
        ...

    async def __aenter__(self) -> Self:
        """Enter: the client itself."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Exit: `aclose()`."""
        ...


@runtime_checkable
class AccountReads(Protocol):
    """What a bot reads around its orders, and its last resort: not migrated operations, so
    only the Python client offers them (the routed client delegates to it, unrecorded)."""

    async def open_orders(self, account_id: int) -> list[Order]:
        """`Order/searchOpen`."""
        ...

    async def open_positions(self, account_id: int) -> list[Position]:
        """`Position/searchOpen`."""
        ...

    async def retrieve_bars(
        self,
        contract_id: str,
        *,
        start: datetime,
        end: datetime,
        limit: int,
        unit: int = ...,
        unit_number: int = 1,
        include_partial_bar: bool = True,
        live: bool = False,
    ) -> list[HistoryBar]:
        """`History/retrieveBars`, oldest first."""
        ...

    async def close_position(self, account_id: int, contract_id: str) -> None:
        """`Position/closeContract`."""
        ...


def open_client(settings: ClientSettings, impl: Impl = "rust") -> OrderClient:
    """An order client of the chosen implementation (no network until the first call)."""
    if impl == "python":
        from harness.orders.python import PythonOrderClient

        return PythonOrderClient(settings)
    if impl == "rust":
        from harness.orders._rust import RustOrderClient

        return RustOrderClient(settings)
    raise ValueError(f"impl={impl!r}: must be 'rust' or 'python'")
