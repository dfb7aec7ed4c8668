"""Alerts: people are told when a rollout rolls back, a breaker trips, someone kills, promotes
or rolls back, the native module fails to load, rows are lost or the recorder spills.

    alerts.urls=[https://hooks.example.com/harness,slack://T/B/C]   # config, any command

`notify(alert)` is the one entry point (the store calls it for every event it commits, the
recorder when it spills; automatic promotion calls it too); `open_alerter(config)` starts the
senders a harness or a command owns (`harness.alerts.sender`). See docs/alerts.md.
"""

from harness.alerts.event import TEST, Alert
from harness.alerts.hub import listening, notify, open_alerter

__all__ = ["TEST", "Alert", "listening", "notify", "open_alerter"]
