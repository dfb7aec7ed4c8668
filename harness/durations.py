"""Durations as users write them (`90s`, `15m`, `2h30m`, `7d`, `1w`): the one parser of the
command line (`--since`, `--older-than`) and the config (`capture.retention`).

A light module (the standard library only), so composing the config imports no store code.
"""

from __future__ import annotations

import re
from typing import Final

from harness.errors import InvalidInputError

__all__ = ["DURATION", "UNIT_NS", "parse_duration"]

MINUTE_NS: Final = 60_000_000_000
UNIT_NS: Final = {
    "s": 1_000_000_000,
    "m": MINUTE_NS,
    "h": 60 * MINUTE_NS,
    "d": 1_440 * MINUTE_NS,
    "w": 10_080 * MINUTE_NS,
}
"""Nanoseconds of each unit a duration may use."""
DURATION: Final = re.compile(r"(\d+)([smhdw])")
"""One number and its unit; a duration is one or more of them."""
_MAX_NS: Final = 100 * 365 * UNIT_NS["d"]  # a century: anything longer is a typo


def parse_duration(
    text: str, field: str = "duration", examples: str = "30s, 15m, 1h, 2h30m, 7d"
) -> int:
    """Nanoseconds of a duration like `90s`, `15m`, `1h`, `2h30m`, `7d`, `1w` (at most a century).

    Raises `InvalidInputError(field, text, ...)` for anything else, its reason showing
    `examples` (valid values for `field`: a caller that takes only whole minutes names those).
    """
    value = text.strip().lower() if isinstance(text, str) else ""
    parts = DURATION.findall(value)
    if not value or not parts or "".join(n + u for n, u in parts) != value:
        raise InvalidInputError(field, text, f"expected a duration such as {examples}")
    total = sum(int(n) * UNIT_NS[u] for n, u in parts)
    if total <= 0:
        raise InvalidInputError(field, text, "must be longer than zero")
    if total > _MAX_NS:
        raise InvalidInputError(field, text, "longer than a century")
    return total
