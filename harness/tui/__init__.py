"""The terminal dashboard (`harness tui`): watch a rollout live, judge the gate, promote, roll
back, kill, and drill into errors, fallbacks, shadow mismatches, events and runs.

It reads and acts only through the store and control functions the CLI uses
(`harness.store.queries`, `harness.control.actions`) and never imports the native module.
`make_app(cfg)` builds it (the CLI and the tests use it). Importing this package does not
import Textual; `harness.tui.app` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.tui.app import HarnessApp, make_app

__all__ = ["HarnessApp", "make_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness.tui import app

        return getattr(app, name)
    raise AttributeError(name)
