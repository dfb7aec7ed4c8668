"""The gate's verdict as a table: each judged criterion with its figure, bound and result,
then the criteria that do not apply at this stage, with why."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable

from harness.gate import Verdict
from harness.gate.verdict import CriterionResult, Outcome, Skipped
from harness.tui import format as fmt

__all__ = ["COLUMNS", "VerdictTable", "result_label"]

COLUMNS = ("op", "criterion", "result", "figure", "bound", "detail")

_LABEL = {Outcome.PASS: "PASS", Outcome.FAIL: "FAIL", Outcome.INCONCLUSIVE: "NOT ENOUGH DATA"}


def result_label(outcome: Outcome) -> str:
    """The mark of a criterion: PASS, FAIL, or NOT ENOUGH DATA (the gate's INCONCLUSIVE)."""
    return _LABEL[outcome]


class VerdictTable(DataTable[Text]):
    """One row per judged criterion (critical ones marked `*`), then one per skipped one;
    `verdict` redraws it.

    The result cell is coloured from the theme (success, error, warning), so it reads in the
    light and the dark theme alike; `selected()` is the row under the cursor.
    """

    verdict: reactive[Verdict | None] = reactive(None, always_update=True)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._criteria: list[CriterionResult | Skipped] = []

    def on_mount(self) -> None:
        """The columns."""
        for name in COLUMNS:
            self.add_column(name, key=name)
        self.watch_verdict(self.verdict)

    def _style(self, outcome: Outcome) -> str:
        colours = self.app.theme_variables
        key = {Outcome.PASS: "success", Outcome.FAIL: "error", Outcome.INCONCLUSIVE: "warning"}
        return f"bold {colours.get(key[outcome], '')}"

    def watch_verdict(self, verdict: Verdict | None) -> None:
        """Rewrite the rows, keeping the cursor on the same row."""
        if not self.columns:
            return
        row = self.cursor_row
        self.clear()
        self._criteria = [] if verdict is None else [*verdict.criteria, *verdict.skipped]
        for i, c in enumerate(self._criteria):
            op = Text(str(c.op) if c.op is not None else "(stage)")
            if isinstance(c, Skipped):
                dim = "dim"
                self.add_row(
                    op,
                    Text(c.criterion.value, style=dim),
                    Text("skipped", style=dim),
                    Text("-", justify="right", style=dim),
                    Text("-", justify="right", style=dim),
                    Text(c.reason, no_wrap=True, overflow="ellipsis", style=dim),
                    key=str(i),
                )
                continue
            self.add_row(
                op,
                Text(c.criterion.value + (" *" if c.critical else "")),
                Text(result_label(c.result), style=self._style(c.result)),
                Text(fmt.criterion_figure(c.criterion, c.figure), justify="right"),
                Text(fmt.criterion_figure(c.criterion, c.bound), justify="right"),
                Text(c.detail, no_wrap=True, overflow="ellipsis"),
                key=str(i),
            )
        if self._criteria:
            self.move_cursor(row=min(row, len(self._criteria) - 1))

    def selected(self) -> CriterionResult | Skipped | None:
        """The criterion under the cursor."""
        if not self._criteria or not 0 <= self.cursor_row < len(self._criteria):
            return None
        return self._criteria[self.cursor_row]
