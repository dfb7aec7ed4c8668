"""The simulated market: contracts and a deterministic, seeded price path on each tick grid.

The path is a function of (seed, contract id, UTC second) alone, so any instant can be asked for
in any order and two simulators with one seed agree. Prices are integer ticks throughout; they
become decimals only when printed (`Contract.price`), so nothing off the grid is ever invented.

Construction, per contract, coarse to fine so that long windows stay cheap: hourly anchors (slow
value noise plus an hourly shock, hashed from the hour index); a minute walk (steps hashed from
the minute) bent into a bridge between consecutive anchors, giving each minute's open and close,
and a hashed excursion above and below giving its high and low; then, only when asked for, the
60 seconds of a minute drawn inside that bar (a bridge from open to close, clipped to the range,
touching the high and the low). A minute bar is therefore exactly the aggregate of its seconds,
and every coarser bar is aggregated from minute bars.
"""

from __future__ import annotations

import calendar
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.projectx import BarUnit

HOUR = 3600
_M64 = (1 << 64) - 1


@dataclass(frozen=True)
class Contract:
    """A tradable contract; `tick_num / tick_den` is the exact tick size (den a power of ten)."""

    id: str
    name: str
    description: str
    tick_num: int
    tick_den: int
    tick_value: float
    symbol_id: str
    active: bool
    base_price: float
    daily_vol: float
    fee_per_contract: float

    @property
    def tick_size(self) -> float:
        """The tick size as a float (exact decimal when printed)."""
        return self.tick_num / self.tick_den

    def price(self, ticks: int) -> float:
        """The decimal price of `ticks` (int/int division is correctly rounded: no float noise)."""
        return ticks * self.tick_num / self.tick_den

    def ticks(self, price: float) -> int | None:
        """`price` in ticks, or None when it is not exactly on the tick grid."""
        n = round(price * self.tick_den / self.tick_num)
        return n if n * self.tick_num / self.tick_den == price else None

    def to_json(self) -> dict[str, Any]:
        """The contract as the API prints it."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "tickSize": self.tick_size,
            "tickValue": self.tick_value,
            "activeContract": self.active,
            "symbolId": self.symbol_id,
        }


def _contract(
    root: str,
    month: str,
    year: int,
    desc: str,
    tick: tuple[int, int],
    value: float,
    base: float,
    vol: float,
    fee: float,
    active: bool = True,
) -> Contract:
    month_name = {"H": "March", "M": "June", "U": "September", "Z": "December"}[month]
    return Contract(
        id=f"CON.F.US.{root}.{month}{year % 100:02d}",
        name=f"{root}{month}{year % 10}",
        description=f"{desc}: {month_name} {year}",
        tick_num=tick[0],
        tick_den=tick[1],
        tick_value=value,
        symbol_id=f"F.US.{root}",
        active=active,
        base_price=base,
        daily_vol=vol,
        fee_per_contract=fee,
    )


def default_contracts() -> list[Contract]:
    """The simulator's contracts: active December 2026 futures, then expired September ones."""
    specs = [
        ("MNQ", "Micro E-mini Nasdaq-100", (25, 100), 0.50, 21500.0, 0.012, 0.37),
        ("ENQ", "E-mini Nasdaq-100", (25, 100), 5.00, 21500.0, 0.012, 1.40),
        ("EP", "E-mini S&P 500", (25, 100), 12.50, 6050.0, 0.010, 1.40),
        ("MES", "Micro E-mini S&P 500", (25, 100), 1.25, 6050.0, 0.010, 0.37),
        ("MGC", "Micro Gold", (1, 10), 1.00, 2650.0, 0.010, 0.62),
        ("EU6", "Euro FX", (5, 100000), 6.25, 1.085, 0.005, 1.60),
    ]
    active = [_contract(r, "Z", 2026, d, t, v, b, vol, f) for r, d, t, v, b, vol, f in specs]
    expired = [
        _contract(r, "U", 2026, d, t, v, b, vol, f, active=False) for r, d, t, v, b, vol, f in specs
    ]
    return active + expired


