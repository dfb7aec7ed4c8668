"""The router's view of the rollout: one immutable snapshot, swapped whole when anything changes.

A `Snapshot` joins the ladders of this process's config with the live state of the store (each
migration's stage and kill flag, the global kill flag, open breakers), the config's own kill
flag, breakers this process has just tripped, and whether the Rust core loaded. Everything the
hot path needs is a plain dict keyed by operation (its stage, threshold, targets, shadow rate,
migration): one attribute read and one dict read per fact, no lock, no I/O. `build_snapshot`
is pure.

An operation's effective threshold is 0 (everything to Python) when any of these holds, and
`disabled_reason` says which: its migration's stage is not in this process's ladder, a kill
switch is set (config, the store's global flag, or the migration's own), the operation's
breaker is open, or the native module is unavailable. The environment's `TOPSTEPX_USE_RUST` is
not part of the snapshot: it is read on every call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.config import RolloutConfig, StageConfig
from harness.operations import symbol_of
from harness.router.decide import threshold
from harness.store.state import LiveState, MigrationRow, StoreState

__all__ = ["MigrationView", "Snapshot", "Targets", "build_snapshot"]


@dataclass(frozen=True, slots=True)
class Targets:
    """Which calls a stage may send to Rust at all (empty set: any value of that attribute).

    A call is targeted when its `symbol` (a contract id's symbol: `MNQ` of `CON.F.US.MNQ.Z26`)
    is among `symbols` and its `account` among `accounts`, for each set that is not empty. An
    attribute the call cannot tell (a modify of an order this process did not place has no
    symbol) is not targeted: the safe side is Python.
    """

    symbols: frozenset[str]
    accounts: frozenset[int]

    def admits(self, attrs: Mapping[str, Any] | None) -> bool:
        """Whether a call with targeting attributes `attrs` may go to Rust."""
        if attrs is None:
            return False
        if self.symbols:
            symbol = symbol_of(attrs.get("symbol"))
            if symbol is None or symbol not in self.symbols:
                return False
        if self.accounts:
            account = attrs.get("account")
            if isinstance(account, bool) or not isinstance(account, int):
                return False
            if account not in self.accounts:
                return False
        return True

    def text(self) -> str:
        """`symbols MNQ; accounts 12345` (what status lines show)."""
        parts = []
        if self.symbols:
            parts.append("symbols " + ",".join(sorted(self.symbols)))
        if self.accounts:
            parts.append("accounts " + ",".join(str(a) for a in sorted(self.accounts)))
        return "; ".join(parts)


def targets_of(stage: StageConfig | None) -> Targets | None:
    """The stage's targets (None: no targets, every call may go to Rust)."""
    if stage is None:
        return None
    symbols = frozenset(stage.targets.symbols)
    accounts = frozenset(int(a) for a in stage.targets.accounts)
    if not symbols and not accounts:
        return None
    return Targets(symbols, accounts)


@dataclass(frozen=True, slots=True)
class MigrationView:
    """One migration at one moment: its stage (and whether this process knows it), since when,
    its kill flag (own or global) and why, its shadow sample rate, its store version."""

    name: str
    stage: str
    stage_known: bool
    stage_since_ns: int
    kill: bool
    kill_reason: str | None
    shadow_sample_rate: float
    version: int
    operations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the router decides by, at one moment.

    Per operation (plain dicts for speed: never mutate them): `migration_of` its migration,
    `stages` its migration's stage, `percent` the stage's configured share (0 for an unknown
    stage), `thresholds` the effective bucket threshold (`percent * 100`, or 0 when disabled),
    `targets` the stage's targets (None: every call), `shadow_rates` the stage's shadow sample
    rate (0 when Rust may not run at all), `capture_rates` the migration's `capture.rate` (the
    share of calls whose inputs and answers are kept for `harness replay`, whatever the stage),
    `observed` whether either rate is above 0 (a call of an unobserved operation draws nothing
    and builds no shadow inputs: one dict read).
    `migrations` holds each migration's view.
    `open_breakers` merges the store's open breakers with trips not yet written; `kill` is the
    global kill (config or store); `version` the store's global version (0 before a read).
    """

    migrations: Mapping[str, MigrationView]
    migration_of: Mapping[str, str]
    stages: Mapping[str, str]
    percent: Mapping[str, float]
    thresholds: Mapping[str, float]
    targets: Mapping[str, Targets | None]
    shadow_rates: Mapping[str, float]
    kill: bool
    kill_reason: str | None
    open_breakers: frozenset[str]
    native_available: bool
    version: int
    capture_rates: Mapping[str, float] = field(default_factory=dict)
    observed: Mapping[str, bool] = field(default_factory=dict)

    @property
    def stage(self) -> str:
        """The stage every migration is at; when they differ, `orders=canary bars=production`."""
        names = {view.stage for view in self.migrations.values()}
        if len(names) == 1:
            return next(iter(names))
        return " ".join(f"{view.name}={view.stage}" for view in self.migrations.values())

    @property
    def stage_known(self) -> bool:
        """Whether this process knows every migration's stage."""
        return all(view.stage_known for view in self.migrations.values())

    @property
    def stage_since_ns(self) -> int:
        """The latest stage change of any migration."""
        return max((v.stage_since_ns for v in self.migrations.values()), default=0)

    @property
    def shadow_sample_rate(self) -> float:
        """The highest shadow sample rate of any operation now."""
        return max(self.shadow_rates.values(), default=0.0)

    def rust_enabled(self, op: str) -> bool:
        """Whether any call of `op` may go to Rust now (the environment aside)."""
        return self.thresholds.get(op, 0.0) > 0.0

    def disabled_reason(self, op: str) -> str | None:
        """Why `op` sends nothing to Rust (None when some share goes to Rust)."""
        if not self.native_available:
            return "native module unavailable"
        view = self.migrations.get(self.migration_of.get(op, ""))
        if view is None:
            return f"{op} is in no migration"
        if not view.stage_known:
            return f"stage {view.stage!r} is not in this process's ladder of {view.name}"
        if view.kill:
            return "kill switch" + (f": {view.kill_reason}" if view.kill_reason else "")
        if op in self.open_breakers:
            return "circuit breaker open"
        if self.percent.get(op, 0.0) <= 0.0:
            return f"stage {view.stage!r} sends 0% to Rust"
        return None


