"""The stage ladder: every stage in order, the current one marked, and the gate's verdict.

The verdict is never cut: when the whole ladder does not fit the line, the stages farthest
from the current one give way to `…` (the next stage, a promotion's target, is kept before
the previous one).
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from harness.control.actions import Overview
from harness.gate.verdict import Outcome

__all__ = ["StageLadder", "fit_ladder", "verdict_markup"]

_VERDICT_STYLE = {
    Outcome.PASS: "$success",
    Outcome.FAIL: "$error",
    Outcome.INCONCLUSIVE: "$warning",
}
_ARROW = " > "
_MORE = "…"


def verdict_markup(outcome: Outcome) -> Content:
    """PASS / FAIL / INCONCLUSIVE in bold, in the theme's success / error / warning colour."""
    return Content.from_markup(f"[b {_VERDICT_STYLE[outcome]}]$text[/]", text=outcome.value)


def fit_ladder(names: Sequence[str], current: int, width: int) -> tuple[int, int]:
    """The stages `[first, last]` (indices into `names`) to show in `width` characters around
    `current` (drawn as ` name `), with `…` standing for each side cut off. Stages are added
    next first, then previous, alternately, while they fit; the current stage is always
    shown (even when it alone is too wide: the line is cut at its end then)."""

    def length(first: int, last: int) -> int:
        shown = sum(len(n) for n in names[first : last + 1]) + 2  # the current's padding
        shown += len(_ARROW) * (last - first)
        shown += (len(_MORE) + len(_ARROW)) * ((first > 0) + (last < len(names) - 1))
        return shown

    first = last = current
    grew = True
    while grew:
        grew = False
        if last + 1 < len(names) and length(first, last + 1) <= width:
            last, grew = last + 1, True
        if first > 0 and length(first - 1, last) <= width:
            first, grew = first - 1, True
    return first, last


class StageLadder(Static):
    """`off > shadow > [canary] > staging > staging_50 > production  gate INCONCLUSIVE`.

    The current stage is shown reversed, in the error colour while the kill flag is set (no
    stage's percentages apply then; the alarm banner says so in words).
    """

    overview: reactive[Overview | None] = reactive(None)

    def render(self) -> Content:
        """The ladder line, fitted to the widget's width."""
        view = self.overview
        if view is None:
            return Content("stage ladder: waiting for the store")
        said = Content("gate ") + verdict_markup(view.verdict.result)
        verdict = Content("  ") + said
        names = [stage.name for stage in view.ladder]
        current = names.index(view.state.stage)
        room = self.content_size.width - len(verdict)
        first, last = fit_ladder(names, current, room)
        steps = [Content(_MORE)] if first > 0 else []
        for i in range(first, last + 1):
            if i == current:
                style = "b reverse $error" if view.state.kill else "b reverse $accent"
                steps.append(Content.from_markup(f"[{style}] $name [/]", name=names[i]))
            else:
                steps.append(Content(names[i]))
        if last < len(names) - 1:
            steps.append(Content(_MORE))
        ladder = Content(_ARROW).join(steps)
        if len(ladder) > room:  # the current stage alone is too wide: the verdict first
            return said + Content("  ") + ladder
        return ladder + verdict
