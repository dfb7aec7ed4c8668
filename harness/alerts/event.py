"""One alert: what happened, to which migration, who did it, when, where; its JSON body.

An alert is made from the `rollout_events` row a process writes (`harness.store.state.write_event`,
sent once its transaction commits), or directly for what the store cannot hold at that moment
(`spill`: the database is down; a run ending with rows dropped). The body a webhook receives is
`Alert.body()`: `{"event", "migration", "from", "to", "reason", "who", "at", "host", "gate",
"op", "run_id", "pid", "id"}`, `at` in ISO-8601 UTC, `migration` null for a global event.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["TEST", "Alert"]

TEST = "test"
"""The kind of the event `harness alerts test` sends (to every target, whatever `alerts.events`)."""


def _time_ns() -> int:
    return time.time_ns()


@dataclass(frozen=True, slots=True)
class Alert:
    """One event to tell people of. `kind` is the store's event kind (`auto_rollback`,
    `breaker_trip`, `kill`, ...; `spill`, `test`); `at_ns` the event's time (ns since the
    epoch, UTC); `gate` the verdict's figures behind an automatic action, when there was one."""

    kind: str
    migration: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    reason: str | None = None
    who: str | None = None
    op: str | None = None
    run_id: str | None = None
    gate: dict[str, Any] | None = None
    at_ns: int = field(default_factory=_time_ns)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def body(self) -> dict[str, Any]:
        """The JSON a webhook receives (module docstring)."""
        at = datetime.fromtimestamp(self.at_ns / 1e9, UTC).isoformat(timespec="milliseconds")
        return {
            "event": self.kind,
            "migration": self.migration,
            "from": self.from_stage,
            "to": self.to_stage,
            "reason": self.reason,
            "who": self.who,
            "at": at.replace("+00:00", "Z"),
            "host": self.host,
            "gate": self.gate,
            "op": self.op,
            "run_id": self.run_id,
            "pid": self.pid,
            "id": self.id,
        }

    def title(self) -> str:
        """One line for a chat or mail service (`harness: auto_rollback of orders canary ->
        shadow`)."""
        what = f"harness: {self.kind}"
        what += f" of {self.migration}" if self.migration else " (all migrations)"
        if self.op:
            what += f" {self.op}"
        if self.from_stage and self.to_stage and self.from_stage != self.to_stage:
            what += f" {self.from_stage} -> {self.to_stage}"
        elif self.to_stage:
            what += f" at {self.to_stage}"
        return what

    def text(self) -> str:
        """The body for a chat or mail service: the title's facts and the rest, one per line."""
        body = self.body()
        lines = [f"{key}: {value}" for key, value in body.items() if value not in (None, "")]
        return "\n".join(lines)
