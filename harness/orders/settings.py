"""How an order client is set up: the broker, the credentials, time-outs and the retry plan.

One `ClientSettings` serves both implementations. The API key is a secret: it never appears in
a repr, a log line or an exception text.

Credentials from the environment follow one rule, `credentials_from_env`, used both by
`ClientSettings.from_env` and by the config (`harness.config.resolve_credentials`): each value
from its `PROJECTX_*` variable, else from the bot's `TOPSTEPX_*` one (an empty value counts as
unset); the base URL from `PROJECTX_BASE_URL` only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from harness.errors import ConfigError

__all__ = [
    "CREDENTIAL_VARIABLES",
    "DEFAULT_BASE_URL",
    "ClientSettings",
    "EnvCredentials",
    "credentials_from_env",
]

DEFAULT_BASE_URL = "https://api.topstepx.com"

CREDENTIAL_VARIABLES: Final = {
    "base_url": ("PROJECTX_BASE_URL",),
    "username": ("PROJECTX_USERNAME", "TOPSTEPX_USERNAME"),
    "api_key": ("PROJECTX_API_KEY", "TOPSTEPX_API_KEY"),
}
"""Where each credential comes from, first variable first (the bot's own `TOPSTEPX_*` names
are kept from its first phase)."""


@dataclass(frozen=True)
class EnvCredentials:
    """The broker credentials the environment holds; None for what it does not."""

    base_url: str | None
    username: str | None
    api_key: str | None = field(repr=False)


def credentials_from_env(environ: Mapping[str, str] | None = None) -> EnvCredentials:
    """Read `CREDENTIAL_VARIABLES` from `environ` (default `os.environ`): each value from the
    first of its variables that is set and not empty, else None. The one rule of the harness."""
    env = os.environ if environ is None else environ

    def first(name: str) -> str | None:
        for variable in CREDENTIAL_VARIABLES[name]:
            value = env.get(variable)
            if value:
                return value
        return None

    return EnvCredentials(first("base_url"), first("username"), first("api_key"))


def _missing(name: str) -> str:
    """`PROJECTX_API_KEY (or TOPSTEPX_API_KEY)`: how to supply a missing credential."""
    primary, *others = CREDENTIAL_VARIABLES[name]
    return primary + "".join(f" (or {other})" for other in others)


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
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> ClientSettings:
        """Settings for the real gateway from the environment (`credentials_from_env`: the
        `PROJECTX_*` variables, else the bot's `TOPSTEPX_*` ones; the base URL defaults to the
        live gateway, `DEFAULT_BASE_URL`); `overrides` are further fields.

        Raises `ConfigError` naming the variable of a missing API key or user name (the key
        first, as the config does), with the value None: nothing secret is ever shown.
        """
        found = credentials_from_env(environ)
        if not found.api_key:
            reason = f"missing: set {_missing('api_key')}"
            if not found.username:
                reason += f", and {_missing('username')}"
            raise ConfigError(CREDENTIAL_VARIABLES["api_key"][0], None, reason)
        if not found.username:
            reason = f"missing: set {_missing('username')}"
            raise ConfigError(CREDENTIAL_VARIABLES["username"][0], None, reason)
        values: dict[str, object] = {
            "base_url": found.base_url or DEFAULT_BASE_URL,
            "username": found.username,
            "api_key": found.api_key,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
