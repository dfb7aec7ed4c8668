"""The session `harness run` plays: round trips in a real bot's rhythm, through the router.

Round trip `i` trades `symbols[i % len(symbols)]` and goes:

1. `History/retrieveBars`: the most recent `bars_lookback` 1-minute bars (a read, served by the
   Python client, unrecorded), sorted oldest first, aggregated to `timeframes` through the router
   (`aggregate_bars`, routing key `SYMBOL|5m,15m,1h`);
2. a market entry (`place_order`), buy or sell by the trip's seeded coin;
3. a protective stop (`place_order`, type STOP, its own customTag) `stop_ticks` ticks from the
   last close on the losing side;
4. `modifies` stop moves (`modify_order`) as price moves: each a seeded 1 to `stop_ticks // 10`
   ticks closer to the price, or away from it once the stop is half as far as it started;
5. the stop cancelled (`cancel_order`);
6. a market exit (`place_order`) on the opposite side.

Every price is computed in whole ticks and printed on the contract's grid (`Decimal`), so no
off-grid price is ever sent. Each trip's randomness (side, pause, stop moves) comes from its own
`random.Random` seeded with `workload.seed` and the trip's number, so a run is reproducible
whatever the concurrency and timing. Orders carry customTags `hr-<run id>-<trip>-<step>`, which
is how the final check (and a later run, if this one is killed) finds them.

A trip whose bars read finds the broker out of reach (`BrokerUnavailableError`) makes no trade,
and its worker waits 1 s before the next, doubling up to 8 s while the broker stays out of reach
(`UNREACHABLE_BACKOFF_S`), so an outage does not burn the remaining trips in seconds. A trip
refused for the rate limit (`RateLimitedError`, its retries spent) makes its worker wait the
gateway's `Retry-After` before the next (`RATE_LIMITED_WAIT_MAX_S`).

One round trip per symbol is in flight at a time (a position is per account and contract: two
trips on one contract would net against each other), so at most `len(symbols)` of
`workload.concurrency` are used. Each trip leaves its symbol flat: a stop that filled is the
exit; an exit that fails is replaced by closing the position (`Position/closeContract`), and
the failure is recorded as a problem. `settle()` then checks through reads that nothing is
left: open orders carrying this run's tags, open positions in the traded contracts, and
placements whose outcome stayed unknown; it cancels and closes what it finds.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

import numpy as np

from harness.config import WorkloadConfig
from harness.errors import BrokerError, BrokerUnavailableError, HarnessError, RateLimitedError
from harness.orders import AccountReads, OrderClient
from harness.orders.models import Contract, HistoryBar, Order, Position
from harness.projectx import BARS_RATE_LIMIT, RATE_LIMIT, OrderStatus, OrderType, Side
from harness.router.bars import RoutedBars
from harness.run.pace import HEADROOM, RequestBudget, interruptible_sleep

__all__ = [
    "Broker",
    "Leftovers",
    "Market",
    "Problem",
    "Settlement",
    "Tally",
    "Workload",
    "bars_to_columns",
    "order_dict",
    "stop_distances",
    "tag_prefix",
]

log = logging.getLogger("harness.run")

UNREACHABLE_BACKOFF_S: Final = (1.0, 8.0)
"""After a round trip that could not reach the broker (its bars read failed with
`BrokerUnavailableError`), the worker's next trip waits this long, doubling up to the second
figure while the broker stays out of reach: an outage does not burn the remaining trips."""
RATE_LIMITED_WAIT_MAX_S: Final = 60.0
"""After a round trip refused for the rate limit (`RateLimitedError`), the worker's next trip
waits the gateway's `Retry-After` (at most this long; the back-off's first step when it gave
none), so a run without its own pacing (`workload.rate_limit=false`) does not burn its trips
against a limit it was told about."""
BARS_WINDOW_EXTRA: Final = timedelta(days=4)
"""The bars request spans `bars_lookback` minutes plus this, and keeps the most recent
`bars_lookback` bars: a weekend or a holiday without trading still yields a full lookback."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_FINAL: Final = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED,
                           OrderStatus.REJECTED})  # fmt: skip


class Broker(OrderClient, AccountReads, Protocol):
    """What the workload trades through: the routed order client (mutations routed and
    recorded; reads and `close_position` served by the Python client)."""


def tag_prefix(run_id: str) -> str:
    """The customTag prefix of a run's orders: `hr-` and the run id's first 16 hex digits."""
    return f"hr-{run_id[:16]}-"


