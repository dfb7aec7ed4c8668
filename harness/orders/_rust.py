"""The Rust order client behind the `OrderClient` protocol, over `harness._native.OrderClient`.

The boundary is typed: each call's arguments are checked here, once (`harness.orders.args`,
the rules of `validation.py`), and go to Rust as ints, floats, str and None; Rust returns the
dataclasses of `harness.orders.models` itself and raises the `harness.errors` classes. Inside a
`harness.orders.trace.traced()` block the call's exchanges are recorded (the trace is handed to
Rust, which appends to its list before the call returns or raises).

`RustCodec` is this side's build and read steps (`harness.orders.codec`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from harness import _native
from harness.orders import validation as check
from harness.orders.args import (
    ModifyArgs,
    PlaceArgs,
    check_market,
    check_modify,
    check_order_ref,
    check_place,
    check_tag_lookup,
)
from harness.orders.codec import Request
from harness.orders.models import Account, Contract, Order, PlacedOrder
from harness.orders.settings import ClientSettings
from harness.orders.trace import current
from harness.projectx import OrderType

__all__ = ["RustCodec", "RustOrderClient"]


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
        return await self._native.accounts(bool(only_active), current())

    async def resolve_contract(self, symbol_or_id: str) -> Contract:
        """A contract by symbol (`MNQ`) or id (`CON.F.US.MNQ.Z26`), cached."""
        key = check.contract_key(symbol_or_id)
        return await self._native.resolve_contract(key, current())

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
        brackets: Mapping[str, Any] | None = None,
    ) -> PlacedOrder:
        """`Order/place`; an unknown outcome is reconciled by customTag."""
        args = check_place(
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
        return await self._native.place_order(*args, current())

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
        args = check_market(account_id, contract_id, side, size, custom_tag)
        return await self._native.place_order(*args, current())

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
        args = check_modify(
            account_id,
            order_id,
            size=size,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
        )
        await self._native.modify_order(*args, current())

    async def cancel_order(self, account_id: int, order_id: int) -> None:
        """`Order/cancel`; an unknown outcome is checked against the order first."""
        account_id, order_id = check_order_ref(account_id, order_id)
        await self._native.cancel_order(account_id, order_id, current())

    async def find_order_by_tag(self, account_id: int, tag: str) -> Order | None:
        """The order carrying `tag` within the reconcile look-back window, or None."""
        account_id, tag = check_tag_lookup(account_id, tag)
        return await self._native.find_order_by_tag(account_id, tag, current())

    async def get_order(self, account_id: int, order_id: int) -> Order | None:
        """One order by id, or None."""
        account_id, order_id = check_order_ref(account_id, order_id)
        return await self._native.get_order(account_id, order_id, current())

    def cached_contract(self, key: str) -> Contract | None:
        """The contract cached under `key`, or None: no I/O (an order shadow's input)."""
        return self._native.cached_contract(key)

    def cached_order_contract(self, order_id: int) -> str | None:
        """The contract id of an order this client placed or read, or None: no I/O."""
        return self._native.cached_order_contract(order_id)

    async def aclose(self) -> None:
        """Forget the session and caches."""
        await self._native.aclose()


class RustCodec:
    """The Rust side's build and read steps (`harness.orders.codec.Codec`), GIL released."""

    @staticmethod
    def build_place(args: PlaceArgs, contract: Contract, custom_tag: str) -> Request:
        """`Order/place` (see `Codec.build_place`)."""
        return _native.build_place(
            args.account_id,
            args.side,
            args.size,
            args.type,
            args.limit_price,
            args.stop_price,
            args.trail_price,
            args.stop_loss,
            args.take_profit,
            contract.id,
            contract.tick_size,
            custom_tag,
        )

    @staticmethod
    def build_modify(args: ModifyArgs, tick_size: float | None) -> Request:
        """`Order/modify` (see `Codec.build_modify`)."""
        return _native.build_modify(*args, tick_size)

    build_cancel = staticmethod(_native.build_cancel)
    build_search_by_tag = staticmethod(_native.build_search_by_tag)
    build_search_by_id = staticmethod(_native.build_search_by_id)
    read_place = staticmethod(_native.read_place)
    read_modify = staticmethod(_native.read_modify)
    read_cancel = staticmethod(_native.read_cancel)
    read_search_by_tag = staticmethod(_native.read_search_by_tag)
    read_search_by_id = staticmethod(_native.read_search_by_id)
