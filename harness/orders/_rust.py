"""The Rust order client behind the `OrderClient` protocol: a thin adapter over
`harness._native.OrderClient`, which returns plain dicts / tuples that become the same
dataclasses the Python client returns.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from harness import _native
from harness.orders.models import Account, Contract, Order, PlacedOrder
from harness.orders.reconcile import reconciled_placement
from harness.orders.settings import ClientSettings
from harness.projectx import OrderType

__all__ = ["RustOrderClient"]


def _placed(row: tuple[int, str, bool, int]) -> PlacedOrder:
    """Build a `PlacedOrder`; a reconciled placement is logged as the Python client logs it."""
    order_id, tag, reconciled, attempts = row
    if reconciled:
        return reconciled_placement(order_id, tag, attempts)
    return PlacedOrder(order_id, tag, False, attempts)


def _order(row: dict[str, Any] | None) -> Order | None:
    """Build an `Order` from the native dict (None stays None)."""
    return None if row is None else Order.from_native(row)


class RustOrderClient:
    """`OrderClient` served by the Rust core (tokio + reqwest); same results and errors."""

    __slots__ = ("_native",)

    def __init__(self, settings: ClientSettings) -> None:
        self._native = _native.OrderClient(
            settings.base_url,
            settings.username,
            settings.api_key,
            timeout_s=settings.timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            retry_delays_s=tuple(settings.retry_delays_s),
            jitter=settings.jitter,
            reconcile_lookback_s=settings.reconcile_lookback_s,
            max_connections=settings.max_connections,
            max_retry_after_s=settings.retry_after_cap_s,
        )

    def __repr__(self) -> str:
        return f"Rust{self._native!r}"

    async def __aenter__(self) -> RustOrderClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def accounts(self, only_active: bool = True) -> list[Account]:
        """`Account/search`."""
        rows = await self._native.accounts(only_active)
        return [Account(**row) for row in rows]

    async def resolve_contract(self, symbol_or_id: str) -> Contract:
        """A contract by symbol (`MNQ`) or id (`CON.F.US.MNQ.Z26`), cached."""
        return Contract(**await self._native.resolve_contract(symbol_or_id))

    async def place_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        type: Any = OrderType.MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        custom_tag: str | None = None,
        brackets: Any = None,
    ) -> PlacedOrder:
        """`Order/place`; an unknown outcome is reconciled by customTag."""
        placed = await self._native.place_order(
            account_id,
            contract_id,
            side,
            size,
            type=type,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
            custom_tag=custom_tag,
            brackets=brackets,
        )
        return _placed(placed)

    async def place_market_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        custom_tag: str | None = None,
    ) -> PlacedOrder:
        """A market order; an unknown outcome is reconciled by customTag."""
        placed = await self._native.place_market_order(
            account_id, contract_id, side, size, custom_tag=custom_tag
        )
        return _placed(placed)

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
        """`Order/modify`; an unknown outcome is checked against the order first."""
        await self._native.modify_order(
            account_id,
            order_id,
            size=size,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
        )

    async def cancel_order(self, account_id: int, order_id: int) -> None:
        """`Order/cancel`; an unknown outcome is checked against the order first."""
        await self._native.cancel_order(account_id, order_id)

    async def find_order_by_tag(self, account_id: int, tag: str) -> Order | None:
        """The order carrying `tag` within the reconcile look-back window, or None."""
        return _order(await self._native.find_order_by_tag(account_id, tag))

    async def get_order(self, account_id: int, order_id: int) -> Order | None:
        """One order by id, or None."""
        return _order(await self._native.get_order(account_id, order_id))

    async def aclose(self) -> None:
        """Forget the session and caches."""
        await self._native.aclose()
