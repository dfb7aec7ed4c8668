"""Routed bar aggregation: `aggregate` and the live `Aggregator` of `harness.bars`, minus `impl`,
plus `contract=` for the routing key.

Routing key: `contract|timeframes` (`MNQ|5m,15m,1h`), or the timeframes alone without
`contract=`. A Rust failure that is not the input's fault (`NativePanicError`, any unexpected
exception; not `BarDataError` / `InvalidInputError`) reruns on Python and counts toward the
breaker. At the stage's shadow sample rate the other side also runs, off the caller's path
(`harness.router.shadow`), and the comparison is recorded.

The live `Aggregator` picks its side when it is made and keeps it; it moves to Python when Rust
fails under it or becomes disabled (kill switch, breaker, percent 0, `TOPSTEPX_USE_RUST`),
carrying its state across: it keeps the input bars of its still-open buckets and replays them
into a fresh Python aggregator (what the replay emits was emitted before, and is discarded).
It never moves back to Rust; a new `Aggregator` is routed afresh. Live aggregators are not
shadowed (a push is about a microsecond: the batch `aggregate` is where shadows run).

Each call (`aggregate`, `push`, `push_many`) is one outcome row of `aggregate_bars`.
"""

from __future__ import annotations

import importlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from time import perf_counter_ns, time_ns
from types import ModuleType
from typing import Any, Final

import numpy as np

from harness import bars as _bars
from harness.bars import Bar, Bars, Offset, Unit
from harness.bars import python as _python
from harness.errors import BarDataError
from harness.operations import Impl, Operation
from harness.router.call import call_sync
from harness.router.capture import Capturer, bars_document
from harness.router.core import Router
from harness.router.policy import bars_failure_action, env_allows_rust
from harness.router.shadow import DEFAULT_ENGINES, ShadowRunner

__all__ = ["RoutedAggregator", "RoutedBars", "routing_key"]

OP: Final = Operation.AGGREGATE_BARS.value  # a plain str, as the store takes it
RUST: Final = Impl.RUST
PYTHON: Final = Impl.PYTHON


def routing_key(contract: str | None, timeframes: Any) -> str:
    """`contract|tf1,tf2` (or `tf1,tf2` without a contract): what an aggregation is routed by."""
    if isinstance(timeframes, str):
        names = timeframes
    elif isinstance(timeframes, list | tuple):
        names = ",".join(str(tf) for tf in timeframes)
    else:
        names = repr(timeframes)
    return names if contract is None else f"{contract}|{names}"


def _other(side: Impl) -> Impl:
    return PYTHON if side is RUST else RUST


