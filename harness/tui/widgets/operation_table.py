"""The per-operation figures of a stage's window (the current stage's, or the stage left last's),
one column per operation.

Operations are columns (four of them fit 80 terminal columns; twelve figures would not; more
operations scroll sideways), the figures are rows: the stage's percentage to Rust, calls, the
share Rust served, the calls routed to Python by the hash (or a kill or an open breaker) and
those routed there because the stage's targets left them out (`Py hash/not tgt`), the fallback
rate, each
side's error rate, p50 and p99 of each side, shadow mismatches of comparisons, and the
breaker. The columns are the operations of the rows given (any operation a migration
configures or the store recorded, a bot's registered ones included), rebuilt when they change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rich.text import Text
from textual.events import Resize
from textual.reactive import reactive
from textual.widgets import DataTable

from harness.operations import Operation
from harness.tui import format as fmt
from harness.tui.data import OpRow

__all__ = ["ROWS", "OperationTable"]

LABEL_WIDTH: Final = 18
OP_WIDTH: Final = 15
MAX_OP_WIDTH: Final = 22

ROWS: Final[tuple[tuple[str, Callable[[OpRow], str]], ...]] = (
    ("% to Rust (stage)", lambda r: fmt.percent(r.percent)),
    ("calls", lambda r: fmt.count(r.calls)),
    ("served by Rust", lambda r: fmt.rate(r.rust_share)),
    ("Py hash/not tgt", lambda r: f"{r.to_python - r.not_targeted:,}/{r.not_targeted:,}"),
    ("fallback rate", lambda r: fmt.rate(r.fallback_rate)),
    ("errors Rust", lambda r: fmt.rate(r.error_rate_rust)),
    ("errors Python", lambda r: fmt.rate(r.error_rate_python)),
    ("p50 ms Rust", lambda r: fmt.ms(r.p50_rust_ms)),
    ("p50 ms Python", lambda r: fmt.ms(r.p50_python_ms)),
    ("p99 ms Rust", lambda r: fmt.ms(r.p99_rust_ms)),
    ("p99 ms Python", lambda r: fmt.ms(r.p99_python_ms)),
    ("shadow mism/comp", lambda r: f"{r.shadow_mismatches:,}/{r.shadow_comparisons:,}"),
    ("breaker", lambda r: "OPEN" if r.breaker_open else "closed"),
)
"""(row label, how an operation's figure is written) in display order."""


class OperationTable(DataTable[Text]):
    """The table; `figures` holds one `OpRow` per operation (set it to redraw)."""

    figures: reactive[list[OpRow]] = reactive(list, always_update=True)
    window: reactive[str] = reactive("current stage")
    """Whose figures these are (the first column's heading): `current stage` or `previous
    stage`."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="none", cell_padding=0, zebra_stripes=True)
        self._op_width = OP_WIDTH
        self._ops: list[str] = [str(op) for op in Operation]

    def on_mount(self) -> None:
        """The columns (the figure's name, then one per operation) and the rows."""
        self._build(OP_WIDTH)

    def _build(self, op_width: int) -> None:
        self._op_width = op_width
        self.clear(columns=True)
        self.add_column(Text(f" {self.window}"), width=LABEL_WIDTH, key="figure")
        for op in self._ops:
            self.add_column(Text(op, justify="right"), width=op_width, key=op)
        for label, _ in ROWS:
            blank = (Text("-", justify="right") for _ in self._ops)
            self.add_row(Text(f" {label}"), *blank, key=label)
        self.watch_figures(self.figures)

    def watch_window(self) -> None:
        """Another window: its heading (the figures follow)."""
        if self.is_mounted and self.columns:
            self._build(self._op_width)

    def on_resize(self, event: Resize) -> None:
        """Share a wider terminal between the operations' columns."""
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        share = (width - LABEL_WIDTH - 2) // max(len(self._ops), 1)
        op_width = min(max(OP_WIDTH, share), MAX_OP_WIDTH)
        if op_width != self._op_width:
            self._build(op_width)

    def watch_figures(self, rows: list[OpRow]) -> None:
        """Write every figure of every operation into its cell."""
        if not self.row_count:
            return
        ops = [row.op for row in rows]
        if ops and ops != self._ops:
            self._ops = ops
            self._op_width = 0  # rebuilt at the width the operations now share
            self._fit(self.size.width)
            return  # `_build` wrote the figures
        for row in rows:
            for label, show in ROWS:
                text = show(row)
                style = "bold reverse" if label == "breaker" and row.breaker_open else ""
                self.update_cell(label, row.op, Text(text, style=style, justify="right"))

    @property
    def operations(self) -> list[str]:
        """The operations shown, one per column, in order."""
        return list(self._ops)

    def cell_text(self, label: str, op: str) -> str:
        """What the cell of figure `label` and operation `op` shows (for tests and the help)."""
        return self.get_cell(label, str(op)).plain
