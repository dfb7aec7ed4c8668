"""Replay: captured calls through both sides of the installed build, offline (`harness replay`).

- `core`: `replay` (the captures through both sides: order builds and reads, aggregation on
  both engines), `record` (the `replays` rows the gate's `replay` criterion reads);
- `cli`: the `harness replay` command.
"""

from harness.replay.core import CallResult, OpReplay, ReplayReport, record, replay, replay_one

__all__ = ["CallResult", "OpReplay", "ReplayReport", "record", "replay", "replay_one"]
