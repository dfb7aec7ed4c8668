"""What every call of the Python client stands on: its state (transport, session, caches), its
life cycle, and the authenticated send of one request (`_call`, `_read`).

The token and contract caches are shared by every task and thread: read and written under
`threading.Lock`s that are never held across an await.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Final, Self, TypeVar

from harness.errors import AuthError
from harness.orders.codec import Request
from harness.orders.models import Contract
from harness.orders.python.session import Sessions
from harness.orders.python.transport import Ambiguous, Attempts, Reader, Transport, Unauthorized
from harness.orders.settings import ClientSettings

__all__ = ["REMEMBERED_ORDERS", "ClientCore"]

log = logging.getLogger("harness.orders")

T = TypeVar("T")

# How many placed orders' contracts are remembered (for the tick grid of a later modify).
REMEMBERED_ORDERS: Final = 4096


class ClientCore:
    """State, life cycle and authenticated sending of `PythonOrderClient`."""

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._transport = Transport(settings)
        self._sessions = Sessions(settings, self._transport)
        self._contracts: dict[str, Contract] = {}
        self._contracts_guard = threading.Lock()
        # The contract of each order this client placed (or read for a modify), newest last.
        self._order_contracts: dict[int, str] = {}
        self._orders_guard = threading.Lock()

    def __repr__(self) -> str:
        s = self._settings
        return f"PythonOrderClient(base_url={s.base_url!r}, username={s.username!r})"

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
        """Close the connection pools and forget the session and the contract cache."""
        self._sessions.forget()
        with self._contracts_guard:
            self._contracts.clear()
        with self._orders_guard:
            self._order_contracts.clear()
        await self._transport.aclose()

    def cached_contract(self, key: str) -> Contract | None:
        """The contract cached under `key` (a symbol or id as resolved), or None: no I/O (an
        order shadow reads what the serving side resolved)."""
        with self._contracts_guard:
            return self._contracts.get(key) or self._contracts.get(key.strip())

    def cached_order_contract(self, order_id: int) -> str | None:
        """The contract id of an order this client placed or read, or None: no I/O."""
        with self._orders_guard:
            return self._order_contracts.get(order_id)

    async def _call(self, request: Request, attempts: Attempts, read: Reader[T]) -> T:
        """`request` sent on the session; a 401 leads to one fresh log-in and one repeat."""
        session = await self._sessions.current()
        relogged = False
        while True:
            try:
                return await self._transport.send(request, session.header, attempts, read)
            except Unauthorized:
                if relogged:
                    raise AuthError(
                        f"{request.path} refused the session (HTTP 401) after a fresh login",
                        endpoint=request.path,
                        http_status=401,
                        attempts=attempts.n,
                    ) from None
                relogged = True
                log.info("%s answered 401: logging in again", request.path)
                session = await self._sessions.relogin(session.generation)

    async def _read(self, request: Request, read: Reader[T]) -> T:
        """An authenticated read (repeated inside `send`, never ambiguous)."""
        try:
            return await self._call(request, Attempts(), read)
        except Ambiguous as exc:  # not reachable for idempotent paths; kept total
            raise exc.error from None
