"""The command palette (ctrl+p): every action and screen of the dashboard by name, with the
stages it would move between, so a person can type `promote` or `errors` instead of a key."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from harness.tui.app import HarnessApp

__all__ = ["RolloutCommands"]


class RolloutCommands(Provider):
    """Commands: promote, force promote, roll back, kill, unkill, reset a breaker, choose a
    migration, show a screen. Each runs the same app action as its key."""

    @property
    def dashboard(self) -> HarnessApp:
        """The app, typed."""
        return cast("HarnessApp", self.app)

    def commands(self) -> list[tuple[str, Callable[[], object], str]]:
        """(title, callback, help) of every command available now."""
        app = self.dashboard
        snapshot = app.snapshot
        out: list[tuple[str, Callable[[], object], str]] = []
        stage = nxt = prev = None
        if snapshot is not None:
            view = snapshot.overview
            names = [s.name for s in view.ladder]
            stage = view.state.stage
            i = names.index(stage)
            nxt = names[i + 1] if i + 1 < len(names) else None
            prev = names[i - 1] if i > 0 else None
        if nxt is not None or snapshot is None:
            target = f" {stage} -> {nxt}" if nxt else ""
            out.append(
                (f"promote{target}", app.action_promote, "only when the gate passes (key p)")
            )
            out.append(
                (
                    f"force promote{target}",
                    app.action_force_promote,
                    "whatever the gate says; needs a reason, recorded as forced (key P)",
                )
            )
        if prev is not None or snapshot is None:
            target = f" {stage} -> {prev}" if prev else ""
            out.append((f"roll back{target}", app.action_rollback, "one stage down at once (b)"))
        out.append(("kill", app.action_kill, "every operation to Python, every process (k)"))
        out.append(("unkill", app.action_unkill, "clear the kill flag (u)"))
        if snapshot is not None:
            for breaker in snapshot.overview.breakers.values():
                if breaker.is_open:
                    out.append(
                        (
                            f"reset breaker {breaker.op}",
                            partial(app.action_reset_breaker, breaker.op),
                            "close the circuit breaker (a person's decision)",
                        )
                    )
        for choice in app.migration_choices():
            name = choice or "all"
            if choice != app.migration:
                out.append(
                    (
                        f"migration {name}",
                        partial(app.choose_migration, choice),
                        "scope the screens and the actions to it (s cycles)",
                    )
                )
        for mode, title in app.SCREEN_TITLES.items():
            out.append((f"show {title}", partial(app.switch_mode, mode), f"the {title} screen"))
        return out

    async def discover(self) -> Hits:
        """Every command, for an empty palette."""
        for title, callback, text in self.commands():
            yield DiscoveryHit(title, callback, help=text)

    async def search(self, query: str) -> Hits:
        """The commands matching what was typed."""
        matcher = self.matcher(query)
        for title, callback, text in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=text)
