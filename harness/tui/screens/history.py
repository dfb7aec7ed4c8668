"""The drill-downs: recent errors, fallbacks, shadow mismatches, the event log and the runs.

Each lists the newest rows of one `harness.store.queries` function (what `harness query KIND`
prints), re-read every refresh while the screen is shown, in a table whose selected row is
written out in full below it (an error's whole message, a mismatch's differing bar, an
event's reason and verdict). Filters: `o` cycles the operation, `i` the side (errors), `m`
mismatches only or every comparison (shadow).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from sqlalchemy import Engine
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import DataTable, Static

from harness.operations import Impl, Operation
from harness.output import printable
from harness.store import queries
from harness.tui import scope
from harness.tui.messages import HistoryLoaded
from harness.tui.screens.base import DashboardScreen

__all__ = [
    "ErrorsScreen",
    "EventsScreen",
    "FallbacksScreen",
    "HistoryScreen",
    "RunsScreen",
    "ShadowScreen",
]

LIMIT = 200
"""Rows listed at most (the newest)."""


def short_time(iso: str | None) -> str:
    """`2026-11-30T23:59:01.123456Z` as `11-30 23:59:01`."""
    return "-" if not iso else f"{iso[5:10]} {iso[11:19]}"


def cell(value: Any) -> str:
    """A value as a table cell shows it (text escaped: a reason stored by an older version,
    or a broker's message, may hold a terminal escape, which is shown, never replayed)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return printable(str(value))


def shown(key: str, value: Any) -> str:
    """A row's value in its table column: times shortened, run ids to their first 12 digits."""
    if key in ("time", "started", "ended"):
        return short_time(value)
    if key == "run" and isinstance(value, str):
        return value[:12]
    return cell(value)


def _cycle(options: Sequence[Any], current: Any) -> Any:
    i = list(options).index(current)
    return options[(i + 1) % len(options)]


class HistoryScreen(DashboardScreen):
    """A table of store rows with a detail pane; subclasses say what to read and show."""

    TITLE: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(row key, column heading); the key `time` is shortened, others shown as they are."""
    FILTERS: ClassVar[tuple[str, ...]] = ("op",)

    op_filter: reactive[str | None] = reactive(None)
    side_filter: reactive[Impl | None] = reactive(None)
    rows: reactive[list[dict[str, Any]]] = reactive(list, always_update=True)

    def __init__(self) -> None:
        super().__init__()
        self._timer: Timer | None = None
        self._stored_ops: list[tuple[str, str]] = []
        """Operations the store has recorded (read when the screen is shown; see `op_choices`)."""

    def compose_body(self) -> ComposeResult:
        """Filter line, table, detail."""
        yield Static(id="filter-line")
        table: DataTable[Text] = DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static(id="row-detail")

    def on_mount(self) -> None:
        """Columns, and the first read."""
        super().on_mount()
        table = self.query_one("#history", DataTable)
        for key, heading in self.COLUMNS:
            table.add_column(heading, key=key)
        self._filter_line()
        self.watch(self.dashboard, "migration", lambda _m: self._refilter(), init=False)

    def on_screen_resume(self) -> None:
        """Read now and on every refresh while shown (and which operations the store knows)."""
        self.load()
        self._read_ops()
        if self._timer is None:
            self._timer = self.set_interval(self.dashboard.refresh_s, self.load)
        else:
            self._timer.resume()

    def on_screen_suspend(self) -> None:
        """Stop reading while another screen is shown."""
        if self._timer is not None:
            self._timer.pause()

    def filters(self) -> queries.Filters:
        """The store filters of the current choices, within the migration chosen (`s`)."""
        return queries.Filters(
            op=self.op_filter, impl=self.side_filter, migration=self.dashboard.migration
        )

    @work(thread=True, exclusive=True, group="history-ops", exit_on_error=False)
    def _read_ops(self) -> None:
        app = self.dashboard
        try:
            found = scope.operation_names(app.store.engine(), app.cfg)
        except Exception as exc:  # any failure is shown, never raised
            app.report_failure(exc)
            return
        self.app.call_from_thread(setattr, self, "_stored_ops", found)

    def op_choices(self) -> list[str | None]:
        """What `o` cycles through: all (None), then every operation of the migration chosen
        (all: every migration) the latest refresh shows, then any other the store recorded
        (a bot's registered operation included; with a migration chosen, only its own)."""
        snapshot = self.dashboard.snapshot
        shown = [] if snapshot is None else snapshot.op_names()
        within = self.dashboard.migration
        stored = [op for m, op in self._stored_ops if within is None or m == within]
        ops = list(dict.fromkeys([*shown, *stored])) or [str(op) for op in Operation]
        return [None, *ops]

    def fetch(self, engine: Engine, filters: queries.Filters) -> list[dict[str, Any]]:
        """The rows to list, newest first (a `harness.store.queries` function)."""
        raise NotImplementedError

    def describe(self, row: dict[str, Any]) -> str:
        """The selected row written out in full."""
        return "  ".join(f"{k}: {cell(v)}" for k, v in row.items())

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def load(self) -> None:
        """Read the rows in a worker thread; a failure goes to the app's database banner."""
        app = self.dashboard
        try:
            rows = self.fetch(app.store.engine(), self.filters())
        except Exception as exc:  # any failure is shown, never raised
            app.report_failure(exc)
            return
        self.post_message(HistoryLoaded(rows))

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        """Show rows read for the current filters."""
        self.rows = message.rows

    def watch_rows(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite the table, keeping the cursor's row."""
        if not self.is_mounted:
            return
        table = self.query_one("#history", DataTable)
        row = table.cursor_row
        table.clear()
        for i, data in enumerate(rows):
            cells = [Text(shown(k, data.get(k))) for k, _ in self.COLUMNS]
            table.add_row(*cells, key=str(i))
        if rows:
            table.move_cursor(row=min(max(row, 0), len(rows) - 1))
        self._detail()
        self._filter_line()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        """Write out the row under the cursor."""
        self._detail()

    def _detail(self) -> None:
        table = self.query_one("#history", DataTable)
        rows = self.rows
        text = ""
        if rows and 0 <= table.cursor_row < len(rows):
            text = self.describe(rows[table.cursor_row])
        self.query_one("#row-detail", Static).update(Content(text))

    def _filter_line(self) -> None:
        parts = [f"{self.TITLE}: the newest {LIMIT} at most"]
        if "op" in self.FILTERS:
            parts.append(f"op {self.op_filter or 'all'} (o)")
        if self.FILTERS:
            parts.append(f"migration {self.dashboard.migration or 'all'} (s)")
        if "side" in self.FILTERS:
            parts.append(f"side {self.side_filter.value if self.side_filter else 'both'} (i)")
        parts.extend(self.extra_filters())
        parts.append(f"{len(self.rows)} row{'' if len(self.rows) == 1 else 's'}")
        self.query_one("#filter-line", Static).update(Content("  |  ".join(parts)))

    def extra_filters(self) -> list[str]:
        """More filter descriptions for the filter line."""
        return []

    def action_cycle_op(self) -> None:
        """Next operation filter (all, then each operation)."""
        if "op" in self.FILTERS:
            choices = self.op_choices()
            current = self.op_filter if self.op_filter in choices else None
            self.op_filter = _cycle(choices, current)

    def action_cycle_side(self) -> None:
        """Next side filter (both, Rust, Python)."""
        if "side" in self.FILTERS:
            self.side_filter = _cycle([None, *Impl], self.side_filter)

    def watch_op_filter(self) -> None:
        """Re-read for the new filter."""
        self._refilter()

    def watch_side_filter(self) -> None:
        """Re-read for the new filter."""
        self._refilter()

    def _refilter(self) -> None:
        if self.is_mounted:
            self.rows = []
            self.load()


class ErrorsScreen(HistoryScreen):
    """Failed calls, newest first (`harness query errors`)."""

    TITLE = "errors"
    FILTERS = ("op", "side")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "cycle_op", "Op filter"),
        Binding("i", "cycle_side", "Side filter"),
    ]
    COLUMNS = (
        ("time", "time (UTC)"),
        ("op", "op"),
        ("impl", "side"),
        ("stage", "stage"),
        ("error_class", "error"),
        ("error_message", "message"),
    )

    def fetch(self, engine: Engine, filters: queries.Filters) -> list[dict[str, Any]]:
        """`queries.errors`."""
        return queries.errors(engine, filters, LIMIT)

    def describe(self, row: dict[str, Any]) -> str:
        """Who failed, where, and the whole message."""
        return (
            f"{row['time']}  {row['op']} served by {row['impl']} (routed {row['routed']}) "
            f"at stage {row['stage']}, run {row['run']}\n"
            f"{cell(row['error_class'])}: {cell(row['error_message'])}\n"
            f"http {cell(row['http_status'])}  attempts {cell(row['attempts'])}  "
            f"order {cell(row['order_id'])}  tag {cell(row['custom_tag'])}"
        )


class FallbacksScreen(HistoryScreen):
    """Calls routed to Rust and served by Python, with why (`harness query fallbacks`)."""

    TITLE = "fallbacks"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("o", "cycle_op", "Op filter")]
    COLUMNS = (
        ("time", "time (UTC)"),
        ("op", "op"),
        ("stage", "stage"),
        ("fallback_reason", "reason"),
        ("ok", "ok"),
        ("latency_ms", "ms"),
        ("custom_tag", "tag"),
    )

    def fetch(self, engine: Engine, filters: queries.Filters) -> list[dict[str, Any]]:
        """`queries.fallbacks`."""
        return queries.fallbacks(engine, filters, LIMIT)

    def describe(self, row: dict[str, Any]) -> str:
        """The reason in full, and how the Python side then did."""
        failed = f"failed: {cell(row['error_class'])}: {cell(row['error_message'])}"
        outcome = "succeeded" if row["ok"] else failed
        return (
            f"{row['time']}  {row['op']} at stage {row['stage']}, run {row['run']}\n"
            f"fell back because: {cell(row['fallback_reason'])}\n"
            f"Python then {outcome} in {cell(row['latency_ms'])} ms (tag {cell(row['custom_tag'])})"
        )


