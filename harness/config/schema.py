"""The typed shape of the harness configuration: dataclasses registered in Hydra's ConfigStore.

Hydra composes `conf/config.yaml` and its groups (`rollout/`, `broker/`, `db/`, `gate/`,
`workload/`) against these schemas, so a value of the wrong type or an unknown key is refused at
composition with the key named; `harness.config.compose` then builds these objects and
`validate` checks what a type cannot say (ranges, a ladder that only goes up). Library code only
ever sees these objects: it never calls Hydra.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

from harness.operations import BUILTIN_MIGRATIONS

__all__ = [
    "ALERT_KINDS",
    "DEFAULT_ALERT_KINDS",
    "MISSING",
    "AlertsConfig",
    "BreakerConfig",
    "BrokerConfig",
    "BrokerKind",
    "Criterion",
    "DbConfig",
    "GateConfig",
    "HarnessConfig",
    "MigrationBreakerConfig",
    "MigrationConfig",
    "MigrationGateConfig",
    "OpCriteria",
    "Percentages",
    "RecorderConfig",
    "RolloutConfig",
    "ShadowConfig",
    "ShadowMechanism",
    "SimBrokerConfig",
    "StageConfig",
    "TargetsConfig",
    "TradingHoursConfig",
    "WorkloadConfig",
]


MISSING: Final[Any] = "???"
"""OmegaConf's mark of a mandatory value (`omegaconf.MISSING` is this string): a schema field
with it must be given by the config. Spelt here so that importing the schema does not import
OmegaConf (0.1 s), which only Hydra's composition needs."""


# ----- rollout ----------------------------------------------------------------------------------


class Percentages:
    """Share of each operation's calls sent to Rust at one stage, in percent (0..100).

    One number for every operation of the migration (`percent: 25`), or a mapping per operation
    (`percent: {place_order: 5, modify_order: 5}`) whose key `'*'` is every operation it does
    not name (`{'*': 25, place_order: 10}`). `compose` turns a stage's `percent` into this
    object (`harness.config.validate`); an operation a mapping does not name, without `'*'`,
    gets 0.
    """

    __slots__ = ("default", "per_op")

    def __init__(
        self, default: float | None = None, per_op: Mapping[str, float] | None = None
    ) -> None:
        self.default = None if default is None else float(default)
        self.per_op: dict[str, float] = {str(k): float(v) for k, v in (per_op or {}).items()}

    def of(self, op: str) -> float:
        """The percentage of `op`."""
        value = self.per_op.get(op)
        if value is not None:
            return value
        return 0.0 if self.default is None else self.default

    def names(self, op: str) -> bool:
        """Whether this stage gives `op` a percentage of its own (a number names every op)."""
        return self.default is not None or op in self.per_op

    def plain(self) -> float | dict[str, float]:
        """As written in YAML: the number, or the mapping (`'*'` for the default)."""
        if not self.per_op and self.default is not None:
            return self.default
        return dict(self.per_op) if self.default is None else {"*": self.default, **self.per_op}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Percentages):
            return NotImplemented
        return (self.default, self.per_op) == (other.default, other.per_op)

    def __repr__(self) -> str:
        return f"Percentages({self.plain()!r})"


@dataclass
class TargetsConfig:
    """Which calls a stage may send to Rust at all, before its percentage applies.

    `symbols` are contract symbols (`MNQ` matches the contract id `CON.F.US.MNQ.Z26` and
    `contract="MNQ"` of an aggregation); `accounts` account ids. Empty lists: every call. A
    call outside the targets goes to Python and is recorded as not targeted.
    """

    symbols: list[str] = field(default_factory=list)
    accounts: list[int] = field(default_factory=list)


@dataclass
class StageConfig:
    """One rung of a ladder: its name, Rust's share, the shadow sample rate, the targets.

    `percent` is one number for every operation of the migration or a mapping per operation
    (`Percentages` once composed). `shadow_sample_rate` (0..1) is the share of calls also run
    on the side not chosen, off the caller's path, and compared.
    """

    name: str = MISSING
    percent: Any = 0.0
    shadow_sample_rate: float = 0.0
    targets: TargetsConfig = field(default_factory=TargetsConfig)


@dataclass
class BreakerConfig:
    """Per-operation circuit breaker: `failures` Rust failures within `window_s` seconds open it.

    An open breaker sends the operation to Python until a person resets it
    (`harness breaker reset`); the trip is recorded as an event.
    """

    failures: int = 5
    window_s: float = 60.0


