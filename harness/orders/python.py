"""The pure-Python order client: httpx.AsyncClient, the way a careful bot would write it.

It is the reference the Rust client (`harness._native.OrderClient`) must match call for call:
the same inputs refused with the same messages (`validation.py`), the same retries, the same
reconciliation of mutations whose outcome is unknown (`reconcile.py`), the same exceptions
(`harness.errors`). One pooled keep-alive connection pool per event loop that uses the client;
the token and contract caches are shared by every task and thread.

Cancellation: a request waits for one of `max_connections` slots (an asyncio semaphore; a
cancelled wait sends nothing), then runs on its own task, shielded from the caller: a call
cancelled by `asyncio.wait_for` returns at once, and the request it had sent runs to its end in
the background and then frees its slot. httpcore's pool must never see a cancellation: one that
arrives between the pool handing a request a new connection and the connecting leaves that
connection in the pool, never connected, holding its slot for ever (httpcore issue #1093, open
in httpcore 1.0.9); a bot wrapping its calls in time-outs ran out of slots within seconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import math
import random
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final

import httpx

from harness import projectx as px
from harness.errors import (
    AuthError,
    BrokerError,
    BrokerUnavailableError,
    InvalidInputError,
    NotFoundError,
    OrderRejectedError,
    RateLimitedError,
)
from harness.orders import validation as check
from harness.orders.models import (
    Account,
    Contract,
    HistoryBar,
    Order,
    PlacedOrder,
    Position,
    parse_id,
)
from harness.orders.reconcile import (
    RECONCILE_CLOCK_ALLOWANCE_S,
    cancel_took_effect,
    modify_took_effect,
    reconciled_placement,
)
from harness.orders.retry_after import parse_retry_after
from harness.orders.settings import ClientSettings

__all__ = ["Backoff", "PythonOrderClient", "parse_retry_after", "refresh_delay"]

log = logging.getLogger("harness.orders")

# Share of a token's lifetime after which it is refreshed with Auth/validate.
REFRESH_AT: Final = 0.9
# Reads may be repeated after a 5xx or a lost answer; mutations are reconciled instead.
IDEMPOTENT: Final = frozenset(
    {
        px.LOGIN_KEY,
        px.VALIDATE,
        px.ACCOUNT_SEARCH,
        px.CONTRACT_SEARCH,
        px.CONTRACT_SEARCH_BY_ID,
        px.ORDER_SEARCH,
        px.ORDER_SEARCH_BY_ID,
        px.ORDER_SEARCH_OPEN,
        px.POSITION_SEARCH_OPEN,
        px.HISTORY_RETRIEVE_BARS,
    }
)
# How many placed orders' contracts are remembered (for the tick grid of a later modify).
REMEMBERED_ORDERS: Final = 4096
_NOT_FOUND_CODES: Final = {
    px.ORDER_MODIFY: px.ModifyCode.ORDER_NOT_FOUND,
    px.ORDER_CANCEL: px.CancelCode.ORDER_NOT_FOUND,
    px.CONTRACT_SEARCH_BY_ID: px.ContractCode.CONTRACT_NOT_FOUND,
}


# ----- small pure pieces ----------------------------------------------------------------------


class Backoff:
    """The retry schedule: one delay per retry, so `len(delays) + 1` attempts at most."""

    def __init__(self, delays_s: tuple[float, ...], jitter: bool) -> None:
        self.delays = tuple(d if math.isfinite(d) and d > 0 else 0.0 for d in delays_s)
        self.jitter = jitter

    def delay_after(self, attempts: int, retry_after: float | None = None) -> float | None:
        """Delay before attempt `attempts + 1`; None when the schedule is exhausted.

        A 429's `Retry-After` replaces the scheduled delay but not the budget.
        """
        index = attempts - 1
        if index < 0 or index >= len(self.delays):
            return None
        if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
            return retry_after
        if self.jitter:
            # Full jitter in [50%, 150%): spreads retries that failed together.
            return self.delays[index] * (0.5 + random.random())
        return self.delays[index]


def _jwt_times(token: str) -> tuple[float, float | None] | None:
    """`exp` and `iat` of a JWT's payload; None when the token is not a JWT with `exp`."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict):
        return None

    def number(key: str) -> float | None:
        v = claims.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return None
        return float(v)

    exp = number("exp")
    return None if exp is None else (exp, number("iat"))


