"""What changes in the dashboard, as messages: a refresh landed or failed, an action was
planned, done or refused. Workers (threads) post them; the app and its screens handle them on
the event loop."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from harness.control.actions import ActionPlan, ActionResult
from harness.tui.data import Snapshot

__all__ = [
    "ActionDone",
    "ActionRefused",
    "HistoryLoaded",
    "PlanReady",
    "SnapshotLoaded",
    "StoreFailed",
]


@dataclass
class SnapshotLoaded(Message):
    """A refresh read the store: the new snapshot to show."""

    snapshot: Snapshot


@dataclass
class StoreFailed(Message):
    """A read of the store failed (`text`: one line, password hidden) at `at_ns`."""

    text: str
    at_ns: int


@dataclass
class PlanReady(Message):
    """A promotion or rollback was checked and may go ahead: confirm it (see `ActionPlan`)."""

    plan: ActionPlan


@dataclass
class ActionDone(Message):
    """An action wrote its event."""

    result: ActionResult
    text: str


@dataclass
class ActionRefused(Message):
    """An action was refused (nothing written): why, in the action's own words."""

    action: str
    text: str


@dataclass
class HistoryLoaded(Message):
    """A drill-down's rows (newest first), read for the filters it was asked with."""

    rows: list[dict[str, object]]