class ShadowScreen(HistoryScreen):
    """Shadow comparisons, mismatches only unless `m` (`harness query shadow --mismatches`)."""

    TITLE = "shadow comparisons"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "cycle_op", "Op filter"),
        Binding("m", "toggle_mismatches", "Mismatches/all"),
    ]
    COLUMNS = (
        ("time", "time (UTC)"),
        ("op", "op"),
        ("key", "key"),
        ("matched", "matched"),
        ("timeframe", "tf"),
        ("bar_index", "bar"),
        ("field", "field"),
        ("primary_value", "primary"),
        ("shadow_value", "shadow"),
    )

    mismatches_only: reactive[bool] = reactive(True)

    def fetch(self, engine: Engine, filters: queries.Filters) -> list[dict[str, Any]]:
        """`queries.shadow`."""
        return queries.shadow(engine, filters, LIMIT, mismatches_only=self.mismatches_only)

    def extra_filters(self) -> list[str]:
        """Which comparisons."""
        return ["mismatches only (m)" if self.mismatches_only else "every comparison (m)"]

    def action_toggle_mismatches(self) -> None:
        """Mismatches only, or every comparison."""
        self.mismatches_only = not self.mismatches_only

    def watch_mismatches_only(self) -> None:
        """Re-read."""
        self._refilter()

    def describe(self, row: dict[str, Any]) -> str:
        """The differing bar, side by side."""
        head = (
            f"{row['time']}  {row['op']} key {cell(row['key'])} at stage {row['stage']}, "
            f"run {row['run']}, {cell(row['bars_in'])} bars in"
        )
        if row["matched"]:
            body = f"matched: {row['primary']} and {row['shadow']} gave the same bars"
        else:
            body = (
                f"first difference: {cell(row['timeframe'])} bar #{cell(row['bar_index'])}, "
                f"field {cell(row['field'])}: {row['primary']} (primary) "
                f"{cell(row['primary_value'])} vs {row['shadow']} (shadow) "
                f"{cell(row['shadow_value'])}"
            )
        if row["shadow_error"]:
            body += f"\nshadow raised: {cell(row['shadow_error'])}"
        timing = f"\nprimary {cell(row['primary_ms'])} ms, shadow {cell(row['shadow_ms'])} ms"
        return f"{head}\n{body}{timing}"


