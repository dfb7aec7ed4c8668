"""`harness run` against a gateway in another process (`broker=projectx` pointed at a `harness sim`
child), so the broker's own ledger can judge: every order placed once, the account flat, and a
run killed mid-way reported (with the orders it left open) by the next one."""

from __future__ import annotations

import signal
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.sim import SimSettings, Simulator, SpawnedSimulator

from .kit import SIM_KEY, SIM_USER, harness, rows, start, summary, wait_for_outcomes

pytestmark = pytest.mark.timeout(300)

OPEN, CANCELLED = 1, 3
STOP = 4


def _gateway(**settings: Any) -> Iterator[SpawnedSimulator]:
    spawned = Simulator.spawn(SimSettings(username=SIM_USER, api_key=SIM_KEY, **settings))
    try:
        yield spawned
    finally:
        spawned.stop()


@pytest.fixture
def gateway() -> Iterator[SpawnedSimulator]:
    """A `harness sim` child process with the real rate limits and no added latency."""
    yield from _gateway()


@pytest.fixture
def slow_gateway() -> Iterator[SpawnedSimulator]:
    """The same with about 40 ms a call, so a kill lands in the middle of round trips."""
    yield from _gateway(latency_ms=40.0, latency_jitter_ms=5.0)


def _projectx(gateway: SpawnedSimulator) -> tuple[tuple[str, ...], dict[str, str]]:
    overrides = ("broker=projectx", f"broker.base_url={gateway.url}")
    return overrides, {"PROJECTX_USERNAME": SIM_USER, "PROJECTX_API_KEY": SIM_KEY}


def _prefix(run_id: str) -> str:
    return f"hr-{run_id[:16]}-"


def test_each_order_is_placed_once_and_the_account_ends_flat(tmp_path, gateway):
    overrides, env = _projectx(gateway)
    done = harness(tmp_path, "run", "--json", "workload.trades=8", *overrides, env=env)
    assert done.returncode == 0, done.stderr
    data = summary(done)
    mine = [o for o in gateway.ledger() if (o["customTag"] or "").startswith(_prefix(data["run"]))]
    tags = Counter(o["customTag"] for o in mine)
    assert len(tags) == 24 and set(tags.values()) == {1}  # entry, stop, exit of 8 trips, once
    net: dict[str, int] = defaultdict(int)
    for order in mine:
        signed = order["fillVolume"] if order["side"] == 0 else -order["fillVolume"]
        net[order["contractId"]] += signed
    assert set(net) == {"CON.F.US.MNQ.Z26", "CON.F.US.MES.Z26"}
    assert set(net.values()) == {0}  # every contract bought back what was sold: flat
    stops = [o for o in mine if o["type"] == STOP]
    assert len(stops) == 8 and {o["status"] for o in stops} == {CANCELLED}
    assert not [o for o in mine if o["status"] == OPEN]
    # The broker's secret never reaches the screen or the store.
    assert SIM_KEY not in done.stdout + done.stderr
    assert SIM_KEY.encode() not in (tmp_path / "harness.db").read_bytes()