class ShadowMechanism(StrEnum):
    """(Members are named as written in YAML, which is how OmegaConf matches them.)

    Where a shadow run executes: a worker process (no GIL contention), a thread, or auto.

    `auto` runs a pure-Python shadow in a process and a Rust shadow (which releases the GIL) on
    a thread; `benches/router.py` measures the event-loop lag of each.
    """

    auto = "auto"
    process = "process"
    thread = "thread"


@dataclass
class ShadowConfig:
    """How shadow runs execute and how many may be in flight (more are skipped, and counted)."""

    mechanism: ShadowMechanism = ShadowMechanism.auto
    max_in_flight: int = 4
    timeout_s: float = 30.0


@dataclass
class TradingHoursConfig:
    """When the exchange's session is open (`harness.config.hours`, docs/gate.md): sessions
    open at `open` (HH:MM, wall clock in `tz`, an IANA zone) on each of `days` (`mon`..`sun`,
    the day a session opens; null: every day) and close at the next `close` (the next day when
    `close` is not later than `open`). All null: not configured. CME Globex:
    `{tz: America/Chicago, open: "17:00", close: "16:00", days: [sun, mon, tue, wed, thu]}`.

    Each field is optional rather than the section, so that a migration's override sets one
    value (`rollout.migrations.orders.gate.trading_hours.tz=...`)."""

    tz: str | None = None
    open: str | None = None
    close: str | None = None
    days: list[str] | None = None


@dataclass
class MigrationGateConfig:
    """Per-migration overrides of the `gate` group's migration-level settings (null: the
    `gate` group's own value; `trading_hours` field by field). Criteria stay per operation, in
    `gate.ops.<op>`."""

    alpha: float | None = None
    min_soak_s: float | None = None
    auto_rollback: bool | None = None
    check_interval_s: float | None = None
    auto_promote: bool | None = None
    auto_promote_until: str | None = None
    trading_hours: TradingHoursConfig = field(default_factory=TradingHoursConfig)


@dataclass
class MigrationBreakerConfig:
    """Per-migration overrides of `rollout.breaker` (null: `rollout.breaker`'s own value).

    Each field is optional rather than the section, so that one override
    (`rollout.migrations.orders.breaker.failures=3`) sets one value: OmegaConf cannot set a
    key inside a section that is null."""

    failures: int | None = None
    window_s: float | None = None


@dataclass
class CaptureConfig:
    """The sample of routed calls whose inputs and answers the store keeps, for `harness
    replay` (docs/replay.md).

    `rate` (0..1) is the share of a migration's calls captured, drawn from a seeded RNG like
    the shadows'; 0 (the default) captures nothing: a capture holds a bot's orders and bars,
    so keeping them is a decision, taken per migration. `max_bytes` bounds one call's
    compressed payload (zlib of JSON): a larger call is not captured, and counted
    (`RecorderStats.captures_oversize`). `retention` is how long a capture is kept (a
    duration as `harness db prune --older-than` takes it: `7d`, `12h`, `2w`)."""

    rate: float = 0.0
    max_bytes: int = 65536
    retention: str = "7d"


@dataclass
class MigrationConfig:
    """A migration: operations that move together, with their own ladder and current stage.

    `operations` belong to this migration only. `stages` empty: the shared default ladder
    (`rollout.stages`). `start_stage` None: `rollout.start_stage`, else the ladder's first.
    `breaker`: overrides of `rollout.breaker` (a null field: its value). `gate`: overrides of
    the gate's settings for this one. `capture`: the sample of calls kept for `harness
    replay` (`CaptureConfig`).
    """

    operations: list[str] = field(default_factory=list)
    stages: list[StageConfig] = field(default_factory=list)
    start_stage: str | None = None
    breaker: MigrationBreakerConfig = field(default_factory=MigrationBreakerConfig)
    gate: MigrationGateConfig = field(default_factory=MigrationGateConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)


