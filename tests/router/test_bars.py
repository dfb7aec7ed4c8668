"""Routed bar aggregation: routing by contract and timeframes, rerun on Python after a Rust
failure, the live aggregator's state carried across a move to Python, and shadow runs whose
mismatches, errors and slowness are recorded but never reach the caller."""

from __future__ import annotations

import numpy as np
import pytest

from harness.bars import Aggregator, aggregate
from harness.compare import assert_same_bars
from harness.errors import BarDataError
from harness.operations import Impl, Operation

from . import panicking_engine, slow_engine
from .kit import MINUTE, minute_bars, outcomes, rows

AGG = Operation.AGGREGATE_BARS
TIMEFRAMES = ["5m", "15m", "1h"]


def reference(bars, timeframes=TIMEFRAMES):
    return aggregate(bars, timeframes, impl="python")


def assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for tf in want:
        assert_same_bars(got[tf], want[tf])


async def test_aggregations_are_routed_by_contract_and_timeframes(open_harness, sqlite_url):
    h = open_harness(stage="staging_50")
    bars = minute_bars(120)
    contracts = [f"C{i}" for i in range(16)]
    for contract in contracts:
        assert_same(h.bars.aggregate(bars, TIMEFRAMES, contract=contract), reference(bars))
    h.bars.aggregate(bars, "5m")
    assert h.recorder.flush(10)
    got = outcomes(sqlite_url)
    assert [r["routing_key"] for r in got] == [f"{c}|5m,15m,1h" for c in contracts] + ["5m"]
    for r in got:
        assert r["served"] == h.router.decide(AGG, r["routing_key"]).value
    assert {r["served"] for r in got} == {"rust", "python"}


async def test_one_timeframe_returns_bars_and_several_a_dict(open_harness):
    h = open_harness(stage="production")
    bars = minute_bars(60)
    assert_same_bars(h.bars.aggregate(bars, "15m"), aggregate(bars, "15m", impl="python"))
    assert list(h.bars.aggregate(bars, ["1h", "5m", "1h"])) == ["1h", "5m"]


async def test_bad_bars_are_the_callers_error_on_either_side(open_harness, sqlite_url):
    h = open_harness(stage="staging_50")
    bad = minute_bars(20)
    bad["t"][7] = bad["t"][6]
    for contract in ("C0", "C1", "C2", "C3", "C4", "C5"):
        with pytest.raises(BarDataError, match="duplicate timestamp at index 7"):
            h.bars.aggregate(bad, "5m", contract=contract)
    assert h.recorder.flush(10)
    got = outcomes(sqlite_url)
    assert {(r["fell_back"], r["ok"], r["error_class"]) for r in got} == {
        (False, False, "BarDataError")
    }
    assert {r["served"] for r in got} == {"rust", "python"}


async def test_a_rust_failure_reruns_on_python(open_harness, sqlite_url):
    h = open_harness(stage="production")
    h.bars.use_engine(Impl.RUST, "router.panicking_engine")
    bars = minute_bars(300)
    assert_same(h.bars.aggregate(bars, TIMEFRAMES, contract="MNQ"), reference(bars))
    assert h.recorder.flush(10)
    (row,) = outcomes(sqlite_url)
    assert (row["routed"], row["served"], row["fell_back"], row["ok"]) == (
        "rust",
        "python",
        True,
        True,
    )
    assert row["fallback_reason"].startswith("rust NativePanicError; reran on python")
    assert h.stats().calls["aggregate_bars"].fell_back == 1


# ----- the live aggregator ---------------------------------------------------------------------


def push_all(live, bars, split: int | None = None) -> dict[str, list]:
    """Push bars one by one (or in two batches at `split`); the completed bars per timeframe."""
    out: dict[str, list] = {tf: [] for tf in live.timeframes}
    n = len(bars["t"])
    if split is None:
        for i in range(n):
            for tf, bar in live.push(*(bars[k][i].item() for k in "tohlcv")):
                out[tf].append(tuple(bar))
    else:
        for part in (slice(0, split), slice(split, n)):
            done = live.push_many({k: bars[k][part] for k in "tohlcv"})
            for tf, series in done.items():
                out[tf].extend(tuple(series.bar(i)) for i in range(len(series)))
    return out


