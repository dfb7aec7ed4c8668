"""Helpers of the store suite: outcome rows as a router makes them, and the counts that judge."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, select

from harness.recorder import OutcomeRecord, Recorder, RecorderStats, ShadowRecord
from harness.store.models import Outcome, OutcomeRollup
from harness.store.rollups import MINUTE_NS


def outcome(run_id: str, i: int, *, ok: bool = True, op: str = "place_order") -> OutcomeRecord:
    """Outcome number `i` of a run: 7 ms apart, a third on Python, with an order id and a tag."""
    return OutcomeRecord(
        ts_ns=1_700_000_000_000_000_000 + i * 7_000_000,
        run_id=run_id,
        op=op,
        stage="canary",
        routed="rust" if i % 3 else "python",
        served="rust" if i % 3 else "python",
        fell_back=False,
        fallback_reason=None,
        ok=ok,
        error_class=None if ok else "BrokerUnavailableError",
        error_message=None if ok else "connection lost",
        latency_us=100.0 + i % 1000,
        attempts=1,
        http_status=200,
        order_id=7_000_000_000 + i,
        custom_tag=f"hx-{i:024x}",
        routing_key=None,
    )


def counts(engine: Engine) -> tuple[int, int, int]:
    """(rows, distinct ids, sum of the minute rollups' counts) of `outcomes`."""
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(Outcome)).scalar_one()
        ids = conn.execute(select(func.count(func.distinct(Outcome.id)))).scalar_one()
        rolled = conn.execute(
            select(func.coalesce(func.sum(OutcomeRollup.n), 0)).where(
                OutcomeRollup.period_ns == MINUTE_NS
            )
        ).scalar_one()
    return int(rows), int(ids), int(rolled)


def wait_for(
    recorder: Recorder, condition: Callable[[RecorderStats], Any], timeout: float = 20.0
) -> RecorderStats:
    """The recorder's stats once `condition(stats)` holds (fails after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = recorder.stats()
        if condition(stats):
            return stats
        assert time.monotonic() < deadline, f"condition never held: {stats}"
        time.sleep(0.05)


def shadow(run_id: str, i: int, **changes: Any) -> ShadowRecord:
    """An aggregation shadow comparison that matched, with `changes`."""
    row = ShadowRecord(
        1_700_000_000_000_000_000 + i,
        run_id,
        "aggregate_bars",
        "canary",
        f"MNQ|5m|{i}",
        "python",
        "rust",
        True,
        None,
        None,
        None,
        None,
        None,
        10.0,
        2.0,
        None,
        240,
    )
    return row._replace(**changes)
