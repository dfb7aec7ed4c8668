"""The dashboard app: screens as modes, a refresh about once a second in a worker thread, the
actions behind keys and the command palette, and the database's health as a banner.

    app = make_app(cfg)          # what `harness tui` runs; tests pass a pinned clock
    app.run()

Nothing here computes a figure or performs an action itself: a refresh is
`harness.tui.data.load_snapshot` (the CLI's own store and gate functions), and every action is
a `harness.control.actions` call, so an event written here is written exactly as `harness
promote` (or rollback, kill, unkill, breaker reset) writes it, and each carries the state the
person saw (the confirmation's plan, else the figures on screen): if another terminal moved it
meanwhile, the action is refused and says what moved. Every database call runs in a
thread worker, so the interface never waits on SQL: a slow or unreachable database leaves
the last figures on screen with a banner saying how old they are, and the next good refresh
removes it.

Textual's Screenshot command saves to `~/Downloads`, which a server often lacks (the save then
fails with a bare "Failed to save screenshot"); here it saves to `screenshot_dir` (the folder
`harness tui` was started in, or `--screenshots DIR`) and the notification names the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import ClassVar, Final

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.reactive import reactive
from textual.screen import Screen

from harness.config import HarnessConfig
from harness.control import actions
from harness.operations import Operation
from harness.store.db import can_write, open_store
from harness.store.state import LiveState, StateConflictError
from harness.tui import format as fmt
from harness.tui.commands import RolloutCommands
from harness.tui.data import Snapshot, Store, load_snapshot
from harness.tui.messages import (
    ActionDone,
    ActionRefused,
    PlanReady,
    SnapshotLoaded,
    StoreFailed,
)
from harness.tui.screens.confirm import ActionDialog, ActionRequest, plan_body
from harness.tui.screens.gate import GateScreen
from harness.tui.screens.help import HelpScreen
from harness.tui.screens.history import (
    ErrorsScreen,
    EventsScreen,
    FallbacksScreen,
    RunsScreen,
    ShadowScreen,
)
from harness.tui.screens.overview import OverviewScreen

__all__ = ["READ_TIMEOUT_S", "HarnessApp", "make_app"]

READ_TIMEOUT_S: Final = 5.0
"""The longest a PostgreSQL read of the dashboard may take before it counts as failed."""
STALE_AFTER_S: Final = 3.0
"""A refresh still unanswered after this long shows the banner (the figures are stale)."""
DARK, LIGHT = "textual-dark", "textual-light"


class HarnessApp(App[None]):
    """The dashboard. Build it with `make_app`."""

    CSS_PATH = "app.tcss"
    TITLE = "rollout harness"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = {
        "overview": OverviewScreen,
        "gate": GateScreen,
        "errors": ErrorsScreen,
        "fallbacks": FallbacksScreen,
        "shadow": ShadowScreen,
        "events": EventsScreen,
        "runs": RunsScreen,
    }
    DEFAULT_MODE = "overview"
    SCREEN_TITLES: ClassVar[dict[str, str]] = {
        "overview": "overview",
        "gate": "gate",
        "errors": "errors",
        "fallbacks": "fallbacks",
        "shadow": "shadow mismatches",
        "events": "event log",
        "runs": "runs",
    }
    COMMANDS = App.COMMANDS | {RolloutCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("1", "switch_mode('overview')", "Screens", key_display="1-7", tooltip="Overview"),
        Binding("2", "switch_mode('gate')", "Gate", show=False),
        Binding("3", "switch_mode('errors')", "Errors", show=False),
        Binding("4", "switch_mode('fallbacks')", "Fallbacks", show=False),
        Binding("5", "switch_mode('shadow')", "Shadow mismatches", show=False),
        Binding("6", "switch_mode('events')", "Event log", show=False),
        Binding("7", "switch_mode('runs')", "Runs", show=False),
        Binding("p", "promote", "Promote"),
        Binding("P", "force_promote", "Force promote (reason required)", show=False),
        Binding("b", "rollback", "Roll back"),
        Binding("k", "kill", "Kill"),
        Binding("u", "unkill", "Unkill"),
        # Not in the footer (at 80 columns it would push Unkill off the line): the overview's
        # migration list marks the one chosen, the filter lines say `(s)`, the help lists it.
        Binding("s", "next_migration", "Next migration (or all)", show=False),
        Binding("t", "toggle_theme", "Light/dark", show=False),
        Binding("q", "quit", "Quit", show=False),
    ]

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True)
    """The latest figures read (None until the first refresh lands)."""
    store_problem: reactive[str | None] = reactive(None)
    """Why the figures on screen are stale (None: they are fresh)."""
    chart_op: reactive[str] = reactive(str(Operation.PLACE_ORDER))
    """The operation the overview charts (its series is read with every refresh)."""
    migration: reactive[str | None] = reactive(None)
    """The migration the screens and the actions are scoped to (`s` cycles; None: all of
    them at once, as before migrations)."""
    show_left: reactive[bool] = reactive(False)
    """The overview's table shows the stage left last instead of the current one (`w`); its
    figures are read with every refresh while it does."""

    def __init__(
        self,
        cfg: HarnessConfig,
        store: Store,
        *,
        clock: Callable[[], int] = time.time_ns,
        refresh_s: float = 1.0,
        stale_after_s: float = STALE_AFTER_S,
        screenshot_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.store = store
        self.clock = clock
        self.refresh_s = refresh_s
        self.stale_after_s = stale_after_s
        self.screenshot_dir = (screenshot_dir or Path.cwd()).resolve()
        """Where the Screenshot command saves (`save_screen`)."""
        self.refreshes = 0
        self._in_flight_since: float | None = None
        self._failure: str | None = None

    # ----- refreshing ----------------------------------------------------------------------------

    def on_mount(self) -> None:
        """Start refreshing."""
        self.sub_title = self.store.where
        self.set_interval(self.refresh_s, self.refresh_now)
        self.refresh_now()

    def refresh_now(self) -> None:
        """Start a refresh unless one is still running (then say if it is taking too long)."""
        if self._in_flight_since is not None:
            self._update_problem()
            return
        self._in_flight_since = time.monotonic()
        self._load()

    @work(thread=True, exit_on_error=False, group="refresh")
    def _load(self) -> None:
        now = self.clock()
        try:
            snapshot = load_snapshot(
                self.store.engine(),
                self.cfg,
                now,
                chart_op=self.chart_op,
                with_left=self.show_left,
                migration=self.migration,
            )
        except Exception as exc:  # every failure is shown in the banner
            text = self.store.failure_text(exc)
            self.store.reset()
            self.post_message(StoreFailed(text, now))
            return
        self.post_message(SnapshotLoaded(snapshot))

    def on_snapshot_loaded(self, message: SnapshotLoaded) -> None:
        """Show the new figures; the database is fine again."""
        self._in_flight_since = None
        self._failure = None
        self.refreshes += 1
        self.snapshot = message.snapshot
        self._update_problem()

    def on_store_failed(self, message: StoreFailed) -> None:
        """Keep the last figures, and say why they are stale."""
        self._in_flight_since = None
        self._failure = message.text
        self._update_problem()

    def report_failure(self, exc: BaseException) -> None:
        """A drill-down's read failed (called from its worker thread)."""
        text = self.store.failure_text(exc)
        self.store.reset()
        self.call_from_thread(self._drill_down_failed, text)

    def _drill_down_failed(self, text: str) -> None:
        self._failure = text
        self._update_problem()

    def _update_problem(self) -> None:
        snapshot = self.snapshot
        now = self.clock()
        shown = (
            "no figures read yet"
            if snapshot is None
            else f"showing figures from {fmt.clock(snapshot.taken_ns)} "
            f"({fmt.age(now, snapshot.taken_ns)} old)"
        )
        started = self._in_flight_since
        waiting = None if started is None else time.monotonic() - started
        if self._failure is not None:
            self.store_problem = (
                f"DATABASE UNAVAILABLE: {self._failure} | {shown}; retrying every "
                f"{self.refresh_s:g} s"
            )
        elif waiting is not None and waiting >= self.stale_after_s:
            self.store_problem = (
                f"DATABASE NOT ANSWERING for {waiting:.0f} s | {shown}; still waiting"
            )
        else:
            self.store_problem = None

    # ----- actions -------------------------------------------------------------------------------

    def action_promote(self) -> None:
        """Promote to the next stage: only when the gate passes, after a confirmation."""
        self._plan("promote", force=False)

    def action_force_promote(self) -> None:
        """Promote whatever the gate says: a reason is required, the event is marked forced."""
        self._plan("promote", force=True)

    def action_rollback(self) -> None:
        """Roll back one stage, after a confirmation."""
        self._plan("rollback", force=False)

    def action_kill(self) -> None:
        """Set the kill flag of the migration chosen (or of all: everything to Python, every
        process), after a confirmation."""
        within = self._scope()
        which = "Every operation" if within is None else f"Every operation of {within}"
        body = (
            f"{which} goes to Python in every process within about a second; the stage "
            "stays where it is. `u` (unkill) clears it."
        )
        title = "Kill: everything to Python" if within is None else f"Kill {within}: to Python"
        request = ActionRequest("kill", None, None, migration=within)
        self._confirm(request, title, body, True)

    def action_unkill(self) -> None:
        """Clear the kill flag, after a confirmation (decided on the stage shown)."""
        seen = self._shown_state()
        stage = f" ({seen.stage})" if seen is not None else ""
        body = f"Routing follows the current stage's{stage} percentages again in every process."
        within = self._scope()
        request = ActionRequest("unkill", None, None, seen=seen, migration=within)
        title = "Unkill: clear the kill flag" if within is None else f"Unkill {within}"
        self._confirm(request, title, body)

    def action_reset_breaker(self, op: str) -> None:
        """Close an operation's circuit breaker, after a confirmation (decided on the stage
        shown)."""
        seen = self._shown_state()
        stage = f" ({seen.stage})" if seen is not None else ""
        body = f"{op} goes back to its stage{stage} percentage to Rust in every process."
        request = ActionRequest(
            "reset_breaker", None, None, op=op, seen=seen, migration=self._scope()
        )
        self._confirm(request, f"Reset the {op} breaker", body)

    def _shown_state(self) -> LiveState | None:
        """The rollout state on screen (None before the first refresh, or while the scope
        just chosen has not been read yet)."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.migration != self.migration:
            return None
        return snapshot.overview.state

    def _scope(self) -> str | None:
        """The migration the actions act on (None: every migration)."""
        return self.migration

    def migration_choices(self) -> list[str | None]:
        """What `s` cycles through: all (None), then every migration the latest refresh
        found (configured, then the store's own)."""
        found = [] if self.snapshot is None else list(self.snapshot.migrations)
        return [None, *(found or self.cfg.rollout.migration_names())]

    def action_next_migration(self) -> None:
        """Scope the screens and the actions to the next migration (then all again); the
        figures of the new scope come with the refresh started now."""
        choices = self.migration_choices()
        i = choices.index(self.migration) if self.migration in choices else 0
        self.choose_migration(choices[(i + 1) % len(choices)])

    def choose_migration(self, migration: str | None) -> None:
        """Scope the screens and the actions to `migration` (None: all); read it at once."""
        self.migration = migration
        self.show_left = False
        self.refresh_now()

    def _confirm(self, request: ActionRequest, title: str, body: str, danger: bool = False) -> None:
        dialog = ActionDialog(request, title, Content(body), danger=danger)
        self.push_screen(dialog, self._confirmed)

    def _plan(self, action: str, *, force: bool) -> None:
        self._plan_from(action, force=force, seen=self._shown_state(), within=self._scope())

    @work(thread=True, exit_on_error=False, group="actions")
    def _plan_from(
        self, action: str, *, force: bool, seen: LiveState | None, within: str | None
    ) -> None:
        """Check the action against the store, from the state on screen (`seen`): the dialog
        then shows what the person decided on, or the refusal says what moved."""
        name = "force promote" if force else action
        try:
            engine = self.store.engine()
            if action == "promote":
                plan = actions.plan_promote(
                    engine, self.cfg, force=force, now_ns=self.clock(), seen=seen, migration=within
                )
            else:
                plan = actions.plan_rollback(
                    engine, self.cfg, now_ns=self.clock(), seen=seen, migration=within
                )
        except actions.ActionError as exc:
            self.post_message(ActionRefused(name, exc.for_dashboard()))
            return
        except Exception as exc:  # shown, never raised (a move of the state included)
            self.post_message(ActionRefused(name, self.store.failure_text(exc)))
            return
        if force and not plan.forced:
            # `P` on a passing gate would be an ordinary promotion under a "force" key: say so.
            text = (
                f"the gate says PASS for stage {plan.before.stage!r}: there is nothing to force "
                "(p promotes)"
            )
            self.post_message(ActionRefused(name, text))
            return
        self.post_message(PlanReady(plan))

    def on_plan_ready(self, message: PlanReady) -> None:
        """Ask for confirmation, showing what will change."""
        plan = message.plan
        title = f"{'Force promote' if plan.forced else plan.action.capitalize()}"
        title += f" {plan.migration}: " if plan.migration else ": "
        title += f"{plan.from_stage.name} -> {plan.to_stage.name}"
        request = ActionRequest(
            plan.action,
            None,
            None,
            force=plan.forced,
            to=plan.to_stage.name,
            seen=plan.before,
            migration=plan.migration,
        )
        dialog = ActionDialog(
            request, title, plan_body(plan), reason_required=plan.forced, danger=plan.forced
        )
        self.push_screen(dialog, self._confirmed)

    def _confirmed(self, request: ActionRequest | None) -> None:
        if request is not None:
            self._act(request)

    @work(thread=True, exit_on_error=False, group="actions")
    def _act(self, request: ActionRequest) -> None:
        who, reason, seen, within = request.who, request.reason, request.seen, request.migration
        told = self._waiting
        try:
            engine_cfg = (self.store.engine(), self.cfg)
            if request.action == "promote":
                result = actions.promote(
                    *engine_cfg,
                    who=who,
                    reason=reason,
                    force=request.force,
                    seen=seen,
                    on_busy=told,
                    migration=within,
                )
            elif request.action == "rollback":
                result = actions.rollback(
                    *engine_cfg,
                    to=request.to,
                    who=who,
                    reason=reason,
                    seen=seen,
                    on_busy=told,
                    migration=within,
                )
            elif request.action == "kill":
                result = actions.kill(
                    *engine_cfg, who=who, reason=reason, on_busy=told, migration=within
                )
            elif request.action == "unkill":
                result = actions.unkill(
                    *engine_cfg, who=who, reason=reason, seen=seen, on_busy=told, migration=within
                )
            else:
                assert request.op is not None
                result = actions.reset_breaker(
                    *engine_cfg,
                    request.op,
                    who=who,
                    reason=reason,
                    seen=seen,
                    on_busy=told,
                    migration=within,
                )
        except actions.ActionError as exc:
            self.post_message(ActionRefused(request.action, exc.for_dashboard()))
            return
        except StateConflictError as exc:  # the state moved since the dialog was shown
            self.post_message(ActionRefused(request.action, str(exc)))
            return
        except Exception as exc:  # shown, never raised
            self.post_message(ActionRefused(request.action, self.store.failure_text(exc)))
            return
        text = f"breaker of {request.op} closed" if request.op is not None else result.summary()
        self.post_message(ActionDone(result, text))

    def _waiting(self, text: str) -> None:
        """An action waits on a busy database (called from its worker thread): say so."""
        self.call_from_thread(
            self.notify, text, title="waiting", severity="warning", timeout=8, markup=False
        )

    def on_action_done(self, message: ActionDone) -> None:
        """Say what was done, and read the new state at once."""
        title = "done: event written" if message.result.changed else "nothing to do"
        self.notify(message.text, title=title, timeout=8, markup=False)
        self.refresh_now()

    def on_action_refused(self, message: ActionRefused) -> None:
        """Say why nothing was done."""
        self.notify(
            message.text,
            title=f"{message.action} refused",
            severity="error",
            timeout=15,
            markup=False,
        )

    # ----- the rest ------------------------------------------------------------------------------

    def action_help(self) -> None:
        """Show every key."""
        groups: list[tuple[str, list[BindingType]]] = [
            ("everywhere", list(self.BINDINGS)),
            ("overview", list(OverviewScreen.BINDINGS)),
            ("errors", list(ErrorsScreen.BINDINGS)),
            ("fallbacks, events", list(FallbacksScreen.BINDINGS)),
            ("shadow", list(ShadowScreen.BINDINGS)),
        ]
        self.push_screen(HelpScreen(groups))

    def action_toggle_theme(self) -> None:
        """Dark or light."""
        self.theme = LIGHT if self.theme == DARK else DARK

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's own palette commands, but the help and the screenshot are ours."""
        for command in super().get_system_commands(screen):
            if command.title.lower() not in ("keys", "show keys and help panel", "screenshot"):
                yield command
        yield SystemCommand("Help", "every key of the dashboard", self.action_help)
        yield SystemCommand(
            "Screenshot",
            f"save this screen as SVG in {self.screenshot_dir}",
            # After the palette has closed, so the picture is of the screen, not of the palette.
            lambda: self.set_timer(0.1, self.action_screenshot),
        )

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """Save the screen as SVG (`save_screen`) and say where, or why not."""
        folder = self.screenshot_dir if path is None else Path(path)
        try:
            saved = self.save_screen(folder, filename)
        except OSError as exc:
            self.notify(
                f"{folder}: {exc.strerror or exc}",
                title="screenshot not saved",
                severity="error",
                timeout=15,
                markup=False,
            )
            return
        self.notify(str(saved), title="screenshot saved", timeout=15, markup=False)

    def save_screen(self, folder: Path, filename: str | None = None) -> Path:
        """Write the screen as SVG into `folder`, as `filename` or, by default,
        `harness-<screen>-<YYYYmmddTHHMMSSZ>.svg` at the dashboard's clock (`-2`, `-3` ... added
        rather than overwriting a file). Returns the file's absolute path; raises `OSError` when
        the folder cannot be written (the Screenshot command shows it)."""
        if filename is None:
            stamp = datetime.fromtimestamp(self.clock() / 1e9, UTC).strftime("%Y%m%dT%H%M%SZ")
            base = f"harness-{self.current_mode}-{stamp}"
            target = folder / f"{base}.svg"
            n = 1
            while target.exists():
                n += 1
                target = folder / f"{base}-{n}.svg"
        else:
            target = folder / filename
        svg = self.export_screenshot()
        with target.open("x" if filename is None else "w", encoding="utf-8") as out:
            out.write(svg)
        return target.resolve()


def make_app(
    cfg: HarnessConfig,
    *,
    store: Store | None = None,
    clock: Callable[[], int] = time.time_ns,
    refresh_s: float = 1.0,
    stale_after_s: float = STALE_AFTER_S,
    screenshot_dir: Path | None = None,
) -> HarnessApp:
    """The dashboard on `cfg`'s database (`cfg.db.url`, or `store` when given); `clock` (ns
    since the epoch) ends every window, so tests can pin it; screenshots go to
    `screenshot_dir` (default: the current folder)."""
    if store is None:
        read_only = not can_write(cfg.db.url)  # a copy or a read-only mount: watch it anyway
        store = Store(
            cfg.db.url, partial(open_store, read_only=read_only, read_timeout_s=READ_TIMEOUT_S)
        )
    return HarnessApp(
        cfg,
        store,
        clock=clock,
        refresh_s=refresh_s,
        stale_after_s=stale_after_s,
        screenshot_dir=screenshot_dir,
    )
