"""The simulated broker behind the HTTP layer: sessions, accounts, orders, positions, trades, bars.

One `Gateway` holds all state and answers each API path with the JSON payload the real gateway
would send (`success`/`errorCode`/`errorMessage` plus one field). It knows nothing of sockets,
faults or latency (`server.py` does); it is driven from a single event-loop thread, so it has no
locks. Simulator choices where the public record is silent are marked `CHOICE:` and listed in
docs/simulator.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, overload

import numpy as np

from harness import projectx as px
from harness.errors import InvalidInputError
from harness.orders.validation import custom_tag
from harness.sim.market import (
    Contract,
    PricePath,
    aggregate,
    bucket_edges,
    default_contracts,
    iso,
)
from harness.sim.settings import SimSettings

_BAR_UNITS = frozenset(px.BarUnit)  # IntEnum members compare equal to the wire ints

BOOK_VERSION = 1
"""The version of `Gateway.book()`'s layout (a book of another version is refused)."""
ORDER_ID_BASE = 7_000_000_000  # above 2**32: an int32 truncation shows at once
STARTING_BALANCE = 50_000.0


class BadRequest(Exception):
    """A required body field is missing or unusable: HTTP 400 (never a business failure)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)

    def body(self) -> bytes:
        """An ASP.NET-style validation problem, as the real gateway sends."""
        return json.dumps(
            {
                "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                "title": "One or more validation errors occurred.",
                "status": 400,
                "errors": {self.field: [str(self)]},
            }
        ).encode()


class Unauthorized(Exception):
    """Missing, unknown or expired bearer token: HTTP 401."""


class RateLimited(Exception):
    """Too many requests for this token in the window: HTTP 429."""

    def __init__(self, retry_after: float | None) -> None:
        self.retry_after = retry_after
        super().__init__("rate limited")


def ok(**payload: Any) -> dict[str, Any]:
    """A success envelope."""
    return {**payload, "success": True, "errorCode": 0, "errorMessage": None}


def fail(code: int, message: str, **payload: Any) -> dict[str, Any]:
    """A business failure: HTTP 200, `success: false`, the endpoint's own code."""
    return {**payload, "success": False, "errorCode": int(code), "errorMessage": message}


# -- request field readers (400 on a missing required field or an unusable type) ---------------
_MISSING = object()


def _field(body: dict[str, Any], name: str, required: bool) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise BadRequest(name, f"The {name} field is required.")
        return None
    return value