class RoutedBars:
    """`h.bars`: routed `aggregate` and `Aggregator` (see the module docstring)."""

    def __init__(
        self, router: Router, shadows: ShadowRunner, capturer: Capturer | None = None
    ) -> None:
        self._router = router
        self._shadows = shadows
        self._capturer = capturer
        self._engine_names: dict[Impl, str] = dict(DEFAULT_ENGINES)
        self._modules: dict[Impl, ModuleType] = {}

    def use_engine(self, impl: Impl, module: str) -> None:
        """Test hook (tests, drills): serve side `impl` with another module offering
        `aggregate_columns` and `Aggregator` as `harness._native` does. Shadows of that side
        import it by name in their worker, so it must be importable there too."""
        self._engine_names[impl] = module
        self._modules.pop(impl, None)

    def engine_name(self, impl: Impl) -> str:
        """The module serving side `impl`."""
        return self._engine_names[impl]

    def engine(self, impl: Impl) -> ModuleType:
        """The module serving side `impl` (imported on first use)."""
        module = self._modules.get(impl)
        if module is None:
            module = self._modules[impl] = importlib.import_module(self._engine_names[impl])
        return module

    def aggregate(
        self,
        bars: Any,
        timeframe: str | Sequence[str],
        *,
        offset: Offset = None,
        unit: Unit | None = None,
        contract: str | None = None,
    ) -> Any:
        """As `harness.bars.aggregate` (`Bars` for one timeframe, `{timeframe: Bars}` for
        several), on the side the routing key sends it to; raises what that side raises
        (`BarDataError` indexed to the caller's rows, `InvalidInputError`)."""
        router = self._router
        ts_ns, started = time_ns(), perf_counter_ns()
        key = routing_key(contract, timeframe)
        attrs = None if router.snapshot.targets[OP] is None else {"symbol": contract}
        routed, targeted = router.route_call(OP, key, attrs)
        rate = router.snapshot.shadow_rates[OP]
        stage = router.snapshot.stages[OP]
        # Prepared once, whichever side runs (and reruns) it; the shadow gets the same columns.
        prepared: list[_bars.Prepared] = []
        engine_started = [started]  # the shadow compares engine time with engine time

        def run(side: Impl) -> dict[str, Bars]:
            if not prepared:
                prepared.append(_bars.prepare(bars, timeframe, offset=offset, unit=unit))
            batch = prepared[0]
            engine_started[0] = perf_counter_ns()
            series = self.engine(side).aggregate_columns(
                *batch.columns, batch.periods, batch.offsets
            )
            return {name: Bars(*one) for name, one in zip(batch.names, series, strict=True)}

        def shown(exc: BaseException) -> BaseException:
            # The shadow compares what the engines raised (indices of the sorted rows); the
            # caller and the store get the caller's row.
            if prepared and isinstance(exc, BarDataError):
                return prepared[0].caller_error(exc)
            return exc

        def shadow(side: Impl, outcome: Any, _latency_us: float) -> None:
            if prepared:
                batch = prepared[0]
                engine_us = (perf_counter_ns() - engine_started[0]) / 1000.0
                self._shadow(rate, side, batch.columns, batch.periods, batch.offsets,
                             batch.names, outcome, engine_us, ts_ns, stage, key)  # fmt: skip

        capturer = self._capturer
        if capturer is not None and capturer.sample(OP):

            def settle(side: Impl, outcome: Any, latency_us: float) -> None:
                if rate > 0.0:
                    shadow(side, outcome, latency_us)
                if prepared and capturer is not None:
                    self._capture(capturer, side, prepared[0], ts_ns)

            after: Any = settle
        else:
            after = shadow if rate > 0.0 else None
        result = call_sync(
            router, OP, routed, key, run, failure=bars_failure_action, how="reran on python",
            targeted=targeted, shown=shown, after=after, on_error=after, ts_ns=ts_ns,
            started=started,
        )  # fmt: skip
        names = prepared[0].names
        return result[names[0]] if isinstance(timeframe, str) else result

    @staticmethod
    def _capture(capturer: Capturer, served: Impl, batch: _bars.Prepared, ts_ns: int) -> None:
        """Capture one aggregation: its prepared columns copied here (the caller may reuse its
        arrays at once), encoded on the recorder's thread."""
        columns = tuple(np.array(c, copy=True) for c in batch.columns)
        periods, offsets, names = list(batch.periods), list(batch.offsets), list(batch.names)
        capturer.submit(
            OP, served.value, ts_ns, lambda: bars_document(columns, periods, offsets, names)
        )

    def _shadow(
        self,
        rate: float,
        served: Impl,
        columns: tuple[np.ndarray, ...],
        periods: list[int],
        offsets: list[int],
        names: list[str],
        outcome: Mapping[str, Bars] | BaseException,
        engine_us: float,
        ts_ns: int,
        stage: str,
        key: str,
    ) -> None:
        if rate <= 0.0 or not self._shadows.sample(rate):
            return
        shadow = _other(served)
        if shadow is RUST and not (self._router.native_available and env_allows_rust()):
            return
        self._shadows.submit(
            engine=self._engine_names[shadow],
            shadow=shadow,
            primary=served,
            columns=columns,
            periods=periods,
            offsets=offsets,
            names=names,
            outcome=outcome,
            primary_latency_us=engine_us,
            ts_ns=ts_ns,
            stage=stage,
            key=key,
        )

    def Aggregator(  # the same name as harness.bars.Aggregator
        self,
        timeframes: str | Sequence[str],
        *,
        offset: Offset = None,
        input_timeframe: str | None = "1m",
        unit: Unit | None = None,
        contract: str | None = None,
    ) -> RoutedAggregator:
        """A live aggregator, as `harness.bars.Aggregator`, routed by `contract|timeframes`."""
        return RoutedAggregator(
            self,
            self._router,
            timeframes,
            offset=offset,
            input_timeframe=input_timeframe,
            unit=unit,
            contract=contract,
        )


