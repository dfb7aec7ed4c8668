"""How an order client is set up: the broker, the credentials, time-outs and the retry plan.

One `ClientSettings` serves both implementations. The API key is a secret: it never appears in
a repr, a log line or an exception text.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

__all__ = ["DEFAULT_BASE_URL", "ClientSettings"]

DEFAULT_BASE_URL = "https://api.topstepx.com"


@dataclass(frozen=True)
class ClientSettings:
    """Broker URL, credentials, time-outs, retry schedule and pool size of an order client.

    `max_retry_after_s` is the longest `Retry-After` (seconds) a call waits before repeating
    a request answered 429; a longer advice ends the call at once with
    `RateLimitedError(retry_after=<the advice>)`. None (the default) means the longest delay of
    `retry_delays_s`, so a call never waits longer for one retry than its own schedule would.
    """

    base_url: str
    username: str
    api_key: str = field(repr=False)
    timeout_s: float = 10.0
    connect_timeout_s: float = 3.0
    retry_delays_s: tuple[float, ...] = (0.75, 1.5, 3.0)
    jitter: bool = False
    reconcile_lookback_s: float = 86400.0
    max_connections: int = 32
    max_retry_after_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "retry_delays_s", tuple(float(d) for d in self.retry_delays_s))
        for name in ("timeout_s", "connect_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value!r}: must be a positive number of seconds")
        for delay in self.retry_delays_s:
            if not (math.isfinite(delay) and delay >= 0):
                raise ValueError(f"retry_delays_s={self.retry_delays_s!r}: delays must be >= 0")
        if not (math.isfinite(self.reconcile_lookback_s) and self.reconcile_lookback_s > 0):
            raise ValueError(f"reconcile_lookback_s={self.reconcile_lookback_s!r}: must be > 0")
        cap = self.max_retry_after_s
        if cap is not None and not (
            isinstance(cap, int | float)
            and not isinstance(cap, bool)
            and math.isfinite(cap)
            and cap >= 0
        ):
            raise ValueError(f"max_retry_after_s={cap!r}: must be None or a number of seconds >= 0")
        if isinstance(self.max_connections, bool) or self.max_connections < 1:
            raise ValueError(f"max_connections={self.max_connections!r}: must be >= 1")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url={self.base_url!r}: must start with http:// or https://")

    @property
    def retry_after_cap_s(self) -> float:
        """The `Retry-After` a call still waits, in seconds (`max_retry_after_s` resolved)."""
        if self.max_retry_after_s is not None:
            return float(self.max_retry_after_s)
        return max(self.retry_delays_s, default=0.0)

    @classmethod
    def from_env(cls, **overrides: object) -> ClientSettings:
        """Settings for the real gateway from `PROJECTX_BASE_URL`, `_USERNAME`, `_API_KEY`."""
        missing = [n for n in ("PROJECTX_USERNAME", "PROJECTX_API_KEY") if not os.environ.get(n)]
        if missing:
            raise ValueError(f"missing environment variable(s): {', '.join(missing)}")
        values: dict[str, object] = {
            "base_url": os.environ.get("PROJECTX_BASE_URL") or DEFAULT_BASE_URL,
            "username": os.environ["PROJECTX_USERNAME"],
            "api_key": os.environ["PROJECTX_API_KEY"],
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
