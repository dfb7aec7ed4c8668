"""The simulated broker behind the HTTP layer: sessions, accounts, orders, positions, trades, bars.

One `Gateway` holds all state and answers each API path with the JSON payload the real gateway
would send (`success`/`errorCode`/`errorMessage` plus one field). It knows nothing of sockets,
faults or latency (`server.py` does); it is driven from a single event-loop thread, so it has no
locks. Simulator choices where the public record is silent are marked `CHOICE:` and listed in
docs/simulator.md.

The files, in the order a request meets them:

- `routes.py`: `Gateway` (every path's handlers on one `Broker`) and `ROUTES`, path -> (method,
  needs a token, handler).
- `wire.py`: request fields read and checked (`BadRequest`: HTTP 400), the `ok`/`fail` envelopes,
  `Unauthorized` and `RateLimited`.
- `auth.py`: tokens (issued, checked, expired, rate-limited) and the `Auth/*` paths.
- `accounts.py`, `orders.py`, `positions.py`, `history.py`: the paths of `Account/` and
  `Contract/`, `Order/`, `Position/` and `Trade/`, `History/`.
- `broker.py`: `Broker`, the state, `book()`/`restore()`, prices, the sweep of resting orders and
  fills.
- `book.py`: the records (account, order, position, trade, session) as the API prints them.
"""

from harness.sim.gateway.book import STARTING_BALANCE, Account, Order, Position, Session, Trade
from harness.sim.gateway.broker import BOOK_VERSION, ORDER_ID_BASE, Broker
from harness.sim.gateway.routes import ROUTES, Gateway, Handler
from harness.sim.gateway.wire import (
    BadRequest,
    RateLimited,
    Unauthorized,
    fail,
    ok,
    req_bool,
    req_int,
    req_price,
    req_str,
    req_time,
)

__all__ = [
    "BOOK_VERSION",
    "ORDER_ID_BASE",
    "ROUTES",
    "STARTING_BALANCE",
    "Account",
    "BadRequest",
    "Broker",
    "Gateway",
    "Handler",
    "Order",
    "Position",
    "RateLimited",
    "Session",
    "Trade",
    "Unauthorized",
    "fail",
    "ok",
    "req_bool",
    "req_int",
    "req_price",
    "req_str",
    "req_time",
]