class EventsScreen(HistoryScreen):
    """The rollout's event log: every promotion, rollback, kill, breaker (`query events`)."""

    TITLE = "events"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("o", "cycle_op", "Op filter")]
    COLUMNS = (
        ("time", "time (UTC)"),
        ("kind", "kind"),
        ("op", "op"),
        ("from_stage", "from"),
        ("to_stage", "to"),
        ("who", "who"),
        ("forced", "forced"),
        ("reason", "reason"),
    )

    def fetch(self, engine: Engine, filters: queries.Filters) -> list[dict[str, Any]]:
        """`queries.events`."""
        return queries.events(engine, filters, LIMIT)

    def describe(self, row: dict[str, Any]) -> str:
        """Who, where from, why, and the gate's verdict at that moment."""
        forced = "  FORCED" if row["forced"] else ""
        text = (
            f"{row['time']}  {row['kind']}{forced}  {cell(row['from_stage'])} -> "
            f"{cell(row['to_stage'])}  by {cell(row['who'])} on {cell(row['host'])} "
            f"(pid {cell(row['pid'])})\nreason: {cell(row['reason'])}"
        )
        gate = row.get("gate")
        if gate:
            try:
                judged = json.loads(gate)
            except ValueError:
                judged = None
            if isinstance(judged, dict):
                failing = [
                    f"{c.get('op') or 'stage'} {c.get('criterion')}: {c.get('result')}"
                    for c in judged.get("criteria", [])
                    if c.get("result") != "PASS"
                ]
                text += f"\ngate then: {judged.get('verdict')}"
                if failing:
                    more = " ..." if len(failing) > 4 else ""
                    text += " (" + "; ".join(failing[:4]) + more + ")"
        return text