def _mix(x: int) -> int:
    """splitmix64 finaliser on a Python int."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _mix_array(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _unit(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    """Uniform draws in [-1, 1) from 64-bit hashes."""
    return (h >> np.uint64(11)).astype(np.float64) * (2.0 / float(1 << 53)) - 1.0


def _smooth(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], frac: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    s = frac * frac * (3.0 - 2.0 * frac)
    return a + (b - a) * s


_QUANTILES: np.ndarray | None = None


def _normal_quantiles() -> np.ndarray:
    """4096 equiprobable standard-normal quantiles (computed once)."""
    global _QUANTILES
    if _QUANTILES is None:
        from statistics import NormalDist

        inv = NormalDist().inv_cdf
        _QUANTILES = np.asarray([inv((i + 0.5) / 4096) for i in range(4096)])
    return _QUANTILES


class PricePath:
    """The deterministic per-second path of one contract, in integer ticks, with cached hours."""

    _SECOND_CACHE = 48  # hours of raw seconds kept (58 KB each)
    _SUMMARY_CACHE = 20_000  # hours of minute summaries kept (2.4 KB each)

    def __init__(self, contract: Contract, seed: int) -> None:
        self.contract = contract
        digest = hashlib.blake2b(f"{seed}|{contract.id}".encode(), digest_size=8).digest()
        self._key = int.from_bytes(digest, "little")
        self._base_ticks = contract.base_price * contract.tick_den / contract.tick_num
        per_second = self._base_ticks * contract.daily_vol / (86400**0.5)
        self._sigma = max(per_second, 0.35)
        self._hour_shock = self._sigma * 60.0 * 0.5
        # Hour anchors, then a minute walk bridged between them, then seconds inside each minute.
        self._seconds: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._summaries: OrderedDict[int, np.ndarray] = OrderedDict()
        self._minute_key = np.uint64(_mix(self._key ^ (4 << 56)))
        self._second_key = np.uint64(_mix(self._key ^ (5 << 56)))
        self._quantiles = _normal_quantiles()
        self._minute_steps = self._table(self._sigma * 60**0.5)
        self._second_steps = self._table(self._sigma)
        self._excursions = self._table(self._sigma * 60**0.5 * 0.5)
        self._ramp60 = np.arange(61, dtype=np.float64)[:60] / 60
        self._ramp59 = np.arange(60, dtype=np.float64) / 59

    # -- anchors ------------------------------------------------------------------------------
    def _lattice(self, tag: int, n: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        salt = np.uint64(_mix(self._key ^ (tag << 56)))
        return _unit(_mix_array(n.astype(np.uint64) ^ salt))

    def anchors(self, hour0: int, count: int) -> npt.NDArray[np.int64]:
        """Prices (ticks) at the first second of each hour in [hour0, hour0 + count)."""
        hours = np.arange(hour0, hour0 + count, dtype=np.int64)
        week, wfrac = np.divmod(hours, 168)
        day, dfrac = np.divmod(hours, 24)
        vol = self.contract.daily_vol
        w = _smooth(self._lattice(1, week), self._lattice(1, week + 1), wfrac / 168.0)
        d = _smooth(self._lattice(2, day), self._lattice(2, day + 1), dfrac / 24.0)
        shock = self._hour_shock * self._lattice(3, hours)
        level: npt.NDArray[np.float64] = self._base_ticks * (1.0 + 3.0 * vol * w + vol * d) + shock
        return np.maximum(np.rint(level), 1).astype(np.int64)

    def anchor(self, hour: int) -> int:
        """The price (ticks) at the first second of `hour` (hours since the epoch)."""
        return int(self.anchors(hour, 1)[0])

    def _table(self, scale: float) -> np.ndarray:
        """4096 equiprobable normal quantiles times `scale`, rounded to whole ticks."""
        return np.rint(self._quantiles * scale).astype(np.int64)

    # -- minutes (the primary level) and seconds (drawn inside each minute) -------------------
    def _generate_minutes(self, hour0: int, count: int) -> np.ndarray:
        """(count, 5, 60) minute o/h/l/c/v of `count` hours from `hour0`, straight from hashes."""
        n = count * 60
        mins = np.arange(hour0 * 60, hour0 * 60 + n, dtype=np.uint64)
        h = _mix_array(mins ^ self._minute_key)
        steps = self._minute_steps[(h >> np.uint64(52)).astype(np.intp)].reshape(count, 60)
        walk = np.zeros((count, 61), dtype=np.int64)
        np.cumsum(steps, axis=1, out=walk[:, 1:])
        anchors = self.anchors(hour0, count + 1)
        drift = (anchors[1:] - anchors[:-1] - walk[:, 60]).astype(np.float64)
        # A bridge: the walk is bent so each hour ends exactly on the next hour's anchor.
        bend = np.floor(drift[:, None] * self._ramp60[None, :]).astype(np.int64)
        opens = np.maximum(anchors[:-1, None] + bend + walk[:, :60], 1)
        closes = np.empty_like(opens)
        closes[:, :-1] = opens[:, 1:]  # a minute closes where the next one opens
        closes[:, -1] = np.maximum(anchors[1:], 1)
        mask = np.uint64(4095)
        up = np.abs(self._excursions[((h >> np.uint64(40)) & mask).astype(np.intp)])
        down = np.abs(self._excursions[((h >> np.uint64(28)) & mask).astype(np.intp)])
        highs = np.maximum(opens, closes) + up.reshape(count, 60)
        lows = np.maximum(np.minimum(opens, closes) - down.reshape(count, 60), 1)
        volume = (60 + (h & np.uint64(511))).astype(np.int64).reshape(count, 60)
        return np.stack([opens, highs, lows, closes, volume], 1)

    def _generate_seconds(self, hour: int) -> tuple[np.ndarray, np.ndarray]:
        """The 3600 seconds of `hour`, drawn to match its minute bars exactly."""
        o, hi, lo, c, v = self.minute_summaries(hour, 1)[0]
        secs = np.arange(hour * HOUR, (hour + 1) * HOUR, dtype=np.uint64)
        h = _mix_array(secs ^ self._second_key).reshape(60, 60)
        steps = self._second_steps[(h >> np.uint64(52)).astype(np.intp)]
        walk = np.zeros((60, 60), dtype=np.int64)
        np.cumsum(steps[:, :59], axis=1, out=walk[:, 1:])
        drift = (c - o - walk[:, 59]).astype(np.float64)
        bend = np.floor(drift[:, None] * self._ramp59[None, :]).astype(np.int64)
        p = np.clip(o[:, None] + bend + walk, lo[:, None], hi[:, None])  # opens and closes exact
        # Put the minute's high and low on two distinct interior seconds when the walk missed.
        rows = np.arange(60)
        first = h[:, 0]
        jh = (1 + (first >> np.uint64(20)) % np.uint64(58)).astype(np.intp)
        jl = (1 + (jh - 1 + 1 + (first >> np.uint64(40)) % np.uint64(57)) % 58).astype(np.intp)
        for fix in ("low", "high", "low"):
            if fix == "low":
                need = p.min(axis=1) > lo
                p[rows[need], jl[need]] = lo[need]
            else:
                need = p.max(axis=1) < hi
                p[rows[need], jh[need]] = hi[need]
        j = np.arange(60)
        vol = (v[:, None] // 60) + (j[None, :] < (v[:, None] % 60))
        return p.reshape(HOUR), vol.reshape(HOUR).astype(np.int64)

    def hour_seconds(self, hour: int) -> tuple[np.ndarray, np.ndarray]:
        """Prices and volumes of the 3600 seconds of `hour` (cached)."""
        hit = self._seconds.get(hour)
        if hit is not None:
            self._seconds.move_to_end(hour)
            return hit
        hit = self._generate_seconds(hour)
        self._seconds[hour] = hit
        if len(self._seconds) > self._SECOND_CACHE:
            self._seconds.popitem(last=False)
        return hit

    def minute_summaries(self, hour0: int, count: int) -> np.ndarray:
        """(count, 5, 60) minute o/h/l/c/v of `count` hours from `hour0` (cached per hour)."""
        if count == 1:
            hit = self._summaries.get(hour0)
            if hit is not None:
                return hit[None]
        out = np.empty((count, 5, 60), dtype=np.int64)
        missing: list[int] = []
        for i in range(count):
            hit = self._summaries.get(hour0 + i)
            if hit is None:
                missing.append(i)
            else:
                out[i] = hit
        if missing:
            # One vectorised pass over the span of the missing hours (cheap: 60 rows an hour).
            first, last = missing[0], missing[-1]
            block = self._generate_minutes(hour0 + first, last - first + 1)
            out[first : last + 1] = block
            for k in missing:
                self._summaries[hour0 + k] = block[k - first]
            while len(self._summaries) > self._SUMMARY_CACHE:
                self._summaries.popitem(last=False)
        return out

    def price_at(self, second: int) -> int:
        """The price (ticks) at UTC second `second`."""
        hour, i = divmod(second, HOUR)
        return int(self.hour_seconds(hour)[0][i])

    def seconds(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Prices and volumes of the seconds [start, end), concatenated across hours."""
        parts_p: list[np.ndarray] = []
        parts_v: list[np.ndarray] = []
        s = start
        while s < end:
            hour, i = divmod(s, HOUR)
            stop = min(end, (hour + 1) * HOUR)
            p, v = self.hour_seconds(hour)
            parts_p.append(p[i : i + stop - s])
            parts_v.append(v[i : i + stop - s])
            s = stop
        if not parts_p:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        if len(parts_p) == 1:
            return parts_p[0], parts_v[0]
        return np.concatenate(parts_p), np.concatenate(parts_v)

    def first_cross(self, start: int, end: int, level: int, upward: bool) -> tuple[int, int] | None:
        """First second in [start, end) whose price is >= level (upward) or <= level, and it."""
        s = start
        while s < end:
            hour, i = divmod(s, HOUR)
            stop = min(end, (hour + 1) * HOUR)
            if i == 0 and stop == (hour + 1) * HOUR:
                summary = self.minute_summaries(hour, 1)[0]
                hi, lo = int(summary[1].max()), int(summary[2].min())
                if (upward and hi < level) or (not upward and lo > level):
                    s = stop
                    continue
            p = self.hour_seconds(hour)[0][i : i + stop - s]
            hits = np.flatnonzero(p >= level if upward else p <= level)
            if hits.size:
                k = int(hits[0])
                return s + k, int(p[k])
            s = stop
        return None


