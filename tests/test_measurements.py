"""One rule for every public API taking measurements: NaN and +-inf are refused with
`InvalidInputError` (a `ValueError`) naming the field and the value, and nothing is kept.

The APIs: the latency sketch (`add`, `add_many`), the recorder's rows (`record`,
`record_shadow`), the gate's figures (`SideFigures`, `OpFigures`, `WindowFigures`), and bar
prices on both implementations (batch and incremental; `BarDataError` is an
`InvalidInputError`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness import bars
from harness.config import RecorderConfig
from harness.errors import BarDataError, InvalidInputError
from harness.gate import OpFigures, SideFigures, WindowFigures
from harness.operations import Operation
from harness.recorder import OutcomeRecord, Recorder, ShadowRecord
from harness.sketch import LatencySketch
from harness.store.db import open_engine
from harness.store.models import Outcome, ShadowComparison

BAD = [math.nan, math.inf, -math.inf]
FINITE = "must be a finite number"
T0 = 1_763_510_400_000_000_000  # 2025-11-19T00:00:00Z


def _refused(call, field: str, value: float) -> InvalidInputError:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError) as refused:
        call()
    err = refused.value
    assert err.field == field
    assert _same(err.value, value)
    return err


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("bad", BAD)
def test_the_sketch_refuses_it(bad: float) -> None:
    sketch = LatencySketch()
    err = _refused(lambda: sketch.add(bad), "latency_us", bad)
    assert str(err) == f"invalid latency_us={bad!r}: {FINITE}"
    _refused(lambda: sketch.add_many([3.0, bad]), "latency_us[1]", bad)
    assert sketch.n == 0


def _outcome(run_id: str, latency_us: float) -> OutcomeRecord:
    return OutcomeRecord(
        ts_ns=T0, run_id=run_id, op="place_order", stage="canary", routed="rust",
        served="rust", fell_back=False, fallback_reason=None, ok=True, error_class=None,
        error_message=None, latency_us=latency_us, attempts=1, http_status=200, order_id=1,
        custom_tag="hx-1", routing_key=None,
    )  # fmt: skip


def _shadow(run_id: str, primary: float | None, shadow: float | None) -> ShadowRecord:
    return ShadowRecord(
        ts_ns=T0, run_id=run_id, op="aggregate_bars", stage="canary", routing_key=None,
        primary="rust", shadow="python", matched=True, timeframe="5m", bar_index=None,
        field=None, primary_value=None, shadow_value=None, primary_latency_us=primary,
        shadow_latency_us=shadow, shadow_error=None, bars_in=10,
    )  # fmt: skip


@pytest.mark.parametrize("bad", BAD)
def test_the_recorder_refuses_it_and_writes_only_the_good_rows(
    bad: float, store_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import func, select

    from harness.store.runs import start_run

    engine = open_engine(store_url)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    recorder = Recorder(
        engine, RecorderConfig(flush_interval_s=0.05), spill_dir=tmp_path, name=run_id
    )
    try:
        _refused(lambda: recorder.record(_outcome(run_id, bad)), "latency_us", bad)
        _refused(
            lambda: recorder.record_shadow(_shadow(run_id, bad, 1.0)), "primary_latency_us", bad
        )
        _refused(
            lambda: recorder.record_shadow(_shadow(run_id, 1.0, bad)), "shadow_latency_us", bad
        )
        recorder.record(_outcome(run_id, 250.0))
        recorder.record_shadow(_shadow(run_id, 9.0, None))  # a shadow that failed has no latency
    finally:
        stats = recorder.close()
    assert (stats.enqueued, stats.written, stats.dropped) == (2, 2, 0)
    with engine.connect() as conn:
        assert conn.execute(select(Outcome.latency_us)).scalars().all() == [250.0]
        assert conn.execute(select(func.count()).select_from(ShadowComparison)).scalar_one() == 1
    engine.dispose()


@pytest.mark.parametrize("bad", BAD)
def test_the_gate_figures_refuse_it(bad: float) -> None:
    err = _refused(lambda: SideFigures(calls=3, latency_max_us=bad), "latency_max_us", bad)
    assert repr(bad) in str(err)
    for name in ("calls", "errors", "fallbacks"):
        _refused(lambda name=name: SideFigures(**{name: bad}), name, bad)  # type: ignore[misc]
    _refused(
        lambda: OpFigures(Operation.AGGREGATE_BARS, shadow_comparisons=bad),
        "shadow_comparisons",
        bad,
    )  # type: ignore[arg-type]
    _refused(lambda: WindowFigures("canary", 0, bad), "until_ns", bad)  # type: ignore[arg-type]


def test_the_gate_figures_refuse_counts_that_are_not_integers() -> None:
    _refused(lambda: SideFigures(calls=2.5), "calls", 2.5)  # type: ignore[arg-type]
    _refused(lambda: SideFigures(calls=True), "calls", True)
    _refused(lambda: SideFigures(calls=-1), "calls", -1)
    assert SideFigures(calls=np.int64(3), errors=1).error_rate == pytest.approx(1 / 3)


@pytest.mark.parametrize("impl", ["rust", "python"])
@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("column", ["o", "h", "l", "c"])
def test_bar_prices_refuse_it_on_both_sides(impl: str, bad: float, column: str) -> None:
    columns = {
        "t": np.array([T0, T0 + 60_000_000_000], dtype=np.int64),
        **{k: np.array([10.0, 10.0]) for k in "ohlc"},
        "v": np.array([1, 2], dtype=np.int64),
    }
    columns[column] = np.array([10.0, bad])
    with pytest.raises(BarDataError) as refused:
        bars.aggregate(columns, "5m", impl=impl)
    err = refused.value
    assert isinstance(err, InvalidInputError) and (err.field, err.index) == (column, 1)
    assert _same(err.value, bad)
    incremental = bars.Aggregator(["5m"], impl=impl)
    prices = {k: 10.0 for k in "ohlc"} | {column: bad}
    with pytest.raises(BarDataError) as refused:
        incremental.push(T0, prices["o"], prices["h"], prices["l"], prices["c"], 1)
    assert refused.value.field == column and incremental.count == 0
