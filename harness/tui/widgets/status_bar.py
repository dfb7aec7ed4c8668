"""The top line: the window the figures cover (the current stage since it was entered, as the
gate judges it), the moment the figures were read, the native module as the latest run found
it, and the database."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from harness.tui import format as fmt
from harness.tui.data import Snapshot

__all__ = ["StatusBar", "short_where"]


class StatusBar(Static):
    """`canary since 23:40:00 UTC (20m 00s) | as of 00:00:00 UTC | native ok | db sqlite:///...`.

    `native ok`: the latest run loaded the Rust core; `native MISSING` (in the error colour):
    it ran pure Python (the alarm banner says why); `native ?`: no run recorded yet.

    `where` is the database URL with its password already hidden (`Store.where`).
    """

    snapshot: reactive[Snapshot | None] = reactive(None)
    where: reactive[str] = reactive("")

    def render(self) -> Content:
        """The line, from the latest snapshot; on a narrow line the shorter forms (the database
        by its place, then the stage's age without the time it began)."""
        width = self.content_size.width
        lines = [head + Content(f" | db {where}") for head, where in self._forms()]
        return next((line for line in lines if len(line) <= width), lines[-1])

    def _forms(self) -> list[tuple[Content, str]]:
        snap = self.snapshot
        short = short_where(self.where)
        if snap is None:
            head = Content("reading the store...")
            return [(head, self.where), (head, short)]
        state = snap.overview.state
        values = {
            "stage": state.stage if snap.migration is None else f"{snap.migration} {state.stage}",
            "since": fmt.clock(state.stage_since_ns),
            "age": fmt.age(snap.taken_ns, state.stage_since_ns),
            "now": fmt.clock(snap.taken_ns),
        }
        native = _native(snap.overview.native_available)
        wide = Content.from_markup("[b]$stage[/] since $since ($age) | as of $now | ", **values)
        narrow = Content.from_markup("[b]$stage[/] for $age | as of $now | ", **values)
        return [(wide + native, self.where), (wide + native, short), (narrow + native, short)]


def short_where(where: str) -> str:
    """A (password-hidden) database URL without its driver, user and query: the file of a
    SQLite URL (`harness.db`), `host:port/name` of a server's; the narrow status line's."""
    scheme, sep, rest = where.partition("://")
    if not sep:
        return where
    rest = rest[rest.rfind("@") + 1 :].split("?", 1)[0]
    return rest[1:] if scheme.startswith("sqlite") and rest.startswith("/") else rest


def _native(available: bool | None) -> Content:
    if available is None:
        return Content("native ?")
    if available:
        return Content("native ok")
    return Content.from_markup("[b $error]native MISSING[/]")