# -- bars -------------------------------------------------------------------------------------

# Fixed-length units in seconds; months (BarUnit.MONTH) follow the calendar instead.
UNIT_SECONDS = {
    BarUnit.SECOND: 1,
    BarUnit.MINUTE: 60,
    BarUnit.HOUR: HOUR,
    BarUnit.DAY: 86400,
    BarUnit.WEEK: 7 * 86400,
}
_WEEK_OFFSET = 4 * 86400  # 1970-01-05 was a Monday: weeks start Monday 00:00 UTC
MAX_BASE_UNITS = 4_000_000  # bound on the seconds a single request aggregates
MAX_HOURS = 20_000  # bound on the hours of minute bars a single request aggregates (~2.3 years)


def _month_start(second: int, delta: int = 0) -> int:
    d = datetime.fromtimestamp(second, UTC)
    m = d.year * 12 + (d.month - 1) + delta
    return calendar.timegm((m // 12, m % 12 + 1, 1, 0, 0, 0))


def bucket_edges(
    unit: BarUnit, number: int, start: int, end: int, now: int, limit: int, partial: bool
) -> list[int]:
    """Edges of the most recent `limit` buckets intersecting [start, end); the last may be partial.

    A complete bucket ends at or before `now`; the bucket holding `now` is kept (cut at now + 1
    second) only when `partial`. Returns n + 1 edges for n buckets, oldest first.
    """
    stop = min(end, now + 1)
    if stop <= start or limit <= 0:
        return []
    if unit == BarUnit.MONTH:
        first = _month_start(start)
        # The last bucket: the one holding stop - 1, aligned to `number`-month steps from `first`.
        edges = [first]
        while edges[-1] < stop:
            edges.append(_month_start(edges[-1], number))
    else:
        size = UNIT_SECONDS[unit] * number
        offset = _WEEK_OFFSET if unit == BarUnit.WEEK else 0
        k0 = (start - offset) // size
        k1 = (stop - 1 - offset) // size  # bucket holding the last wanted second
        k0 = max(k0, k1 - limit)  # one spare: the last may be dropped as partial
        edges = [k * size + offset for k in range(k0, k1 + 2)]
    if edges[-1] > now + 1:  # the last bucket is still forming
        if partial:
            edges[-1] = now + 1
        else:
            edges.pop()
    if len(edges) > limit + 1:
        edges = edges[-(limit + 1) :]
    return edges if len(edges) >= 2 else []


def aggregate(path: PricePath, edges: list[int]) -> np.ndarray:
    """o/h/l/c/v (int64, shape (n, 5)) of the buckets between consecutive `edges`."""
    n = len(edges) - 1
    if n <= 0:
        return np.empty((0, 5), dtype=np.int64)
    e = np.asarray(edges, dtype=np.int64)
    first, last = int(e[0]), int(e[-1])
    full_end = last - last % HOUR
    if np.all(e[:-1] % 60 == 0) and first < full_end and (full_end - first) >= 60:
        # Minute summaries for whole hours, raw seconds for the forming tail.
        hour0 = first // HOUR
        hours = (full_end - hour0 * HOUR) // HOUR
        if hours > MAX_HOURS:
            raise ValueError(f"at most {MAX_HOURS} hours of history per request")
        mins = path.minute_summaries(hour0, hours)  # (hours, 5, 60)
        base = mins.transpose(0, 2, 1).reshape(-1, 5)  # one row per minute
        offset = (first - hour0 * HOUR) // 60
        base = base[offset:]
        starts = first + 60 * np.arange(base.shape[0], dtype=np.int64)
        if last > full_end:
            p, v = path.seconds(full_end, last)
            tail = np.stack([p, p, p, p, v], 1)
            base = np.concatenate([base, tail])
            starts = np.concatenate([starts, np.arange(full_end, last, dtype=np.int64)])
    else:
        if last - first > MAX_BASE_UNITS:
            raise ValueError(f"at most {MAX_BASE_UNITS} seconds per request of second bars")
        p, v = path.seconds(first, last)
        base = np.stack([p, p, p, p, v], 1)
        starts = np.arange(first, last, dtype=np.int64)
    idx = np.searchsorted(starts, e[:-1])
    out = np.empty((n, 5), dtype=np.int64)
    out[:, 0] = base[idx, 0]
    out[:, 1] = np.maximum.reduceat(base[:, 1], idx)
    out[:, 2] = np.minimum.reduceat(base[:, 2], idx)
    ends = np.append(idx[1:], base.shape[0]) - 1
    out[:, 3] = base[ends, 3]
    out[:, 4] = np.add.reduceat(base[:, 4], idx)
    return out


def iso(second: float) -> str:
    """ISO-8601 with offset, as the gateway prints timestamps."""
    return datetime.fromtimestamp(second, UTC).isoformat()
