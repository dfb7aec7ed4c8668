"""Shared pieces of the bar-aggregation suite: both implementations, the pandas oracle, and
hypothesis strategies for realistic 1-minute series (gaps, session breaks, weekends)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from harness.bars import Bars

# The one equality of "same bars", shared with the router's shadow comparison.
from harness.compare import assert_same_bars as assert_same_bars

IMPLS = ("rust", "python")
MINUTE = 60_000_000_000

settings.register_profile(
    "bars",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("bars")


@pytest.fixture(params=IMPLS, scope="module")
def impl(request: pytest.FixtureRequest) -> str:
    """Each contract test runs against both implementations."""
    return request.param


def pandas_rule(timeframe: str) -> str:
    """Our timeframe string as a pandas resample rule ("5m" -> "5min", "1d" -> "1D")."""
    return timeframe[:-1] + {"m": "min", "h": "h", "d": "D"}[timeframe[-1]]


def oracle(columns: dict[str, np.ndarray], timeframe: str, offset: str | None = None) -> Bars:
    """pandas `resample(label="left", closed="left", origin="epoch")`, empty bins dropped."""
    frame = pd.DataFrame(
        {k: columns[k] for k in "ohlcv"} | {"n": 1},
        index=pd.to_datetime(np.asarray(columns["t"], dtype=np.int64), unit="ns"),
    )
    resampler = frame.resample(
        pandas_rule(timeframe),
        label="left",
        closed="left",
        origin="epoch",
        offset=pd.Timedelta(offset) if offset else None,
    )
    out = resampler.agg({"o": "first", "h": "max", "l": "min", "c": "last", "v": "sum", "n": "sum"})
    out = out[out["n"] > 0]
    return Bars(
        t=out.index.as_unit("ns").asi8.astype(np.int64),
        o=out["o"].to_numpy(np.float64),
        h=out["h"].to_numpy(np.float64),
        l=out["l"].to_numpy(np.float64),
        c=out["c"].to_numpy(np.float64),
        v=out["v"].to_numpy(np.int64),
    )


TICK = 0.25
# Minutes between consecutive bars: mostly 1, sometimes a short gap, an hour's session break
# (CME 16:00-17:00 CT), a weekend, or a long holiday.
GAPS = st.one_of(
    st.just(1),
    st.just(1),
    st.just(1),
    st.integers(2, 15),
    st.just(61),
    st.just(2 * 1440 + 61),
    st.integers(1, 20_000),
)


@st.composite
def minute_series(draw: st.DrawFn, max_size: int = 400) -> dict[str, np.ndarray]:
    """A valid series of 1-minute bars on the minute grid, prices on a 0.25 tick grid."""
    n = draw(st.integers(1, max_size))
    start = draw(st.integers(-5_000_000, 40_000_000)) * MINUTE  # 1960 .. 2046
    gaps = draw(st.lists(GAPS, min_size=n - 1, max_size=n - 1))
    t = start + np.concatenate([[0], np.cumsum(gaps, dtype=np.int64)]).astype(np.int64) * MINUTE
    seed = draw(st.integers(0, 2**32 - 1))
    return random_bars(t, seed)


@st.composite
def any_series(draw: st.DrawFn, max_size: int = 200) -> dict[str, np.ndarray]:
    """A valid series with arbitrary strictly increasing ns timestamps (off the minute grid)."""
    n = draw(st.integers(1, max_size))
    start = draw(st.integers(-(2**61), 2**61))
    steps = draw(st.lists(st.integers(1, 10 * 86_400 * 10**9), min_size=n - 1, max_size=n - 1))
    t = start + np.concatenate([[0], np.cumsum(steps, dtype=np.int64)]).astype(np.int64)
    return random_bars(t, draw(st.integers(0, 2**32 - 1)))


def random_bars(t: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """OHLCV on the tick grid for timestamps `t` (high >= open, close >= low)."""
    rng = np.random.default_rng(seed)
    n = len(t)
    o = (4000 + rng.integers(-400, 400, n)) * TICK
    c = o + rng.integers(-8, 9, n) * TICK
    h = np.maximum(o, c) + rng.integers(0, 5, n) * TICK
    l = np.minimum(o, c) - rng.integers(0, 5, n) * TICK  # noqa: E741
    v = rng.integers(0, 2_000, n).astype(np.int64)
    return {"t": np.asarray(t, dtype=np.int64), "o": o, "h": h, "l": l, "c": c, "v": v}


def timeframes() -> st.SearchStrategy[str]:
    """Every timeframe from 2m to 1d: N minutes, N hours, or days."""
    return st.one_of(
        st.integers(2, 1440).map(lambda n: f"{n}m"),
        st.integers(1, 24).map(lambda n: f"{n}h"),
        st.sampled_from(["1d", "2d", "7d"]),
    )


def offsets() -> st.SearchStrategy[str | None]:
    """No offset, or a signed offset in hours and minutes (e.g. "17h", "-7h", "22h30m")."""
    hours = st.integers(-23, 23).map(lambda h: f"{h}h")
    mixed = st.tuples(st.integers(0, 23), st.integers(1, 59)).map(lambda x: f"{x[0]}h{x[1]}m")
    return st.one_of(st.none(), st.sampled_from(["17h", "-7h", "22h", "23h"]), hours, mixed)
