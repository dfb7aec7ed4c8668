"""The database problem line: shown while the figures on screen are stale (the store failed
or stopped answering), with how old they are; hidden once a refresh succeeds again."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

__all__ = ["StoreBanner"]


class StoreBanner(Static):
    """`problem` is the sentence to show (None: the figures are fresh, the banner is hidden)."""

    problem: reactive[str | None] = reactive(None)

    def watch_problem(self, problem: str | None) -> None:
        """Show or hide the banner."""
        self.display = problem is not None
        self.update(Content(problem or ""))