@pytest.mark.parametrize("split", [None, 700])
async def test_the_live_aggregator_keeps_its_state_across_a_rust_failure(
    open_harness, sqlite_url, monkeypatch, split
):
    h = open_harness(stage="production")
    h.bars.use_engine(Impl.RUST, "router.panicking_engine")
    monkeypatch.setattr(panicking_engine, "PANIC_AT", 1003)  # mid-bucket of every timeframe
    bars = minute_bars(1500, start_minute=29_000_017)
    live = h.bars.Aggregator(TIMEFRAMES, contract="MNQ")
    assert live.impl == "rust"
    got = push_all(live, bars, split)
    assert live.impl == "python"
    want_live = Aggregator(TIMEFRAMES, impl="python")
    want = push_all(want_live, bars, split)
    assert got == want
    for tf in TIMEFRAMES:
        assert live.partial(tf) == want_live.partial(tf)
    assert live.count == want_live.count == 1500
    # The Python side now validates across the move as the original would have.
    with pytest.raises(BarDataError, match="at index 1500"):
        live.push(int(bars["t"][-1]), 1.0, 1.0, 1.0, 1.0, 1)
    assert h.recorder.flush(10)
    fell = [r for r in outcomes(sqlite_url) if r["fell_back"]]
    assert len(fell) == 1 and "state replayed into python" in fell[0]["fallback_reason"]


async def test_the_live_aggregator_moves_to_python_when_rust_is_killed(
    open_harness, sqlite_url, monkeypatch
):
    h = open_harness(stage="production")
    bars = minute_bars(400, start_minute=29_000_003)
    live = h.bars.Aggregator(["5m", "1h"], offset="7m")
    first = {k: v[:250] for k, v in bars.items()}
    rest = {k: v[250:] for k, v in bars.items()}
    got = push_all(live, first)
    monkeypatch.setenv("TOPSTEPX_USE_RUST", "off")
    more = push_all(live, rest)
    assert live.impl == "python"
    want_live = Aggregator(["5m", "1h"], offset="7m", impl="python")
    want = push_all(want_live, bars)
    assert {tf: got[tf] + more[tf] for tf in got} == want
    assert live.partial("1h") == want_live.partial("1h")
    assert h.recorder.flush(10)
    served = [r["served"] for r in outcomes(sqlite_url)]
    assert served == ["rust"] * 250 + ["python"] * 150
    assert not any(r["fell_back"] for r in outcomes(sqlite_url))


# ----- shadows ---------------------------------------------------------------------------------


def shadow_rows(url: str) -> list[dict]:
    return rows(url, "SELECT * FROM shadow_comparisons ORDER BY ts_ns")


@pytest.mark.parametrize("mechanism", ["thread", "process"])
async def test_a_wrong_shadow_is_caught_recorded_and_never_returned(
    store_url, open_harness, mechanism
):
    # Stage `shadow`: Python serves every call, Rust runs beside it (here: a wrong engine).
    h = open_harness(url=store_url, stage="shadow", rollout__shadow__mechanism=mechanism)
    h.bars.use_engine(Impl.RUST, "router.wrong_engine")
    bars = minute_bars(3000)
    got = h.bars.aggregate(bars, TIMEFRAMES, contract="MNQ")
    assert_same(got, reference(bars))  # the caller gets the right bars
    assert h.wait_for_shadows(60)
    assert h.recorder.flush(10)
    (row,) = shadow_rows(store_url)
    five = reference(bars)["5m"]
    assert (row["primary"], row["shadow"], row["matched"]) == ("python", "rust", False)
    assert (row["timeframe"], row["bar_index"], row["field"]) == ("5m", 3, "h")
    assert float(row["primary_value"]) == five.h[3]
    assert float(row["shadow_value"]) == five.h[3] + 0.25
    assert row["primary_latency_us"] > 0 and row["shadow_latency_us"] > 0
    assert row["bars_in"] == 3000 and row["routing_key"] == "MNQ|5m,15m,1h"
    assert row["shadow_error"] is None and row["stage"] == "shadow"
    assert h.stats().shadows.mismatched == 1


