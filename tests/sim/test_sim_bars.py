"""History bars: the deterministic price path, the tick grid, newest first, limit, the codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from simkit import MNQ, Api

from harness.projectx import BarsCode
from harness.sim import SimSettings, Simulator
from harness.sim.gateway import Gateway


def _bars_body(**fields) -> dict:
    body = {
        "contractId": MNQ,
        "live": False,
        "startTime": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
        "endTime": datetime.now(UTC).isoformat(),
        "unit": 2,
        "unitNumber": 1,
        "limit": 100,
        "includePartialBar": False,
    }
    body.update(fields)
    return body


def _bars(api: Api, **fields) -> list[dict]:
    body = api.call("/api/History/retrieveBars", _bars_body(**fields))
    assert body["success"] is True, body
    return body["bars"]


def _stamp(bar: dict) -> datetime:
    return datetime.fromisoformat(bar["t"])


def test_minute_bars_are_newest_first_and_keep_the_most_recent_limit(api: Api) -> None:
    bars = _bars(api, limit=50)
    assert len(bars) == 50
    stamps = [_stamp(b) for b in bars]
    assert stamps == sorted(stamps, reverse=True)
    assert all((a - b) == timedelta(minutes=1) for a, b in pairwise(stamps))
    newest_complete = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    assert stamps[0] >= newest_complete - timedelta(minutes=1)  # the latest ones, not the first


def test_bars_sit_on_the_tick_grid_and_are_consistent(api: Api) -> None:
    for contract, tick in [
        (MNQ, "0.25"),
        ("CON.F.US.MGC.Z26", "0.1"),
        ("CON.F.US.EU6.Z26", "0.00005"),
    ]:
        for bar in _bars(api, contractId=contract, unit=1, unitNumber=15, limit=200):
            for key in "ohlc":
                assert Decimal(repr(bar[key])) % Decimal(tick) == 0, (contract, bar)
            assert bar["l"] <= min(bar["o"], bar["c"]) <= max(bar["o"], bar["c"]) <= bar["h"]
            assert isinstance(bar["v"], int) and bar["v"] > 0


@pytest.mark.parametrize(("unit", "number", "step"), [
    (1, 1, timedelta(seconds=1)), (1, 30, timedelta(seconds=30)), (2, 5, timedelta(minutes=5)),
    (3, 1, timedelta(hours=1)), (3, 4, timedelta(hours=4)), (4, 1, timedelta(days=1)),
])  # fmt: skip
def test_every_unit_is_clock_aligned(api: Api, unit: int, number: int, step: timedelta) -> None:
    start = (datetime.now(UTC) - 30 * step).isoformat()
    bars = _bars(api, unit=unit, unitNumber=number, startTime=start, limit=10)
    assert 1 <= len(bars) <= 10
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert all((_stamp(b) - epoch) % step == timedelta(0) for b in bars)


def test_week_and_month_bars(api: Api) -> None:
    start = (datetime.now(UTC) - timedelta(days=70)).isoformat()
    weeks = _bars(api, unit=5, startTime=start, limit=20)
    assert weeks and all(_stamp(b).weekday() == 0 for b in weeks)  # Monday 00:00 UTC
    months = _bars(api, unit=6, startTime=start, limit=20)
    assert months and all(_stamp(b).day == 1 for b in months)


def test_coarse_bars_aggregate_the_fine_ones(api: Api) -> None:
    start = (datetime.now(UTC) - timedelta(hours=6)).isoformat()
    [hour] = _bars(api, unit=3, startTime=start, limit=1)
    t = _stamp(hour)
    minutes = _bars(api, unit=2, startTime=t.isoformat(),
                    endTime=(t + timedelta(hours=1)).isoformat(), limit=60)  # fmt: skip
    assert len(minutes) == 60
    minutes.reverse()
    assert hour["o"] == minutes[0]["o"] and hour["c"] == minutes[-1]["c"]
    assert hour["h"] == max(m["h"] for m in minutes) and hour["l"] == min(m["l"] for m in minutes)
    assert hour["v"] == sum(m["v"] for m in minutes)


def test_partial_bar_only_when_asked(api: Api) -> None:
    end = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    start = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    complete = _bars(api, unit=3, startTime=start, endTime=end)
    with_partial = _bars(api, unit=3, startTime=start, endTime=end, includePartialBar=True)
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert _stamp(with_partial[0]) >= this_hour > _stamp(complete[0])
    assert len(with_partial) == len(complete) + 1


def test_bar_timestamp_close_labels_bars_by_their_end(api: Api) -> None:
    opened = _bars(api, limit=5)
    api.sim.set_faults([], bar_timestamp="close")
    closed = _bars(api, limit=5)
    assert [_stamp(b) - timedelta(minutes=1) for b in closed] == [_stamp(b) for b in opened]
    assert [b["o"] for b in closed] == [b["o"] for b in opened]


def test_twenty_thousand_minute_bars_in_one_call(api: Api) -> None:
    start = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    bars = _bars(api, startTime=start, limit=20_000, includePartialBar=True)
    assert len(bars) == 20_000


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"contractId": "CON.F.US.NOPE.Z26"}, BarsCode.CONTRACT_NOT_FOUND),
        ({"unit": 7}, BarsCode.UNIT_INVALID),
        ({"unit": 0}, BarsCode.UNIT_INVALID),
        ({"unitNumber": 0}, BarsCode.UNIT_NUMBER_INVALID),
        ({"limit": 20_001}, BarsCode.LIMIT_INVALID),
        ({"limit": 0}, BarsCode.LIMIT_INVALID),
    ],
)
def test_bar_errors_carry_the_documented_code(api: Api, fields: dict, code: int) -> None:
    body = api.call("/api/History/retrieveBars", _bars_body(**fields))
    assert (body["success"], body["errorCode"]) == (False, code) and body["errorMessage"]


@pytest.mark.parametrize("missing", ["contractId", "startTime", "endTime", "unit", "limit"])
def test_bars_without_a_required_field_are_400(api: Api, missing: str) -> None:
    body = _bars_body()
    del body[missing]
    assert api.raw("/api/History/retrieveBars", body).status_code == 400


def test_the_price_path_is_a_function_of_seed_contract_and_time() -> None:
    instant = 1_795_000_000
    one, same, other = (Gateway(SimSettings(seed=s)) for s in (5, 5, 6))
    window = (instant - 7200, instant)
    for contract in (MNQ, "CON.F.US.ENQ.Z26", "CON.F.US.EP.Z26"):
        a = one.paths[contract].seconds(*window)[0]
        b = same.paths[contract].seconds(*window)[0]
        c = other.paths[contract].seconds(*window)[0]
        assert (a == b).all() and not (a == c).all()
    # Asking in another order (a later hour first) changes nothing.
    late_first = Gateway(SimSettings(seed=5)).paths[MNQ]
    tail = late_first.seconds(instant - 3600, instant)[0]
    head = late_first.seconds(instant - 7200, instant - 3600)[0]
    assert (one.paths[MNQ].seconds(*window)[0] == [*head, *tail]).all()


def test_two_simulators_with_one_seed_serve_the_same_bars() -> None:
    body = _bars_body(startTime="2026-11-01T00:00:00Z", endTime="2026-11-01T06:00:00+00:00",
                      limit=360)  # fmt: skip
    answers = []
    for _ in range(2):
        with Simulator(SimSettings(seed=99)) as sim:
            caller = Api(sim)
            caller.login()
            answers.append(caller.call("/api/History/retrieveBars", body)["bars"])
            caller.close()
    assert len(answers[0]) == 360 and answers[0] == answers[1]


def test_a_window_beyond_the_simulators_bound_is_code_4_not_a_hang(api: Api) -> None:
    body = _bars_body(unit=6, startTime="1990-01-01T00:00:00Z", limit=400)
    answer = api.call("/api/History/retrieveBars", body)
    assert (answer["success"], answer["errorCode"]) == (False, BarsCode.LIMIT_INVALID)
    assert "hours" in answer["errorMessage"]
