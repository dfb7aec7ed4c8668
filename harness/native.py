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

__all__ = ["BUILD_ID_TEST_ENV", "NO_NATIVE_ENV", "NativeStatus", "build_id", "load_native"]

log = logging.getLogger("harness.router")

NO_NATIVE_ENV: Final = "HARNESS_NO_NATIVE"
"""Environment variable: a true value makes `load_native` report the extension unavailable."""
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
BUILD_ID_TEST_ENV: Final = "HARNESS_TEST_BUILD_ID"
"""Test hook: under pytest (`PYTEST_CURRENT_TEST` set) this variable replaces `build_id()`,
so a test can play a second build in one stage; ignored anywhere else."""
NO_BUILD: Final = "python-only"
"""`build_id()` when the extension is not loaded: the evidence of pure-Python processes."""
_build_ids: dict[str, str] = {}


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


def build_id(status: NativeStatus) -> str:
    """The build of the native module this process loaded, for the evidence it records:
    `<crate version>+<git commit, 12 hex, or nogit>.<sha256 of the extension file, 12 hex>`,
    e.g. `0.1.0+2517eafc81d0.9f3c2a61b0de` (about 40 characters). The crate version and the
    commit are the module's own (`__version__`, `__git_commit__` embedded by rust/build.rs);
    the file hash tells apart two builds of one commit (a dirty tree, other flags). Computed
    once per process (about 10 ms for a 10 MB file). `python-only` without the module.
    """
    if os.environ.get("PYTEST_CURRENT_TEST") and os.environ.get(BUILD_ID_TEST_ENV):
        return os.environ[BUILD_ID_TEST_ENV]
    module = status.module
    if module is None:
        return NO_BUILD
    path = getattr(module, "__file__", None) or ""
    found = _build_ids.get(path)
    if found is None:
        import hashlib

        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            file_hash = digest.hexdigest()[:12]
        except OSError:
            file_hash = "unreadable"
        commit = str(getattr(module, "__git_commit__", "") or "")[:12] or "nogit"
        version = str(getattr(module, "__version__", "0"))
        found = _build_ids[path] = f"{version}+{commit}.{file_hash}"
    return found