@dataclass(frozen=True, slots=True)
class Market:
    """A traded symbol and its contract; `tick` is the tick size as an exact decimal."""

    symbol: str
    contract: Contract

    @property
    def tick(self) -> Decimal:
        """The tick size, exactly as the broker printed it."""
        return Decimal(repr(self.contract.tick_size))

    def ticks(self, price: float) -> int:
        """`price` in whole ticks (the nearest)."""
        return int((Decimal(repr(price)) / self.tick).to_integral_value())

    def price(self, ticks: int) -> float:
        """The price of `ticks` ticks, on the grid (the float nearest the exact decimal)."""
        return float(self.tick * ticks)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that went wrong in a trip (or in the final sweep) and what was done about it."""

    trade: int | None
    symbol: str | None
    step: str
    error: str
    action: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (stable keys: trade, symbol, step, error, action)."""
        return {
            "trade": self.trade,
            "symbol": self.symbol,
            "step": self.step,
            "error": self.error,
            "action": self.action,
        }


@dataclass(slots=True)
class Tally:
    """Round trips: `planned` (workload.trades), `started`, `completed` without a problem,
    `failed` (at least one problem), `cancelled` half-way (a second signal), `stopped_out`
    (the stop filled and was the exit)."""

    planned: int
    started: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    stopped_out: int = 0

    @property
    def finished(self) -> int:
        """Trips over, whether they went well or not."""
        return self.completed + self.failed + self.cancelled

    def to_dict(self) -> dict[str, int]:
        """JSON-able (stable keys)."""
        return {
            "planned": self.planned,
            "started": self.started,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "stopped_out": self.stopped_out,
        }


def order_dict(order: Order) -> dict[str, Any]:
    """An open order as the summary shows it: {id, contract_id, custom_tag, type, side, size}."""
    return {
        "id": order.id,
        "contract_id": order.contract_id,
        "custom_tag": order.custom_tag,
        "type": order.type,
        "side": order.side,
        "size": order.size,
    }


@dataclass(frozen=True, slots=True)
class Leftovers:
    """What the final check found through reads: open orders carrying the run's tags, open
    positions in the traded contracts, tags whose order could not be read, a failed read."""

    orders: tuple[Order, ...] = ()
    positions: tuple[Position, ...] = ()
    unknown_tags: tuple[str, ...] = ()
    read_error: str | None = None

    @property
    def clean(self) -> bool:
        """Nothing open, nothing unknown, every read answered."""
        return not (self.orders or self.positions or self.unknown_tags or self.read_error)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: open_orders [{id, contract_id, custom_tag, type, side, size}], open_positions
        [{contract_id, type, size}], unknown_tags [str], read_error (str or null)."""
        return {
            "open_orders": [order_dict(o) for o in self.orders],
            "open_positions": [
                {"contract_id": p.contract_id, "type": p.type, "size": p.size}
                for p in self.positions
            ],
            "unknown_tags": list(self.unknown_tags),
            "read_error": self.read_error,
        }


@dataclass(frozen=True, slots=True)
class Settlement:
    """The final check (`found`), and after a sweep of what it found, the check again
    (`after`, None when nothing was found)."""

    found: Leftovers
    after: Leftovers | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: found and after (see `Leftovers.to_dict`)."""
        return {
            "found": self.found.to_dict(),
            "after_sweep": None if self.after is None else self.after.to_dict(),
        }


