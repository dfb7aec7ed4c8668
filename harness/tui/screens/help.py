"""The help screen: every key of the dashboard, from the bindings themselves (so it cannot go
out of date), grouped by where they work."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["CLOSE_KEYS", "HelpScreen", "key_lines"]

CLOSE_KEYS = frozenset({"escape", "q", "question_mark", "f1", "enter"})


_NAMES = {"question_mark": "?", "f1": "F1", "escape": "Esc", "ctrl+p": "ctrl+p"}


def _key(binding: BindingType) -> tuple[str, str] | None:
    """(keys, what) of a binding: its tooltip, else its description (the footer's word)."""
    if not isinstance(binding, Binding) or not (binding.tooltip or binding.description):
        return None
    keys = ", ".join(_NAMES.get(k.strip(), k.strip()) for k in binding.key.split(","))
    return keys, binding.tooltip or binding.description


def key_lines(groups: list[tuple[str, list[BindingType]]]) -> list[tuple[str, str, str]]:
    """(group, keys, what they do) for every described binding of every group."""
    out = []
    for group, bindings in groups:
        for binding in bindings:
            pair = _key(binding)
            if pair is not None:
                out.append((group, *pair))
    return out


class HelpScreen(ModalScreen[None]):
    """The keys; escape (or q, ?, F1, enter) or a click closes it."""

    def __init__(self, groups: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__()
        self.groups = groups

    def compose(self) -> ComposeResult:
        """One line per key, under its group's heading."""
        lines: list[Content] = [Content.from_markup("[b]rollout harness dashboard: keys[/]")]
        last = None
        for group, keys, what in key_lines(self.groups):
            if group != last:
                lines.append(Content(""))
                lines.append(Content.from_markup("[b $accent]$g[/]", g=group))
                last = group
            lines.append(Content(f"  {keys:<12} {what}"))
        lines.append(Content(""))
        lines.append(
            Content(
                "ctrl+p opens the command palette (every action and screen by name). "
                "Figures cover the current stage's window, as the gate judges it; charts "
                "the last 30 minutes. Escape closes this help."
            )
        )
        with VerticalScroll(id="help"):
            yield Static(Content("\n").join(lines), id="help-text")

    def on_mount(self) -> None:
        """Arrows and page keys scroll."""
        self.query_one("#help", VerticalScroll).focus()

    def on_key(self, event: Key) -> None:
        """Escape, q, ?, F1 or enter close the help (arrows and page keys scroll it)."""
        if event.key in CLOSE_KEYS:
            event.stop()
            self.dismiss(None)

    def on_click(self) -> None:
        """A click closes it too."""
        self.dismiss(None)
