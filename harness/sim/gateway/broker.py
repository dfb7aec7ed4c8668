"""`Broker`: the state of the simulated broker and the rules by which fills change it.

The state: accounts, orders (with the index of custom tags per account and the open orders),
positions, trades, sessions and the rate-limit windows. `book()` and `restore()` turn it into
JSON-able data and back (kept across restarts by `server.App` when `state_file` is set). The
market: each contract is priced from its seeded price path; `sweep` fills the resting orders the
path has crossed since the last second swept; `_fill` turns a fill into a position, a trade and
a change of balance. The API paths are methods of `Broker`'s subclasses in the sibling modules,
combined into `routes.Gateway`.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from harness import projectx as px
from harness.errors import InvalidInputError
from harness.sim.gateway.book import Account, Order, Position, Session, Trade
from harness.sim.market import Contract, PricePath, default_contracts
from harness.sim.settings import SimSettings

BOOK_VERSION = 1
"""The version of `Broker.book()`'s layout (a book of another version is refused)."""
ORDER_ID_BASE = 7_000_000_000  # above 2**32: an int32 truncation shows at once


class Broker:
    """The broker state and the rules of fills, shared by every API path (see `routes.Gateway`).

    Driven from a single event-loop thread, so it has no locks; `clock` (epoch s) is injectable.
    """

    def __init__(self, settings: SimSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.contracts: dict[str, Contract] = {c.id: c for c in default_contracts()}
        self.paths: dict[str, PricePath] = {
            cid: PricePath(c, settings.seed) for cid, c in self.contracts.items()
        }
        self._secret = secrets.token_bytes(32)
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
    def _order_payload(self, order: Order) -> dict[str, Any]:
        return order.to_json(self.settings.string_ids)

    def ledger(self) -> list[dict[str, Any]]:
        """Every order ever created (since the last reset), oldest first."""
        return [o.to_json() for o in self.orders.values()]