@pytest.mark.parametrize("mechanism", ["thread", "process", "auto"])
async def test_a_matching_shadow_is_recorded_as_a_match(open_harness, sqlite_url, mechanism):
    h = open_harness(stage="production", rollout__shadow__mechanism=mechanism)
    h.router.rollout.stages[-1].shadow_sample_rate = 1.0
    h.refresh()
    bars = minute_bars(500)
    h.bars.aggregate(bars, TIMEFRAMES)
    bad = minute_bars(50)
    bad["h"][9] = bad["l"][9] - 1.0
    with pytest.raises(BarDataError):
        h.bars.aggregate(bad, "5m")
    assert h.wait_for_shadows(60)
    assert h.recorder.flush(10)
    got = shadow_rows(sqlite_url)
    assert [(r["primary"], r["shadow"], r["matched"]) for r in got] == [
        ("rust", "python", True)
    ] * 2  # the same bars, then the same error
    assert got[0]["field"] is None and got[0]["shadow_latency_us"] > 0


async def test_a_shadow_that_raises_is_recorded_and_the_caller_never_sees_it(
    open_harness, sqlite_url
):
    h = open_harness(stage="shadow")
    h.bars.use_engine(Impl.RUST, "router.raising_engine")
    bars = minute_bars(100)
    assert_same_bars(h.bars.aggregate(bars, "5m"), reference(bars, "5m"))
    assert h.wait_for_shadows(30)
    assert h.recorder.flush(10)
    (row,) = shadow_rows(sqlite_url)
    assert not row["matched"] and row["field"] == "error"
    assert row["shadow_error"] == "RuntimeError: shadow engine exploded"
    (outcome,) = outcomes(sqlite_url)
    assert outcome["ok"] and not outcome["fell_back"]


async def test_a_slow_shadow_does_not_delay_the_caller_and_excess_is_skipped(open_harness):
    h = open_harness(stage="shadow", rollout__shadow__max_in_flight=1)
    h.bars.use_engine(Impl.RUST, "router.slow_engine")
    bars = minute_bars(60)
    with slow_engine.held():  # the shadow answers only once the block ends
        for _ in range(3):
            h.bars.aggregate(bars, "5m")
        # Back with the shadow still held: the caller never waited for it (had it waited, the
        # shadow would have answered first), and the two calls that came meanwhile skipped it.
        stats = h.stats().shadows
        assert (stats.submitted, stats.skipped, stats.matched) == (1, 2, 0)
    assert h.wait_for_shadows(30)
    assert h.stats().shadows.matched == 1


async def test_sampling_follows_the_stage_rate_deterministically(open_harness, sqlite_url):
    h = open_harness(stage="staging")  # shadow_sample_rate 0.10
    h.bars.use_engine(Impl.RUST, "harness._native")
    bars = minute_bars(40)
    for i in range(200):
        h.bars.aggregate(bars, "5m", contract=f"K{i}")
    assert h.wait_for_shadows(60)
    stats = h.stats().shadows
    assert 8 <= stats.submitted + stats.skipped <= 35
    assert stats.mismatched == 0


async def test_no_shadow_runs_at_rate_zero_or_under_the_kill_switch(open_harness, monkeypatch):
    h = open_harness(stage="off")
    h.bars.aggregate(minute_bars(30), "5m")
    monkeypatch.setenv("TOPSTEPX_USE_RUST", "false")
    shadowed = open_harness(stage="shadow")
    shadowed.bars.aggregate(minute_bars(30), "5m")
    assert h.stats().shadows.submitted == 0 and shadowed.stats().shadows.submitted == 0


async def test_the_shadow_input_is_a_copy(open_harness, sqlite_url):
    h = open_harness(stage="shadow", rollout__shadow__mechanism="thread")
    h.bars.use_engine(Impl.RUST, "router.slow_engine")
    bars = minute_bars(60)
    with slow_engine.held():  # the shadow reads its input only after the caller's change
        h.bars.aggregate(bars, "5m")
        bars["h"][:] = np.nan  # the caller reuses its arrays at once
    assert h.wait_for_shadows(30)
    assert h.stats().shadows.matched == 1