def test_a_killed_run_is_reported_by_the_next_one_with_the_orders_it_left(
    tmp_path: Path, slow_gateway: SpawnedSimulator
):
    overrides, env = _projectx(slow_gateway)
    db = tmp_path / "harness.db"
    # Thirty stop moves per trip: the stop is working for most of each round trip.
    killed = start(
        tmp_path, "run", "workload.trades=200", "workload.modifies=30", *overrides, env=env
    )
    wait_for_outcomes(db, 12, killed, timeout=90)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    (dead,) = rows(db, "SELECT id, status FROM runs")
    assert dead["status"] == "running"  # it never closed
    left = {
        o["id"]
        for o in slow_gateway.ledger()
        if o["status"] == OPEN and (o["customTag"] or "").startswith(_prefix(dead["id"]))
    }
    assert left  # the stops of the trips in flight

    # The same symbols: refused (the killed run's position or stop is still there), and said so.
    refused = harness(tmp_path, "run", "workload.trades=2", *overrides, env=env)
    assert refused.returncode == 1, refused.stderr
    assert f"earlier run {dead['id']}" in refused.stderr
    assert "died without closing" in refused.stderr and "already has" in refused.stderr

    # Other symbols: the run goes ahead and its summary reports the dead run and what it left.
    done = harness(
        tmp_path, "run", "--json", "workload.trades=2", "workload.symbols=[MGC]",
        *overrides, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = summary(done)
    (stale,) = data["stale_runs"]
    assert stale["run"] == dead["id"] and stale["kind"] == "run"
    # The simulator's prices keep walking after the kill: a stop left working may fill before
    # the next run looks, so the report holds the orders still open when it looked: those of
    # the killed run, and at least every one still open now.
    reported = {o["id"] for o in stale["open_orders"]}
    still_open = {
        o["id"]
        for o in slow_gateway.ledger()
        if o["status"] == OPEN and (o["customTag"] or "").startswith(_prefix(dead["id"]))
    }
    assert still_open <= reported <= left, (still_open, reported, left)
    assert all(o["custom_tag"].startswith(_prefix(dead["id"])) for o in stale["open_orders"])


def test_a_run_without_pacing_waits_the_gateways_retry_after_between_rate_limited_trips(tmp_path):
    """`workload.rate_limit=false` against a gateway refusing every bars read with 429 and
    `Retry-After: 0.4`: each trip fails, and its worker waits the advice before the next
    instead of burning the remaining trips at once."""
    from harness.sim import FaultRule

    rule = FaultRule(path="/api/History/retrieveBars", kind="rate_limit", retry_after=0.4)
    for spawned in _gateway(faults=[rule]):
        overrides, env = _projectx(spawned)
        done = harness(
            tmp_path, "run", "--json", "workload.trades=4", "workload.symbols=[MNQ]",
            "workload.rate_limit=false", "broker.retry_delays_s=[0.01]",
            "broker.max_retry_after_s=0.01", *overrides, env=env,
        )  # fmt: skip
        data = summary(done)
        assert data["round_trips"]["failed"] == 4, data["round_trips"]
        assert done.stderr.count("rate limited by the broker: next round trip in 0.4 s") == 4
        assert data["elapsed_s"] >= 3 * 0.4


def test_the_orders_shadow_stage_compares_every_order_call_and_the_broker_sees_no_more(
    tmp_path, gateway
):
    overrides, env = _projectx(gateway)
    trips = 6
    # Every call compared however late the shadow threads run on a loaded machine (at the
    # default max_in_flight, a fifth comparison pending is skipped and counted).
    done = harness(
        tmp_path, "run", "--json", f"workload.trades={trips}", "rollout.start_stage=shadow",
        "rollout.shadow.max_in_flight=64", *overrides, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = summary(done)
    mine = [o for o in gateway.ledger() if (o["customTag"] or "").startswith(_prefix(data["run"]))]
    assert len(mine) == 3 * trips and len({o["customTag"] for o in mine}) == 3 * trips
    requests = gateway.stats()["requests"]
    # entry, stop and exit placed; the stop moved twice (workload.modifies) and cancelled
    assert requests.get("/api/Order/place") == 3 * trips
    assert requests.get("/api/Order/modify") == 2 * trips
    assert requests.get("/api/Order/cancel") == trips
    assert "/api/Order/search" not in requests and "/api/Order/searchById" not in requests
    db = tmp_path / "harness.db"
    calls = rows(db, "SELECT op, COUNT(*) AS n FROM outcomes GROUP BY op")
    compared = rows(
        db,
        'SELECT op, "primary", shadow, matched, COUNT(*) AS n FROM shadow_comparisons '
        'GROUP BY op, "primary", shadow, matched',
    )
    want = {(r["op"], "python", "rust", 1): r["n"] for r in calls}
    assert {(r["op"], r["primary"], r["shadow"], r["matched"]): r["n"] for r in compared} == want
    assert data["shadows"] == {
        "submitted": sum(r["n"] for r in calls), "skipped": 0, "failed": 0, "abandoned": 0,
    }  # fmt: skip
    assert {r["op"] for r in calls} >= {"place_order", "modify_order", "cancel_order"}
