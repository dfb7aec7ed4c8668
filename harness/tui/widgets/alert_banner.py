"""What must not be missed: the kill flag, an open circuit breaker, a native module the
latest run could not load. Hidden when there is none of them."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from harness.control.actions import Overview
from harness.output import printable

__all__ = ["AlertBanner", "alerts"]


def alerts(view: Overview) -> list[str]:
    """One sentence per alarm, most severe first (empty: nothing to shout about)."""
    out = []
    if view.state.kill:
        why = printable(view.state.kill_reason or "no reason given")
        out.append(f"KILL SWITCH SET: everything goes to Python ({why}); u clears it")
    for breaker in view.breakers.values():
        if breaker.is_open:
            why = printable(breaker.reason or "no reason recorded")
            out.append(
                f"BREAKER OPEN: {breaker.op} goes to Python ({breaker.failures} failures: {why})"
            )
    if view.native_available is False:
        native = printable(view.native_error or "?")
        out.append(f"NATIVE MODULE UNAVAILABLE in the latest run: {native}")
    return out


class AlertBanner(Static):
    """A full-width block in the theme's error colour, one line per alarm."""

    overview: reactive[Overview | None] = reactive(None)

    def watch_overview(self, view: Overview | None) -> None:
        """Show the alarms, or hide the banner when there are none."""
        lines = [] if view is None else alerts(view)
        self.display = bool(lines)
        self.update(Content("\n").join(Content(line) for line in lines))