def bars_to_columns(bars: Sequence[HistoryBar]) -> dict[str, np.ndarray]:
    """Gateway bars (oldest first) as the columns `aggregate` takes: `t` int64 ns since the
    epoch (UTC), `o`/`h`/`l`/`c` float64, `v` int64."""
    micros = timedelta(microseconds=1)
    return {
        "t": np.fromiter(((b.t - _EPOCH) // micros * 1000 for b in bars), np.int64, len(bars)),
        "o": np.fromiter((b.o for b in bars), np.float64, len(bars)),
        "h": np.fromiter((b.h for b in bars), np.float64, len(bars)),
        "l": np.fromiter((b.l for b in bars), np.float64, len(bars)),
        "c": np.fromiter((b.c for b in bars), np.float64, len(bars)),
        "v": np.fromiter((b.v for b in bars), np.int64, len(bars)),
    }


def stop_distances(stop_ticks: int, modifies: int, rng: random.Random) -> list[int]:
    """The stop's distance from the reference price in ticks: where it is placed
    (`stop_ticks`), then after each of the `modifies` moves. A move is 1 to `stop_ticks // 10`
    ticks (at least 1, seeded) closer to the price, as a trailing stop follows a price going
    the trade's way, or away from it once it would come nearer than half the start."""
    nearest = max(1, (stop_ticks + 1) // 2)
    largest_step = max(1, stop_ticks // 10)
    distances = [stop_ticks]
    for _ in range(modifies):
        step = rng.randint(1, largest_step)
        last = distances[-1]
        distances.append(last - step if last - step >= nearest else last + step)
    return distances


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass(slots=True)
class _Trip:
    """One round trip's state while it runs."""

    number: int
    market: Market
    rng: random.Random
    problems: list[Problem] = field(default_factory=list)
    stopped_out: bool = False
    unreachable: bool = False
    """The broker could not be reached at the trip's start (no trade was made)."""
    rate_limited_s: float | None = None
    """A call of the trip was refused for the rate limit (`RateLimitedError`, retries spent):
    the gateway's advice in seconds (`Retry-After`), else the back-off's first step."""


class Workload:
    """Plays `cfg.trades` round trips (see the module docstring) through `broker` and `bars`.

    `stopping` set: no new trip starts; the ones in flight finish (`play` returns). `abort()`
    cancels the trips in flight at once (what they left is found by `settle`).
    `on_trip_done(tally)` is called after each trip (the progress bar). `paced` overrides
    `cfg.rate_limit` (whether the request budget applies).
    """

    def __init__(
        self,
        broker: Broker,
        bars: RoutedBars,
        cfg: WorkloadConfig,
        *,
        account_id: int,
        markets: Sequence[Market],
        run_id: str,
        stopping: asyncio.Event,
        on_trip_done: Callable[[Tally], None] | None = None,
        paced: bool | None = None,
    ) -> None:
        self.broker = broker
        self.bars = bars
        self.cfg = cfg
        self.account_id = account_id
        self.markets = list(markets)
        self.prefix = tag_prefix(run_id)
        self.stopping = stopping
        self.tally = Tally(planned=cfg.trades)
        self.problems: list[Problem] = []
        self.unknown_tags: set[str] = set()
        """Tags of placements whose outcome stayed unknown (settled by `settle`)."""
        self.crashed: BaseException | None = None
        """An unexpected exception that stopped the workload (a bug), if any."""
        self._on_trip_done = on_trip_done
        self._tasks: list[asyncio.Task[None]] = []
        limits = cfg.rate_limit if paced is None else paced
        general, bars_limit = RATE_LIMIT, BARS_RATE_LIMIT
        self.budget = RequestBudget(
            int(general[0] * (1 - HEADROOM)) if limits else None, general[1]
        )
        self.bars_budget = RequestBudget(
            int(bars_limit[0] * (1 - HEADROOM)) if limits else None, bars_limit[1]
        )

    @property
    def workers(self) -> int:
        """Round trips in flight at most: `concurrency`, at most one per symbol."""
        return max(1, min(self.cfg.concurrency, len(self.markets), self.cfg.trades))

    def tag(self, trip: int, step: str) -> str:
        """The customTag of trip `trip`'s order `step` (entry, stop, exit)."""
        return f"{self.prefix}{trip}-{step}"

    # ----- playing -----------------------------------------------------------------------------

    async def play(self) -> None:
        """Run the trips; returns when all are done, or the ones in flight after `stopping`."""
        self._tasks = [asyncio.create_task(self._worker(w)) for w in range(self.workers)]
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                self.crashed = self.crashed or result

    def abort(self) -> None:
        """Cancel the trips in flight now (a second SIGINT)."""
        self.stopping.set()
        for task in self._tasks:
            task.cancel()

    async def _worker(self, worker: int) -> None:
        """Trips whose symbol this worker owns (symbol k belongs to worker k mod workers)."""
        n, workers = len(self.markets), self.workers
        backoff_s = 0.0
        try:
            for number in range(self.cfg.trades):
                if (number % n) % workers != worker:
                    continue
                if self.stopping.is_set():
                    return
                rng = random.Random(f"{self.cfg.seed}/{number}")
                self.tally.started += 1
                trip = _Trip(number, self.markets[number % n], rng)
                await self._round_trip(trip)
                pause_s = self.cfg.pace_ms * rng.uniform(0.5, 1.5) / 1000.0
                if trip.unreachable:
                    first, most = UNREACHABLE_BACKOFF_S
                    backoff_s = min(most, 2 * backoff_s) if backoff_s else first
                    log.warning("the broker is out of reach: next round trip in %.1f s", backoff_s)
                    pause_s = max(pause_s, backoff_s)
                else:
                    backoff_s = 0.0
                if trip.rate_limited_s is not None:  # the gateway asked us to slow down
                    wait_s = min(trip.rate_limited_s, RATE_LIMITED_WAIT_MAX_S)
                    log.warning("rate limited by the broker: next round trip in %.1f s", wait_s)
                    pause_s = max(pause_s, wait_s)
                if not await interruptible_sleep(pause_s, self.stopping):
                    return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("the workload stopped on an unexpected error")
            self.crashed = exc
            self.stopping.set()
            raise

    def _problem(self, trip: _Trip, step: str, error: BaseException | str, action: str) -> None:
        text = error if isinstance(error, str) else _text(error)
        if isinstance(error, RateLimitedError):
            advice = error.retry_after if error.retry_after and error.retry_after > 0 else None
            wait_s = advice or UNREACHABLE_BACKOFF_S[0]
            trip.rate_limited_s = max(trip.rate_limited_s or 0.0, wait_s)
        problem = Problem(trip.number, trip.market.symbol, step, text, action)
        trip.problems.append(problem)
        self.problems.append(problem)
        log.warning("trip %d %s %s: %s (%s)", trip.number, trip.market.symbol, step, text, action)

    async def _round_trip(self, trip: _Trip) -> None:
        tally = self.tally
        try:
            await self._steps(trip)
        except asyncio.CancelledError:
            tally.cancelled += 1
            raise
        else:
            if trip.problems:
                tally.failed += 1
            else:
                tally.completed += 1
        finally:
            if trip.stopped_out:
                tally.stopped_out += 1
            if self._on_trip_done is not None:
                self._on_trip_done(tally)

    async def _steps(self, trip: _Trip) -> None:
        broker, market, cfg = self.broker, trip.market, self.cfg
        account, contract_id = self.account_id, market.contract.id
        reference = await self._bars(trip)
        if reference is None:
            return
        side = trip.rng.choice((Side.BID, Side.ASK))
        other = Side.ASK if side is Side.BID else Side.BID
        long = side is Side.BID
        distances = stop_distances(cfg.stop_ticks, cfg.modifies, trip.rng)

        def stop_price(distance: int) -> float:
            return market.price(max(1, reference - distance if long else reference + distance))

        entry_tag = self.tag(trip.number, "entry")
        await self.budget.take()
        try:
            await broker.place_market_order(account, contract_id, side, cfg.size,
                                            custom_tag=entry_tag)  # fmt: skip
        except BrokerError as exc:
            if exc.maybe_sent:
                self.unknown_tags.add(entry_tag)
                self._problem(trip, "entry", exc, "outcome unknown: flattened")
                await self._flatten(trip)
            else:
                self._problem(trip, "entry", exc, "no position taken")
            return

        stop_id = await self._place_stop(trip, other, stop_price(distances[0]))
        if stop_id is not None:
            for distance in distances[1:]:
                await self.budget.take()
                try:
                    await broker.modify_order(account, stop_id, stop_price=stop_price(distance))
                except BrokerError as exc:
                    if await self._stop_filled(trip, stop_id):
                        break
                    self._problem(trip, "modify", exc, "stop left where it was")
            if not trip.stopped_out:
                await self.budget.take()
                try:
                    await broker.cancel_order(account, stop_id)
                except BrokerError as exc:
                    if not await self._stop_filled(trip, stop_id):
                        self._problem(trip, "cancel", exc, "stop left open for the final sweep")
        if trip.stopped_out:
            return  # the stop closed the position: it was the exit
        await self.budget.take()
        try:
            await broker.place_market_order(account, contract_id, other, cfg.size,
                                            custom_tag=self.tag(trip.number, "exit"))  # fmt: skip
        except BrokerError as exc:
            self._problem(trip, "exit", exc, "flattened")
            await self._flatten(trip)

    async def _bars(self, trip: _Trip) -> int | None:
        """Retrieve and aggregate the bars; the last close in ticks (None: no trade)."""
        market, cfg = trip.market, self.cfg
        end = datetime.now(UTC)
        start = end - timedelta(minutes=cfg.bars_lookback) - BARS_WINDOW_EXTRA
        await self.bars_budget.take()
        try:
            history = await self.broker.retrieve_bars(
                market.contract.id, start=start, end=end, limit=cfg.bars_lookback
            )
        except BrokerError as exc:
            if isinstance(exc, BrokerUnavailableError):
                trip.unreachable = True
                self._problem(trip, "bars", exc, "no trade without bars; waiting for the broker")
            else:
                self._problem(trip, "bars", exc, "no trade without bars")
            return None
        if not history:
            self._problem(trip, "bars", "the gateway returned no bars", "no trade without bars")
            return None
        try:
            self.bars.aggregate(bars_to_columns(history), cfg.timeframes, contract=market.symbol)
        except HarnessError as exc:
            self._problem(trip, "aggregate", exc, "no trade on bars that do not aggregate")
            return None
        return market.ticks(history[-1].c)

    async def _place_stop(self, trip: _Trip, side: Side, price: float) -> int | None:
        tag = self.tag(trip.number, "stop")
        await self.budget.take()
        try:
            placed = await self.broker.place_order(
                self.account_id,
                trip.market.contract.id,
                side,
                self.cfg.size,
                type=OrderType.STOP,
                stop_price=price,
                custom_tag=tag,
            )
        except BrokerError as exc:
            if exc.maybe_sent:
                self.unknown_tags.add(tag)
                self._problem(trip, "stop", exc, "outcome unknown: left to the final sweep")
            else:
                self._problem(trip, "stop", exc, "no stop: going straight to the exit")
            return None
        return placed.order_id

    async def _stop_filled(self, trip: _Trip, stop_id: int) -> bool:
        """After a refused modify or cancel: True when the stop has filled (the position is
        closed: the stop was the exit)."""
        await self.budget.take()
        try:
            order = await self.broker.get_order(self.account_id, stop_id)
        except BrokerError:
            return False
        if order is not None and order.status == OrderStatus.FILLED:
            trip.stopped_out = True
            return True
        return False

    async def _flatten(self, trip: _Trip) -> None:
        """Close the trip's position, if any (last resort: does not wait for the budget)."""
        contract_id = trip.market.contract.id
        try:
            self.budget.count()
            positions = await self.broker.open_positions(self.account_id)
            if any(p.contract_id == contract_id and p.size for p in positions):
                self.budget.count()
                await self.broker.close_position(self.account_id, contract_id)
        except BrokerError as exc:
            self._problem(trip, "flatten", exc, "position may be open: left to the final sweep")

    # ----- the final check ---------------------------------------------------------------------

    async def leftovers(self) -> Leftovers:
        """What is open now: orders carrying this run's tags, positions in the traded
        contracts, and tags of unknown outcome that still cannot be read."""
        traded = {m.contract.id for m in self.markets}
        try:
            self.budget.count()
            orders = await self.broker.open_orders(self.account_id)
            self.budget.count()
            positions = await self.broker.open_positions(self.account_id)
        except BrokerError as exc:
            return Leftovers(read_error=_text(exc))
        mine = tuple(o for o in orders if (o.custom_tag or "").startswith(self.prefix))
        held = tuple(p for p in positions if p.contract_id in traded and p.size)
        unknown: list[str] = []
        for tag in sorted(self.unknown_tags):
            try:
                self.budget.count()
                await self.broker.find_order_by_tag(self.account_id, tag)
            except BrokerError:
                unknown.append(tag)
        return Leftovers(orders=mine, positions=held, unknown_tags=tuple(unknown))

    async def settle(self) -> Settlement:
        """The final check; anything found is swept (orders cancelled, positions closed) and
        checked again. Problems of the sweep are recorded."""
        found = await self.leftovers()
        if found.clean:
            return Settlement(found)
        for order in found.orders:
            if order.status in _FINAL:
                continue
            try:
                self.budget.count()
                await self.broker.cancel_order(self.account_id, order.id)
            except BrokerError as exc:
                self.problems.append(
                    Problem(None, None, "sweep", _text(exc), f"order {order.id} may be open")
                )
        for position in found.positions:
            try:
                self.budget.count()
                await self.broker.close_position(self.account_id, position.contract_id)
            except BrokerError as exc:
                what = f"position in {position.contract_id} may be open"
                self.problems.append(Problem(None, None, "sweep", _text(exc), what))
        return Settlement(found, await self.leftovers())
