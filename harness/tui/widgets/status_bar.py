"""The top line: the window the figures cover (the current stage since it was entered, as the
gate judges it), the moment the figures were read, the native module as the latest run found
it, and the database."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from harness.tui import format as fmt
from harness.tui.data import Snapshot

__all__ = ["StatusBar"]


class StatusBar(Static):
    """`canary since 23:40:00 UTC (20m 00s) | as of 00:00:00 UTC | native ok | db sqlite:///...`.

    `native ok`: the latest run loaded the Rust core; `native MISSING` (in the error colour):
    it ran pure Python (the alarm banner says why); `native ?`: no run recorded yet.

    `where` is the database URL with its password already hidden (`Store.where`).
    """

    snapshot: reactive[Snapshot | None] = reactive(None)
    where: reactive[str] = reactive("")

    def render(self) -> Content:
        """The line, from the latest snapshot."""
        snap = self.snapshot
        if snap is None:
            head = Content("reading the store...")
        else:
            state = snap.overview.state
            head = Content.from_markup(
                "[b]$stage[/] since $since ($age) | as of $now | ",
                stage=state.stage,
                since=fmt.clock(state.stage_since_ns),
                age=fmt.age(snap.taken_ns, state.stage_since_ns),
                now=fmt.clock(snap.taken_ns),
            ) + _native(snap.overview.native_available)
        return head + Content(f" | db {self.where}")


def _native(available: bool | None) -> Content:
    if available is None:
        return Content("native ?")
    if available:
        return Content("native ok")
    return Content.from_markup("[b $error]native MISSING[/]")
