"""The process's alerters, and `notify`, the one function every event source calls.

Whoever writes an event tells its targets: the store calls `notify` once an event's
transaction commits, the recorder when it starts spilling, automatic promotion when it
promotes. An event another process writes (a kill typed in another terminal) is sent by that
process, with its own `alerts.urls`: never twice, and never late by a poll.

`notify` hands the alert to each open `Alerter` (a deque append under a lock: it never waits
on the network); with none open it does nothing, and `listening()` lets a caller skip even
making the alert. `open_alerter(config)` returns the process's alerter for that config, shared
(counted) by the harnesses and the command that open it with the same config, so an event is
sent once per target even when a bot opens two harnesses.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from harness.alerts.event import Alert

if TYPE_CHECKING:
    from harness.alerts.sender import Alerter
    from harness.config import AlertsConfig

__all__ = ["listening", "notify", "open_alerter"]

_lock = threading.Lock()
_open: dict[tuple[object, ...], Alerter] = {}
_active: tuple[Alerter, ...] = ()  # read without the lock on every notify


def listening() -> bool:
    """Whether any alerter is open in this process (False: `notify` would do nothing)."""
    return bool(_active)


def notify(alert: Alert) -> None:
    """Queue `alert` for every target of every open alerter whose `alerts.events` selects it.
    Never blocks on the network and never raises: a full queue drops and counts (`stats`)."""
    for alerter in _active:
        alerter.submit(alert)


def _key(config: AlertsConfig) -> tuple[object, ...]:
    return (
        tuple(config.urls),
        tuple(config.events),
        config.timeout_s,
        config.deadline_s,
        config.max_pending,
        config.flush_s,
    )


def open_alerter(config: AlertsConfig, secrets: Iterable[str] = ()) -> Alerter | None:
    """The process's alerter for `config`, started (None without `urls`); `close()` it when
    done (the last close flushes, at most `flush_s`). `secrets` (an API key, a database
    password) are replaced by `***` in every alert it sends."""
    if not config.urls:
        return None
    from harness.alerts.sender import Alerter

    global _active
    key = _key(config)
    with _lock:
        alerter = _open.get(key)
        if alerter is None:
            alerter = _open[key] = Alerter(config, secrets, on_closed=lambda: _forget(key))
            _active = tuple(_open.values())
        else:
            alerter.share(secrets)
        return alerter


def _forget(key: tuple[object, ...]) -> None:
    global _active
    with _lock:
        _open.pop(key, None)
        _active = tuple(_open.values())


def _close_all() -> None:
    """At interpreter exit: every alerter still open flushes, within its `flush_s`."""
    for alerter in list(_open.values()):
        alerter.close(force=True)


atexit.register(_close_all)
