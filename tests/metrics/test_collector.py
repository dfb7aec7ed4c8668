"""The collector against seeded stores: totals equal `query rates` over all time, quantiles
equal `query latency`, gauges follow the state; on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import text

from harness.config import compose
from harness.metrics import METRICS, StoreCollector
from harness.operations import Operation
from harness.store import queries
from harness.store.db import open_engine
from harness.store.state import set_kill, set_stage, trip_breaker
from tests import storekit
from tests.metrics.kit import by, one, scrape

# The seed goes through the real recorder into both databases.
pytestmark = pytest.mark.timeout(180)

MINUTE_NS = 60 * storekit.SECOND_NS
WINDOW_NS = 5 * MINUTE_NS

TRAFFIC = [
    storekit.Traffic(Operation.PLACE_ORDER, 400, rust_share=0.5, rust_error_rate=0.1,
                     python_error_rate=0.05, fallback_rate=0.2),
    storekit.Traffic(Operation.CANCEL_ORDER, 150, rust_share=0.3, fallback_rate=0.3,
                     rust_error_rate=0.2),
    storekit.Traffic(Operation.AGGREGATE_BARS, 300, rust_share=0.5, rust_median_us=50.0,
                     python_median_us=900.0),
]  # fmt: skip


@pytest.fixture
def seeded(store_url, tmp_path):
    """A store with three hours of calls (errors, fallbacks, fallbacks that failed too), the
    last 30 minutes still raw (not compacted), and shadow comparisons with 3 mismatches."""
    engine = open_engine(store_url)
    now = time.time_ns()
    run = storekit.new_run(engine, now - 3 * 60 * MINUTE_NS)
    storekit.set_stage(engine, "canary", now - 3 * 60 * MINUTE_NS)
    rows = storekit.outcomes(run, "canary", now - 3 * 60 * MINUTE_NS, now, TRAFFIC)
    shadow_rows = storekit.shadows(run, "canary", [now - i * MINUTE_NS for i in range(10)],
                                   mismatches=3)  # fmt: skip
    storekit.record(engine, tmp_path, rows, shadow_rows, now_ns=now - 30 * MINUTE_NS)
    assert any(r.fell_back and not r.ok for r in rows), "the seed lacks a failed fallback"
    yield engine
    engine.dispose()


def test_call_counts_equal_query_rates_over_all_time(seeded):
    got = scrape(StoreCollector(seeded, compose([]).rollout, WINDOW_NS))
    calls = got["harness_calls_total"]
    rates = queries.rates(seeded, queries.Filters())
    assert rates and {r.errors for r in rates} != {0} and {r.fallbacks for r in rates} != {0}
    assert by(calls, "op", "side") == {(r.op, r.impl): r.calls for r in rates}
    errors = by([c for c in calls if c[0]["outcome"] == "error"], "op", "side")
    assert errors == {(r.op, r.impl): r.errors for r in rates if r.errors}
    fallbacks = by(got["harness_fallbacks_total"], "op")
    assert fallbacks == {(r.op,): r.fallbacks for r in rates if r.fallbacks}
    # A fallback that failed too counts as an error; `fallback` is one Python served.
    served = by([c for c in calls if c[0]["outcome"] == "fallback"], "op", "side")
    assert set(served) <= {(op, "rust") for op, _ in served}
    assert sum(served.values()) < sum(fallbacks.values())
    assert {labels["migration"] for labels, _ in calls} == {"orders", "bars"}
    assert one(got["harness_rows_dropped_total"]) == 0
    assert one(got["harness_store_up"]) == 1


def test_latency_quantiles_are_query_latencys_over_the_window(seeded):
    until = time.time_ns()
    got = scrape(StoreCollector(seeded, compose([]).rollout, WINDOW_NS, clock=lambda: until))
    expected = queries.latency(seeded, queries.Filters(since_ns=until - WINDOW_NS))
    served = {(r.op, r.impl) for r in expected if r.count}
    assert served, "nothing in the window: the seed is too sparse"
    for row in expected:
        for q, ms in (("0.5", row.p50_ms), ("0.95", row.p95_ms), ("0.99", row.p99_ms)):
            if ms is not None:
                value = one(got["harness_latency_seconds"], op=row.op, side=row.impl, quantile=q)
                assert value == pytest.approx(ms / 1000, rel=1e-9)
    assert {(lab["op"], lab["side"]) for lab, _ in got["harness_latency_seconds"]} == served


def test_shadow_comparisons_by_result(seeded):
    got = scrape(StoreCollector(seeded, compose([]).rollout, WINDOW_NS))
    assert by(got["harness_shadow_comparisons_total"], "op", "result") == {
        ("aggregate_bars", "match"): 7,
        ("aggregate_bars", "mismatch"): 3,
    }


def test_stage_kill_and_breaker_gauges_follow_the_actions(store_url):
    engine = open_engine(store_url)
    rollout = compose([]).rollout
    collector = StoreCollector(engine, rollout, WINDOW_NS)
    storekit.set_stage(engine, "canary", time.time_ns())
    got = scrape(collector)
    ladder = [s.name for s in rollout.stages]
    assert by(got["harness_stage"], "migration", "stage") == {
        (m, s): 1.0 if s == "canary" else 0.0 for m in ("orders", "bars") for s in ladder
    }
    assert by(got["harness_kill"], "migration") == {("all",): 0, ("orders",): 0, ("bars",): 0}
    assert one(got["harness_breaker_open"], op="place_order", migration="orders") == 0

    set_stage(engine, "staging", kind="promote", migration="bars", who="t", reason="r")
    trip_breaker(engine, "cancel_order", failures=5, reason="r", migration="orders")
    set_kill(engine, True, migration="orders", who="t", reason="r")
    got = scrape(collector)
    assert one(got["harness_stage"], migration="bars", stage="staging") == 1
    assert one(got["harness_stage"], migration="bars", stage="canary") == 0
    assert one(got["harness_stage"], migration="orders", stage="canary") == 1
    assert one(got["harness_breaker_open"], migration="orders", op="cancel_order") == 1
    assert one(got["harness_breaker_open"], migration="orders", op="place_order") == 0
    assert by(got["harness_kill"], "migration") == {("all",): 0, ("orders",): 1, ("bars",): 0}

    set_kill(engine, True, who="t", reason="everything")  # the global flag kills every one
    got = scrape(collector)
    assert by(got["harness_kill"], "migration") == {("all",): 1, ("orders",): 1, ("bars",): 1}
    engine.dispose()


def test_every_metric_named_is_served(seeded):
    got = scrape(StoreCollector(seeded, compose([]).rollout, WINDOW_NS))
    assert set(got) == set(METRICS)


def test_a_store_that_cannot_be_read_is_up_0_and_its_password_never_logged(caplog, sqlite_url):
    url = "postgresql+psycopg://harness:pw-Secret-81f@127.0.0.1:1/nowhere"
    collector = StoreCollector(open_engine(url), compose([]).rollout, WINDOW_NS)
    with caplog.at_level(logging.WARNING, logger="harness.metrics"):
        got = scrape(collector)
        got = scrape(collector)
    assert one(got["harness_store_up"]) == 0
    assert one(got["harness_scrape_errors_total"]) == 2
    assert "harness_calls_total" not in got
    assert caplog.records and "pw-Secret-81f" not in caplog.text

    # A store whose schema went away mid-life: the same, and back to 1 once it is readable.
    engine = open_engine(sqlite_url)
    collector = StoreCollector(engine, compose([]).rollout, WINDOW_NS)
    assert one(scrape(collector)["harness_store_up"]) == 1
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE shadow_comparisons RENAME TO away"))
    assert one(scrape(collector)["harness_store_up"]) == 0
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE away RENAME TO shadow_comparisons"))
    assert one(scrape(collector)["harness_store_up"]) == 1
    engine.dispose()