@dataclass
class RolloutConfig:
    """The migrations, their ladders, and how the router follows them.

    `stages` is the default ladder, ordered from least to most Rust: every migration without
    a ladder of its own climbs it (each keeps its own current stage); each operation's
    percentage never goes down along a ladder. `migrations` maps a name to its operations and
    settings (`MigrationConfig`); a built-in operation no migration lists stays in its shipped
    one (`orders`, `bars`). A store with no state for a migration starts it at its
    `start_stage`, else `start_stage` here, else the ladder's first. `salt` enters the routing
    hash (changing it reshuffles every key). `kill: true` sends everything to Python, as
    `TOPSTEPX_USE_RUST=false` does. `refresh_s` is how often the live state (stages, kill
    flags, breakers) is re-read from the store. `breaker` is the default of every migration.
    """

    stages: list[StageConfig] = MISSING
    start_stage: str | None = None
    salt: str = "harness"
    kill: bool = False
    refresh_s: float = 0.5
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    migrations: dict[str, MigrationConfig] = field(default_factory=dict)

    def migration(self, name: str) -> MigrationConfig:
        """The migration `name` (a registered one not in the config: the default ladder)."""
        found = self.migrations.get(name)
        return found if found is not None else MigrationConfig()

    def ladder(self, migration: str) -> list[StageConfig]:
        """The stages of `migration`, least Rust first."""
        own = self.migration(migration).stages
        return own if own else self.stages

    def stage_names(self) -> list[str]:
        """Every stage of every ladder (the shared one's first, then each migration's own),
        each once, in ladder order: what a setting naming a stage of any ladder may name."""
        names = [s.name for s in self.stages]
        for migration in self.migrations.values():
            names += [s.name for s in migration.stages if s.name not in names]
        return names

    def start_of(self, migration: str) -> str:
        """The stage a store without state for `migration` starts it at."""
        own = self.migration(migration)
        ladder = self.ladder(migration)
        names = {s.name for s in ladder}
        for start in (own.start_stage, self.start_stage):
            if start is not None and start in names:
                return start
        return ladder[0].name

    def migration_of(self, op: str) -> str | None:
        """The migration `op` belongs to (None: none configured it, and it is not built in)."""
        for name, migration in self.migrations.items():
            if op in migration.operations:
                return name
        for name, ops in BUILTIN_MIGRATIONS.items():
            if op in ops:
                return name
        return None

    def migration_names(self) -> list[str]:
        """Every configured migration, in config order."""
        return list(self.migrations)

    def operations_of(self, migration: str) -> list[str]:
        """The operations of `migration`, in config order."""
        return list(self.migration(migration).operations)

    def breaker_of(self, migration: str) -> BreakerConfig:
        """The breaker settings of `migration`'s operations."""
        own = self.migration(migration).breaker
        return BreakerConfig(
            failures=self.breaker.failures if own.failures is None else own.failures,
            window_s=self.breaker.window_s if own.window_s is None else own.window_s,
        )


# ----- broker -----------------------------------------------------------------------------------


class BrokerKind(StrEnum):
    """Which gateway the order clients talk to."""

    sim = "sim"
    projectx = "projectx"


@dataclass
class SimBrokerConfig:
    """The embedded simulator (`broker=sim`): its profile, seed and port (0 = any free port)."""

    profile: str = "demo"
    seed: int = 1
    port: int = 0


@dataclass
class BrokerConfig:
    """The gateway: the embedded simulator or the real ProjectX gateway.

    `username` / `api_key` default to `PROJECTX_USERNAME` / `PROJECTX_API_KEY`, then the bot's
    `TOPSTEPX_USERNAME` / `TOPSTEPX_API_KEY` (read by `compose`, never written back). The API key
    is a secret: `redacted()` configs and every output show `***`. `max_retry_after_s` is the
    longest `Retry-After` a call waits (None: the longest retry delay); longer advice raises
    `RateLimitedError` at once.
    """

    kind: BrokerKind = BrokerKind.sim
    base_url: str | None = None
    username: str | None = None
    api_key: str | None = None
    timeout_s: float = 10.0
    connect_timeout_s: float = 3.0
    retry_delays_s: list[float] = field(default_factory=lambda: [0.75, 1.5, 3.0])
    max_retry_after_s: float | None = None
    max_connections: int = 32
    sim: SimBrokerConfig = field(default_factory=SimBrokerConfig)


# ----- database and recorder --------------------------------------------------------------------


