"""One `harness run` session, start to end: checks, the round trips, the final check, the summary.

1. The timeframes are parsed before anything opens; then `harness.open(config=cfg, kind="run")`
   (the embedded simulator by default), the account (`workload.account`, or the first active
   one that can trade) and every symbol's contract are looked up. A key the broker cannot
   honour is a `ConfigError` naming it, before any order (exit 2).
2. Runs on this host that died without closing are reported, with the orders they left open
   (open orders whose customTag is in their outcome rows, or carries their `hr-` prefix) and
   the positions in the contracts they traded; with `workload.sweep_stale` those orders are
   cancelled and those positions closed first. A dead run that left nothing open (any more)
   is marked `died` in the store, and not reported again.
3. The account must hold no position and no working order in a traded contract: otherwise the
   session is refused (`RunRefusedError`, exit 1), since the round trips could not prove they
   left it flat.
4. The round trips (`harness.run.workload`), then the final check and sweep (`settle`).
5. The harness is closed (the recorder flushed, the run row ended), and the summary is read back
   from the store (`harness.run.summary`), with the recorder's own figures: a run that lost
   rows exits 4 (`EXIT_ROWS_LOST`).

SIGINT or SIGTERM before or while the round trips run: no new trip starts, the ones in flight
finish, then steps 4 and 5 as usual, and the exit status is 130 (SIGINT) or 143 (SIGTERM). A
second signal cancels the trips in flight; whatever they left is found and swept by the final
check. Any other signal, and any signal once the round trips are over, is noted and changes
nothing: the final check, the flush and the summary go on (`Session.signals()` holds SIGINT and
SIGTERM from before the session starts until the caller has printed the summary).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from harness.config import ConfigError, HarnessConfig
from harness.errors import (
    BrokerError,
    HarnessError,
    InvalidInputError,
    NotFoundError,
    OrderRejectedError,
)
from harness.orders.models import Order, Position
from harness.run.summary import RunFacts, build_summary
from harness.run.workload import (
    Market,
    Settlement,
    Tally,
    Workload,
    order_dict,
    tag_prefix,
)

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_LEFT_OPEN",
    "EXIT_ROWS_LOST",
    "RunRefusedError",
    "Session",
    "Watcher",
]

if TYPE_CHECKING:
    from harness.api import Harness
    from harness.recorder import RecorderStats

log = logging.getLogger("harness.run")

EXIT_LEFT_OPEN: Final = 1
"""Exit status when an order was left in an unknown state or a position left open (or the
workload stopped on an unexpected error)."""
EXIT_ROWS_LOST: Final = 4
"""Exit status when rows were lost: the recorder dropped rows of this run, or rows of a spill
file an earlier run left could not be replayed. No harness command uses 4 for anything else
(`harness gate` says INCONCLUSIVE with 3). It outranks a signal's status (a supervisor must not
take a stop that lost evidence for a clean one); an order or position left open (1) outranks
it."""
EXIT_INTERRUPTED: Final = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""Exit status after a graceful stop on a signal (128 + the signal's number)."""
_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class RunRefusedError(HarnessError):
    """The session would not start: the account is not clean in a traded contract."""


class Watcher:
    """What a session reports while it runs (the CLI draws a progress bar and prints notes).

    The defaults do nothing: subclass and override what you show.
    """

    def started(self, planned: int, symbols: list[str], account_id: int, workers: int) -> None:
        """The round trips are about to start."""

    def trip_done(self, tally: Tally) -> None:
        """A round trip ended (well or not)."""

    def note(self, text: str) -> None:
        """A line for the person watching (stale runs found, a signal received)."""

    def finished(self) -> None:
        """The round trips are over (the final check and the summary follow)."""


@dataclass(frozen=True, slots=True)
class _Setup:
    account_id: int
    markets: list[Market]


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds")


def _check_timeframes(timeframes: list[str]) -> None:
    from harness.bars import parse_timeframe

    for i, timeframe in enumerate(timeframes):
        try:
            parse_timeframe(timeframe)
        except InvalidInputError as exc:
            raise ConfigError(f"workload.timeframes.{i}", timeframe, exc.reason) from None


