"""The router follows the store: the kill flag on the next call, another process's change within
about a second, circuit breakers tripped and reset as events, the native module's absence
recorded. Each runs on SQLite and on PostgreSQL (`store_url`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from waitkit import wait_until

from harness.errors import BrokerUnavailableError
from harness.operations import Impl, Operation
from harness.sim import FaultRule
from harness.store.db import open_engine
from harness.store.state import read_state, set_kill

from .kit import ACCOUNT, MNQ, Flaky, minute_bars, outcomes, rows

PLACE = "/api/Order/place"


def broken() -> BrokerUnavailableError:
    return BrokerUnavailableError("connect failed (deliberate)", endpoint=PLACE, maybe_sent=False)


async def test_the_store_kill_switch_takes_effect_on_the_next_call(store_url, open_harness):
    h = open_harness(url=store_url, stage="production")
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    h.kill("incident 42", who="alice")
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    h.unkill("resolved", who="alice")
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    assert h.recorder.flush(10)
    assert [r["served"] for r in outcomes(store_url)] == ["rust", "python", "rust"]
    events = rows(
        store_url, "SELECT kind, who, reason, migration FROM rollout_events ORDER BY ts_ns"
    )
    # One start per migration; the kill without a migration is the global one (`all`).
    assert [(e["kind"], e["migration"]) for e in events] == [
        ("start", "orders"), ("start", "bars"), ("kill", None), ("unkill", None),
    ]  # fmt: skip
    assert events[2]["who"] == "alice" and events[2]["reason"] == "incident 42"


async def test_a_kill_set_elsewhere_reaches_this_process_without_a_restart(store_url, open_harness):
    h = open_harness(url=store_url, stage="production")
    other = open_engine(store_url)
    try:
        set_kill(other, True, who="bob", reason="from another connection")
    finally:
        other.dispose()
    wait_until(lambda: h.state.kill, what="the kill set by another connection")
    assert h.state.kill_reason == "from another connection"
    assert h.router.decide(Operation.PLACE_ORDER, "any") is Impl.PYTHON


CHANGER = textwrap.dedent(
    """
    import sys
    from harness.store.db import open_engine
    from harness.store.state import set_stage
    engine = open_engine(sys.argv[1])
    set_stage(engine, "off", kind="rollback", who="other-process", reason="test")
    print("committed", flush=True)
    engine.dispose()
    """
)


async def test_a_stage_change_by_another_process_is_followed_by_the_next_refresh(
    store_url, open_harness
):
    """Within about `refresh_s` of the commit, counted in the poller's refreshes rather than in
    seconds (a loaded machine delays a refresh, never the rule): the one under way at the commit
    may have read before it, the next one reads it."""
    h = open_harness(url=store_url, stage="production", rollout__refresh_s=0.5)
    assert h.state.stage == "production"
    child = subprocess.Popen(
        [sys.executable, "-c", CHANGER, store_url], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "committed"
    polls_at_commit = h._poller.polls
    polls_when_seen = wait_until(
        lambda: h._poller.polls if h.state.stage == "off" else None,
        what="the stage set by another process",
    )
    assert polls_when_seen - polls_at_commit <= 2
    assert child.wait(timeout=60) == 0
    assert h.router.decide(Operation.PLACE_ORDER, "any") is Impl.PYTHON


async def test_the_breaker_trips_after_repeated_rust_failures_and_a_reset_closes_it(
    store_url, open_harness, sim
):
    h = open_harness(url=store_url, stage="production", rollout__breaker__failures=3)
    h.orders.use_client(
        Impl.RUST, Flaky(h.orders._rust, {"place_market_order": broken}, after=False)
    )
    for _ in range(4):
        await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    assert h.state.open_breakers == frozenset({Operation.PLACE_ORDER})
    h.refresh()  # the trip is written by the poller: wait for it to be in the store

    def stored_trip():
        engine = open_engine(store_url)
        try:
            with engine.connect() as conn:
                state = read_state(conn)
        finally:
            engine.dispose()
        return state if state is not None and "place_order" in state.open_breakers else None

    state = wait_until(stored_trip, what="the breaker trip in the store")
    assert state.open_breakers == frozenset({"place_order"})
    # Other operations are untouched.
    assert h.router.decide(Operation.CANCEL_ORDER, "1") is Impl.RUST

    assert h.reset_breaker(Operation.PLACE_ORDER, who="carol", reason="fixed")
    assert h.state.open_breakers == frozenset()
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    assert h.recorder.flush(10)
    got = [(r["routed"], r["served"], r["fell_back"]) for r in outcomes(store_url)]
    assert got == [("rust", "python", True)] * 3 + [("python", "python", False)] + [
        ("rust", "python", True)
    ]
    events = rows(store_url, "SELECT kind, op, who, migration FROM rollout_events ORDER BY ts_ns")
    assert [(e["kind"], e["op"], e["migration"]) for e in events[2:]] == [
        ("breaker_trip", "place_order", "orders"),
        ("breaker_reset", "place_order", "orders"),
    ]
    assert events[3]["who"] == "carol"


async def test_an_open_breaker_in_the_store_reaches_a_new_process(store_url, open_harness):
    from harness.store.state import trip_breaker

    first = open_harness(url=store_url, stage="production")
    engine = open_engine(store_url)
    trip_breaker(engine, "aggregate_bars", failures=5, reason="elsewhere")
    engine.dispose()
    second = open_harness(url=store_url, stage="production")
    assert second.state.open_breakers == frozenset({Operation.AGGREGATE_BARS})
    first.refresh()
    assert first.state.disabled_reason(Operation.AGGREGATE_BARS) == "circuit breaker open"


async def test_native_unavailable_runs_pure_python_and_records_it(
    store_url, open_harness, monkeypatch
):
    monkeypatch.setenv("HARNESS_NO_NATIVE", "1")
    h = open_harness(url=store_url, stage="production")
    assert not h.state.native_available
    placed = await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    five = h.bars.aggregate(minute_bars(30), "5m")
    live = h.bars.Aggregator("5m")
    live.push(60_000_000_000 * 29_000_000, 1.0, 1.0, 1.0, 1.0, 1)
    assert len(five) == 6 and live.impl == "python" and placed.order_id > 0
    assert h.recorder.flush(10)
    assert {r["served"] for r in outcomes(store_url)} == {"python"}
    (run,) = rows(store_url, "SELECT native_available, native_error FROM runs")
    assert not run["native_available"] and "HARNESS_NO_NATIVE" in run["native_error"]
    events = rows(
        store_url, "SELECT kind, reason FROM rollout_events WHERE kind = :k", k="native_unavailable"
    )
    assert len(events) == 1 and "HARNESS_NO_NATIVE" in events[0]["reason"]


REAL_IMPORT_FAILURE = textwrap.dedent(
    """
    import sys
    sys.modules["harness._native"] = None  # any `import harness._native` now fails
    import numpy as np
    import harness
    from harness.config import compose
    cfg = compose(["db.url=" + sys.argv[1], "broker.sim.profile=bench",
                   "rollout.start_stage=production"])
    with harness.open(config=cfg) as h:
        n = 60
        t = (29_000_000 + np.arange(n, dtype=np.int64)) * 60_000_000_000
        o = np.full(n, 4000.0)
        bars = {"t": t, "o": o, "h": o + 1, "l": o - 1, "c": o, "v": np.ones(n, np.int64)}
        print(len(h.bars.aggregate(bars, "5m")), h.state.native_available)
    """
)


def test_a_real_import_failure_runs_pure_python(sqlite_url):
    done = subprocess.run(
        [sys.executable, "-c", REAL_IMPORT_FAILURE, sqlite_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["12", "False"]
    assert "harness._native is unavailable" in done.stderr
    (run,) = rows(sqlite_url, "SELECT native_available, native_error, status FROM runs")
    assert not run["native_available"] and "import of harness._native" in run["native_error"]
    assert run["status"] == "finished"
    (row,) = rows(sqlite_url, "SELECT served FROM outcomes")
    assert row["served"] == "python"


@pytest.mark.parametrize("stage", ["mystery"])
async def test_a_stage_unknown_to_this_process_sends_everything_to_python(
    store_url, open_harness, stage
):
    from harness.store.state import set_stage

    h = open_harness(url=store_url, stage="production")
    engine = open_engine(store_url)
    set_stage(engine, stage, kind="promote", who="a newer ladder")
    engine.dispose()
    assert h.refresh().stage == stage
    assert not h.state.stage_known
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    assert h.recorder.flush(10)
    (row,) = outcomes(store_url)
    assert (row["stage"], row["served"]) == (stage, "python")


async def test_a_broker_out_of_reach_of_both_sides_does_not_open_the_breaker(
    open_harness, sqlite_url, sim
):
    # Every request is refused with a 503 before anything happens: Rust fails, Python fails
    # the same way. The broker is down, not Rust: the breaker (2 failures) stays closed.
    h = open_harness(url=sqlite_url, stage="production", rollout__breaker__failures=2)
    sim.set_faults([FaultRule(path="*", kind="error_before")])
    for i in range(3):
        with pytest.raises(BrokerUnavailableError):
            await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag=f"down-{i}")
    assert h.state.open_breakers == frozenset()
    sim.set_faults([])
    # A Rust failure that Python then gets through is Rust's: it counts, and opens it.
    h.orders.use_client(
        Impl.RUST, Flaky(h.orders._rust, {"place_market_order": broken}, after=False)
    )
    for i in range(2):
        await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag=f"rust-{i}")
    assert h.state.open_breakers == frozenset({Operation.PLACE_ORDER})
    assert h.recorder.flush(10)
    got = [(r["routed"], r["served"], r["fell_back"], r["ok"]) for r in outcomes(sqlite_url)]
    assert got == [("rust", "python", True, False)] * 3 + [("rust", "python", True, True)] * 2
