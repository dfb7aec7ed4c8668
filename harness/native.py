"""Whether the Rust core (`harness._native`) can be used in this process, and why not.

The router asks once, at `harness.open()`. When the extension cannot be imported (a wheel built
for another platform, a missing shared library), the harness runs pure Python, logs the reason
once and records it in the run's row (`native_available`, `native_error`) and as a
`native_unavailable` event.

`HARNESS_NO_NATIVE=1` (any of 1/true/yes/on, any case) makes the import count as failed without
touching the installation: the tests and the "native unavailable" drill use it.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Final

__all__ = ["NO_NATIVE_ENV", "NativeStatus", "load_native"]

log = logging.getLogger("harness.router")

NO_NATIVE_ENV: Final = "HARNESS_NO_NATIVE"
"""Environment variable: a true value makes `load_native` report the extension unavailable."""
_TRUE: Final = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class NativeStatus:
    """The outcome of loading the extension: the module, or None and the reason."""

    module: ModuleType | None
    error: str | None

    @property
    def available(self) -> bool:
        """True when the Rust core can serve calls."""
        return self.module is not None


def load_native(environ: os._Environ[str] | dict[str, str] | None = None) -> NativeStatus:
    """Import `harness._native`; never raises. See the module docstring for the override."""
    env = os.environ if environ is None else environ
    if env.get(NO_NATIVE_ENV, "").strip().lower() in _TRUE:
        return NativeStatus(None, f"disabled by {NO_NATIVE_ENV}={env[NO_NATIVE_ENV]}")
    try:
        module = importlib.import_module("harness._native")
    except ImportError as exc:
        return NativeStatus(None, f"{type(exc).__name__}: {exc}")
    return NativeStatus(module, None)