class RoutedAggregator:
    """Live aggregation on a routed side that moves to Python, state intact, when Rust fails
    or is disabled (see the module docstring). Same methods as `harness.bars.Aggregator`."""

    def __init__(
        self,
        bars: RoutedBars,
        router: Router,
        timeframes: str | Sequence[str],
        *,
        offset: Offset,
        input_timeframe: str | None,
        unit: Unit | None,
        contract: str | None,
    ) -> None:
        self._routed_bars = bars
        self._unit = unit
        self._router = router
        names = [timeframes] if isinstance(timeframes, str) else _bars._names(timeframes)
        periods, offsets = _bars._specs(names, offset)
        self._buckets = [(p, off % p) for p, off in zip(periods, offsets, strict=True)]
        self._offset = offset
        self._input_timeframe = input_timeframe
        self.timeframes: tuple[str, ...] = tuple(names)
        self.key = routing_key(contract, timeframes)
        self._side, self._targeted = router.route_call(OP, self.key, {"symbol": contract})
        self._agg = self._build(self._side)
        self._open: deque[tuple[int, float, float, float, float, int]] = deque()
        self._count = 0
        self._volume = 0

    @property
    def impl(self) -> str:
        """The side serving this aggregator now: `rust` or `python`."""
        return self._side.value

    @property
    def count(self) -> int:
        """Bars accepted so far."""
        return self._count

    def partial(self, timeframe: str) -> Bar | None:
        """The bar still being built for `timeframe`, or None."""
        return self._agg.partial(timeframe)

    def push(self, t: Any, o: float, h: float, l: float, c: float, v: int) -> list[tuple[str, Bar]]:  # noqa: E741
        """Push one closed 1-minute bar; `(timeframe, bar)` for each bar it completed."""
        done: list[tuple[str, Bar]] = self._routed(lambda: self._agg.push(t, o, h, l, c, v))
        last = self._agg.last_t
        assert last is not None  # set by the push that just succeeded
        self._keep([(last, float(o), float(h), float(l), float(c), int(v))])
        return done

    def push_many(self, bars: Any) -> dict[str, Bars]:
        """Push a batch (columns or records; all or nothing); the completed bars per timeframe."""
        done: dict[str, Bars] = self._routed(lambda: self._agg.push_many(bars))
        columns = self._agg.last_columns
        assert columns is not None  # set by the push_many that just succeeded
        self._keep_columns(columns)
        return done

    def _routed(self, work: Callable[[], Any]) -> Any:
        """`work` on the side serving this aggregator, through the one routed-call path: a
        Rust failure moves the state to Python and does `work` there."""
        router = self._router
        ts_ns, started = time_ns(), perf_counter_ns()
        routed = self._current_side()

        def run(side: Impl) -> Any:
            if side is PYTHON and self._side is not PYTHON:
                self._move_to_python()
            return work()

        return call_sync(
            router, OP, routed, self.key, run, failure=bars_failure_action,
            how="state replayed into python", targeted=self._targeted, ts_ns=ts_ns,
            started=started,
        )  # fmt: skip

    # ----- the side and its state ------------------------------------------------------------

    def _current_side(self) -> Impl:
        if self._side is RUST and not self._router.rust_enabled(OP):
            self._move_to_python()
        return self._side

    def _build(self, side: Impl) -> _bars.Aggregator:
        agg = _bars.Aggregator(
            list(self.timeframes),
            offset=self._offset,
            input_timeframe=self._input_timeframe,
            impl="python",
            unit=self._unit,
        )
        if self._routed_bars.engine_name(side) != DEFAULT_ENGINES[PYTHON]:
            # Rust, or a test engine: swap the facade's engine (the facade parses; the engine
            # aggregates). The facade takes the same periods and offsets for every engine.
            periods = [p for p, _ in self._buckets]
            offsets = [off for _, off in self._buckets]
            input_period = (
                0 if self._input_timeframe is None else _bars.parse_timeframe(self._input_timeframe)
            )
            engine = self._routed_bars.engine(side)
            agg._engine = engine.Aggregator(periods, offsets, input_period)
        agg.impl = side.value
        return agg

    def _move_to_python(self) -> None:
        """Replace the Rust aggregator by a Python one in the same state (see the docstring)."""
        agg = self._build(PYTHON)
        engine = agg._engine
        if self._open:
            rows = [list(column) for column in zip(*self._open, strict=True)]
            engine.push_many(*_python.columns_from_lists(*rows))
        if isinstance(engine, _python.Aggregator):
            # What the replay cannot rebuild: the count of bars (error indexes) and the volume
            # total (the overflow check) of everything pushed before the open buckets.
            engine._count = self._count
            engine._total = self._volume
        self._agg, self._side = agg, PYTHON

    def _horizon(self, t: int) -> int:
        """The start of the oldest bucket still open after a bar at `t`."""
        return min(t - (t - off) % period for period, off in self._buckets)

    def _keep(self, rows: list[tuple[int, float, float, float, float, int]]) -> None:
        self._count += len(rows)
        for row in rows:
            self._volume += row[5]
        self._open.extend(rows)
        self._trim(rows[-1][0])

    def _keep_columns(self, columns: Sequence[np.ndarray]) -> None:
        n = len(columns[0])
        if n == 0:
            return
        self._count += n
        self._volume += int(columns[5].sum())
        last = int(columns[0][-1])
        horizon = self._horizon(last)
        self._trim(last)
        start = int(np.searchsorted(columns[0], horizon, side="left"))
        self._open.extend(zip(*(c[start:].tolist() for c in columns), strict=True))

    def _trim(self, last: int) -> None:
        horizon = self._horizon(last)
        kept = self._open
        while kept and kept[0][0] < horizon:
            kept.popleft()
