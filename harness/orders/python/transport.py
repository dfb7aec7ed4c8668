"""Send: the Python client's I/O. One httpx pool per event loop, one request at a time through
`Transport.send`, which repeats what may be repeated and records the exchange when traced.

Cancellation: a request waits for one of `max_connections` slots (an asyncio semaphore; a
cancelled wait sends nothing), then runs on its own task, shielded from the caller: a call
cancelled by `asyncio.wait_for` returns at once, and the request it had sent runs to its end in
the background and then frees its slot. httpcore's pool must never see a cancellation: one that
arrives between the pool handing a request a new connection and the connecting leaves that
connection in the pool, never connected, holding its slot for ever (httpcore issue #1093, open
in httpcore 1.0.9); a bot wrapping its calls in time-outs ran out of slots within seconds.

Retries (`send`): a request that certainly was not processed (connection refused, HTTP 429) is
repeated on the backoff schedule, and so is any request to an idempotent endpoint (searches,
log-in) after a 5xx or a lost answer. A 401 and a mutation whose outcome is unknown go back to
the caller (`Unauthorized`, `Ambiguous`): it logs in again, or reconciles.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import ssl
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

import httpx

from harness import projectx as px
from harness.errors import AuthError, BrokerError, BrokerUnavailableError, RateLimitedError
from harness.orders import trace as tracing
from harness.orders.codec import Request
from harness.orders.python.read import unavailable
from harness.orders.retry_after import parse_retry_after
from harness.orders.settings import ClientSettings

__all__ = ["IDEMPOTENT", "Ambiguous", "Attempts", "Backoff", "Transport", "Unauthorized"]

log = logging.getLogger("harness.orders")

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Reader(Protocol[T_co]):
    """A read step (`read.py`): an answer -> the result, or raises the error it means."""

    def __call__(
        self, status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
    ) -> T_co: ...


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
# Their bodies carry the API key or a token: a trace records `REDACTED` instead.
_SECRET_BODIES: Final = frozenset({px.LOGIN_KEY, px.VALIDATE})


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


class Unauthorized(Exception):
    """HTTP 401: log in again (once) and repeat."""


class Ambiguous(Exception):
    """A mutation whose outcome is unknown: reconcile before anything else."""

    def __init__(self, error: BrokerUnavailableError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class Attempts:
    """HTTP requests sent for one call (shared by its retries, re-login repeats included)."""

    n: int = 0


@dataclass(frozen=True)
class _LoopState:
    """What belongs to one event loop: its connection pool, the pool's slots (one per
    connection, held from sending a request until its answer is read) and the refresh lock."""

    http: httpx.AsyncClient
    slots: asyncio.Semaphore
    refresh_lock: asyncio.Lock


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client (building one costs ~70 ms of CA loading)."""
    return httpx.create_ssl_context()


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


def _record(
    trace: tracing.Trace,
    request: Request,
    status: int | None,
    response: bytes,
    retry_after: float | None,
    failure: tracing.Failure | None,
) -> None:
    sent = request.content
    if request.path in _SECRET_BODIES:
        sent = tracing.REDACTED
        response = tracing.REDACTED if status is not None else b""
    exchange = tracing.Exchange(request.path, sent, status, response, retry_after, failure)
    trace.exchanges.append(exchange)


class Transport:
    """The connection pools of one client (one per event loop that uses it) and `send`."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.backoff = Backoff(settings.retry_delays_s, settings.jitter)
        self._limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
            keepalive_expiry=50.0,
        )
        # httpx pools and asyncio locks belong to one event loop: each loop that uses this client
        # (one per thread) gets its own pool and refresh lock, built on first use.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[asyncio.AbstractEventLoop, _LoopState] | None = None
        self._guard = threading.Lock()

    def here(self) -> _LoopState:
        """The pool, slots and refresh lock of the running event loop."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        with self._guard:
            state = self._loops.get(loop)
            if state is None:
                s = self.settings
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

    async def aclose(self) -> None:
        """Close every loop's pool (another thread's loop closes its own)."""
        here = asyncio.get_running_loop()
        with self._guard:
            states = list(self._loops.items())
            self._loops.clear()
            self._last = None
        for loop, state in states:
            if loop is here:
                await state.http.aclose()
            elif not loop.is_closed():
                asyncio.run_coroutine_threadsafe(state.http.aclose(), loop)

    async def _post(self, path: str, body: bytes, headers: dict[str, str] | None) -> httpx.Response:
        """One POST: wait for a slot (cancellable, nothing sent yet), then send it on its own
        task, which keeps the slot until the answer is read; a caller cancelled meanwhile
        returns at once (see the module docstring)."""
        state = self.here()
        await state.slots.acquire()
        request = asyncio.ensure_future(state.http.post(path, content=body, headers=headers))
        request.add_done_callback(lambda _: state.slots.release())
        # If the caller is cancelled, shield() marks the request's own outcome as retrieved.
        return await asyncio.shield(request)

    async def send(
        self, request: Request, header: str | None, attempts: Attempts, read: Reader[T]
    ) -> T:
        """Send `request` (with `header` as Authorization, if any) until `read` accepts an
        answer or the policy of the module docstring ends the call; its error then."""
        path = request.path
        headers = {"Authorization": header} if header is not None else None
        trace = tracing.current()
        while True:
            attempts.n += 1
            n = attempts.n
            failure: BrokerError
            lost: BrokerUnavailableError | None = None  # may have been processed: reads repeat
            advice: float | None = None  # a 429's Retry-After: replaces the scheduled delay
            try:
                response = await self._post(path, request.content, headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if trace is not None:
                    _record(trace, request, None, b"", None, tracing.NOT_SENT)
                failure = unavailable(path, _describe(exc), None, n, False)
            except httpx.TransportError as exc:
                if trace is not None:
                    _record(trace, request, None, b"", None, tracing.LOST)
                failure = lost = unavailable(path, _describe(exc), None, n, True)
            else:
                status = response.status_code
                retry_after = None
                if status != 200:  # a header look-up costs a microsecond: only when it counts
                    retry_after = parse_retry_after(
                        response.headers.get("retry-after"), time.time()
                    )
                if trace is not None:
                    _record(trace, request, status, response.content, retry_after, None)
                try:
                    return read(status, response.content, retry_after, attempts=n)
                except AuthError as exc:
                    if exc.http_status == 401:
                        raise Unauthorized from None
                    raise
                except RateLimitedError as exc:
                    failure, advice = exc, exc.retry_after
                except BrokerUnavailableError as exc:
                    if not exc.maybe_sent:
                        raise  # an answer that stays the same however often it is asked
                    failure = lost = exc
            if lost is not None and path not in IDEMPOTENT:
                raise Ambiguous(lost)
            delay = self.backoff.delay_after(n, advice)
            cap = self.settings.retry_after_cap_s
            if delay is not None and advice is not None and advice > cap:
                raise RateLimitedError(
                    f"{path} rate limited (HTTP 429) after {n} attempts: Retry-After "
                    f"{advice:.3f} s is beyond max_retry_after_s {cap:.3f} s",
                    retry_after=advice,
                    endpoint=path,
                    http_status=429,
                    attempts=n,
                )
            if delay is None:
                raise failure
            log.debug("%s attempt %d: %s; retrying in %.3f s", path, n, failure, delay)
            await asyncio.sleep(delay)
