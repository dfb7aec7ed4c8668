"""Every migration at a glance: its stage on its ladder, its percentage to Rust, its targets, its
kill flag, its open breakers and its gate's verdict, one line each, the chosen one marked.

  > orders canary 3/6     5%   targets MNQ breakers closed gate INCONCLUSIVE
    bars   production 6/6 100% targets all OPEN aggregate_bars KILLED gate FAIL

The percentage is the stage's when every operation of the migration has the same one, else
the lowest and highest (the operations' table below has each); `targets` the stage's symbols
and accounts (`all`: no targets, every call may go to Rust); `OPEN` names the operations whose
breaker is open; `KILLED` shows the migration's kill flag (its own or the global one).
"""

from __future__ import annotations

from typing import Final

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from harness.control.actions import Overview
from harness.output import printable
from harness.tui import format as fmt
from harness.tui.widgets.stage_ladder import verdict_markup

__all__ = ["MigrationList", "percent_text", "targets_text"]

_TARGETS: Final = 12
_BREAKERS: Final = 14


def percent_text(view: Overview) -> str:
    """The stage's percentage to Rust of the migration's operations: one figure when they
    share it, else `low-high%`."""
    values = sorted({view.stage.percent.of(op) for op in view.figures.ops} or {0.0})
    if len(values) == 1:
        return fmt.percent(values[0])
    return f"{fmt.percent(values[0]).rstrip('%')}-{fmt.percent(values[-1])}"


def targets_text(view: Overview) -> str:
    """The stage's targets: symbols, then accounts as `#id` (`all`: none, every call)."""
    targets = view.stage.targets
    shown = [*targets.symbols, *(f"#{a}" for a in targets.accounts)]
    return ",".join(printable(str(t)) for t in shown) if shown else "all"


def _cut(text: str, width: int) -> str:
    return text if len(text) < width else text[: width - 2] + "…"


class MigrationList(Static):
    """The lines; set `views` (name -> its overview) and `chosen` (None: all) to redraw."""

    views: reactive[dict[str, Overview]] = reactive(dict, always_update=True, layout=True)
    chosen: reactive[str | None] = reactive(None)

    def render(self) -> Content:
        """One self-labelled line per migration (no header: every line a row of the screen's
        height is worth, at 80x24 the charts' room), its columns as wide as their longest."""
        rows = []
        for name, view in self.views.items():
            ladder = [s.name for s in view.ladder]
            place = f"{view.state.stage} {ladder.index(view.state.stage) + 1}/{len(ladder)}"
            targets = f"targets {_cut(targets_text(view), _TARGETS)}"
            rows.append((name, (name, place, percent_text(view), targets), view))
        widths = [max((len(cells[i]) for _, cells, _ in rows), default=0) + 1 for i in range(4)]
        lines = []
        for name, cells, view in rows:
            mark = "> " if name == self.chosen else "  "
            line = Content(mark + "".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)))
            own = set(view.ops or view.figures.ops)
            opened = sorted(b.op for b in view.breakers.values() if b.is_open and b.op in own)
            if opened:
                said = f"OPEN {_cut(','.join(opened), _BREAKERS)}"
                line += Content.from_markup("[b $error]$said[/]", said=said) + Content(" ")
            else:
                line += Content("breakers closed ")
            if view.state.kill:
                line += Content.from_markup("[b $error]KILLED[/]") + Content(" ")
            line += Content("gate ") + verdict_markup(view.verdict.result)
            if name == self.chosen:
                line = line.stylize("b")
            lines.append(line)
        if not lines:
            lines.append(Content("  reading the store..."))
        return Content("\n").join(lines)
