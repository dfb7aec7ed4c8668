"""The gate: the overall verdict, each criterion with its figure, bound and PASS / FAIL / NOT
ENOUGH DATA mark, the skipped ones with why, and the selected criterion's full detail."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import DataTable, Static

from harness.gate.verdict import Skipped
from harness.tui import format as fmt
from harness.tui.data import Snapshot
from harness.tui.screens.base import DashboardScreen
from harness.tui.widgets.stage_ladder import verdict_markup
from harness.tui.widgets.verdict_table import VerdictTable

__all__ = ["GateScreen"]


class GateScreen(DashboardScreen):
    """What `harness gate` prints, live: of the migration chosen with `s` (`harness gate
    --migration NAME`), or of every migration at once (their combined verdict)."""

    def compose_body(self) -> ComposeResult:
        """The verdict line, the table, the detail of the selected row."""
        yield Static(id="verdict-line")
        yield VerdictTable(id="criteria")
        yield Static(id="criterion-detail")

    def show(self, snapshot: Snapshot | None) -> None:
        """The new verdict."""
        if snapshot is None:
            return
        verdict = snapshot.overview.verdict
        line = (
            Content("verdict ")
            + verdict_markup(verdict.result)
            + Content(
                f"  {snapshot.migration or 'all'} at {verdict.stage}, window since "
                f"{fmt.clock(verdict.since_ns)} "
                f"({fmt.age(verdict.until_ns, verdict.since_ns)}), alpha {verdict.alpha:g}"
                "  * critical: a FAIL rolls the stage back"
            )
        )
        if verdict.other_builds_calls > 0:  # said only when it happens: build ids vary per build
            line += Content(f"\n{verdict.build_note()}")
        self.query_one("#verdict-line", Static).update(line)
        self.query_one(VerdictTable).verdict = verdict
        self._detail()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        """Show the full detail of the row under the cursor."""
        self._detail()

    def _detail(self) -> None:
        chosen = self.query_one(VerdictTable).selected()
        if chosen is None:
            text = ""
        elif isinstance(chosen, Skipped):
            where = str(chosen.op) if chosen.op else "stage"
            text = f"{where} {chosen.criterion.value}: skipped: {chosen.reason}"
        else:
            where = str(chosen.op) if chosen.op else "stage"
            text = f"{where} {chosen.criterion.value}: {chosen.detail}"
        self.query_one("#criterion-detail", Static).update(Content(text))