def _stage(ladder: Iterable[StageConfig], name: str) -> StageConfig | None:
    for stage in ladder:
        if stage.name == name:
            return stage
    return None


def build_snapshot(
    rollout: RolloutConfig,
    live: StoreState | LiveState | None,
    *,
    native_available: bool,
    tripped: Iterable[str] = (),
    start_of: Callable[[str], str] | None = None,
) -> Snapshot:
    """The snapshot for `live` (None: no state read yet; a migration the store has no row of
    is taken at its start stage). A `LiveState` (one stage for every migration) is accepted
    too, for callers that hold one."""
    start = start_of or rollout.start_of
    rows: Mapping[str, MigrationRow] = {}
    store_kill, kill_reason, version = False, None, 0
    store_open: frozenset[str] = frozenset()
    shared: LiveState | None = None
    if isinstance(live, StoreState):
        rows, store_kill, kill_reason = live.migrations, live.kill, live.kill_reason
        version, store_open = live.version, live.open_breakers
    elif isinstance(live, LiveState):
        shared, version, store_open = live, live.version, live.open_breakers
        store_kill, kill_reason = live.kill, live.kill_reason
    kill = rollout.kill or store_kill
    if rollout.kill and not store_kill:
        kill_reason = "rollout.kill is set in the config"
    open_breakers = frozenset(store_open) | frozenset(tripped)
    views: dict[str, MigrationView] = {}
    migration_of: dict[str, str] = {}
    stages: dict[str, str] = {}
    percent: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    targets: dict[str, Targets | None] = {}
    shadow_rates: dict[str, float] = {}
    capture_rates: dict[str, float] = {}
    observed: dict[str, bool] = {}
    for name, migration in rollout.migrations.items():
        row = rows.get(name)
        if shared is not None:
            stage_name, since, own_kill, own_reason = (
                shared.stage,
                shared.stage_since_ns,
                False,
                None,
            )
        elif row is not None:
            stage_name, since = row.stage, row.stage_since_ns
            own_kill, own_reason = row.kill, row.kill_reason
        else:
            stage_name, since, own_kill, own_reason = start(name), 0, False, None
        stage = _stage(rollout.ladder(name), stage_name)
        killed = kill or own_kill
        reason = kill_reason if kill else own_reason
        enabled = native_available and stage is not None and not killed
        rate = stage.shadow_sample_rate if enabled and stage is not None else 0.0
        views[name] = MigrationView(
            name=name,
            stage=stage_name,
            stage_known=stage is not None,
            stage_since_ns=since,
            kill=killed,
            kill_reason=reason,
            shadow_sample_rate=rate,
            version=0 if row is None else row.version,
            operations=tuple(migration.operations),
        )
        stage_targets = targets_of(stage)
        for op in migration.operations:
            migration_of[op] = name
            stages[op] = stage_name
            share = stage.percent.of(op) if stage is not None else 0.0
            percent[op] = share
            thresholds[op] = threshold(share) if enabled and op not in open_breakers else 0.0
            targets[op] = stage_targets
            shadow_rates[op] = rate
            capture_rates[op] = migration.capture.rate
            observed[op] = rate > 0.0 or migration.capture.rate > 0.0
    return Snapshot(
        migrations=views,
        migration_of=migration_of,
        stages=stages,
        percent=percent,
        thresholds=thresholds,
        targets=targets,
        shadow_rates=shadow_rates,
        kill=kill,
        kill_reason=kill_reason,
        open_breakers=open_breakers,
        native_available=native_available,
        version=version,
        capture_rates=capture_rates,
        observed=observed,
    )
