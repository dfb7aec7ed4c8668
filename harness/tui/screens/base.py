"""What every dashboard screen shares: the status line, the stage ladder, the alarm banner and
the database banner above its own body, the keys below; all following the app's snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer

from harness.tui.data import Snapshot
from harness.tui.widgets.alert_banner import AlertBanner
from harness.tui.widgets.stage_ladder import StageLadder
from harness.tui.widgets.status_bar import StatusBar
from harness.tui.widgets.store_banner import StoreBanner

if TYPE_CHECKING:
    from harness.tui.app import HarnessApp

__all__ = ["COMPACT_FOOTER_BELOW", "DashboardScreen"]

COMPACT_FOOTER_BELOW = 100
"""Narrower than this many columns, the footer drops the spaces around its keys."""


class DashboardScreen(Screen[None]):
    """A dashboard screen; subclasses give `compose_body` and `show(snapshot)`."""

    @property
    def dashboard(self) -> HarnessApp:
        """The app, typed."""
        return cast("HarnessApp", self.app)

    def compose(self) -> ComposeResult:
        """The shared frame around the body."""
        yield StatusBar()
        yield StageLadder()
        yield AlertBanner()
        yield StoreBanner()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets."""
        yield from ()

    def on_resize(self, event: Resize) -> None:
        """Below 100 columns the keys' footer packs tighter, so the keys still fit."""
        self.query_one(Footer).compact = event.size.width < COMPACT_FOOTER_BELOW

    def on_mount(self) -> None:
        """Follow the app's snapshot and the database's health."""
        self.query_one(StatusBar).where = self.dashboard.store.where
        self.watch(self.dashboard, "snapshot", self._snapshot_changed)
        self.watch(self.dashboard, "store_problem", self._problem_changed)

    def _snapshot_changed(self, snapshot: Snapshot | None) -> None:
        self.query_one(StatusBar).snapshot = snapshot
        if snapshot is not None:
            self.query_one(StageLadder).overview = snapshot.overview
            self.query_one(AlertBanner).overview = snapshot.overview
        self.show(snapshot)

    def _problem_changed(self, problem: str | None) -> None:
        self.query_one(StoreBanner).problem = problem

    def show(self, snapshot: Snapshot | None) -> None:
        """Show a new snapshot in the body (None: nothing read yet)."""
