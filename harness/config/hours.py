"""Trading hours: when an exchange's session is open, in the exchange's own time zone.

`gate.trading_hours` (`TradingHoursConfig`) bounds the automatic promotion (docs/gate.md): the
gate monitor never promotes outside the session. A session opens at `open` (wall-clock time in
`tz`, an IANA zone read with `zoneinfo`) on each of `days` (the day the session *opens*, in
`tz`) and closes at the next `close`: the same day when `close` is later than `open`, else the
next day (a session that wraps past midnight). CME Globex's equity and energy futures:

    {tz: America/Chicago, open: "17:00", close: "16:00", days: [sun, mon, tue, wed, thu]}

opens Sunday 17:00 Chicago time and closes Monday 16:00, opens again Monday 17:00 (the hour in
between is the daily maintenance break), ... and closes for the weekend Friday 16:00.

Times are compared on the wall clock of `tz`, so a session keeps its local hours across a
daylight-saving change (17:00 Chicago is 22:00 UTC in summer, 23:00 UTC in winter); a wall time
that a spring-forward skips opens the session at the first instant after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from harness.errors import ConfigError

__all__ = ["DAYS", "TradingHours", "parse_trading_hours"]

DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The day names `days` takes, in `datetime.weekday()` order."""

_HHMM: Final = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True, slots=True)
class TradingHours:
    """A parsed `gate.trading_hours` (see the module docstring): `zone` the exchange's time
    zone, `open` / `close` wall-clock times in it, `days` the weekdays a session opens on
    (0 = Monday, `datetime.weekday()`)."""

    zone: ZoneInfo
    open: time
    close: time
    days: frozenset[int]

    @property
    def wraps(self) -> bool:
        """Whether a session closes on the day after it opens (`close` not later than `open`)."""
        return self.close <= self.open

    def is_open(self, at: datetime) -> bool:
        """Whether a session is open at `at` (an aware datetime, any zone); the session is
        `[open, close)`. Raises ValueError for a naive datetime."""
        if at.tzinfo is None:
            raise ValueError("trading hours need an aware datetime (with its time zone)")
        local = at.astimezone(self.zone)
        wall = local.time().replace(tzinfo=None)
        today = local.weekday()
        if not self.wraps:
            return today in self.days and self.open <= wall < self.close
        if today in self.days and wall >= self.open:
            return True  # the session that opened today, before midnight
        yesterday = (local - timedelta(days=1)).weekday()
        return yesterday in self.days and wall < self.close  # yesterday's, after midnight

    def is_open_ns(self, now_ns: int) -> bool:
        """`is_open` at `now_ns` (ns since the epoch)."""
        return self.is_open(datetime.fromtimestamp(now_ns / 1e9, UTC))

    def describe(self) -> str:
        """For a person: `sun-thu 17:00 -> 16:00 next day (America/Chicago)`."""
        names = [DAYS[d] for d in sorted(self.days)]
        days = ",".join(names) if len(names) < 7 else "every day"
        nxt = " next day" if self.wraps else ""
        when = f"{self.open:%H:%M} -> {self.close:%H:%M}{nxt}"
        return f"{days} {when} ({self.zone.key})"


def _wall(key: str, value: object) -> time:
    text = str(value)
    found = _HHMM.fullmatch(text)
    if found is None:
        hint = (
            ' (an unquoted 17:00 is read by YAML as the number 1020: write "17:00")'
            if isinstance(value, int) or text.isdigit()
            else ""
        )
        raise ConfigError(key, value, f"must be a 24-hour time HH:MM{hint}")
    return time(int(found.group(1)), int(found.group(2)))


def _zone(key: str, tz: str) -> ZoneInfo:
    """The zone named `tz` (an IANA name); `ConfigError` at `key` when `zoneinfo` does not
    know it."""
    try:
        return ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        reason = "not a time zone zoneinfo knows (an IANA name such as America/Chicago)"
        raise ConfigError(key, tz, reason) from None


def parse_trading_hours(
    where: str,
    tz: str | None,
    open_at: object,
    close_at: object,
    days: list[str] | None,
) -> TradingHours | None:
    """The `TradingHours` of a `trading_hours` section at config key `where`
    (`gate.trading_hours`); None when none of it is set. Raises `ConfigError` naming the key
    and value: a part missing (`tz`, `open` and `close` go together), a zone `zoneinfo` does
    not know, a time not `HH:MM`, `open` equal to `close`, a day not in `DAYS`, no day."""
    if tz is None and open_at is None and close_at is None and days is None:
        return None
    if tz is not None:  # judged first: a wrong zone given alone is named, not the parts unset
        _zone(f"{where}.tz", tz)
    for name, value in (("tz", tz), ("open", open_at), ("close", close_at)):
        if value is None:
            raise ConfigError(
                f"{where}.{name}", None, "must be set: tz, open and close go together"
            )
    zone = _zone(f"{where}.tz", str(tz))
    opens = _wall(f"{where}.open", open_at)
    closes = _wall(f"{where}.close", close_at)
    if opens == closes:
        raise ConfigError(f"{where}.close", close_at, "must differ from open")
    chosen = list(DAYS) if days is None else days
    if not chosen:
        raise ConfigError(f"{where}.days", [], "needs at least one day (null: every day)")
    numbers: set[int] = set()
    for i, day in enumerate(chosen):
        name = str(day).strip().lower()
        if name not in DAYS:
            raise ConfigError(f"{where}.days.{i}", day, f"must be one of {', '.join(DAYS)}")
        numbers.add(DAYS.index(name))
    return TradingHours(zone, opens, closes, frozenset(numbers))
