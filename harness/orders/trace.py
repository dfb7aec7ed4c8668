"""What an order call exchanged with the broker, recorded on request, alike on both sides.

    from harness.orders.trace import traced

    with traced() as trace:
        placed = await client.place_market_order(1001, "MNQ", "buy", 1)
    trace.exchanges   # [Exchange(path='/api/Order/place', request=b'{...}', status=200, ...)]

Inside a `traced()` block every HTTP request a client makes for the calls awaited there is
recorded, in the order sent, as one `Exchange`: the contract look-up of a first placement,
each retry, the log-in again after a 401 or the token refresh a call made itself, and the
look-ups that reconcile an unknown outcome. The trace is complete when the awaited call
returns or raises (the Rust client hands its exchanges over before it settles the awaitable),
so a caller reads it in a `finally` or after an `except` as well.

Cost: nothing is collected outside a block. The Python client reads one `ContextVar` per
request; the Rust client is told by one argument per call and otherwise records nothing.

Scope: a block belongs to the task that entered it (a `ContextVar`): calls of other tasks are
not recorded in it. Tasks started inside the block (`asyncio.gather`) share it, so their
exchanges interleave: trace one call per block to read one call's exchanges. Exchanges made
for another caller (a log-in or refresh another task started first, which this call only
waited for) belong to that caller's trace.

Secrets: `Auth/loginKey` carries the API key and answers a token, `Auth/validate` answers a
token; their bodies are recorded as `REDACTED`, so a trace can be logged or stored as it is.
The `Authorization` header is never recorded.

What it is for: an order shadow compares the request the other side builds from the same
arguments with `request`, and reads `status`, `response` and `retry_after` through the other
side's read step (`harness.orders.codec`); capture and offline replay store exchanges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = ["LOST", "NOT_SENT", "REDACTED", "Exchange", "Trace", "current", "traced"]

REDACTED: Final = b"***"
"""The body recorded in place of one that carries a secret (log-in and token refresh)."""

NOT_SENT: Final = "not_sent"
"""`Exchange.failure`: the connection could not be made; nothing reached the broker."""
LOST: Final = "lost"
"""`Exchange.failure`: the request was (or may have been) written, no complete answer came
back (time-out, reset, truncated body)."""

Failure = Literal["not_sent", "lost"]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request of an order call and what came back.

    - `path`: the endpoint, e.g. `/api/Order/place`.
    - `request`: the JSON body exactly as sent (bytes; `REDACTED` for the auth endpoints).
    - `status`: the HTTP status of the answer; None when no answer came back (`failure`).
    - `response`: the raw body of the answer (b"" when none; `REDACTED` for the auth
      endpoints).
    - `retry_after`: the `Retry-After` of a non-200 answer, in seconds, as read on receipt
      (RFC 9110, `harness.orders.retry_after`, the same rules on both sides); None when absent
      or not advice.
    - `failure`: `NOT_SENT` or `LOST` when no answer came back, else None.
    """

    path: str
    request: bytes
    status: int | None
    response: bytes
    retry_after: float | None
    failure: Failure | None


@dataclass
class Trace:
    """The exchanges of the calls awaited inside one `traced()` block, in the order sent."""

    exchanges: list[Exchange] = field(default_factory=list)


_CURRENT: ContextVar[Trace | None] = ContextVar("harness_orders_trace", default=None)


current: Final[Callable[[], Trace | None]] = _CURRENT.get
"""`current()`: the trace of the `traced()` block the running task is in, or None (nothing to
record). The `ContextVar`'s own `get`, so asking costs no Python frame on the hot path."""


@contextmanager
def traced() -> Iterator[Trace]:
    """Record the exchanges of the order calls awaited inside the block (see the module);
    blocks nest, the innermost records."""
    trace = Trace()
    token = _CURRENT.set(trace)
    try:
        yield trace
    finally:
        _CURRENT.reset(token)
