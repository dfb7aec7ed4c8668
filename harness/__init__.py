"""Rollout harness: move a trading bot's hot paths from Python to Rust, one percentage at a time.

The public surface is pure Python; the Rust core is the private extension `harness._native`.
"""

from __future__ import annotations

from harness.errors import (
    AuthError,
    BarDataError,
    BrokerError,
    BrokerUnavailableError,
    HarnessError,
    InvalidInputError,
    NativePanicError,
    NotFoundError,
    OrderRejectedError,
    RateLimitedError,
)
from harness.operations import Impl, Operation

__all__ = [
    "AuthError",
    "BarDataError",
    "BrokerError",
    "BrokerUnavailableError",
    "HarnessError",
    "Impl",
    "InvalidInputError",
    "NativePanicError",
    "NotFoundError",
    "Operation",
    "OrderRejectedError",
    "RateLimitedError",
]

__version__ = "0.1.0"