def test_minute_constant_matches_the_bars_grid():
    assert MINUTE == 60_000_000_000


async def test_a_shadow_worker_that_dies_is_counted_not_recorded_and_replaced(
    open_harness, sqlite_url
):
    h = open_harness(stage="shadow", rollout__shadow__mechanism="process")
    h.bars.use_engine(Impl.RUST, "router.dying_engine")
    bars = minute_bars(60)
    assert_same_bars(h.bars.aggregate(bars, "5m"), reference(bars, "5m"))
    assert h.wait_for_shadows(60)
    assert h.stats().shadows.failed == 1
    h.bars.use_engine(Impl.RUST, "harness._native")
    h.bars.aggregate(bars, "5m")
    assert h.wait_for_shadows(60)
    assert h.recorder.flush(10)
    assert [r["matched"] for r in shadow_rows(sqlite_url)] == [True]


UNGUARDED_BOT = """
import sys
import numpy as np
import harness
from harness.config import compose

with open(sys.argv[2], "a") as log:   # a bot's top-level code, with no __main__ guard
    log.write("bot ran\\n")
cfg = compose(["db.url=" + sys.argv[1], "broker.sim.profile=bench",
               "rollout.start_stage=shadow", "rollout.shadow.mechanism=process"])
with harness.open(config=cfg) as h:
    n = 300
    t = (29_000_000 + np.arange(n, dtype=np.int64)) * 60_000_000_000
    o = np.full(n, 4000.0)
    h.bars.aggregate({"t": t, "o": o, "h": o + 1, "l": o - 1, "c": o,
                      "v": np.ones(n, np.int64)}, "5m")
    assert h.wait_for_shadows(60)
    print(h.stats().shadows.matched)
"""


def test_a_process_shadow_never_reruns_the_bots_own_script(sqlite_url, tmp_path):
    import subprocess
    import sys

    script, log = tmp_path / "bot.py", tmp_path / "bot.log"
    script.write_text(UNGUARDED_BOT)
    done = subprocess.run(
        [sys.executable, str(script), sqlite_url, str(log)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert log.read_text() == "bot ran\n"


async def test_routed_errors_name_the_callers_record_on_either_side(open_harness):
    """The routed API takes what `harness.bars` takes and answers the same: a newest-first
    retrieveBars answer with a duplicate names the caller's index, not the sorted copy's."""
    h = open_harness(stage="staging_50")
    start = 1_780_000_000  # epoch seconds, unambiguous by size
    records = [
        {"t": start + 60 * (9 - i), "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 3}
        for i in range(10)
    ]
    records[5] = dict(records[4])  # a duplicate at 4 and 5
    seen = set()
    for contract in (f"C{i}" for i in range(12)):
        with pytest.raises(BarDataError) as info:
            h.bars.aggregate(records, "5m", contract=contract)
        direct = pytest.raises(BarDataError)
        with direct as want:
            aggregate(records, "5m", impl="python")
        assert (
            (info.value.field, info.value.index)
            == (want.value.field, want.value.index)
            == (
                "t",
                5,
            )
        )
        seen.add(h.router.decide(AGG, f"{contract}|5m"))
    assert seen == {Impl.RUST, Impl.PYTHON}


async def test_routed_units_follow_the_facade(open_harness):
    h = open_harness(stage="production")
    bars = minute_bars(30)
    seconds = dict(bars, t=bars["t"] // 1_000_000_000)
    want = aggregate(bars, "5m", impl="python")
    assert_same_bars(h.bars.aggregate(seconds, "5m", unit="s"), want)
    live = h.bars.Aggregator("5m", unit="s")
    live.push_many({k: v[:10] for k, v in seconds.items()})
    for i in range(10, 30):
        live.push(int(seconds["t"][i]), *(float(seconds[k][i]) for k in "ohlc"), int(bars["v"][i]))
    partial = live.partial("5m")
    direct = Aggregator("5m", impl="python", unit="s")
    direct.push_many(seconds)
    assert partial == direct.partial("5m")
