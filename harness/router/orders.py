"""The routed order client: the `OrderClient` protocol, each mutation sent to Rust or Python.

Routing keys (DESIGN.md): a placement is routed by its customTag (one is generated before
routing when the caller gives none, so the key exists and a fallback reuses it); a modify or
cancel follows the side that placed its order (remembered for the last `REMEMBER` placed),
unless that side is now disabled for the operation (percent 0, kill switch, breaker open,
native unavailable), and an order this process did not place is routed by `str(order_id)`.
`place_market_order` is routed and recorded as `place_order`.

A Rust failure is handled by `harness.router.policy`: not sent -> Python at once; maybe sent ->
reconcile with the Python client first (placement: find the order by its customTag and return
it, place with the same tag only if none exists; modify/cancel: read the order and succeed if
the change is already there, else repeat on Python); the broker's own answers (rejection, not
found, rate limit, auth) and the caller's invalid input are raised as they are. Every call is
one outcome row; a fallback says why in `fallback_reason`. A Rust failure counts toward the
operation's circuit breaker unless the Python side then could not reach the broker either (the
broker's outage is not Rust's failure).

Reads (`accounts`, `resolve_contract`, `find_order_by_tag`, `get_order`, `open_orders`,
`open_positions`, `retrieve_bars`) and the last resort `close_position` are not migrated
operations: the Python client serves them, unrecorded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime
from time import perf_counter_ns, time_ns
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from harness import projectx as px
from harness.errors import BrokerError, BrokerUnavailableError, OrderRejectedError
from harness.operations import Impl, Operation
from harness.orders import AccountReads, OrderClient
from harness.orders.models import Account, Contract, HistoryBar, Order, PlacedOrder, Position
from harness.orders.reconcile import (
    cancel_took_effect,
    modify_took_effect,
    reconciled_placement,
)
from harness.orders.validation import new_custom_tag
from harness.projectx import OrderType
from harness.router.call import call_async
from harness.router.capture import Capturer
from harness.router.core import Router
from harness.router.order_shadow import OrderShadow, ShadowedCall
from harness.router.policy import order_failure_action
from harness.router.shadow import ShadowRunner

__all__ = ["REMEMBER", "RoutedOrderClient"]

log = logging.getLogger("harness.router")

REMEMBER: Final = 100_000
"""How many order ids the router remembers the placing side of, at least: the last `REMEMBER`
placed and at most as many before them (two generations of plain dicts: when the newer holds
`REMEMBER`, the older is dropped whole. An `OrderedDict` that dropped the oldest one by one cost
each placement ~0.1 us more)."""

T = TypeVar("T")
Call = Callable[[OrderClient], Awaitable[T]]
# Enum members as module constants: `Impl.PYTHON` is a class-attribute look-up (~0.2 us).
RUST: Final = Impl.RUST
PYTHON: Final = Impl.PYTHON
# Plain strings, not the enum members: the store's column takes them as they are.
PLACE: Final = Operation.PLACE_ORDER.value
MODIFY: Final = Operation.MODIFY_ORDER.value
CANCEL: Final = Operation.CANCEL_ORDER.value


_ALREADY_APPLIED: Final = "the order already shows the change"
_REFUSED_APPLIED: Final = "python repeat refused, the order shows the change"
_FOUND_APPLIED: Final = frozenset({_ALREADY_APPLIED, _REFUSED_APPLIED})
"""What `_reconcile_mutation` says when a look-up settled the call (`outcomes.reconciled`)."""


def _unreachable(exc: BaseException) -> bool:
    """The call could not reach the broker, or the broker could not answer it (transport
    failures, time-outs, 5xx): `BrokerUnavailableError`, except the router's own "placement
    outcome unknown", which follows a refusal, so the broker was reached."""
    return isinstance(exc, BrokerUnavailableError) and not isinstance(
        exc.__cause__, OrderRejectedError
    )


def _blame(failure: BaseException, python_failure: BaseException) -> bool:
    """Whether Rust's failure counts toward the breaker after the Python side failed too: not
    when neither client could reach the broker (an outage, a network down is not a Rust
    failure, and must not open the breaker that sends all to Python)."""
    if _unreachable(failure) and _unreachable(python_failure):
        log.warning(
            "the broker is out of reach of both clients (%s: %s); not counted against Rust",
            type(python_failure).__name__,
            python_failure,
        )
        return False
    return True


