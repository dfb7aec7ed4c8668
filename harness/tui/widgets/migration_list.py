"""Every migration at a glance: its stage on its ladder, its percentage to Rust, its targets, its
kill flag, its open breakers and its gate's verdict, one line each, the chosen one marked.

    migration stage          % Rust  targets   kill  breakers    gate
  > orders    canary 3/6     5%      MNQ       -     -           INCONCLUSIVE
    bars      production 6/6 100%    all       -     -           PASS

`% Rust` is the stage's percentage when every operation of the migration has the same one,
else the lowest and highest (the operations' table below has each); `targets` the stage's
symbols and accounts (`all`: no targets, every call may go to Rust).
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

_COLUMNS: Final = (("migration", 10), ("stage", 15), ("% Rust", 8), ("targets", 10))
_KILL: Final = 6
_BREAKERS: Final = 12


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
        """The header and one line per migration."""
        head = "".join(f"{name:<{width}}" for name, width in _COLUMNS)
        head += f"{'kill':<{_KILL}}{'breakers':<{_BREAKERS}}gate"
        lines = [Content.from_markup("[b]  $head[/]", head=head)]
        for name, view in self.views.items():
            ladder = [s.name for s in view.ladder]
            place = f"{view.state.stage} {ladder.index(view.state.stage) + 1}/{len(ladder)}"
            cells = (name, place, percent_text(view), targets_text(view))
            row = "".join(
                f"{_cut(cell, width):<{width}}"
                for cell, (_, width) in zip(cells, _COLUMNS, strict=True)
            )
            opened = sorted(b.op for b in view.breakers.values() if b.is_open)
            mark = "> " if name == self.chosen else "  "
            line = Content(mark + row)
            kill = Content.from_markup(f"[b $error]{'KILL':<{_KILL}}[/]")
            line += kill if view.state.kill else Content(f"{'-':<{_KILL}}")
            broken = f"{_cut(','.join(opened), _BREAKERS):<{_BREAKERS}}" if opened else None
            line += (
                Content.from_markup("[b $error]$b[/]", b=broken)
                if broken
                else Content(f"{'-':<{_BREAKERS}}")
            )
            line += verdict_markup(view.verdict.result)
            if name == self.chosen:
                line = line.stylize("b")
            lines.append(line)
        if not self.views:
            lines.append(Content("  reading the store..."))
        return Content("\n").join(lines)