@overload
def req_int(body: dict[str, Any], name: str, required: Literal[True] = ...) -> int: ...
@overload
def req_int(body: dict[str, Any], name: str, required: bool) -> int | None: ...
def req_int(body: dict[str, Any], name: str, required: bool = True) -> int | None:
    """An integer field (JSON number without fraction; bools refused)."""
    value = body.get(name)
    if type(value) is int and -(2**63) <= value < 2**63:
        return value  # the common case, checked first
    value = _field(body, name, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(name, f"The JSON value of {name} could not be converted to an integer.")
    if isinstance(value, float):
        if not value.is_integer():
            raise BadRequest(name, f"The JSON value of {name} is not an integer.")
        value = int(value)
    if not (-(2**63) <= value < 2**63):
        raise BadRequest(name, f"The JSON value of {name} is out of range.")
    return value


def _tag_problem(tag: str) -> str | None:
    """Why the gateway refuses a customTag (None: it takes it). The clients' own rule
    (`harness.orders.validation.custom_tag`: at most 128 characters, no control character), so
    a tag the clients refuse before sending is one the simulated broker refuses too. An empty
    tag is left to the duplicate rule, as before (no client sends one)."""
    if not tag:
        return None
    try:
        custom_tag(tag)
    except InvalidInputError as exc:
        return exc.reason
    return None


@overload
def req_str(body: dict[str, Any], name: str, required: Literal[True] = ...) -> str: ...
@overload
def req_str(body: dict[str, Any], name: str, required: bool) -> str | None: ...
def req_str(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    """A string field."""
    value = body.get(name)
    if type(value) is str:
        return value
    value = _field(body, name, required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(name, f"The JSON value of {name} could not be converted to a string.")
    return value


@overload
def req_bool(body: dict[str, Any], name: str, required: Literal[True] = ...) -> bool: ...
@overload
def req_bool(body: dict[str, Any], name: str, required: bool) -> bool | None: ...
def req_bool(body: dict[str, Any], name: str, required: bool = True) -> bool | None:
    """A boolean field."""
    value = _field(body, name, required)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise BadRequest(name, f"The JSON value of {name} could not be converted to a boolean.")
    return value


def req_price(body: dict[str, Any], name: str) -> float | None:
    """An optional decimal price."""
    value = body.get(name)
    if value is None:
        return None
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(name, f"The JSON value of {name} could not be converted to a decimal.")
    return float(value)


_FRACTION = re.compile(r"(\.\d{6})\d+")


@overload
def req_time(body: dict[str, Any], name: str, required: Literal[True] = ...) -> float: ...
@overload
def req_time(body: dict[str, Any], name: str, required: bool) -> float | None: ...
def req_time(body: dict[str, Any], name: str, required: bool = True) -> float | None:
    """An ISO-8601 timestamp field as epoch seconds (no offset means UTC; 'Z' accepted)."""
    value = req_str(body, name, required)
    if value is None:
        return None
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(name, f"The JSON value of {name} is not a valid date.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# -- the book -----------------------------------------------------------------------------------
@dataclass
class Account:
    """A trading account."""

    id: int
    name: str
    balance: float = STARTING_BALANCE
    can_trade: bool = True
    is_visible: bool = True
    simulated: bool = True

    def to_json(self) -> dict[str, Any]:
        """As the API prints it."""
        return {
            "id": self.id,
            "name": self.name,
            "balance": round(self.balance, 2),
            "canTrade": self.can_trade,
            "isVisible": self.is_visible,
            "simulated": self.simulated,
        }


class Order:
    """One order, prices in ticks."""

    __slots__ = (
        "account_id",
        "contract",
        "created",
        "custom_tag",
        "fill_volume",
        "filled_ticks",
        "id",
        "limit_ticks",
        "side",
        "size",
        "status",
        "stop_ticks",
        "type",
        "updated",
        "watched_from",
    )

    def __init__(
        self,
        order_id: int,
        account_id: int,
        contract: Contract,
        order_type: int,
        side: int,
        size: int,
        created: float,
        custom_tag: str | None,
    ) -> None:
        self.id = order_id
        self.account_id = account_id
        self.contract = contract
        self.type = order_type
        self.side = side
        self.size = size
        self.created = created
        self.updated = created
        self.custom_tag = custom_tag
        self.status = int(px.OrderStatus.OPEN)
        self.limit_ticks: int | None = None
        self.stop_ticks: int | None = None
        self.fill_volume = 0
        self.filled_ticks: int | None = None
        self.watched_from = int(created) + 1  # first second the trigger sweep looks at

    def to_json(self, string_ids: bool = False) -> dict[str, Any]:
        """As the API prints it (`string_ids`: the id as a numeric string)."""
        c = self.contract
        return {
            "id": str(self.id) if string_ids else self.id,
            "accountId": self.account_id,
            "contractId": c.id,
            "symbolId": c.symbol_id,
            "creationTimestamp": iso(self.created),
            "updateTimestamp": iso(self.updated),
            "status": self.status,
            "type": self.type,
            "side": self.side,
            "size": self.size,
            "limitPrice": None if self.limit_ticks is None else c.price(self.limit_ticks),
            "stopPrice": None if self.stop_ticks is None else c.price(self.stop_ticks),
            "fillVolume": self.fill_volume,
            "filledPrice": None if self.filled_ticks is None else c.price(self.filled_ticks),
            "customTag": self.custom_tag,
        }


@dataclass
class Position:
    """A net open position of one account in one contract (`net` signed; cost in ticks)."""

    id: int
    account_id: int
    contract: Contract
    created: float
    net: int = 0
    cost: float = 0.0  # sum of the entry prices (ticks) of the open contracts

    def to_json(self) -> dict[str, Any]:
        """As the API prints it."""
        size = abs(self.net)
        avg = self.cost / size
        return {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract.id,
            "creationTimestamp": iso(self.created),
            "type": int(px.PositionType.LONG if self.net > 0 else px.PositionType.SHORT),
            "size": size,
            "averagePrice": round(avg * self.contract.tick_num / self.contract.tick_den, 9),
        }


@dataclass
class Trade:
    """One fill."""

    id: int
    account_id: int
    contract: Contract
    created: float
    price_ticks: int
    pnl: float | None
    fees: float
    side: int
    size: int
    order_id: int

    def to_json(self, string_ids: bool = False) -> dict[str, Any]:
        """As the API prints it."""
        return {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract.id,
            "creationTimestamp": iso(self.created),
            "price": self.contract.price(self.price_ticks),
            "profitAndLoss": self.pnl,
            "fees": self.fees,
            "side": self.side,
            "size": self.size,
            "voided": False,
            "orderId": str(self.order_id) if string_ids else self.order_id,
        }


@dataclass
class Session:
    """An issued token's facts."""

    username: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_INT32_MAX = 2**31 - 1
_LIMIT, _MARKET, _STOP, _TRAIL = 1, 2, 4, 5
_JOIN_BID, _JOIN_ASK = 6, 7
_PRICED = {_LIMIT: "limitPrice", _STOP: "stopPrice", _TRAIL: "trailPrice"}
_PLACE_ACCOUNT, _PLACE_REJECTED = int(px.PlaceCode.ACCOUNT_NOT_FOUND), 2
_PLACE_CONTRACT = int(px.PlaceCode.CONTRACT_NOT_FOUND)
_PLACE_INACTIVE = int(px.PlaceCode.CONTRACT_NOT_ACTIVE)

Handler = Callable[["Gateway", dict[str, Any], float], dict[str, Any]]


class Gateway:
    """The broker state and the business rules of every API path."""

    def __init__(self, settings: SimSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.contracts: dict[str, Contract] = {c.id: c for c in default_contracts()}
        self.paths: dict[str, PricePath] = {
            cid: PricePath(c, settings.seed) for cid, c in self.contracts.items()
        }
        self._secret = secrets.token_bytes(32)
        self._jwt_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        self._next_order = ORDER_ID_BASE
        self._next_position = 0
        self._next_trade = 0
        self._next_token = 0
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget orders, positions, trades and sessions (ids keep counting: never reused)."""
        self.accounts: dict[int, Account] = {
            1001: Account(1001, "SIM-1001"),
            1002: Account(1002, "SIM-1002"),
        }
        self.orders: dict[int, Order] = {}
        self.orders_by_account: dict[int, list[Order]] = {a: [] for a in self.accounts}
        self.tags: dict[tuple[int, str], Order] = {}
        self.open_orders: dict[int, Order] = {}
        self.positions: dict[tuple[int, str], Position] = {}
        self.trades: list[Trade] = []
        self.sessions: dict[str, Session] = {}
        self.windows: dict[tuple[str, bool], deque[float]] = {}
        self._swept_to = int(self.clock())

    # -- the book as data (kept across restarts by `server.App` when `state_file` is set) -----
    def book(self) -> dict[str, Any]:
        """Everything a restart must keep, as JSON-able data: accounts, orders, positions,
        trades, sessions (and the key that signs their tokens), the id counters and the last
        second swept. Rate-limit windows are not kept (a restarted gateway starts them afresh).
        """
        return {
            "version": BOOK_VERSION,
            "secret": self._secret.hex(),
            "next": [self._next_order, self._next_position, self._next_trade, self._next_token],
            "swept_to": self._swept_to,
            "accounts": [asdict(a) for a in self.accounts.values()],
            "orders": [
                {s: o.contract.id if s == "contract" else getattr(o, s) for s in Order.__slots__}
                for o in self.orders.values()
            ],
            "positions": [
                {**asdict(p), "contract": p.contract.id} for p in self.positions.values()
            ],
            "trades": [{**asdict(t), "contract": t.contract.id} for t in self.trades],
            "sessions": {t: [s.username, s.expires] for t, s in self.sessions.items()},
        }

    def restore(self, book: dict[str, Any]) -> None:
        """Replace the state with a `book()` taken earlier (by this version of the simulator).

        Raises `ValueError` naming the part that is wrong (`book: sessions: ...`; another
        version, an unknown contract, a missing field, a part of the wrong shape); every part
        is read before any is taken, so the state is left as it was then.
        """
        if not isinstance(book, dict) or book.get("version") != BOOK_VERSION:
            found = book.get("version") if isinstance(book, dict) else type(book).__name__
            raise ValueError(f"book version {found!r}: this simulator reads {BOOK_VERSION}")
        part = "accounts"  # the part being read, for the error
        try:
            accounts = {a["id"]: Account(**a) for a in book["accounts"]}
            part = "orders"
            orders: dict[int, Order] = {}
            for row in book["orders"]:
                order = Order.__new__(Order)
                for name in Order.__slots__:
                    value = row[name]
                    setattr(order, name, self.contracts[value] if name == "contract" else value)
                orders[order.id] = order
            part = "positions"
            positions = {}
            for row in book["positions"]:
                position = Position(**{**row, "contract": self.contracts[row["contract"]]})
                positions[(position.account_id, position.contract.id)] = position
            part = "trades"
            trades = [
                Trade(**{**t, "contract": self.contracts[t["contract"]]}) for t in book["trades"]
            ]
            part = "sessions"
            sessions = {t: Session(u, float(e)) for t, (u, e) in book["sessions"].items()}
            part = "secret"
            secret = bytes.fromhex(book["secret"])
            part = "next"
            counters = [int(n) for n in book["next"]]
            if len(counters) != 4:
                raise ValueError(f"4 id counters expected, found {len(counters)}")
            part = "swept_to"
            swept_to = int(book["swept_to"])
        except KeyError as exc:
            raise ValueError(f"book: {part}: missing or unknown {exc}") from None
        except (AttributeError, TypeError, ValueError) as exc:  # a part of the wrong shape
            raise ValueError(f"book: {part}: {exc}") from None
        self.accounts = accounts
        self.orders = orders
        self.orders_by_account = {a: [] for a in accounts}
        self.tags = {}
        self.open_orders = {}
        for order in orders.values():
            self.orders_by_account.setdefault(order.account_id, []).append(order)
            if order.custom_tag is not None:
                self.tags[(order.account_id, order.custom_tag)] = order
            if order.status == px.OrderStatus.OPEN:
                self.open_orders[order.id] = order
        self.positions = positions
        self.trades = trades
        self.sessions = sessions
        self.windows = {}
        self._secret = secret
        self._next_order, self._next_position, self._next_trade, self._next_token = counters
        self._swept_to = swept_to

    # -- sessions ----------------------------------------------------------------------------
    def issue_token(self, username: str, now: float) -> str:
        """A new JWT-shaped session token; its payload carries numeric `iat` and `exp`."""
        ttl = self.settings.token_ttl_s
        if ttl >= 60:  # whole seconds, as real tokens carry
            iat: float = int(now)
            exp: float = iat + round(ttl)
        else:  # short test lifetimes stay exact
            iat = round(now, 3)
            exp = round(now + ttl, 3)
        self._next_token += 1
        claims = {"sub": username, "iat": iat, "exp": exp, "jti": str(self._next_token)}
        claims.update(iss="harness-sim", aud="harness-sim")
        signing = f"{self._jwt_header}.{_b64(json.dumps(claims).encode())}"
        sig = hmac.new(self._secret, signing.encode(), hashlib.sha256).digest()
        token = f"{signing}.{_b64(sig)}"
        self.sessions[token] = Session(username, float(exp))
        return token

    def authenticate(self, authorization: bytes | None, now: float) -> str:
        """The token of a valid `Authorization: Bearer` header; Unauthorized otherwise."""
        if not authorization or not authorization[:7].lower() == b"bearer ":
            raise Unauthorized
        token = authorization[7:].strip().decode("latin-1")
        session = self.sessions.get(token)
        if session is None or now >= session.expires:
            raise Unauthorized
        return token

    def expire(self, authorization: bytes | None) -> None:
        """Make the request's token expired from now on (the `expire_token` fault)."""
        if authorization and authorization[:7].lower() == b"bearer ":
            session = self.sessions.get(authorization[7:].strip().decode("latin-1"))
            if session is not None:
                session.expires = 0.0

    def check_rate(self, token: str, path: str, now: float) -> None:
        """Sliding-window limits per token: bars 50 per 30 s, everything else 200 per 60 s."""
        bars = path == px.HISTORY_RETRIEVE_BARS
        limit, window = (50, 30.0) if bars else (200, 60.0)
        key = (token, bars)
        stamps = self.windows.get(key)
        if stamps is None:
            stamps = self.windows[key] = deque()
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        if len(stamps) >= limit:
            wait = stamps[0] + window - now
            raise RateLimited(
                max(1, math.ceil(wait)) if self.settings.rate_limit_retry_after else None
            )
        stamps.append(now)

    # -- market ------------------------------------------------------------------------------
    def price(self, contract_id: str, now: float) -> int:
        """The current price of a contract, in ticks."""
        return self.paths[contract_id].price_at(int(now))

    def price_of(self, contract_id: str, now: float) -> float:
        """The price of a contract at `now` (epoch s), in price units (`GET /_sim/price`).

        Raises `InvalidInputError("contract_id", ...)` for an id the simulator does not list.
        """
        contract = self.contracts.get(contract_id)
        if contract is None:
            reason = f"no such contract in the simulator; known: {', '.join(self.contracts)}"
            raise InvalidInputError("contract_id", contract_id, reason)
        return contract.price(self.price(contract_id, now))

    def sweep(self, now: float) -> None:
        """Fill resting orders the price path has crossed since the last sweep (once a second)."""
        second = int(now)
        if second <= self._swept_to:
            return
        self._swept_to = second
        if not self.open_orders:
            return
        hits: list[tuple[int, int, int, Order]] = []
        for order in list(self.open_orders.values()):
            start = order.watched_from
            if start > second:
                continue
            order.watched_from = second + 1
            hit = self._trigger(order, start, second + 1)
            if hit is not None:
                hits.append((hit[0], order.id, hit[1], order))
        hits.sort(key=lambda h: (h[0], h[1]))  # fills land in time order, then by id
        for at, _, ticks, order in hits:
            self._fill(order, ticks, float(at))

    def _trigger(self, order: Order, start: int, end: int) -> tuple[int, int] | None:
        """(second, fill ticks) when the path crosses the order's trigger in [start, end)."""
        path = self.paths[order.contract.id]
        buy = order.side == 0
        if order.limit_ticks is not None:  # limit, join bid, join ask
            hit = path.first_cross(start, end, order.limit_ticks, upward=not buy)
            return None if hit is None else (hit[0], order.limit_ticks)
        assert order.stop_ticks is not None  # stop, trailing stop
        return path.first_cross(start, end, order.stop_ticks, upward=buy)  # slippage included

    @staticmethod
    def _marketable(order: Order, current: int) -> bool:
        buy = order.side == 0
        if order.limit_ticks is not None:
            return current <= order.limit_ticks if buy else current >= order.limit_ticks
        assert order.stop_ticks is not None
        return current >= order.stop_ticks if buy else current <= order.stop_ticks

    def _fill(self, order: Order, ticks: int, at: float) -> None:
        """Fill the whole order at `ticks`; update its position, trades and the balance."""
        c = order.contract
        order.status = int(px.OrderStatus.FILLED)
        order.fill_volume = order.size
        order.filled_ticks = ticks
        order.updated = at
        self.open_orders.pop(order.id, None)
        qty = order.size if order.side == px.Side.BID else -order.size
        key = (order.account_id, c.id)
        pos = self.positions.get(key)
        if pos is None:
            self._next_position += 1
            pos = self.positions[key] = Position(self._next_position, order.account_id, c, at)
        pnl: float | None = None
        if pos.net != 0 and (pos.net > 0) != (qty > 0):
            closing = min(abs(qty), abs(pos.net))
            avg = pos.cost / abs(pos.net)
            sign = 1 if pos.net > 0 else -1
            pnl_ticks = (ticks - avg) * closing * sign
            pnl = round(pnl_ticks * c.tick_value, 2)
            pos.cost -= avg * closing
            pos.net += closing if qty > 0 else -closing
            rest = abs(qty) - closing
            if rest:
                pos.net = rest if qty > 0 else -rest
                pos.cost = float(ticks * rest)
                pos.created = at
        else:
            pos.net += qty
            pos.cost += ticks * abs(qty)
        if pos.net == 0:
            del self.positions[key]
        fees = round(c.fee_per_contract * order.size, 2)
        account = self.accounts[order.account_id]
        account.balance += (pnl or 0.0) - fees
        self._next_trade += 1
        self.trades.append(
            Trade(self._next_trade, order.account_id, c, at, ticks, pnl, fees, order.side,
                  order.size, order.id)
        )  # fmt: skip

    # -- helpers -----------------------------------------------------------------------------
    def _account(self, body: dict[str, Any]) -> Account | None:
        account_id = req_int(body, "accountId")
        return self.accounts.get(account_id)

    def _order_payload(self, order: Order) -> dict[str, Any]:
        return order.to_json(self.settings.string_ids)

    def ledger(self) -> list[dict[str, Any]]:
        """Every order ever created (since the last reset), oldest first."""
        return [o.to_json() for o in self.orders.values()]

    # -- Auth --------------------------------------------------------------------------------
    def login_key(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Auth/loginKey`: unknown user -> 1 UserNotFound, wrong key -> 3 InvalidCredentials."""
        username = req_str(body, "userName")
        api_key = req_str(body, "apiKey")
        if username != self.settings.username:
            return fail(px.LoginCode.USER_NOT_FOUND, "User not found.", token=None)
        if not hmac.compare_digest(str(api_key).encode(), self.settings.api_key.encode()):
            return fail(px.LoginCode.INVALID_CREDENTIALS, "Invalid credentials.", token=None)
        return {"token": self.issue_token(username, now), **ok()}

    def validate(self, token: str, now: float) -> dict[str, Any]:
        """`Auth/validate`: a fresh token for the same user (the old one stays valid)."""
        return {"newToken": self.issue_token(self.sessions[token].username, now), **ok()}

    def logout(self, token: str) -> dict[str, Any]:
        """`Auth/logout`: the token stops working."""
        self.sessions.pop(token, None)
        return ok()

    # -- Accounts and contracts ----------------------------------------------------------------
    def account_search(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Account/search`."""
        only_active = req_bool(body, "onlyActiveAccounts")
        rows = [a for a in self.accounts.values() if a.can_trade or not only_active]
        return {"accounts": [a.to_json() for a in rows], **ok()}

    def contract_search(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Contract/search`: active contracts whose name, symbol or description match; <= 20."""
        text = (req_str(body, "searchText", required=False) or "").strip().lower()
        req_bool(body, "live", required=False)
        rows = [
            c
            for c in self.contracts.values()
            if c.active
            and (
                not text
                or text in c.name.lower()
                or text in c.symbol_id.lower()
                or text in c.description.lower()
            )
        ]
        return {"contracts": [c.to_json() for c in rows[:20]], **ok()}

    def contract_search_by_id(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Contract/searchById`: one `contract`, expired ones included; unknown -> 1."""
        contract = self.contracts.get(req_str(body, "contractId") or "")
        if contract is None:
            return fail(px.ContractCode.CONTRACT_NOT_FOUND, "Contract not found.", contract=None)
        return {"contract": contract.to_json(), **ok()}

    def contract_available(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Contract/available`: every active contract."""
        req_bool(body, "live", required=False)
        rows = [c.to_json() for c in self.contracts.values() if c.active]
        return {"contracts": rows, **ok()}

    # -- Orders ------------------------------------------------------------------------------
    def order_place(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/place`: validate, create, and fill at once when marketable."""
        account_id = req_int(body, "accountId")
        contract_id = req_str(body, "contractId")
        order_type = req_int(body, "type")
        side = req_int(body, "side")
        size = req_int(body, "size")
        limit_price = req_price(body, "limitPrice")
        stop_price = req_price(body, "stopPrice")
        trail_price = req_price(body, "trailPrice")
        tag = req_str(body, "customTag", required=False)
        account = self.accounts.get(account_id)
        if account is None:
            return fail(_PLACE_ACCOUNT, f"Account {account_id} not found.", orderId=None)
        contract = self.contracts.get(contract_id)
        if contract is None:
            return fail(_PLACE_CONTRACT, f"Contract {contract_id} not found.", orderId=None)
        if not contract.active:
            return fail(_PLACE_INACTIVE, f"Contract {contract_id} is not active.", orderId=None)
        problem = None
        if side != 0 and side != 1:
            problem = f"Invalid side {side}."
        elif size <= 0 or size > _INT32_MAX:
            problem = f"Invalid order size {size}: must be within 1..{_INT32_MAX}."
        elif body.get("stopLossBracket") is not None or body.get("takeProfitBracket") is not None:
            problem = "Brackets require the account to be in Auto OCO bracket mode."
        elif tag is not None and (tag_problem := _tag_problem(tag)) is not None:
            problem = f"Invalid custom tag: {tag_problem}."
        elif tag is not None and (account.id, tag) in self.tags:
            problem = f"An order with custom tag '{tag}' already exists on this account."
        if problem is not None:
            return fail(_PLACE_REJECTED, problem, orderId=None)
        current = self.price(contract.id, now)
        limit_ticks = stop_ticks = None
        if order_type in _PRICED:
            name = _PRICED[order_type]
            value = limit_price if order_type == _LIMIT else stop_price
            value = trail_price if order_type == _TRAIL else value
            if value is None:
                return fail(_PLACE_REJECTED, f"{name} is required for order type {order_type}.",
                            orderId=None)  # fmt: skip
            ticks = contract.ticks(value)
            if ticks is None or ticks <= 0:
                return fail(_PLACE_REJECTED,
                            f"Invalid {name} {value}: not a multiple of the tick size "
                            f"{contract.tick_size}.", orderId=None)  # fmt: skip
            if order_type == _LIMIT:
                limit_ticks = ticks
            else:  # CHOICE: a trailing stop rests as a plain stop at trailPrice
                stop_ticks = ticks
        elif order_type in (_JOIN_BID, _JOIN_ASK):
            # CHOICE: no spread is modelled; join bid/ask rest one tick off the last price.
            limit_ticks = current - 1 if order_type == _JOIN_BID else current + 1
        elif order_type != _MARKET:
            message = f"Order type {order_type} is not supported by Order/place."
            return fail(_PLACE_REJECTED, message, orderId=None)
        self._next_order += 1
        order = Order(
            self._next_order,
            account.id,
            contract,
            order_type,
            side,
            size,
            now,
            tag,
        )
        order.limit_ticks = limit_ticks
        order.stop_ticks = stop_ticks
        self.orders[order.id] = order
        self.orders_by_account[account.id].append(order)
        if tag is not None:
            self.tags[(account.id, tag)] = order
        if order_type == _MARKET or self._marketable(order, current):
            # CHOICE: marketable limits and stops already through the price fill at once.
            self._fill(order, current, now)
        else:
            self.open_orders[order.id] = order
        oid: Any = str(order.id) if self.settings.string_ids else order.id
        return {"orderId": oid, **ok()}

    def _open_order(
        self, body: dict[str, Any], codes: type[px.ModifyCode] | type[px.CancelCode]
    ) -> Order | dict[str, Any]:
        account_id = req_int(body, "accountId")
        order_id = req_int(body, "orderId")
        if account_id not in self.accounts:
            return fail(codes.ACCOUNT_NOT_FOUND, f"Account {account_id} not found.")
        order = self.orders.get(order_id)
        if order is None or order.account_id != account_id:
            return fail(codes.ORDER_NOT_FOUND, f"Order {order_id} not found.")
        if order.status != px.OrderStatus.OPEN:
            # CHOICE: an order that exists but is no longer open is Rejected (3), not NotFound.
            status = px.OrderStatus(order.status).name.title()
            return fail(codes.REJECTED, f"Order {order_id} is not open (status {status}).")
        return order

    def order_modify(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/modify`: change size or the price the order's type uses."""
        size = req_int(body, "size", required=False)
        prices = {n: req_price(body, n) for n in ("limitPrice", "stopPrice", "trailPrice")}
        found = self._open_order(body, px.ModifyCode)
        if isinstance(found, dict):
            return found
        order = found
        code = px.ModifyCode.REJECTED
        given = {n: v for n, v in prices.items() if v is not None}
        if size is None and not given:
            return fail(code, "Nothing to modify: send size or a price.")
        if size is not None and not (0 < size <= 2**31 - 1):
            return fail(code, f"Invalid order size {size}: must be greater than 0.")
        t = px.OrderType
        usable = {
            t.LIMIT: "limitPrice",
            t.JOIN_BID: "limitPrice",
            t.JOIN_ASK: "limitPrice",
            t.STOP: "stopPrice",
            t.TRAILING_STOP: "trailPrice",
        }.get(px.OrderType(order.type))
        new_ticks = None
        for name, value in given.items():
            if name != usable:
                return fail(code, f"{name} does not apply to an order of type {order.type}.")
            new_ticks = order.contract.ticks(value)
            if new_ticks is None or new_ticks <= 0:
                return fail(code, f"Invalid {name} {value}: not on the tick grid.")
        if size is not None:
            order.size = size
        if new_ticks is not None:
            if usable == "limitPrice":
                order.limit_ticks = new_ticks
            else:
                order.stop_ticks = new_ticks
        order.updated = now
        if self._marketable(order, self.price(order.contract.id, now)):
            self._fill(order, self.price(order.contract.id, now), now)
        return ok()

    def order_cancel(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/cancel`."""
        found = self._open_order(body, px.CancelCode)
        if isinstance(found, dict):
            return found
        found.status = int(px.OrderStatus.CANCELLED)
        found.updated = now
        self.open_orders.pop(found.id, None)
        return ok()

    def order_search(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/search`: orders created in [startTimestamp, endTimestamp or now]."""
        account_id = req_int(body, "accountId")
        start = req_time(body, "startTimestamp")
        end = req_time(body, "endTimestamp", required=False)
        if account_id not in self.accounts:
            return fail(1, f"Account {account_id} not found.", orders=[])
        rows = [
            self._order_payload(o)
            for o in self.orders_by_account[account_id]
            if start <= o.created and (end is None or o.created <= end)
        ]
        return {"orders": rows, **ok()}

    def order_search_open(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/searchOpen`."""
        account_id = req_int(body, "accountId")
        if account_id not in self.accounts:
            return fail(1, f"Account {account_id} not found.", orders=[])
        rows = [self._order_payload(o) for o in self.open_orders.values()
                if o.account_id == account_id]  # fmt: skip
        return {"orders": rows, **ok()}

    def order_search_by_id(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Order/searchById`: one `order`; none -> success false (CHOICE: code 1)."""
        account_id = req_int(body, "accountId")
        order_id = req_int(body, "orderId")
        order = self.orders.get(order_id)
        if order is None or order.account_id != account_id:
            return fail(1, f"Order {order_id} not found.", order=None)
        return {"order": self._order_payload(order), **ok()}

    # -- Positions and trades -----------------------------------------------------------------
    def position_search_open(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Position/searchOpen`."""
        account_id = req_int(body, "accountId")
        if account_id not in self.accounts:
            return fail(1, f"Account {account_id} not found.", positions=[])
        rows = [p.to_json() for p in self.positions.values() if p.account_id == account_id]
        return {"positions": rows, **ok()}

    def _close(self, body: dict[str, Any], now: float, size: int | None) -> dict[str, Any]:
        account_id = req_int(body, "accountId")
        contract_id = req_str(body, "contractId")
        if account_id not in self.accounts:
            return fail(1, f"Account {account_id} not found.")
        pos = self.positions.get((account_id, contract_id))
        if pos is None:
            # CHOICE: code 2 PositionNotFound (unknown contract included).
            return fail(2, f"No open position in {contract_id}.")
        if size is not None and not (0 < size <= abs(pos.net)):
            return fail(3, f"Invalid size {size}: must be within 1..{abs(pos.net)}.")
        qty = abs(pos.net) if size is None else size
        side = int(px.Side.ASK if pos.net > 0 else px.Side.BID)
        self._next_order += 1
        order = Order(self._next_order, pos.account_id, pos.contract, int(px.OrderType.MARKET),
                      side, qty, now, None)  # fmt: skip
        self.orders[order.id] = order
        self.orders_by_account[pos.account_id].append(order)
        self._fill(order, self.price(pos.contract.id, now), now)
        return ok()

    def position_close(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Position/closeContract`: close the whole position by a market order."""
        return self._close(body, now, None)

    def position_partial_close(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Position/partialCloseContract`: close `size` contracts by a market order."""
        size = req_int(body, "size")
        return self._close(body, now, size)

    def trade_search(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Trade/search`: fills in [startTimestamp, endTimestamp or now]."""
        account_id = req_int(body, "accountId")
        start = req_time(body, "startTimestamp")
        end = req_time(body, "endTimestamp", required=False)
        if account_id not in self.accounts:
            return fail(1, f"Account {account_id} not found.", trades=[])
        rows = [
            t.to_json(self.settings.string_ids)
            for t in self.trades
            if t.account_id == account_id
            and start <= t.created
            and (end is None or t.created <= end)
        ]
        return {"trades": rows, **ok()}

    # -- History -----------------------------------------------------------------------------
    def retrieve_bars(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`History/retrieveBars`: newest first, the most recent `limit` bars of the window."""
        contract_id = req_str(body, "contractId")
        start = req_time(body, "startTime")
        end = req_time(body, "endTime")
        unit = req_int(body, "unit")
        number = req_int(body, "unitNumber")
        limit = req_int(body, "limit")
        partial = bool(req_bool(body, "includePartialBar", required=False))
        req_bool(body, "live", required=False)
        code = px.BarsCode
        path = self.paths.get(contract_id)
        if path is None:
            return fail(code.CONTRACT_NOT_FOUND, f"Contract {contract_id} not found.", bars=None)
        if unit not in _BAR_UNITS:
            return fail(code.UNIT_INVALID, f"Invalid unit {unit}.", bars=None)
        if number < 1:
            return fail(code.UNIT_NUMBER_INVALID, f"Invalid unitNumber {number}.", bars=None)
        if limit < 1 or limit > px.MAX_BARS_LIMIT:
            return fail(code.LIMIT_INVALID, f"Invalid limit {limit}: 1..{px.MAX_BARS_LIMIT}.",
                        bars=None)  # fmt: skip
        start_s, end_s = math.ceil(start), math.ceil(end)
        try:
            edges = bucket_edges(px.BarUnit(unit), number, start_s, end_s, int(now), limit, partial)
            rows = aggregate(path, edges)
        except ValueError as exc:
            return fail(code.LIMIT_INVALID, f"Window too large for the simulator: {exc}.",
                        bars=None)  # fmt: skip
        c = path.contract
        label = np.asarray(edges[1:] if self.settings.bar_timestamp == "close" else edges[:-1])
        stamps = np.datetime_as_string(label.astype("datetime64[s]"), unit="s").tolist()
        prices = (rows[:, :4] * c.tick_num / c.tick_den).tolist()  # same rounding as c.price
        volumes = rows[:, 4].tolist()
        bars = [
            {"t": f"{t}+00:00", "o": p[0], "h": p[1], "l": p[2], "c": p[3], "v": v}
            for t, p, v in zip(stamps, prices, volumes, strict=True)
        ]
        bars.reverse()
        return {"bars": bars, **ok()}


# Path -> (method, needs a token, handler). Login and ping are the only open doors.
ROUTES: dict[str, tuple[bytes, bool, Any]] = {
    px.LOGIN_KEY: (b"POST", False, Gateway.login_key),
    px.VALIDATE: (b"POST", True, None),
    px.LOGOUT: (b"POST", True, None),
    px.ACCOUNT_SEARCH: (b"POST", True, Gateway.account_search),
    px.CONTRACT_SEARCH: (b"POST", True, Gateway.contract_search),
    px.CONTRACT_SEARCH_BY_ID: (b"POST", True, Gateway.contract_search_by_id),
    px.CONTRACT_AVAILABLE: (b"POST", True, Gateway.contract_available),
    px.ORDER_PLACE: (b"POST", True, Gateway.order_place),
    px.ORDER_MODIFY: (b"POST", True, Gateway.order_modify),
    px.ORDER_CANCEL: (b"POST", True, Gateway.order_cancel),
    px.ORDER_SEARCH: (b"POST", True, Gateway.order_search),
    px.ORDER_SEARCH_OPEN: (b"POST", True, Gateway.order_search_open),
    px.ORDER_SEARCH_BY_ID: (b"POST", True, Gateway.order_search_by_id),
    px.POSITION_SEARCH_OPEN: (b"POST", True, Gateway.position_search_open),
    px.POSITION_CLOSE_CONTRACT: (b"POST", True, Gateway.position_close),
    px.POSITION_PARTIAL_CLOSE: (b"POST", True, Gateway.position_partial_close),
    px.TRADE_SEARCH: (b"POST", True, Gateway.trade_search),
    px.HISTORY_RETRIEVE_BARS: (b"POST", True, Gateway.retrieve_bars),
    px.STATUS_PING: (b"GET", False, None),
}
