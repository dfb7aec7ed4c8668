"""The stage ladder: every stage in order, the current one marked, and the gate's verdict."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from harness.control.actions import Overview
from harness.gate.verdict import Outcome

__all__ = ["StageLadder", "verdict_markup"]

_VERDICT_STYLE = {
    Outcome.PASS: "$success",
    Outcome.FAIL: "$error",
    Outcome.INCONCLUSIVE: "$warning",
}


def verdict_markup(outcome: Outcome) -> Content:
    """PASS / FAIL / INCONCLUSIVE in bold, in the theme's success / error / warning colour."""
    return Content.from_markup(f"[b {_VERDICT_STYLE[outcome]}]$text[/]", text=outcome.value)


class StageLadder(Static):
    """`off > shadow > [canary] > staging > staging_50 > production   gate INCONCLUSIVE`.

    The current stage is shown reversed, in the error colour while the kill flag is set (no
    stage's percentages apply then; the alarm banner says so in words).
    """

    overview: reactive[Overview | None] = reactive(None)

    def render(self) -> Content:
        """The ladder line."""
        view = self.overview
        if view is None:
            return Content("stage ladder: waiting for the store")
        steps = []
        for stage in view.ladder:
            if stage.name == view.state.stage:
                style = "b reverse $error" if view.state.kill else "b reverse $accent"
                steps.append(Content.from_markup(f"[{style}] $name [/]", name=stage.name))
            else:
                steps.append(Content(stage.name))
        ladder = Content(" > ").join(steps)
        return ladder + Content("   gate ") + verdict_markup(view.verdict.result)