class RunsScreen(HistoryScreen):
    """Every process that routed calls (`harness query runs`)."""

    TITLE = "runs"
    FILTERS = ()
    COLUMNS = (
        ("run", "run"),
        ("started", "started (UTC)"),
        ("ended", "ended"),
        ("status", "status"),
        ("kind", "kind"),
        ("host", "host"),
        ("pid", "pid"),
        ("native_available", "native"),
        ("build_id", "build"),
        ("rows_recorded", "rows"),
        ("rows_dropped", "dropped"),
    )

    def filters(self) -> queries.Filters:
        """No filters: every run."""
        return queries.Filters()

    def fetch(self, engine: Engine, filters: queries.Filters) -> list[dict[str, Any]]:
        """`queries.runs`."""
        return queries.runs(engine, filters, LIMIT)

    def describe(self, row: dict[str, Any]) -> str:
        """The run in full."""
        return (
            f"run {row['run']} ({row['kind']}, {row['status']}) by {row['user']} on "
            f"{row['host']} pid {row['pid']}, harness {row['version']}\n"
            f"started {row['started']}, ended {cell(row['ended'])}; native module "
            f"{'available' if row['native_available'] else 'UNAVAILABLE'}, build "
            f"{cell(row['build_id'])}; "
            f"{row['rows_recorded']:,} rows recorded, {row['rows_dropped']:,} dropped"
        )
