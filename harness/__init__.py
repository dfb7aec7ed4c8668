"""Rollout harness: move a trading bot's hot paths from Python to Rust, one percentage at a time.

The public surface is pure Python; the Rust core is the private extension `harness._native`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from harness.api import Harness, open

__all__ = [
    "AuthError",
    "BarDataError",
    "BrokerError",
    "BrokerUnavailableError",
    "Harness",
    "HarnessError",
    "Impl",
    "InvalidInputError",
    "NativePanicError",
    "NotFoundError",
    "Operation",
    "OrderRejectedError",
    "RateLimitedError",
    "open",
]

try:
    # One source: rust/Cargo.toml, copied into the package metadata by maturin at build time.
    __version__ = version("rollout-harness")
except PackageNotFoundError:  # a source tree that was never installed (no native module either)
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    """`harness.open` and `harness.Harness`, imported on first use: `import harness.errors`
    (or the bars, or the simulator) does not load SQLAlchemy and the router."""
    if name in ("open", "Harness"):
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