@dataclass
class RecorderConfig:
    """The background writer of outcomes.

    The caller only appends to an in-memory queue of at most `queue_bound` rows; a writer thread
    inserts batches of up to `batch_size` rows every `flush_interval_s`. While the database is
    unreachable at most `buffer_rows` rows wait in memory; beyond, they are spilled to a file in
    `spill_dir` (default: beside the SQLite file, or the working folder) and replayed in order
    when the database returns. Closing waits up to `close_wait_s` for an unavailable database,
    then spills what is left for the next process.
    """

    queue_bound: int = 100_000
    batch_size: int = 5_000
    flush_interval_s: float = 0.2
    buffer_rows: int = 50_000
    spill_dir: str | None = None
    retry_s: float = 1.0
    close_wait_s: float = 30.0


@dataclass
class DbConfig:
    """Where outcomes and the rollout state live: an SQLAlchemy URL (`HARNESS_DB_URL` wins).

    `sqlite:///harness.db` (the default, a file in the working folder) or
    `postgresql+psycopg://user:password@host:port/db`; a password is never printed.
    `write_wait_s` is how long a person's action (promote, rollback, kill, unkill, breaker
    reset, from the CLI or the dashboard) keeps trying while another process holds the
    database's write lock, before it gives up with one line naming the database (exit 2).
    """

    url: str = "sqlite:///harness.db"
    recorder: RecorderConfig = field(default_factory=RecorderConfig)
    write_wait_s: float = 10.0


# ----- gate -------------------------------------------------------------------------------------


class Criterion(StrEnum):
    """The gate's criteria, by the names used in config, the store and every output."""

    min_samples = "min_samples"
    fallback_rate = "fallback_rate"
    error_rate = "error_rate"
    error_excess = "error_excess"
    p50_ratio = "p50_ratio"
    p99_ratio = "p99_ratio"
    not_slower = "not_slower"
    shadow = "shadow"
    soak = "soak"
    replay = "replay"


@dataclass
class OpCriteria:
    """What one operation must show over the current stage's window to pass the gate.

    Rates are fractions (0..1); ratios are Rust over Python (null: that ratio is not judged, e.g.
    a p99 that the traffic cannot estimate). `min_samples` is per side.
    `not_slower_margin` (0..1) is how far Rust's latency CDF may trail Python's at any latency,
    as a share of calls, for `not_slower` to PASS (it FAILs on any proven trail).
    `critical` criteria roll the stage back automatically when they FAIL while it runs.
    """

    min_samples: int = 100
    max_fallback_rate: float = 0.01
    max_error_rate: float = 0.01
    max_error_excess: float = 0.005
    max_p50_ratio: float | None = 1.10
    max_p99_ratio: float | None = 1.50
    not_slower: bool = True
    not_slower_margin: float = 0.05
    min_shadow_comparisons: int = 0
    max_shadow_mismatches: int = 0
    critical: list[Criterion] = field(
        default_factory=lambda: [Criterion.error_rate, Criterion.fallback_rate, Criterion.shadow]
    )


@dataclass
class GateConfig:
    """The promotion gate: per-operation criteria (`ops`: any operation's name; one without
    an entry is judged by the defaults) and how they are judged, per migration.

    `alpha` is the error level of every test; all are anytime-valid (confidence sequences), so
    however often the gate is looked at, a rate criterion is ever wrong with probability at most
    alpha and an operation's latency criteria together at most alpha. `min_soak_s` is the least
    time a stage must have run. With `auto_rollback`, a running stage whose critical criterion
    FAILs is rolled back, checked every `check_interval_s`. `name` is what the settings are
    called in every verdict and in the store: `compose` sets it to the option chosen and the
    `gate.*` overrides given (`quick`, `default gate.min_soak_s=60`), unless `gate.name=...`
    is given; it is not part of what is judged. With `per_build` the gate judges only the
    evidence of the current build (the native module's `build_id` of the run started last):
    a new build starts its evidence afresh; the verdict names it and counts the calls of other
    builds it left out.

    With `auto_promote`, a running stage whose gate PASSes (its soak done) is promoted one
    stage by the monitor (event `auto_promote`), up to `auto_promote_until` (None: the stage
    before the last of the migration's ladder: the step to production stays a person's),
    never while a breaker is open or the kill switch is set, nor outside `trading_hours` when
    they are configured (docs/gate.md, "Automatic promotion").

    With `replay_required` a stage is left only once `harness replay` has replayed the
    captures of the current build without a mismatch (criterion `replay`, docs/gate.md).
    """

    alpha: float = 0.05
    min_soak_s: float = 300.0
    auto_rollback: bool = True
    check_interval_s: float = 5.0
    ops: dict[str, OpCriteria] = field(default_factory=dict)
    name: str = "custom"
    per_build: bool = True
    auto_promote: bool = False
    auto_promote_until: str | None = None
    trading_hours: TradingHoursConfig = field(default_factory=TradingHoursConfig)
    replay_required: bool = False

    def criteria(self, op: str) -> OpCriteria:
        """The criteria of `op`: `ops.<op>`, else the defaults (`OpCriteria()`)."""
        found = self.ops.get(op)
        return found if found is not None else OpCriteria()

    def for_migration(self, migration: MigrationConfig) -> GateConfig:
        """These settings with `migration.gate`'s overrides applied."""
        own = migration.gate
        names = (
            "alpha", "min_soak_s", "auto_rollback", "check_interval_s", "auto_promote",
            "auto_promote_until",
        )  # fmt: skip
        changes: dict[str, Any] = {
            name: getattr(own, name) for name in names if getattr(own, name) is not None
        }
        hours = {
            name: getattr(own.trading_hours, name)
            for name in ("tz", "open", "close", "days")
            if getattr(own.trading_hours, name) is not None
        }
        if hours:
            changes["trading_hours"] = replace(self.trading_hours, **hours)
        return replace(self, **changes) if changes else self


