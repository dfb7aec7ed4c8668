"""Rollout harness: move a trading bot's hot paths from Python to Rust, one percentage at a time.

The public surface is pure Python; the Rust core is the private extension `harness._native`.
"""

from __future__ import annotations

import os
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
    """The installed distribution's version, read from its `METADATA` file.

    One source: rust/Cargo.toml, copied into the package metadata by maturin at build time. The
    file is found as `importlib.metadata` finds it (the first `sys.path` folder holding
    `rollout_harness-*.dist-info`), without importing it: that module and the email parser it
    loads cost about 60 ms of CPU, a tenth of what a quick command is allowed (issue 23).
    Anything unusual (two versions in one folder, no `Version:` line) is left to
    `importlib.metadata`."""
    import builtins  # `open` here is harness.open
    import sys

    for entry in sys.path:
        try:
            found = [n for n in os.listdir(entry or ".") if n.startswith(_DIST_INFO)]
        except OSError:  # a zip file, a folder that does not exist
            continue
        if len(found) != 1 or not found[0].endswith(".dist-info"):
            if found:
                break
            continue
        try:
            metadata = os.path.join(entry or ".", found[0], "METADATA")
            with builtins.open(metadata, encoding="utf-8") as f:
                for line in f:
                    if line.startswith("Version:"):
                        return line.partition(":")[2].strip()
                    if not line.strip():  # the headers end at the first blank line
                        break
        except OSError:
            pass
        break
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rollout-harness")
    except PackageNotFoundError:  # a source tree never installed (no native module either)
        return "0+unknown"


_DIST_INFO = "rollout_harness-"
"""How the distribution's metadata folder starts (`rollout-harness`, normalised by the wheel
spec: lower case, `-` as `_`)."""


def __getattr__(name: str) -> Any:
    """`harness.open` and `harness.Harness`, imported on first use: `import harness.errors`
    (or the bars, or the simulator) does not load SQLAlchemy and the router. `__version__`,
    read on first use too (see `_version`), and only by what shows or stores it:
    `harness --version`, a run's row, a schema error."""
    if name in ("open", "Harness"):
        from harness import api

        return getattr(api, name)
    if name == "__version__":
        globals()["__version__"] = value = _version()
        return value
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
