"""The one exception taxonomy of the harness, raised identically by the Rust and Python sides.

The native module imports these classes and raises them itself, so `except OrderRejectedError`
works whichever implementation served the call. Every broker error says whether the request may
have reached the broker (`maybe_sent`): that single fact decides whether a retry or a fallback is
safe or must first reconcile by `customTag`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "BarDataError",
    "BrokerError",
    "BrokerUnavailableError",
    "ConfigError",
    "HarnessError",
    "InvalidInputError",
    "NativePanicError",
    "NotFoundError",
    "OrderRejectedError",
    "RateLimitedError",
]


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class InvalidInputError(HarnessError, ValueError):
    """A caller's argument was rejected before anything was sent or computed."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {field}={value!r}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.value, self.reason))


class ConfigError(InvalidInputError):
    """A configuration value refused before anything ran; `field` is the full key
    (`rollout.stages.2.percent.place_order`), `value` what was given."""


class BarDataError(InvalidInputError):
    """Bar input that cannot be aggregated; `index` is the first offending row (or -1)."""

    def __init__(self, field: str, index: int, reason: str, value: Any = None) -> None:
        self.index = index
        InvalidInputError.__init__(self, field, value, reason)
        Exception.__init__(
            self, f"{field}: {reason}" + (f" at index {index}" if index >= 0 else "")
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.index, self.reason, self.value))


class BrokerError(HarnessError):
    """The broker did not do what was asked, or we cannot know that it did.

    `maybe_sent` is True when the request may have been processed by the broker (a time-out
    after the request was written, a dropped connection, a 5xx): such a mutation must not be
    repeated blindly.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        error_code: int | None = None,
        error_message: str | None = None,
        http_status: int | None = None,
        attempts: int = 1,
        maybe_sent: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.error_code = error_code
        self.error_message = error_message
        self.http_status = http_status
        self.attempts = attempts
        self.maybe_sent = maybe_sent
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args[0], self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "http_status": self.http_status,
            "attempts": self.attempts,
            "maybe_sent": self.maybe_sent,
        }

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        return f"{type(self).__name__}({self.args[0]!r}, {fields})"


class OrderRejectedError(BrokerError):
    """The broker answered `success: false` for an order mutation (or a failed business call)."""


class NotFoundError(OrderRejectedError):
    """The order, contract or account named does not exist (or is no longer open)."""


class AuthError(BrokerError):
    """Credentials were refused, or the session could not be re-established after a 401."""


class RateLimitedError(BrokerError):
    """HTTP 429 persisted through every retry; `retry_after` is the last advice in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **fields)

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "retry_after": self.retry_after}


class BrokerUnavailableError(BrokerError):
    """Transport failure, time-out or HTTP 5xx: the broker was not reached or did not answer."""


class NativePanicError(HarnessError):
    """The Rust side panicked; the panic was caught at the boundary instead of aborting."""


def _rebuild(cls: type[BrokerError], message: str, fields: dict[str, Any]) -> BrokerError:
    return cls(message, **fields)
