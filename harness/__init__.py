"""Rollout harness: move a trading bot's hot paths from Python to Rust, one percentage at a time.

The public surface is pure Python; the Rust core is the private extension `harness._native`.
"""

from __future__ import annotations

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

    __version__: str

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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        # One source: rust/Cargo.toml, copied into the package metadata by maturin at build time.
        return version("rollout-harness")
    except PackageNotFoundError:  # a source tree never installed (no native module either)
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """`harness.open` and `harness.Harness`, imported on first use: `import harness.errors`
    (or the bars, or the simulator) does not load SQLAlchemy and the router. `__version__`,
    read on first use too: `importlib.metadata` costs about 100 ms, most of what importing
    this package took, and every command (and its Ctrl-C, see `harness.cli`) waited for it."""
    if name in ("open", "Harness"):
        from harness import api

        return getattr(api, name)
    if name == "__version__":
        globals()["__version__"] = value = _version()
        return value
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