def refresh_delay(token: str, now_unix: float) -> float:
    """Seconds until a token just received is due for refresh (90% of its lifetime).

    The lifetime comes from the JWT's `exp` and `iat`; an opaque token is taken to live 24 h.
    """
    times = _jwt_times(token)
    if times is None:
        lifetime, elapsed = float(px.TOKEN_LIFETIME_S), 0.0
    elif times[1] is not None and times[0] > times[1]:
        lifetime, elapsed = times[0] - times[1], now_unix - times[1]
    else:
        lifetime, elapsed = times[0] - now_unix, 0.0
    seconds = REFRESH_AT * lifetime - max(elapsed, 0.0)
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client (building one costs ~70 ms of CA loading)."""
    return httpx.create_ssl_context()


def _iso_utc(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="microseconds")


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        head = "timed out"
    elif isinstance(exc, httpx.ConnectError):
        head = "connection failed"
    else:
        head = "connection lost"
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause) or type(cause).__name__
    return f"{head}: {text}"


def _business_failure(path: str, code: Any, message: Any, attempts: int) -> BrokerError:
    """An HTTP-200 `success: false` answer mapped to its class (per endpoint)."""
    error_code = code if isinstance(code, int) and not isinstance(code, bool) else None
    error_message = message if isinstance(message, str) else None
    text = f"{path} failed: errorCode={'null' if error_code is None else error_code} "
    text = (text + (error_message or "")).rstrip()
    fields: dict[str, Any] = {
        "endpoint": path,
        "error_code": error_code,
        "error_message": error_message,
        "http_status": 200,
        "attempts": attempts,
        "maybe_sent": False,
    }
    if path in (px.LOGIN_KEY, px.VALIDATE):
        return AuthError(text, **fields)
    if error_code is not None and _NOT_FOUND_CODES.get(path) == error_code:
        return NotFoundError(text, **fields)
    return OrderRejectedError(text, **fields)


def _unavailable(
    path: str, what: str, status: int | None, attempts: int, maybe_sent: bool
) -> BrokerUnavailableError:
    return BrokerUnavailableError(
        f"{path} unavailable after {attempts} attempts: {what}",
        endpoint=path,
        http_status=status,
        attempts=attempts,
        maybe_sent=maybe_sent,
    )


def _auth_failure(path: str, what: str, status: int | None, attempts: int) -> AuthError:
    return AuthError(f"{path}: {what}", endpoint=path, http_status=status, attempts=attempts)


def _maybe_sent(error: BrokerError) -> BrokerError:
    """`error` marked as ending a call an earlier attempt of which may have been processed."""
    error.maybe_sent = True
    return error


def _succeeded(data: Mapping[str, Any]) -> bool:
    return data.get("success") is True and data.get("errorCode") in (None, 0)


# ----- internal outcomes of one exchange ------------------------------------------------------


class _Unauthorized(Exception):
    """HTTP 401: log in again (once) and repeat."""


class _Ambiguous(Exception):
    """A mutation whose outcome is unknown: reconcile before anything else."""

    def __init__(self, error: BrokerUnavailableError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Attempts:
    """HTTP requests sent for one call (shared by its retries, re-login repeats included)."""

    n: int = 0


@dataclass(frozen=True)
class _LoopState:
    """What belongs to one event loop: its connection pool, the pool's slots (one per
    connection, held from sending a request until its answer is read) and the refresh lock."""

    http: httpx.AsyncClient
    slots: asyncio.Semaphore
    refresh_lock: asyncio.Lock


@dataclass(frozen=True)
class _Session:
    """A cached token; `generation` grows with every new token."""

    header: str = field(repr=False)
    generation: int
    refresh_at: float  # time.monotonic() when it is due for refresh

    def due(self) -> bool:
        return time.monotonic() >= self.refresh_at


# ----- the client -----------------------------------------------------------------------------


class PythonOrderClient:
    """ProjectX order client in pure Python (httpx); satisfies `harness.orders.OrderClient`."""

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
            keepalive_expiry=50.0,
        )
        self._limits = limits
        self._backoff = Backoff(settings.retry_delays_s, settings.jitter)
        # httpx pools and asyncio locks belong to one event loop: each loop that uses this client
        # (one per thread) gets its own pool and refresh lock, built on first use.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[asyncio.AbstractEventLoop, _LoopState] | None = None
        self._loops_guard = threading.Lock()
        # The token and contract caches are shared by every task and thread: read and written
        # under threading.Locks that are never held across an await.
        self._session: _Session | None = None
        self._session_guard = threading.Lock()
        self._contracts: dict[str, Contract] = {}
        self._contracts_guard = threading.Lock()
        # The contract of each order this client placed (or read for a modify), newest last.
        self._order_contracts: dict[int, str] = {}
        self._orders_guard = threading.Lock()

    def _here(self) -> _LoopState:
        """The pool and refresh lock of the running event loop."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        with self._loops_guard:
            state = self._loops.get(loop)
            if state is None:
                s = self._settings
                http = httpx.AsyncClient(
                    base_url=s.base_url.rstrip("/"),
                    # No pool time-out: `slots` already holds a request back until a connection
                    # is free (as the Rust client's in-flight limit does), and no time-out may
                    # cancel a wait inside httpcore's pool (see the module docstring).
                    timeout=httpx.Timeout(s.timeout_s, connect=s.connect_timeout_s, pool=None),
                    limits=self._limits,
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                    verify=_tls_context(),
                    trust_env=False,
                )
                slots = asyncio.Semaphore(s.max_connections)
                state = self._loops[loop] = _LoopState(http, slots, asyncio.Lock())
            self._last = (loop, state)
            return state

    def __repr__(self) -> str:
        s = self._settings
        return f"PythonOrderClient(base_url={s.base_url!r}, username={s.username!r})"

    async def __aenter__(self) -> PythonOrderClient:
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
        with self._session_guard:
            self._session = None
        with self._contracts_guard:
            self._contracts.clear()
        with self._orders_guard:
            self._order_contracts.clear()
        here = asyncio.get_running_loop()
        with self._loops_guard:
            states = list(self._loops.items())
            self._loops.clear()
            self._last = None
        for loop, state in states:
            if loop is here:
                await state.http.aclose()
            elif not loop.is_closed():  # another thread's loop closes its own pool
                asyncio.run_coroutine_threadsafe(state.http.aclose(), loop)

    # ----- transport ----------------------------------------------------------------------

    async def _exchange(
        self, path: str, body: bytes, header: str | None, attempts: _Attempts
    ) -> dict[str, Any]:
        """One request with retries for what certainly was not processed (and, on idempotent
        endpoints, for 5xx and lost answers). 401 and ambiguous mutations go to the caller."""
        headers = {"Authorization": header} if header is not None else None
        while True:
            attempts.n += 1
            n = attempts.n
            kind: str
            status: int | None = None
            retry_after: float | None = None
            try:
                response = await self._post(path, body, headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                kind, what = "not_sent", _describe(exc)
            except httpx.TransportError as exc:
                kind, what = "lost", _describe(exc)
            else:
                status = response.status_code
                if status == 200:
                    try:
                        data = json.loads(response.content)
                    except ValueError as exc:
                        data = f"unreadable answer: {exc}"
                    if isinstance(data, dict):
                        if _succeeded(data):
                            return data
                        raise _business_failure(
                            path, data.get("errorCode"), data.get("errorMessage"), n
                        )
                    kind = "lost"
                    what = data if isinstance(data, str) else "unreadable answer: not an object"
                elif status == 401:
                    raise _Unauthorized
                elif status == 429:
                    kind, what = "rate_limited", "HTTP 429"
                    advice = response.headers.get("retry-after")
                    retry_after = parse_retry_after(advice, time.time())
                elif status >= 500:
                    kind, what = "lost", f"HTTP {status}"
                else:
                    raise OrderRejectedError(
                        f"{path} answered HTTP {status}",
                        endpoint=path,
                        http_status=status,
                        attempts=n,
                    )
            if kind == "lost" and path not in IDEMPOTENT:
                raise _Ambiguous(_unavailable(path, what, status, n, True))
            delay = self._backoff.delay_after(n, retry_after)
            cap = self._settings.retry_after_cap_s
            if delay is not None and retry_after is not None and retry_after > cap:
                raise RateLimitedError(
                    f"{path} rate limited (HTTP 429) after {n} attempts: Retry-After "
                    f"{retry_after:.3f} s is beyond max_retry_after_s {cap:.3f} s",
                    retry_after=retry_after,
                    endpoint=path,
                    http_status=429,
                    attempts=n,
                )
            if delay is not None:
                log.debug("%s attempt %d: %s; retrying in %.3f s", path, n, what, delay)
                await asyncio.sleep(delay)
                continue
            if kind == "rate_limited":
                raise RateLimitedError(
                    f"{path} rate limited (HTTP 429) after {n} attempts",
                    retry_after=retry_after,
                    endpoint=path,
                    http_status=429,
                    attempts=n,
                )
            raise _unavailable(path, what, status, n, kind == "lost")

    async def _post(self, path: str, body: bytes, headers: dict[str, str] | None) -> httpx.Response:
        """One POST: wait for a slot (cancellable, nothing sent yet), then send it on its own
        task, which keeps the slot until the answer is read; a caller cancelled meanwhile
        returns at once (see the module docstring)."""
        state = self._here()
        await state.slots.acquire()
        request = asyncio.ensure_future(state.http.post(path, content=body, headers=headers))
        request.add_done_callback(lambda _: state.slots.release())
        # If the caller is cancelled, shield() marks the request's own outcome as retrieved.
        return await asyncio.shield(request)

    async def _call(self, path: str, body: bytes, attempts: _Attempts) -> dict[str, Any]:
        """An authenticated exchange; a 401 leads to one fresh login and one repeat."""
        session = await self._current_session()
        relogged = False
        while True:
            try:
                return await self._exchange(path, body, session.header, attempts)
            except _Unauthorized:
                if relogged:
                    raise AuthError(
                        f"{path} refused the session (HTTP 401) after a fresh login",
                        endpoint=path,
                        http_status=401,
                        attempts=attempts.n,
                    ) from None
                relogged = True
                log.info("%s answered 401: logging in again", path)
                session = await self._relogin(session.generation)

    async def _read(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """An authenticated read (retried inside `_exchange`, never ambiguous)."""
        attempts = _Attempts()
        try:
            return await self._call(path, _dumps(body), attempts)
        except _Ambiguous as exc:  # not reachable for idempotent paths; kept total
            raise exc.error from None

    # ----- session --------------------------------------------------------------------------

    def _cached_session(self) -> _Session | None:
        with self._session_guard:
            return self._session

    def _store(self, token: str) -> _Session:
        delay = refresh_delay(token, time.time())
        with self._session_guard:
            generation = 1 if self._session is None else self._session.generation + 1
            self._session = _Session(f"Bearer {token}", generation, time.monotonic() + delay)
            return self._session

    async def _current_session(self) -> _Session:
        session = self._cached_session()
        if session is not None and not session.due():
            return session
        async with self._here().refresh_lock:
            session = self._cached_session()
            if session is not None and not session.due():
                return session
            if session is not None:
                try:
                    return await self._validate(session)
                except BrokerError as exc:
                    log.info("token refresh failed (%s): logging in again", type(exc).__name__)
            return await self._login()

    async def _relogin(self, stale_generation: int) -> _Session:
        async with self._here().refresh_lock:
            session = self._cached_session()
            if session is not None and session.generation != stale_generation and not session.due():
                return session
            return await self._login()

    async def _login(self) -> _Session:
        """`Auth/loginKey`; call with the refresh lock held."""
        path = px.LOGIN_KEY
        s = self._settings
        attempts = _Attempts()
        body = _dumps({"userName": s.username, "apiKey": s.api_key})
        try:
            data = await self._exchange(path, body, None, attempts)
        except _Unauthorized:
            raise _auth_failure(path, "login refused (HTTP 401)", 401, attempts.n) from None
        except _Ambiguous as exc:
            raise exc.error from None
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise _auth_failure(path, "login answered success without a token", 200, attempts.n)
        log.debug("logged in as %s", s.username)
        return self._store(token)

    async def _validate(self, session: _Session) -> _Session:
        """`Auth/validate` with the current token; call with the refresh lock held."""
        path = px.VALIDATE
        attempts = _Attempts()
        try:
            data = await self._exchange(path, b"", session.header, attempts)
        except _Unauthorized:
            raise _auth_failure(path, "session expired (HTTP 401)", 401, attempts.n) from None
        except _Ambiguous as exc:
            raise exc.error from None
        token = data.get("newToken")
        if not isinstance(token, str) or not token:
            raise _auth_failure(path, "validate answered no token", 200, attempts.n)
        log.debug("token refreshed with validate")
        return self._store(token)

    # ----- reads ----------------------------------------------------------------------------

    async def accounts(self, only_active: bool = True) -> list[Account]:
        """`Account/search`."""
        data = await self._read(px.ACCOUNT_SEARCH, {"onlyActiveAccounts": bool(only_active)})
        return [Account.from_api(row) for row in data.get("accounts") or []]

    async def resolve_contract(self, symbol_or_id: str) -> Contract:
        """A contract by symbol (`MNQ`) or full id (`CON.F.US.MNQ.Z26`), cached."""
        key = check.contract_key(symbol_or_id)
        with self._contracts_guard:
            cached = self._contracts.get(key)
        if cached is not None:
            return cached
        key = key.strip()
        if "." in key:
            found = await self._contract_by_id(key)
        else:
            found = await self._contract_by_symbol(key)
        if found is None:
            raise check.unknown_contract(key)
        with self._contracts_guard:
            self._contracts[key] = found
            self._contracts[found.id] = found
        return found

    async def _contract_by_id(self, contract_id: str) -> Contract | None:
        try:
            data = await self._read(px.CONTRACT_SEARCH_BY_ID, {"contractId": contract_id})
        except NotFoundError:
            return None
        rows = [data["contract"]] if isinstance(data.get("contract"), dict) else []
        rows += [r for r in data.get("contracts") or [] if isinstance(r, dict)]
        for row in rows:
            if str(row.get("id")) == contract_id:
                return Contract.from_api(row)
        return None

    async def _contract_by_symbol(self, symbol: str) -> Contract | None:
        data = await self._read(px.CONTRACT_SEARCH, {"searchText": symbol, "live": False})
        rows = [Contract.from_api(r) for r in data.get("contracts") or [] if isinstance(r, dict)]
        return pick_contract(rows, symbol)

    async def find_order_by_tag(self, account_id: int, tag: str) -> Order | None:
        """The order carrying customTag `tag`, searched over the reconcile look-back window."""
        account_id = check.positive_int("account_id", account_id)
        if check.custom_tag(tag) is None:
            raise InvalidInputError("custom_tag", tag, check.CUSTOM_TAG)
        return await self._find_by_tag(account_id, tag)

    async def _find_by_tag(
        self, account_id: int, tag: str, since: float | None = None
    ) -> Order | None:
        """The order carrying `tag`, searched from `reconcile_lookback_s` ago, or (a placement's
        own look-up) from `RECONCILE_CLOCK_ALLOWANCE_S` before `since` if that is later."""
        start_s = time.time() - self._settings.reconcile_lookback_s
        if since is not None:
            start_s = max(start_s, since - RECONCILE_CLOCK_ALLOWANCE_S)
        start = _iso_utc(start_s)
        data = await self._read(px.ORDER_SEARCH, {"accountId": account_id, "startTimestamp": start})
        for row in data.get("orders") or []:
            if isinstance(row, dict) and row.get("customTag") == tag:
                return Order.from_api(row)
        return None

    async def get_order(self, account_id: int, order_id: int) -> Order | None:
        """One order by id; None when the broker has no such order."""
        account_id = check.positive_int("account_id", account_id)
        order_id = check.positive_int("order_id", order_id)
        return await self._get_order(account_id, order_id)

    async def _get_order(self, account_id: int, order_id: int) -> Order | None:
        body = {"accountId": account_id, "orderId": order_id}
        try:
            data = await self._read(px.ORDER_SEARCH_BY_ID, body)
        except OrderRejectedError as exc:  # NotFoundError included
            if isinstance(exc, NotFoundError) or exc.http_status == 200:
                return None
            raise
        row = data.get("order")
        if not isinstance(row, dict):
            return None
        order = Order.from_api(row)
        return order if order.id == order_id else None

    async def open_orders(self, account_id: int) -> list[Order]:
        """`Order/searchOpen`: the account's working orders (suspended bracket children are
        left out by the broker)."""
        account_id = check.positive_int("account_id", account_id)
        data = await self._read(px.ORDER_SEARCH_OPEN, {"accountId": account_id})
        return [Order.from_api(row) for row in data.get("orders") or [] if isinstance(row, dict)]

    async def open_positions(self, account_id: int) -> list[Position]:
        """`Position/searchOpen`: the account's open positions."""
        account_id = check.positive_int("account_id", account_id)
        data = await self._read(px.POSITION_SEARCH_OPEN, {"accountId": account_id})
        rows = data.get("positions") or []
        return [Position.from_api(row) for row in rows if isinstance(row, dict)]

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
        """`History/retrieveBars`: the most recent `limit` bars (at most 20,000) of `unit_number`
        `unit`s in [start, end], a symbol or contract id, OLDEST FIRST (the gateway answers
        newest first; this sorts by `t` on receipt). `start`/`end` are aware datetimes.

        Raises `InvalidInputError` for a bad argument, `OrderRejectedError` for the gateway's
        refusal (codes: 1 ContractNotFound, 2 UnitInvalid, 3 UnitNumberInvalid, 4 LimitInvalid),
        `BrokerUnavailableError` for a malformed answer or a broker out of reach.
        """
        limit = check.positive_int("limit", limit)
        if limit > px.MAX_BARS_LIMIT:
            raise InvalidInputError("limit", limit, f"at most {px.MAX_BARS_LIMIT}")
        unit_number = check.positive_int("unit_number", unit_number)
        if unit not in tuple(px.BarUnit):
            raise InvalidInputError("unit", unit, "must be a BarUnit (1..6)")
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise InvalidInputError(name, value, "must be a timezone-aware datetime")
        contract = await self.resolve_contract(contract_id)
        body = {
            "contractId": contract.id,
            "live": bool(live),
            "startTime": start.astimezone(UTC).isoformat(timespec="microseconds"),
            "endTime": end.astimezone(UTC).isoformat(timespec="microseconds"),
            "unit": int(unit),
            "unitNumber": unit_number,
            "limit": limit,
            "includePartialBar": bool(include_partial_bar),
        }
        data = await self._read(px.HISTORY_RETRIEVE_BARS, body)
        bars: list[HistoryBar] = []
        for i, row in enumerate(data.get("bars") or []):
            try:
                bars.append(HistoryBar.from_api(row))
            except (KeyError, TypeError, ValueError) as exc:
                what = f"malformed bar at index {i}: {type(exc).__name__} {exc}"
                raise _unavailable(px.HISTORY_RETRIEVE_BARS, what, 200, 1, False) from None
        bars.sort(key=lambda bar: bar.t)
        return bars

    # ----- mutations ------------------------------------------------------------------------

    async def place_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        type: int = px.OrderType.MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        custom_tag: str | None = None,
        brackets: Mapping[str, Any] | None = None,
    ) -> PlacedOrder:
        """`Order/place`; an unknown outcome is reconciled by customTag, never repeated blindly."""
        account_id = check.positive_int("account_id", account_id)
        key = check.contract_key(contract_id)
        side_value = check.side(side)
        size = check.positive_int("size", size)
        order_type = check.order_type(type)
        prices = {
            "limit_price": check.price("limit_price", limit_price),
            "stop_price": check.price("stop_price", stop_price),
            "trail_price": check.price("trail_price", trail_price),
        }
        tag = check.custom_tag(custom_tag)
        stop_loss, take_profit = check.brackets(brackets)
        check.prices_for_type(
            order_type,
            {"limit_price": limit_price, "stop_price": stop_price, "trail_price": trail_price},
        )
        contract = await self.resolve_contract(key)
        prices = check.grid_prices(prices, contract.tick_size)
        tag = tag or check.new_custom_tag()
        body: dict[str, Any] = {
            "accountId": account_id,
            "contractId": contract.id,
            "type": order_type,
            "side": side_value,
            "size": size,
            "limitPrice": prices["limit_price"],
            "stopPrice": prices["stop_price"],
            "trailPrice": prices["trail_price"],
            "customTag": tag,
        }
        if stop_loss is not None:
            body["stopLossBracket"] = stop_loss
        if take_profit is not None:
            body["takeProfitBracket"] = take_profit
        placed = await self._place(account_id, tag, _dumps(body))
        self._remember_contract(placed.order_id, contract.id)
        return placed

    async def place_market_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        custom_tag: str | None = None,
    ) -> PlacedOrder:
        """A market order (the bot's hot path)."""
        return await self.place_order(
            account_id, contract_id, side, size, type=px.OrderType.MARKET, custom_tag=custom_tag
        )

    async def _place(self, account_id: int, tag: str, body: bytes) -> PlacedOrder:
        path = px.ORDER_PLACE
        began = time.time()  # the order, if it lands, is created after this
        attempts = _Attempts()
        uncertain = False
        while True:
            try:
                data = await self._call(path, body, attempts)
            except _Ambiguous as exc:
                failure = exc.error
            except BrokerError as exc:
                if not uncertain:
                    raise
                # An earlier attempt's outcome is unknown, and a repeat failed (most likely the
                # duplicate-tag rejection: that attempt landed). Find the order, or say that it
                # may stand.
                found = await self._quiet_find(account_id, tag, began)
                if found is not None:
                    return self._reconciled(found, tag, attempts.n)
                raise _maybe_sent(exc) from None
            else:
                order_id = data.get("orderId")
                try:
                    return PlacedOrder(parse_id(order_id), tag, False, attempts.n)
                except ValueError:
                    what = "success without an orderId"
                    failure = _unavailable(path, what, 200, attempts.n, True)
            uncertain = True
            log.warning("%s outcome unknown (%s): looking up customTag", path, failure)
            found = await self._quiet_find(account_id, tag, began)
            if found is not None:
                return self._reconciled(found, tag, attempts.n)
            delay = self._backoff.delay_after(attempts.n)
            if delay is None:
                raise failure
            await asyncio.sleep(delay)

    @staticmethod
    def _reconciled(order: Order, tag: str, attempts: int) -> PlacedOrder:
        return reconciled_placement(order.id, tag, attempts)

    def _remember_contract(self, order_id: int, contract_id: str) -> None:
        """Remember an order's contract (its tick grid serves a later modify)."""
        with self._orders_guard:
            self._order_contracts.pop(order_id, None)
            self._order_contracts[order_id] = contract_id
            if len(self._order_contracts) > REMEMBERED_ORDERS:
                del self._order_contracts[next(iter(self._order_contracts))]

    async def _order_tick(self, account_id: int, order_id: int) -> float | None:
        """The tick size of an order's contract; None when the order or its contract is
        unknown (the modify then goes out as given and the broker judges it). A read that
        fails raises its error: the modify is then not sent."""
        with self._orders_guard:
            contract_id = self._order_contracts.get(order_id)
        if contract_id is None:
            order = await self._get_order(account_id, order_id)
            if order is None:
                return None
            contract_id = order.contract_id
            self._remember_contract(order_id, contract_id)
        try:
            return (await self.resolve_contract(contract_id)).tick_size
        except InvalidInputError:
            return None

    async def _quiet_find(self, account_id: int, tag: str, since: float) -> Order | None:
        try:
            return await self._find_by_tag(account_id, tag, since)
        except BrokerError:
            return None

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
        """`Order/modify`; an unknown outcome is checked against the order before repeating."""
        account_id = check.positive_int("account_id", account_id)
        order_id = check.positive_int("order_id", order_id)
        new_size = None if size is None else check.positive_int("size", size)
        lp = check.price("limit_price", limit_price)
        sp = check.price("stop_price", stop_price)
        tp = check.price("trail_price", trail_price)
        if new_size is None and lp is None and sp is None and tp is None:
            raise InvalidInputError("modify", None, check.MODIFY_NOTHING)
        if lp is not None or sp is not None or tp is not None:
            tick = await self._order_tick(account_id, order_id)
            if tick is not None:
                prices = {"limit_price": lp, "stop_price": sp, "trail_price": tp}
                snapped = check.grid_prices(prices, tick)
                lp, sp, tp = snapped["limit_price"], snapped["stop_price"], snapped["trail_price"]
        body: dict[str, Any] = {"accountId": account_id, "orderId": order_id}
        for name, value in (("size", new_size), ("limitPrice", lp), ("stopPrice", sp)):
            if value is not None:
                body[name] = value
        if tp is not None:
            body["trailPrice"] = tp
        await self._mutate(
            px.ORDER_MODIFY,
            _dumps(body),
            account_id,
            order_id,
            lambda order: modify_took_effect(order, new_size, lp, sp, tp),
        )

    async def cancel_order(self, account_id: int, order_id: int) -> None:
        """`Order/cancel`; an unknown outcome is checked against the order before repeating."""
        account_id = check.positive_int("account_id", account_id)
        order_id = check.positive_int("order_id", order_id)
        body = _dumps({"accountId": account_id, "orderId": order_id})
        await self._mutate(px.ORDER_CANCEL, body, account_id, order_id, cancel_took_effect)

    async def close_position(self, account_id: int, contract_id: str) -> None:
        """`Position/closeContract`: close the whole position in a contract (symbol or id) by
        a market order. Not repeated when its outcome is unknown (`BrokerUnavailableError`
        with `maybe_sent`): read the positions to learn what happened."""
        account_id = check.positive_int("account_id", account_id)
        contract = await self.resolve_contract(contract_id)
        body = _dumps({"accountId": account_id, "contractId": contract.id})
        try:
            await self._call(px.POSITION_CLOSE_CONTRACT, body, _Attempts())
        except _Ambiguous as exc:
            raise exc.error from None

    async def _mutate(
        self,
        path: str,
        body: bytes,
        account_id: int,
        order_id: int,
        done: Callable[[Order], bool],
    ) -> None:
        attempts = _Attempts()
        uncertain = False
        while True:
            try:
                await self._call(path, body, attempts)
                return
            except _Ambiguous as exc:
                failure = exc.error
            except BrokerError as exc:
                if not uncertain:
                    raise
                # A repeat failed (refused: maybe because an earlier attempt already did it).
                if await self._quiet_done(account_id, order_id, done):
                    return
                raise _maybe_sent(exc) from None
            uncertain = True
            log.warning("%s outcome unknown (%s): reading order %d", path, failure, order_id)
            if await self._quiet_done(account_id, order_id, done):
                return
            delay = self._backoff.delay_after(attempts.n)
            if delay is None:
                raise failure
            await asyncio.sleep(delay)

    async def _quiet_done(
        self, account_id: int, order_id: int, done: Callable[[Order], bool]
    ) -> bool:
        try:
            order = await self._get_order(account_id, order_id)
        except BrokerError:
            return False
        return order is not None and done(order)


def pick_contract(rows: list[Contract], symbol: str) -> Contract | None:
    """The contract a symbol names among search rows: its own root, the active one first."""
    wanted = symbol.strip().upper()

    def matches(c: Contract) -> bool:
        root = c.symbol_id.rsplit(".", 1)[-1].upper() if c.symbol_id else None
        parts = c.id.split(".")
        return (
            root == wanted
            or c.name.upper() == wanted
            or (len(parts) > 3 and parts[3].upper() == wanted)
        )

    fallback = None
    for c in rows:
        if matches(c):
            if c.active_contract:
                return c
            if fallback is None:
                fallback = c
    return fallback


def _dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