def _placed_detail(placed: PlacedOrder) -> tuple[int | None, int | None, bool]:
    return placed.attempts, placed.order_id, placed.reconciled


def _settled(how: str) -> bool:
    return how in _FOUND_APPLIED


class RoutedOrderClient:
    """`OrderClient` whose mutations are routed (see the module docstring).

    `rust` is None when the native module is unavailable: everything then runs on `python`.
    With `shadows`, a call sampled at the stage's shadow rate is compared with what the other
    side would have sent and read (`harness.router.order_shadow`); the other side sends nothing.
    With `capturer` too, a call sampled at its migration's `capture.rate` is captured for
    `harness replay` (`harness.router.capture`).
    """

    def __init__(
        self,
        router: Router,
        python: OrderClient,
        rust: OrderClient | None,
        shadows: ShadowRunner | None = None,
        capturer: Capturer | None = None,
    ) -> None:
        self._router = router
        self._python = python
        self._rust = rust
        # order id -> (the side that placed it, whether the stage targeted the placement): a
        # modify or cancel follows both, so an order the targets left out stays "not targeted"
        # in the figures through its whole life, not "hashed to Python" after its placement.
        self._placed_by: dict[int, tuple[Impl, bool]] = {}  # the newer generation
        self._placed_before: dict[int, tuple[Impl, bool]] = {}  # the older (see REMEMBER)
        self._placed_on = self._remember_placement  # bound once, not per placement
        self._placed_untargeted = self._remember_untargeted
        self.shadow = (
            None if shadows is None else OrderShadow(router, shadows, self._sides, capturer)
        )

    def _sides(self) -> tuple[OrderClient, ...]:
        return (self._python,) if self._rust is None else (self._python, self._rust)

    def __repr__(self) -> str:
        sides = "rust+python" if self._rust is not None else "python only"
        return f"RoutedOrderClient({sides})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close both clients."""
        try:
            if self._rust is not None:
                await self._rust.aclose()
        finally:
            await self._python.aclose()

    def use_client(self, impl: Impl, client: OrderClient) -> OrderClient | None:
        """Test hook (tests, drills): serve side `impl` with `client`, e.g. a wrapper of the
        real client that fails on purpose; returns the client it replaces."""
        if impl is RUST:
            previous, self._rust = self._rust, client
            return previous
        previous_python, self._python = self._python, client
        return previous_python

    # ----- reads: not routed ------------------------------------------------------------------

    async def accounts(self, only_active: bool = True) -> list[Account]:
        """`Account/search` (Python client)."""
        return await self._python.accounts(only_active)

    async def resolve_contract(self, symbol_or_id: str) -> Contract:
        """A contract by symbol or id, cached (Python client)."""
        return await self._python.resolve_contract(symbol_or_id)

    async def find_order_by_tag(self, account_id: int, tag: str) -> Order | None:
        """The order carrying customTag `tag`, or None (Python client)."""
        return await self._python.find_order_by_tag(account_id, tag)

    async def get_order(self, account_id: int, order_id: int) -> Order | None:
        """One order by id, or None (Python client)."""
        return await self._python.get_order(account_id, order_id)

    def _reads(self) -> AccountReads:
        python = self._python
        if not isinstance(python, AccountReads):
            raise TypeError(f"the Python side {python!r} does not offer the account reads")
        return python

    async def open_orders(self, account_id: int) -> list[Order]:
        """`Order/searchOpen` (Python client)."""
        return await self._reads().open_orders(account_id)

    async def open_positions(self, account_id: int) -> list[Position]:
        """`Position/searchOpen` (Python client)."""
        return await self._reads().open_positions(account_id)

    async def retrieve_bars(
        self,
        contract_id: str,
        *,
        start: datetime,
        end: datetime,
        limit: int,
        unit: int = px.BarUnit.MINUTE,
        unit_number: int = 1,
        include_partial_bar: bool = True,
        live: bool = False,
    ) -> list[HistoryBar]:
        """`History/retrieveBars`, oldest first (Python client; see
        `PythonOrderClient.retrieve_bars`)."""
        return await self._reads().retrieve_bars(
            contract_id,
            start=start,
            end=end,
            limit=limit,
            unit=unit,
            unit_number=unit_number,
            include_partial_bar=include_partial_bar,
            live=live,
        )

    async def close_position(self, account_id: int, contract_id: str) -> None:
        """`Position/closeContract`, the last resort (Python client, unrecorded)."""
        await self._reads().close_position(account_id, contract_id)

    # ----- placement ---------------------------------------------------------------------------

    def place_order(
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
    ) -> Coroutine[Any, Any, PlacedOrder]:
        """`Order/place` on the side the customTag routes to; see the module docstring. (A
        plain method returning the coroutine to await: one coroutine frame fewer.)"""
        tag = new_custom_tag() if custom_tag is None else custom_tag

        def call(impl: Impl) -> Awaitable[PlacedOrder]:
            client = self._python if impl is PYTHON or self._rust is None else self._rust
            return client.place_order(
                account_id,
                contract_id,
                side,
                size,
                type=type,
                limit_price=limit_price,
                stop_price=stop_price,
                trail_price=trail_price,
                custom_tag=tag,
                brackets=brackets,
            )

        def options() -> dict[str, Any]:  # the shadow's inputs, made only when sampled
            return {
                "type": type, "limit_price": limit_price, "stop_price": stop_price,
                "trail_price": trail_price, "custom_tag": tag,
                "brackets": None if brackets is None else dict(brackets),
            }  # fmt: skip

        return self._place(account_id, contract_id, side, size, tag, call, "place", options)

    def place_market_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        custom_tag: str | None = None,
    ) -> Coroutine[Any, Any, PlacedOrder]:
        """A market order: routed and recorded as `place_order`. (A plain method returning the
        coroutine to await, which spares the bot's hot path one coroutine frame.)"""
        tag = new_custom_tag() if custom_tag is None else custom_tag

        def call(impl: Impl) -> Awaitable[PlacedOrder]:
            client = self._python if impl is PYTHON or self._rust is None else self._rust
            return client.place_market_order(account_id, contract_id, side, size, custom_tag=tag)

        return self._place(account_id, contract_id, side, size, tag, call, "market", None)

    def _place(
        self,
        account_id: int,
        contract_id: Any,
        side: Any,
        size: Any,
        tag: Any,
        call: Callable[[Impl], Any],
        kind: str,
        options: Callable[[], dict[str, Any]] | None,
    ) -> Coroutine[Any, Any, PlacedOrder]:
        """The routed placement, as the coroutine to await (no frame of its own). `call(side)`
        places on `side`; a shadowed or captured call's inputs are `(account_id, contract_id,
        side, size, tag)` for a market order (`options` None), `(account_id, contract_id,
        side, size, options())` for `place_order`: made only for a sampled call."""
        router = self._router
        ts_ns, started = time_ns(), perf_counter_ns()
        key = tag if type(tag) is str else repr(tag)
        if self._rust is None:
            routed, targeted = PYTHON, True
        else:
            # The attributes only when the stage targets (a dict per call costs): a snapshot
            # swapped in between sees none, and sends the call to Python, not targeted.
            attrs = None
            if router.snapshot.targets[PLACE] is not None:
                attrs = {"symbol": contract_id, "account": account_id}
            routed, targeted = router.route_call(PLACE, key, attrs)
        shadow = self.shadow
        if router.snapshot.observed[PLACE] and shadow is not None:
            drawn = shadow.sample(PLACE, routed)
            if drawn is not None:
                shadowed = shadow.shadowed_call(
                    PLACE, kind,
                    (account_id, contract_id, side, size, tag if options is None else options()),
                    key, ts_ns, drawn,
                )  # fmt: skip
                return self._shadowed(
                    shadowed, routed, key, call,
                    failure=order_failure_action, how="placed on python", targeted=targeted,
                    reconcile=lambda exc: self._reconcile_place(account_id, tag, call, exc),
                    blame=_blame, detail=_placed_detail, custom_tag=tag,
                    served_by=self._placed_on if targeted else self._placed_untargeted,
                    ts_ns=ts_ns, started=started,
                )  # fmt: skip
        # By position, in call_async's order (failure, how, targeted, reconcile, blame, detail,
        # order_id, custom_tag, settled, after, on_error, served_by, ts_ns, started): ~0.3 us a
        # call less than by keyword.
        return call_async(
            router, PLACE, routed, key, call,
            order_failure_action, "placed on python", targeted,
            lambda exc: self._reconcile_place(account_id, tag, call, exc),
            _blame, _placed_detail, None, tag, None, None, None,
            self._placed_on if targeted else self._placed_untargeted, ts_ns, started,
        )  # fmt: skip

    def _shadowed(
        self,
        shadowed: ShadowedCall,
        routed: Impl,
        key: str,
        on_side: Callable[[Impl], Awaitable[T]],
        **hooks: Any,
    ) -> Coroutine[Any, Any, T]:
        """A sampled call: the serving side awaited inside a trace, the comparison handed to
        the shadow threads once the outcome is recorded (`harness.router.order_shadow`)."""
        assert self.shadow is not None
        settle = self.shadow.after(shadowed)
        return call_async(
            self._router, shadowed.op, routed, key, lambda side: shadowed.run(on_side(side)),
            after=settle, on_error=settle, **hooks,
        )  # fmt: skip

    def _on(self, side: Impl) -> OrderClient:
        return self._python if side is PYTHON or self._rust is None else self._rust

    def _remember_placement(self, side: Impl, placed: PlacedOrder) -> None:
        """Remember which side placed `placed`, targeted (at least the last `REMEMBER`)."""
        placed_by = self._placed_by
        placed_by[placed.order_id] = (side, True)
        if len(placed_by) >= REMEMBER:
            self._placed_before, self._placed_by = placed_by, {}

    def _remember_untargeted(self, side: Impl, placed: PlacedOrder) -> None:
        """Remember a placement the stage's targets left out (it went to `side`: Python)."""
        placed_by = self._placed_by
        placed_by[placed.order_id] = (side, False)
        if len(placed_by) >= REMEMBER:
            self._placed_before, self._placed_by = placed_by, {}

    def _placement(self, order_id: int) -> tuple[Impl, bool] | None:
        """(side, targeted) of a remembered placement of `order_id`, else None."""
        found = self._placed_by.get(order_id)
        return self._placed_before.get(order_id) if found is None else found

    async def _reconcile_place(
        self,
        account_id: int,
        tag: str,
        call: Callable[[Impl], Awaitable[PlacedOrder]],
        failure: BaseException,
    ) -> tuple[PlacedOrder, str]:
        """After a placement that may have landed: return the order found by its tag, or place
        with the same tag on Python. Never raises `maybe_sent=False` (the order may exist)."""
        rust_attempts = failure.attempts if isinstance(failure, BrokerError) else 1
        found = await self._quiet_find(account_id, tag)
        if found is not None:
            return reconciled_placement(found.id, tag, rust_attempts), "found by customTag"
        try:
            placed = await call(PYTHON)
        except OrderRejectedError as rejection:
            # Most likely the duplicate-tag rejection: the Rust attempt landed after all.
            found = await self._quiet_find(account_id, tag)
            if found is not None:
                how = "python placement refused, then found by customTag"
                return reconciled_placement(found.id, tag, rust_attempts), how
            raise BrokerUnavailableError(
                f"placement outcome unknown: the Rust attempt may have reached the broker "
                f"({self._router.error_text(failure)}), the Python placement with the same "
                f"customTag was refused ({rejection}), and no order carries customTag {tag}",
                endpoint=px.ORDER_PLACE,
                error_code=rejection.error_code,
                error_message=rejection.error_message,
                http_status=rejection.http_status,
                attempts=rust_attempts + rejection.attempts,
                maybe_sent=True,
            ) from rejection
        attempts = rust_attempts + placed.attempts
        result = PlacedOrder(placed.order_id, tag, placed.reconciled, attempts)
        return result, "not found by customTag, placed on python with the same tag"

    async def _quiet_find(self, account_id: int, tag: str) -> Order | None:
        try:
            return await self._python.find_order_by_tag(account_id, tag)
        except BrokerError:
            return None

    # ----- modify and cancel -------------------------------------------------------------------

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
        """`Order/modify` on the side that placed the order (see the module docstring)."""

        def call(client: OrderClient) -> Awaitable[None]:
            return client.modify_order(
                account_id,
                order_id,
                size=size,
                limit_price=limit_price,
                stop_price=stop_price,
                trail_price=trail_price,
            )

        def done(order: Order) -> bool:
            return modify_took_effect(order, size, limit_price, stop_price, trail_price)

        inputs = (account_id, order_id, {
            "size": size, "limit_price": limit_price, "stop_price": stop_price,
            "trail_price": trail_price,
        })  # fmt: skip
        await self._mutate(MODIFY, account_id, order_id, call, done, "modify", inputs)

    async def cancel_order(self, account_id: int, order_id: int) -> None:
        """`Order/cancel` on the side that placed the order (see the module docstring)."""

        def call(client: OrderClient) -> Awaitable[None]:
            return client.cancel_order(account_id, order_id)

        inputs = (account_id, order_id)
        await self._mutate(CANCEL, account_id, order_id, call, cancel_took_effect, "cancel", inputs)

    async def _mutate(
        self,
        op: str,
        account_id: int,
        order_id: int,
        call: Call[None],
        done: Callable[[Order], bool],
        kind: str,
        inputs: tuple[Any, ...],
    ) -> None:
        router = self._router
        ts_ns, started = time_ns(), perf_counter_ns()
        key = str(order_id)
        routed, targeted = self._follow(op, account_id, order_id, key)

        async def reconcile(_exc: BaseException) -> tuple[None, str]:
            return None, await self._reconcile_mutation(account_id, order_id, call, done)

        shadowed = None
        shadow = self.shadow
        if router.snapshot.observed[op] and shadow is not None:
            drawn = shadow.sample(op, routed)
            if drawn is not None:
                shadowed = shadow.shadowed_call(op, kind, inputs, key, ts_ns, drawn)
        if shadowed is not None:
            await self._shadowed(
                shadowed, routed, key, lambda side: call(self._on(side)),
                failure=order_failure_action, how="repeated on python", targeted=targeted,
                reconcile=reconcile, blame=_blame, order_id=order_id, settled=_settled,
                ts_ns=ts_ns, started=started,
            )  # fmt: skip
            return
        await call_async(
            router, op, routed, key, lambda side: call(self._on(side)),
            failure=order_failure_action, how="repeated on python", targeted=targeted,
            reconcile=reconcile, blame=_blame, order_id=order_id, settled=_settled,
            ts_ns=ts_ns, started=started,
        )  # fmt: skip

    async def _reconcile_mutation(
        self, account_id: int, order_id: int, call: Call[None], done: Callable[[Order], bool]
    ) -> str:
        """After a modify/cancel that may have landed: succeed if the order shows it, else
        repeat on Python (a refused repeat is checked the same way before it is raised)."""
        if await self._quiet_done(account_id, order_id, done):
            return _ALREADY_APPLIED
        try:
            await call(self._python)
        except OrderRejectedError:
            if await self._quiet_done(account_id, order_id, done):
                return _REFUSED_APPLIED
            raise
        return "not applied yet, repeated on python"

    async def _quiet_done(
        self, account_id: int, order_id: int, done: Callable[[Order], bool]
    ) -> bool:
        try:
            order = await self._python.get_order(account_id, order_id)
        except BrokerError:
            return False
        return order is not None and done(order)

    # ----- which side ---------------------------------------------------------------------------

    def _follow(self, op: str, account_id: Any, order_id: Any, key: str) -> tuple[Impl, bool]:
        """(side, targeted): the placing side of `order_id` and whether its placement was
        targeted, if remembered (Rust only while still enabled: modify and cancel follow the
        placement), else the targets and the hash (an order this process did not place has no
        symbol to target by: with symbol targets it goes to Python, not targeted)."""
        if self._rust is None:
            return PYTHON, True
        placed = self._placement(order_id) if type(order_id) is int else None
        if placed is not None:
            side, targeted = placed
            if side is RUST and not self._router.rust_enabled(op):
                return PYTHON, targeted
            return side, targeted
        attrs = None
        if self._router.snapshot.targets[op] is not None:
            attrs = {"account": account_id}
        return self._router.route_call(op, key, attrs)

    def placed_by(self, order_id: int) -> Impl | None:
        """The side that placed `order_id` in this process (None: not remembered)."""
        placed = self._placement(order_id)
        return None if placed is None else placed[0]