# ----- workload ---------------------------------------------------------------------------------


@dataclass
class WorkloadConfig:
    """The session `harness run` plays: round trips over symbols on one account.

    Per round trip: pull `bars_lookback` 1-minute bars and aggregate them to `timeframes`; a
    market entry of `size` contracts; a protective stop `stop_ticks` away; `modifies` stop moves;
    cancel the stop; a market exit. `account` is an account id (None: the first active one).
    `pace_ms` is the mean pause between round trips of one worker (seeded jitter), `concurrency`
    the round trips in flight (at most one per symbol). `rate_limit` keeps the workload's
    requests under the gateway's documented limits (`harness.run.pace`); it does not apply
    to an embedded simulator whose profile has no limits (`bench`). `sweep_stale` lets the
    run first clear what runs on this host that died left: cancel their open orders and close
    their positions in the contracts they traded (otherwise such leftovers in a traded
    contract refuse the run).
    """

    trades: int = 20
    symbols: list[str] = field(default_factory=lambda: ["MNQ", "MES"])
    account: int | None = None
    seed: int = 7
    concurrency: int = 2
    pace_ms: float = 0.0
    size: int = 1
    stop_ticks: int = 40
    modifies: int = 2
    bars_lookback: int = 240
    timeframes: list[str] = field(default_factory=lambda: ["5m", "15m", "1h"])
    rate_limit: bool = True
    sweep_stale: bool = False


# ----- alerts -----------------------------------------------------------------------------------

ALERT_KINDS: Final = (
    "auto_rollback",
    "breaker_trip",
    "kill",
    "unkill",
    "promote",
    "rollback",
    "auto_promote",
    "native_unavailable",
    "rows_dropped",
    "spill",
)
"""The events `alerts.events` may select: the store's event kinds people are told of, and
`spill` (the recorder spilling to disk: no store event, the database is down then)."""
DEFAULT_ALERT_KINDS: Final = tuple(kind for kind in ALERT_KINDS if kind != "promote")
"""Every kind but a manual promotion (the person who promoted knows)."""


@dataclass
class AlertsConfig:
    """Who is told of rollbacks, breaker trips, kills, promotions and lost rows (`harness.alerts`).

    `urls`: notification targets. An `http://` or `https://` URL receives a JSON POST per
    event; any other scheme goes through Apprise (`slack://`, `discord://`, `tgram://`,
    `mailto://`, `json://`, ...). A URL may hold a token: it is shown as `***` everywhere.
    `events`: the kinds sent (`ALERT_KINDS`; default: all but `promote`). Each target has a
    sender thread with at most `max_pending` alerts waiting (more are dropped and counted);
    one attempt waits at most `timeout_s`, failed attempts are retried with exponential
    backoff until `deadline_s` after the event; a process that exits waits at most `flush_s`
    for what is still pending.
    """

    urls: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=lambda: list(DEFAULT_ALERT_KINDS))
    timeout_s: float = 5.0
    deadline_s: float = 60.0
    max_pending: int = 1000
    flush_s: float = 2.0


# ----- the whole --------------------------------------------------------------------------------


@dataclass
class HarnessConfig:
    """Everything a harness process needs, composed once by the CLI or `harness.open()`."""

    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    db: DbConfig = field(default_factory=DbConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
