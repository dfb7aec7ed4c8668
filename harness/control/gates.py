"""Which gate settings judge a stage: the ones stored with it when it started.

The rule (docs/gate.md, "Which settings judge a stage"):

- A stage is judged by the gate settings of the command that started it: `harness run` or any
  command creating the rollout state, a promotion (`harness promote gate=quick`, the
  dashboard's `p`), a rollback, the automatic rollback. They are stored with the rollout state
  (`rollout_state.gate_*`, migration 0003) and the stage-changing event carries them in full
  (`next_stage_gate`).
- Every reader judges the current stage with the stored settings, whatever its own config:
  `harness status`, `harness gate`, `harness promote`, the dashboard and the automatic rollback
  (a running bot's monitor) agree. Each verdict says which settings judged it
  (`Verdict.gate_settings`: name, fingerprint, source); a command whose own settings differ
  says so in one line, and its settings are the ones a promotion it makes stores for the next
  stage.
- `--rejudge` (`harness gate`, `harness status`) judges with the command's own settings
  instead, shown as such; it writes nothing. A stage stored before 0003 (NULL) is judged by
  each command's own settings, as before.
- Only what decides a verdict is stored: `alpha`, `min_soak_s` and every operation's criteria.
  `auto_rollback`, `auto_promote` (with `auto_promote_until` and `trading_hours`) and
  `check_interval_s` stay each process's own (whether and how often a running process acts on
  the verdict).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from enum import Enum
from typing import Any, Final

from harness.config import Criterion, GateConfig, OpCriteria
from harness.operations import Operation
from harness.store.state import StageGate

__all__ = [
    "COMMAND",
    "REJUDGED",
    "STORED",
    "Judging",
    "gate_config",
    "judging",
    "stage_gate",
]

STORED: Final = "stored"
"""Source of a verdict's settings: stored with the stage when it started."""
COMMAND: Final = "command"
"""Source: the command's own settings, none being stored with the stage (a store before 0003)."""
REJUDGED: Final = "rejudged"
"""Source: the command's own settings, asked for with `--rejudge` instead of the stored ones."""


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float | int) and not isinstance(value, bool):
        return float(value)  # 300 and 300.0 are the same setting, and hash the same
    return value


def _settings(gate: GateConfig) -> dict[str, Any]:
    """What decides a verdict, as canonical JSON-able data."""
    ops: dict[str, Any] = {}
    for op in sorted({*Operation, *gate.ops}):
        criteria = asdict(gate.criteria(op))
        ops[str(op)] = {key: _plain(value) for key, value in criteria.items()}
    return {"alpha": float(gate.alpha), "min_soak_s": float(gate.min_soak_s), "ops": ops}


def stage_gate(gate: GateConfig) -> StageGate:
    """`gate` as the store keeps it with a stage: its name, fingerprint and settings JSON."""
    text = json.dumps(_settings(gate), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return StageGate(gate.name, digest, text)


_OP_FIELDS: Final = {f.name: f for f in fields(OpCriteria)}


def _criteria(data: dict[str, Any]) -> OpCriteria:
    known = {key: value for key, value in data.items() if key in _OP_FIELDS}
    for key in ("min_samples", "min_shadow_comparisons", "max_shadow_mismatches"):
        if key in known:
            known[key] = int(known[key])
    if "critical" in known:
        known["critical"] = [Criterion(c) for c in known["critical"]]
    return OpCriteria(**known)


def gate_config(stored: StageGate, base: GateConfig) -> GateConfig:
    """The `GateConfig` of settings stored with a stage; `auto_rollback`, `auto_promote`,
    `auto_promote_until`, `trading_hours` and `check_interval_s` are `base`'s (the process's
    own). Keys a newer version stored and
    this one does not know are left out. Raises ValueError when the settings cannot be read."""
    try:
        data = json.loads(stored.settings)
        ops = {str(op): _criteria(dict(criteria)) for op, criteria in data["ops"].items()}
        return GateConfig(
            alpha=float(data["alpha"]),
            min_soak_s=float(data["min_soak_s"]),
            auto_rollback=base.auto_rollback,
            check_interval_s=base.check_interval_s,
            auto_promote=base.auto_promote,
            auto_promote_until=base.auto_promote_until,
            trading_hours=base.trading_hours,
            ops=ops,
            name=stored.name,
        )
    except (KeyError, TypeError, ValueError) as exc:
        reason = f"the stored gate settings {stored.name!r} cannot be read: {exc}"
        raise ValueError(reason) from None


@dataclass(frozen=True, slots=True)
class Judging:
    """The settings a verdict is judged by, and how they compare with the command's own.

    `gate` judges; `name`, `fingerprint` and `source` (`STORED`, `COMMAND`, `REJUDGED`) are
    what the verdict says of it; `own` is the command's own settings as a stage would store
    them (what a promotion it makes stores for the next stage).
    """

    gate: GateConfig
    name: str
    fingerprint: str
    source: str
    own: StageGate

    @property
    def differs(self) -> bool:
        """Whether the settings judging differ from the command's own."""
        return self.fingerprint != self.own.fingerprint

    def ref(self) -> dict[str, str]:
        """JSON-able: {name, fingerprint, source} (what `Verdict.gate_settings` holds)."""
        return {"name": self.name, "fingerprint": self.fingerprint, "source": self.source}

    def note(self, stage: str) -> str | None:
        """One line when the settings judging `stage` are not the command's own (None when
        they are the same), naming both and which one judged."""
        if self.source == STORED and self.differs:
            return (
                f"stage {stage!r} is judged by the gate settings stored when it started, "
                f"{self.name!r} ({self.fingerprint}), not by this command's {self.own.name!r} "
                f"({self.own.fingerprint}); a promotion made here stores this command's for the "
                "next stage (`harness gate --rejudge` judges with them)"
            )
        if self.source == REJUDGED and self.differs:
            return (
                f"stage {stage!r} is judged here by this command's gate settings "
                f"{self.name!r} ({self.fingerprint}) (--rejudge), not by the "
                "ones stored when it started"
            )
        return None


def judging(gate: GateConfig, stored: StageGate | None, *, rejudge: bool = False) -> Judging:
    """The settings that judge a stage whose stored settings are `stored`, for a command whose
    own are `gate` (see the module docstring); unreadable stored settings count as none."""
    own = stage_gate(gate)
    if stored is not None and not rejudge:
        try:
            return Judging(gate_config(stored, gate), stored.name, stored.fingerprint, STORED, own)
        except ValueError:
            pass  # judged by the command's own, as before 0003
    source = REJUDGED if rejudge and stored is not None else COMMAND
    return Judging(gate, own.name, own.fingerprint, source, own)
