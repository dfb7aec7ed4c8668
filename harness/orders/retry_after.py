"""Reading the `Retry-After` of a 429: how long the gateway asks a client to wait, in seconds.

RFC 9110 section 10.2.3: `Retry-After = HTTP-date / delay-seconds`. The same rules, word for word,
live in `rust/src/orders/retry.rs`, so both clients read every header alike:

- surrounding spaces and tabs are ignored;
- delay-seconds: ASCII digits, optionally with a decimal fraction (`0.5`: not RFC 9110, but
  servers print it and the simulator does), read as a double; too many digits read as infinity,
  which no client waits for;
- an HTTP date in any of the three forms a recipient must accept (IMF-fixdate
  `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`, asctime
  `Sun Nov  6 08:49:37 1994`), names case-sensitive, the day checked against its month, the
  weekday not checked against the date; a two-digit year more than 50 years ahead of now
  counts from the previous century. It becomes the seconds from now until then, 0 if past;
- anything else (a sign, an exponent, `inf`, `nan`, text) is no advice: the client backs off on
  its own schedule, as when the header is absent.

Whether the advice is waited is the client's decision (`ClientSettings.max_retry_after_s`).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["http_date", "parse_retry_after"]

_DELAY_SECONDS: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_DAYS: Final = "(Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAYS: Final = "(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTHS: Final = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_MONTH_NAMES: Final = _MONTHS[1:-1].split("|")
_TIME: Final = "([0-9]{2}):([0-9]{2}):([0-9]{2})"
# Groups: day, month, year, hour, minute, second (asctime reordered below).
_IMF_FIXDATE: Final = re.compile(
    rf"{_DAYS}, ([0-9]{{2}}) {_MONTHS} ([0-9]{{4}}) {_TIME} GMT", re.ASCII
)
_RFC850: Final = re.compile(
    rf"{_LONG_DAYS}, ([0-9]{{2}})-{_MONTHS}-([0-9]{{2}}) {_TIME} GMT", re.ASCII
)
_ASCTIME: Final = re.compile(
    rf"{_DAYS} {_MONTHS} ([0-9]{{2}}| [0-9]) {_TIME} ([0-9]{{4}})", re.ASCII
)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _civil_year(unix_s: float) -> int:
    """The UTC calendar year of a Unix time (for the two-digit-year rule)."""
    days = int(unix_s // 86400)
    # Inverse of _days_from_civil, year only.
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    return yoe + era * 400 + (1 if mp >= 10 else 0)


def http_date(text: str, now_unix: float) -> int | None:
    """The Unix time (whole seconds) of an HTTP date in one of its three forms, or None."""
    if m := _IMF_FIXDATE.fullmatch(text):
        day, month, year, hh, mm, ss = m.group(2, 3, 4, 5, 6, 7)
        y = int(year)
    elif m := _RFC850.fullmatch(text):
        day, month, yy, hh, mm, ss = m.group(2, 3, 4, 5, 6, 7)
        this_year = _civil_year(now_unix)
        y = this_year - this_year % 100 + int(yy)
        if y > this_year + 50:
            y -= 100
    elif m := _ASCTIME.fullmatch(text):
        month, day, hh, mm, ss, year = m.group(2, 3, 4, 5, 6, 7)
        y = int(year)
    else:
        return None
    mo = _MONTH_NAMES.index(month) + 1
    d, h, mi, s = int(day), int(hh), int(mm), int(ss)
    if not (1 <= d <= _days_in_month(y, mo) and h <= 23 and mi <= 59 and s <= 60):
        return None
    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s


def parse_retry_after(value: str | None, now_unix: float) -> float | None:
    """Seconds to wait from a `Retry-After` value (see the module rules); None if no advice."""
    if value is None:
        return None
    text = value.strip(" \t")
    if _DELAY_SECONDS.fullmatch(text):
        return float(text)
    when = http_date(text, now_unix)
    if when is None:
        return None
    return max(float(when) - now_unix, 0.0)
