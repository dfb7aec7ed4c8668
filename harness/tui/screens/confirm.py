"""The confirmation of an action: what will change, a reason and who acts, then confirm or
cancel. The action itself is done by the app through `harness.control.actions`, which checks
everything again: the gate may have moved while the dialog was open, and the state the dialog
showed (`ActionRequest.seen`) must still be the store's, or nothing is done."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from harness.control.actions import (
    REASON_MAX_CHARS,
    WHO_MAX_CHARS,
    ActionInputError,
    ActionPlan,
    person_text,
)
from harness.store.state import LiveState, default_who
from harness.tui import format as fmt
from harness.tui.widgets.stage_ladder import verdict_markup

__all__ = ["ActionDialog", "ActionRequest", "plan_body"]


@dataclass(frozen=True)
class ActionRequest:
    """An action a person confirmed: what, by whom, why (and for whom: `to`, `op`), decided on
    the state `seen` (what the dialog, or the screen behind it, showed; None: nothing was
    shown yet)."""

    action: str
    who: str | None
    reason: str | None
    force: bool = False
    to: str | None = None
    op: str | None = None
    seen: LiveState | None = None
    migration: str | None = None
    """The migration acted on (None: every migration at once)."""


def plan_body(plan: ActionPlan) -> Content:
    """What a promotion or rollback changes: the stages, each operation's percentage to Rust
    and the shadow sample rate before and after, the gate's verdict now and the settings that
    judged it, and, when they differ, the settings the new stage will be judged by."""
    lines = [Content(f"{'% to Rust':<18}{'now':>8}{'after':>8}")]
    for op, before, after in plan.percent_changes():
        mark = "" if before == after else "  *"
        lines.append(Content(f"{op!s:<18}{fmt.percent(before):>8}{fmt.percent(after):>8}{mark}"))
    rate_a, rate_b = plan.from_stage.shadow_sample_rate, plan.to_stage.shadow_sample_rate
    lines.append(Content(f"{'shadow sampled':<18}{fmt.rate(rate_a):>8}{fmt.rate(rate_b):>8}"))
    lines.append(Content("gate now: ") + verdict_markup(plan.verdict.result))
    judged_by = plan.verdict.gate_settings
    if judged_by is not None:
        lines.append(Content(f"judged by gate settings {judged_by['name']!r}"))
        following = plan.next_gate
        if following is not None and following.fingerprint != judged_by["fingerprint"]:
            lines.append(
                Content(
                    f"{plan.to_stage.name} will be judged by this dashboard's: {following.name!r}"
                )
            )
    if plan.forced:
        lines.append(
            Content.from_markup(
                "[b $error]FORCED[/]: the gate does not pass; the event is marked forced "
                "and needs a reason."
            )
        )
    return Content("\n").join(lines)


class ActionDialog(ModalScreen[ActionRequest | None]):
    """Asks for a reason (required when `reason_required`) and who acts (the OS user by
    default); dismissed with the `ActionRequest`, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        request: ActionRequest,
        title: str,
        body: Content,
        *,
        reason_required: bool = False,
        danger: bool = False,
    ) -> None:
        super().__init__()
        self.request = request
        self.title_text = title
        self.body = body
        self.reason_required = reason_required
        self.danger = danger

    def compose(self) -> ComposeResult:
        """Title, what changes, reason, who, buttons."""
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body")
            hint = "required" if self.reason_required else "optional, written with the event"
            with Horizontal(classes="field"):
                yield Label("reason", classes="field-label")
                yield Input(placeholder=hint, id="reason", compact=True)
            with Horizontal(classes="field"):
                yield Label("who", classes="field-label")
                yield Input(value=default_who(), placeholder="who acts", id="who", compact=True)
            yield Static("", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                if self.danger:
                    yield Button("Confirm", variant="error", id="confirm", compact=True)
                else:
                    yield Button("Confirm", variant="primary", id="confirm", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        """Start in the reason field."""
        self.query_one("#reason", Input).focus()

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted)
    def confirm(self) -> None:
        """Dismiss with the request, unless a required reason is missing or the reason or who
        breaks the rule every typed text follows (`person_text`, as `--reason` and `--who`)."""
        try:
            typed = self.query_one("#reason", Input).value
            reason = person_text("reason", typed, limit=REASON_MAX_CHARS)
        except ActionInputError as exc:
            self._refuse("#reason", str(exc))
            return
        try:
            who = person_text("who", self.query_one("#who", Input).value, limit=WHO_MAX_CHARS)
        except ActionInputError as exc:
            self._refuse("#who", str(exc))
            return
        if self.reason_required and not reason:
            self._refuse("#reason", "a reason is required")
            return
        self.dismiss(replace(self.request, who=who, reason=reason))

    def _refuse(self, field: str, text: str) -> None:
        self.query_one("#dialog-error", Static).update(Content(text))
        self.query_one(field, Input).focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Dismiss with nothing done."""
        self.dismiss(None)
