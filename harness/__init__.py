"""Rollout harness: move a trading bot's hot paths from Python to Rust, one percentage at a time.

The public surface is pure Python; the Rust core is the private extension `harness._native`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
from harness.operations import Operation

__all__ = [
    "AuthError",
    "BarDataError",
    "BrokerError",
    "BrokerUnavailableError",
    "HarnessError",
    "InvalidInputError",
    "NativePanicError",
    "NotFoundError",
    "Operation",
    "OrderRejectedError",
    "RateLimitedError",
]

try:
    # One source: rust/Cargo.toml, copied into the package metadata by maturin at build time.
    __version__ = version("rollout-harness")
except PackageNotFoundError:  # a source tree that was never installed (no native module either)
    __version__ = "0+unknown"