class Session:
    """A `harness run` session for one composed config; `await session.run()` plays it."""

    def __init__(self, cfg: HarnessConfig, watcher: Watcher | None = None) -> None:
        self.cfg = cfg
        self.watcher = watcher or Watcher()
        self.stopping = asyncio.Event()
        self.interrupted_by: signal.Signals | None = None
        self._signals = 0
        self._trips_over = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workload: Workload | None = None

    # ----- signals -----------------------------------------------------------------------------

    def on_signal(self, signum: signal.Signals) -> None:
        """First signal: stop starting trips; second: cancel the trips in flight; later, or
        once the trips are over: note it. Call it on the session's event loop (or with none
        running); `handle_signal` is the signal handler."""
        self._signals += 1
        if self._trips_over:
            self.watcher.note(
                f"{signum.name}: the round trips are over; finishing the final check, the "
                "flush and the summary"
            )
        elif self._signals == 1:
            self.interrupted_by = signum
            self.stopping.set()
            self.watcher.note(
                f"{signum.name}: no new round trips; finishing the ones in flight, then the "
                f"final check and the summary ({signum.name} again to cancel them now)"
            )
        elif self._signals == 2:
            self.watcher.note(
                f"{signum.name} again: cancelling the round trips in flight; the final check "
                "will close what they left"
            )
            if self._workload is not None:
                self._workload.abort()
        else:
            self.watcher.note(f"{signum.name}: already stopping (the recorder is being flushed)")

    def handle_signal(self, signum: int, frame: FrameType | None = None) -> None:
        """A `signal.signal` handler: `on_signal`, on the session's loop while it runs (the
        handler may have interrupted the loop itself; `call_soon_threadsafe` also wakes it)."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self.on_signal, signal.Signals(signum))
        else:
            self.on_signal(signal.Signals(signum))

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM go to `handle_signal` inside the block; the previous handlers
        are put back after it. Wrap the whole of `asyncio.run(session.run())` and the printing
        of the summary in it: a signal then never raises, whatever it lands on (a module being
        imported, the database being opened, the summary being written).

        Not the loop's `add_signal_handler`: the loop's handlers exist only while it runs, and
        swapping handlers would leave a moment with the default ones, which a SIGTERM does not
        survive. From a thread other than the main one (where Python refuses handlers) the
        block runs without them."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_signal) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # ----- the session -------------------------------------------------------------------------

    async def run(self) -> tuple[dict[str, Any], int]:
        """Play the session; the summary (see `harness.run.summary`) and the exit status.

        Raises `ConfigError` (bad key, before any order), `RunRefusedError`, or what opening
        the harness raises; the harness is closed in every case.
        """
        import harness

        cfg = self.cfg
        self._loop = asyncio.get_running_loop()
        _check_timeframes(cfg.workload.timeframes)
        h = harness.open(config=cfg, kind="run")
        status = "failed"
        reason: str | None = None
        try:
            setup = await self._setup(h)
            stale = await self._preflight(h, setup)
            workload = self._workload = Workload(
                h.orders,
                h.bars,
                cfg.workload,
                account_id=setup.account_id,
                markets=setup.markets,
                run_id=h.run_id,
                stopping=self.stopping,
                on_trip_done=self.watcher.trip_done,
                # An embedded simulator whose profile has no rate limits needs no pacing.
                paced=cfg.workload.rate_limit
                and (h.simulator is None or h.simulator.settings.rate_limit),
            )
            self.watcher.started(
                cfg.workload.trades,
                [m.symbol for m in setup.markets],
                setup.account_id,
                workload.workers,
            )
            began = time.perf_counter()
            try:
                await workload.play()
            finally:
                self._trips_over = True
            elapsed = time.perf_counter() - began
            self.watcher.finished()
            settlement = await workload.settle()
            calls_made = h.stats().calls
            status = "interrupted" if self.interrupted_by is not None else "finished"
        except BaseException as exc:
            from harness.store.runs import failure_reason

            reason = failure_reason(exc)  # the failed run row says why (a key the broker refused)
            raise
        finally:
            self._trips_over = True
            await h.aclose(status=status, reason=reason)
        stats = h.stats()
        recorder = stats.recorder  # this process's count, whatever the store took
        exit_status = self._exit_status(workload, settlement, recorder)
        facts = RunFacts(
            run_id=h.run_id,
            status=status,
            exit_status=exit_status,
            interrupted_by=None if self.interrupted_by is None else self.interrupted_by.name,
            elapsed_s=elapsed,
            account_id=setup.account_id,
            symbols=tuple(m.symbol for m in setup.markets),
            concurrency=workload.workers,
            budget_wait_s=workload.budget.waited_s + workload.bars_budget.waited_s,
            tally=workload.tally,
            calls_made=calls_made,
            problems=tuple(workload.problems),
            settlement=settlement,
            stale_runs=tuple(stale),
            crashed=None if workload.crashed is None else repr(workload.crashed),
            recorder=recorder,
            native_error=h.native.error,
            build_id=h.build_id,
            shadows=stats.shadows,
        )
        from harness.store.db import open_store

        engine = open_store(cfg.db.url)
        try:
            summary = build_summary(engine, cfg, facts)
        finally:
            engine.dispose()
        return summary, exit_status

    def _exit_status(
        self, workload: Workload, settlement: Settlement, recorder: RecorderStats
    ) -> int:
        if workload.crashed is not None or not settlement.found.clean:
            return EXIT_LEFT_OPEN
        if recorder.dropped or recorder.earlier_lost:
            return EXIT_ROWS_LOST
        if self.interrupted_by is not None:
            return EXIT_INTERRUPTED[self.interrupted_by]
        return 0

    async def _setup(self, h: Harness) -> _Setup:
        """The account and the contracts, checked before any order (ConfigError naming the
        key otherwise)."""
        w = self.cfg.workload
        accounts = await h.orders.accounts(only_active=True)
        if w.account is None:
            usable = [a for a in accounts if a.can_trade]
            if not usable:
                raise ConfigError("workload.account", None, "the broker lists no active account")
            account_id = usable[0].id
        else:
            found = [a for a in accounts if a.id == w.account]
            if not found:
                ids = ", ".join(str(a.id) for a in accounts) or "none"
                reason = f"no such active account (the broker lists: {ids})"
                raise ConfigError("workload.account", w.account, reason)
            if not found[0].can_trade:
                raise ConfigError("workload.account", w.account, "the account cannot trade")
            account_id = w.account
        markets: list[Market] = []
        seen: dict[str, str] = {}
        for i, symbol in enumerate(w.symbols):
            try:
                contract = await h.orders.resolve_contract(symbol)
            except InvalidInputError:
                raise ConfigError(
                    f"workload.symbols.{i}", symbol, "the broker knows no such contract"
                ) from None
            if contract.id in seen:
                reason = f"names contract {contract.id} again (as {seen[contract.id]!r} does)"
                raise ConfigError(f"workload.symbols.{i}", symbol, reason)
            seen[contract.id] = symbol
            markets.append(Market(symbol, contract))
        return _Setup(account_id, markets)

    async def _preflight(self, h: Harness, setup: _Setup) -> list[dict[str, Any]]:
        """Report stale runs (the orders they left open, their positions), sweep them with
        `workload.sweep_stale`, mark `died` those that left nothing open; refuse an account
        that is not clean in a traded contract."""
        from harness.store.runs import stale_runs

        account = setup.account_id
        orders: list[Order] = await h.orders.open_orders(account)
        positions: list[Position] = await h.orders.open_positions(account)
        report = []
        for run in stale_runs(h.engine):
            left, held = await self._left_by(h, run["id"], orders, positions)
            entry: dict[str, Any] = {
                "run": run["id"],
                "pid": run["pid"],
                "started": _iso(run["started_ns"]),
                "kind": run["kind"],
                "open_orders": [order_dict(o) for o in left],
                "open_positions": [{"contract_id": p.contract_id, "size": p.size} for p in held],
                "swept": None,
                "status": "running",
            }
            what = (
                f"it left {len(left)} order(s) open: "
                + ", ".join(f"{o.id} ({o.custom_tag})" for o in left)
                if left
                else "no open order of it found"
            )
            if held:
                what += "; positions in its contracts: " + ", ".join(
                    f"{p.contract_id} x{p.size}" for p in held
                )
            self.watcher.note(
                f"earlier run {run['id']} ({run['kind']}, pid {run['pid']}, started "
                f"{entry['started']}) died without closing; {what}"
            )
            if self.cfg.workload.sweep_stale and (left or held):
                entry["swept"] = await self._sweep_stale(h, account, left, held)
                orders = await h.orders.open_orders(account)
                positions = await h.orders.open_positions(account)
                left, held = await self._left_by(h, run["id"], orders, positions)
            if not left and not held:
                self._close_stale(h, run["id"], entry)
            report.append(entry)
        traded = {m.contract.id: m.symbol for m in setup.markets}
        busy = [f"order {o.id} in {o.contract_id}" for o in orders if o.contract_id in traded]
        busy += [
            f"a position of {p.size} in {p.contract_id}"
            for p in positions
            if p.contract_id in traded and p.size
        ]
        if busy:
            hint = (
                "; workload.sweep_stale=true first clears what a dead run of this host left"
                if report and not self.cfg.workload.sweep_stale
                else ""
            )
            raise RunRefusedError(
                f"account {account} already has {', '.join(busy)}: the round trips "
                "could not prove they left it flat. Close them first, or trade other symbols "
                f"(workload.symbols=[...]) or another account (workload.account=ID){hint}"
            )
        return report

    async def _left_by(
        self, h: Harness, run_id: str, orders: list[Order], positions: list[Position]
    ) -> tuple[list[Order], list[Position]]:
        """What a dead run left: the open orders carrying its tags (recorded in its outcome
        rows, or its `hr-` prefix), and the positions in the contracts it traded (its
        `workload.symbols`, and its open orders' contracts). A run only starts on an account
        flat in its contracts, so what is open there after it died is its own."""
        from harness.store.runs import placed_tags, run_symbols

        tags = placed_tags(h.engine, run_id)
        prefix = tag_prefix(run_id)
        left = [
            o
            for o in orders
            if o.custom_tag and (o.custom_tag in tags or o.custom_tag.startswith(prefix))
        ]
        contracts = {o.contract_id for o in left}
        for symbol in run_symbols(h.engine, run_id):
            try:
                contracts.add((await h.orders.resolve_contract(symbol)).id)
            except (InvalidInputError, BrokerError):
                continue  # a symbol the broker no longer lists: nothing can be held in it
        held = [p for p in positions if p.contract_id in contracts and p.size]
        return left, held

    async def _sweep_stale(
        self, h: Harness, account: int, left: list[Order], held: list[Position]
    ) -> dict[str, Any]:
        """Cancel a dead run's open orders and close its positions (`workload.sweep_stale`);
        what was done, and what failed."""
        cancelled: list[int] = []
        closed: list[str] = []
        failed: list[str] = []
        for order in left:
            try:
                await h.orders.cancel_order(account, order.id)
            except (OrderRejectedError, NotFoundError):
                continue  # no longer open (filled, or cancelled by another process meanwhile)
            except BrokerError as exc:
                failed.append(f"cancel {order.id}: {type(exc).__name__}: {exc}")
                continue
            cancelled.append(order.id)
        for position in held:
            try:
                await h.orders.close_position(account, position.contract_id)
            except BrokerError as exc:
                failed.append(f"close {position.contract_id}: {type(exc).__name__}: {exc}")
                continue
            closed.append(position.contract_id)
        self.watcher.note(
            f"swept: {len(cancelled)} order(s) cancelled, position(s) closed in "
            f"{', '.join(closed) or 'none'}" + (f"; FAILED: {'; '.join(failed)}" if failed else "")
        )
        return {"cancelled": cancelled, "closed": closed, "failed": failed}

    def _close_stale(self, h: Harness, run_id: str, entry: dict[str, Any]) -> None:
        """Mark a dead run that left nothing open `died` (it is not reported again)."""
        from harness.store.runs import close_stale_run

        report = {k: entry[k] for k in ("open_orders", "open_positions", "swept")}
        if close_stale_run(h.engine, run_id, found_by=h.run_id, report=report):
            entry["status"] = "died"
