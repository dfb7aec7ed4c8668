"""A history query's filters as a user gives them: durations, instants, and the `Filters`
every query takes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from harness.durations import DURATION, parse_duration
from harness.errors import InvalidInputError
from harness.operations import Impl
from harness.store.rollups import MINUTE_NS

MAX_LIMIT: Final = 100_000


def parse_instant(text: str, field: str, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch of `--since`/`--until`: a duration back from now (`1h`) or an
    ISO-8601 timestamp (`2026-11-30T14:00`, `...Z`, an offset; naive means UTC)."""
    now = time.time_ns() if now_ns is None else now_ns
    value = text.strip() if isinstance(text, str) else ""
    if DURATION.match(value.lower()):
        return now - parse_duration(value, field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        reason = "expected a duration back from now (1h, 30m, 7d) or an ISO-8601 timestamp"
        raise InvalidInputError(field, text, reason) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1970 <= parsed.astimezone(UTC).year <= 2200:
        raise InvalidInputError(field, text, "outside the years 1970 to 2200")
    delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta // timedelta(microseconds=1)) * 1_000


@dataclass(frozen=True, slots=True)
class Filters:
    """What a history query keeps: every field optional (None = any).

    `op` is any operation's name; `migration` keeps that migration's rows; `ops` keeps those
    operations' rows (the gate's window of one migration). `impl` is the side that served;
    `since_ns`/`until_ns` bound the outcome's start time; `bucket_ns` (a whole number of
    minutes) splits the answer into a time series; `build` keeps the rows of runs whose
    native module's `build_id` starts with it (the gate's evidence of one build).
    """

    op: str | None = None
    impl: Impl | None = None
    stage: str | None = None
    run: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    bucket_ns: int | None = None
    migration: str | None = None
    ops: tuple[str, ...] | None = None
    build: str | None = None

    def __post_init__(self) -> None:
        for name in ("stage", "run", "build"):
            value = getattr(self, name)
            if value is not None and (not value or len(value) > 255 or not value.isprintable()):
                reason = "must be 1 to 255 printable characters"
                raise InvalidInputError(name, value, reason)
        since, until = self.since_ns, self.until_ns
        if since is not None and until is not None and since >= until:
            raise InvalidInputError("since", self.since_ns, "must be before --until")
        if self.bucket_ns is not None and (
            self.bucket_ns < MINUTE_NS or self.bucket_ns % MINUTE_NS
        ):
            raise InvalidInputError("bucket", self.bucket_ns, "must be a whole number of minutes")
