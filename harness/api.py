"""The bot's entry point: `harness.open()` returns a `Harness` with routed orders and bars.

    import harness

    async with harness.open(["rollout.start_stage=canary"]) as h:    # or open(config=cfg)
        placed = await h.orders.place_market_order(account_id, "MNQ", "buy", 1)
        bars_5m = h.bars.aggregate(bars_1m, "5m", contract="MNQ")
        print(h.state.stage, h.stats().recorder.written)

Opening composes the config (the only place besides the CLI that calls Hydra), opens the database
and checks its schema (an empty embedded SQLite file is upgraded in place), starts a run row (config
redacted), the recorder, the live-state poller, the automatic rollback and promotion
(`harness.control.monitor`, when `gate.auto_rollback` or `gate.auto_promote`), and the embedded
simulator when `broker.kind` is `sim`; the order clients connect on first use. Closing (`await
h.aclose()`, leaving the `async with`, or `h.close()` without an event loop) waits for shadows,
closes the clients, stops the poller, flushes the recorder (waiting up to `db.recorder.close_wait_s`
for an unavailable database) and ends the run row with the rows recorded and dropped; rows lost are
logged at ERROR and stay in `h.stats().recorder` after closing, since the run row may not be
writable then. SIGTERM while open, whichever thread opened it, flushes the recorder first and then
does what the previous handler did (by default: the harness is closed as `interrupted` and the
process dies of SIGTERM); see `harness.shutdown`. A bot that installs its own SIGTERM handler after
opening (it replaces the harness's) calls `h.flush()` or `h.close("interrupted")` in it. At
interpreter exit an open harness is closed as `interrupted`."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from sqlalchemy import Engine

from harness import shutdown
from harness.alerts import Alert, notify, open_alerter
from harness.config import (
    BrokerKind,
    ConfigError,
    HarnessConfig,
    compose,
    redacted,
    validate,
)
from harness.control.actions import REASON_MAX_CHARS, WHO_MAX_CHARS, person_text
from harness.control.gates import stage_gate
from harness.control.monitor import GateMonitor
from harness.native import NativeStatus, build_id, load_native
from harness.operations import KeyFunction, Operation
from harness.orders.settings import DEFAULT_BASE_URL, ClientSettings
from harness.recorder import Recorder, RecorderStats
from harness.router.bars import RoutedBars
from harness.router.capture import Capturer
from harness.router.core import CallStats, Router
from harness.router.live import LiveStatePoller
from harness.router.orders import RoutedOrderClient
from harness.router.shadow import ShadowRunner, ShadowStats
from harness.router.snapshot import Snapshot
from harness.shutdown import SHUTDOWN_FLUSH_S
from harness.sim import SimSettings, Simulator
from harness.store import db
from harness.store.runs import end_run, failure_reason, start_run
from harness.store.state import (
    EventKind,
    default_who,
    ensure_state,
    read_states,
    reset_breaker,
    set_kill,
    write_event,
)

if TYPE_CHECKING:
    from harness.alerts.sender import Alerter

__all__ = ["Harness", "HarnessStats", "open"]

log = logging.getLogger("harness.router")

SIM_USERNAME: Final = "sim-user"


@dataclass(frozen=True, slots=True)
class HarnessStats:
    """What a harness has done since it opened: routed calls per operation, the live stage,
    open breakers, the recorder's and the shadows' figures."""

    run_id: str
    stage: str
    native_available: bool
    native_error: str | None
    calls: dict[str, CallStats]
    open_breakers: tuple[str, ...]
    recorder: RecorderStats
    shadows: ShadowStats


def open(
    overrides: Sequence[str] = (),
    *,
    config: HarnessConfig | None = None,
    kind: str = "bot",
) -> Harness:
    """Open a harness from Hydra `overrides` (`["rollout.start_stage=canary", "db=postgres"]`)
    or from an already composed `config`; see the module docstring.

    `kind` is written to the run row (`bot` for a bot, `run` for `harness run`). Raises
    `ConfigError` for a bad config or missing broker credentials (nothing is opened then),
    `SchemaError` / `StoreUnavailableError` when the database is not usable.

    Any thread may open a harness: SIGTERM flushes its rows all the same (`harness.shutdown`:
    a Python handler when opened on the main thread, faulthandler's C-level one otherwise). If
    the bot installs its own SIGTERM handler after opening, that handler replaces the
    harness's: call `h.flush()` (or `h.close(status="interrupted")`) from it.
    """
    if config is not None and overrides:
        raise ConfigError("overrides", list(overrides), "give overrides or config=, not both")
    cfg = compose(overrides) if config is None else config
    if config is not None:
        validate(cfg)
    return Harness(cfg, kind=kind)


def _client_settings(cfg: HarnessConfig, base_url: str, username: str, key: str) -> ClientSettings:
    broker = cfg.broker
    return ClientSettings(
        base_url=base_url,
        username=username,
        api_key=key,
        timeout_s=broker.timeout_s,
        connect_timeout_s=broker.connect_timeout_s,
        retry_delays_s=tuple(broker.retry_delays_s),
        max_retry_after_s=broker.max_retry_after_s,
        max_connections=broker.max_connections,
    )


def _gateway_credentials(cfg: HarnessConfig) -> tuple[str, str, str]:
    """Base URL, username and API key of the real gateway, or a ConfigError naming the env."""
    broker = cfg.broker
    user_hint = "PROJECTX_USERNAME (or TOPSTEPX_USERNAME) or broker.username=..."
    if not broker.api_key:
        reason = "missing: set PROJECTX_API_KEY (or TOPSTEPX_API_KEY) or broker.api_key=..."
        if not broker.username:
            reason += f", and {user_hint}"
        raise ConfigError("broker.api_key", None, reason)
    if not broker.username:
        raise ConfigError("broker.username", None, f"missing: set {user_hint}")
    return broker.base_url or DEFAULT_BASE_URL, broker.username, broker.api_key


def _simulator_settings(cfg: HarnessConfig) -> SimSettings:
    """The embedded simulator's settings: `broker.sim.profile` with the config's seed and port
    and a fresh API key; a profile that cannot be used (its host not loopback among them) is a
    `ConfigError` raised before anything is opened or written."""
    from harness.sim import load_profile

    sim = cfg.broker.sim
    try:
        settings = load_profile(sim.profile)
        return dataclasses.replace(
            settings,
            seed=sim.seed,
            port=sim.port,
            username=SIM_USERNAME,
            api_key="sim-" + secrets.token_hex(12),
        )
    except ValueError as exc:
        raise ConfigError("broker.sim.profile", sim.profile, str(exc)) from None


def _spill_dir(cfg: HarnessConfig, engine: Engine) -> Path:
    if cfg.db.recorder.spill_dir:
        return Path(cfg.db.recorder.spill_dir)
    path = db.sqlite_path(engine)
    return path.parent if path is not None else Path.cwd()


def _check_stages(engine: Engine, cfg: HarnessConfig) -> None:
    """Refuse (`ConfigError`, before the run row or any call) a store whose migration is at a
    stage its ladder in `cfg` lacks: the router would send all of that migration's calls to
    Python while the store says otherwise, which is never what the person meant. A start
    stage configured for a migration the store already holds elsewhere is said (a warning):
    it does not apply."""
    with engine.connect() as conn:
        stored = read_states(conn)
    if stored is None:
        return
    for name in cfg.rollout.migration_names():
        row = stored.migrations.get(name)
        if row is None:
            continue
        asked = cfg.rollout.migration(name).start_stage or cfg.rollout.start_stage
        if asked is not None and cfg.rollout.start_of(name) != row.stage:
            log.warning(
                "rollout.start_stage=%s left migration %s at %s, where the store has it: a "
                "start stage applies only to a migration the store has no state of (`harness "
                "promote --migration %s` moves it)", asked, name, row.stage, name,
            )  # fmt: skip
        if any(s.name == row.stage for s in cfg.rollout.ladder(name)):
            continue
        from harness.control.actions import off_ladder

        own = cfg.rollout.migration(name).stages
        field = f"rollout.migrations.{name}.stages" if own else "rollout.stages"
        raise ConfigError(field, row.stage, off_ladder(cfg, name, row.stage))


def _log_losses(run_id: str, stats: RecorderStats) -> None:
    """Rows lost, at ERROR, with the figures this process counted (the run's row may not say
    it: a read-only or full database could not be updated)."""
    if stats.dropped:
        log.error(
            "run %s: the recorder DROPPED %d of %d rows (%d refused by the database, the rest "
            "neither writable nor spillable); %d written",
            run_id,
            stats.dropped,
            stats.enqueued,
            stats.refused,
            stats.written,
        )
    if stats.earlier_lost:
        log.error(
            "run %s: %d rows of spill files left by earlier processes could not be replayed "
            "(damaged files kept: %s)",
            run_id,
            stats.earlier_lost,
            ", ".join(stats.damaged_files) or "none",
        )


def _dropped_alert(run_id: str, stats: RecorderStats) -> Alert:
    """The `rows_dropped` alert of a run that ends with rows lost (not a store event: the
    database may be what lost them)."""
    return Alert(
        kind=EventKind.ROWS_DROPPED,
        who="recorder",
        run_id=run_id,
        reason=f"run {run_id} ended with {stats.dropped} of {stats.enqueued} rows dropped "
        f"({stats.refused} refused by the database); {stats.written} written",
    )


def _typed(reason: str | None, who: str | None) -> tuple[str | None, str | None]:
    """`reason` and `who` held to the rule of every typed text shown later
    (`harness.control.actions.person_text`: no control character, a length limit)."""
    return (
        person_text("reason", reason, limit=REASON_MAX_CHARS),
        person_text("who", who, limit=WHO_MAX_CHARS),
    )


class Harness:
    """An open harness: `orders`, `bars`, the live `state`, actions and figures.

    Made by `harness.open()`; see the module docstring for what opening and closing do.
    """

    def __init__(self, config: HarnessConfig, *, kind: str = "bot") -> None:
        self.config = config
        self._closed = False
        # Re-entrant: a signal handler that closes may interrupt this thread inside close().
        self._close_lock = threading.RLock()
        self._cleanup = contextlib.ExitStack()
        self._secrets: list[str] = []
        self._failure: str | None = None
        self.alerter: Alerter | None = None
        self.simulator: Simulator | None = None
        """The embedded simulator (`broker.kind == sim`), else None."""
        try:
            self._open(kind)
        except BaseException as exc:
            self._failure = failure_reason(exc)  # the run row's reason, if it was started
            self._cleanup.close()
            raise

    def _open(self, kind: str) -> None:
        cfg = self.config
        sim_settings = None
        # Bad input is refused before the store is touched (no database file, no run row).
        if cfg.broker.kind is BrokerKind.projectx:
            base_url, username, api_key = _gateway_credentials(cfg)
            self._secrets.append(api_key)
        else:
            sim_settings = _simulator_settings(cfg)
            self._secrets.append(sim_settings.api_key)
        # This harness's share of the process's alerter (None without `alerts.urls`).
        self.alerter = open_alerter(cfg.alerts, [*self._secrets, *db.url_secrets(cfg.db.url)])
        if self.alerter is not None:
            self._cleanup.callback(self.alerter.close)
        self.native: NativeStatus = load_native()
        self.build_id: str = build_id(self.native)
        """The native module's build (`harness.native.build_id`): recorded in the run row."""
        if not self.native.available:
            reason = self.native.error
            log.warning("harness._native is unavailable, running pure Python: %s", reason)
        engine = db.open_engine(cfg.db.url)
        self._cleanup.callback(engine.dispose)
        db.ensure_schema(engine, create_if_empty=True)
        _check_stages(engine, cfg)
        self.engine = engine
        self.run_id = start_run(
            engine,
            kind=kind,
            config=redacted(cfg),
            native_available=self.native.available,
            native_error=self.native.error,
            build_id=self.build_id,
        )
        self._cleanup.callback(self._end_run_quietly, "failed")
        if not self.native.available:
            with db.begin(engine) as conn:
                write_event(
                    conn,
                    EventKind.NATIVE_UNAVAILABLE,
                    who="router",
                    reason=self.native.error,
                    run_id=self.run_id,
                )
        for name in cfg.rollout.migration_names():
            self._ensure_migration(name)
        with engine.connect() as conn:
            live = read_states(conn)
        self.recorder = Recorder(
            engine,
            cfg.db.recorder,
            spill_dir=_spill_dir(cfg, engine),
            name=self.run_id,
            run_id=self.run_id,
        )
        self._cleanup.callback(self.recorder.close)
        if sim_settings is not None:
            self.simulator = Simulator(sim_settings).start()
            self._cleanup.callback(self.simulator.stop)
            settings = self.simulator.settings
            base_url, username, api_key = self.simulator.url, settings.username, settings.api_key
        self.router = Router(
            cfg.rollout,
            recorder=self.recorder,
            run_id=self.run_id,
            native_available=self.native.available,
            secrets=(api_key,),
        )
        self.router.apply_state(live)
        self._poller = LiveStatePoller(engine, self.router, refresh_s=cfg.rollout.refresh_s)
        self._poller.start()
        self._cleanup.callback(self._poller.stop)
        self._monitor = GateMonitor(
            engine, cfg, run_id=self.run_id, on_rollback=self.router.apply_state,
            on_promote=self.router.apply_state,
        ).start()  # fmt: skip
        self._cleanup.callback(self._monitor.stop)
        self._shadows = ShadowRunner(cfg.rollout.shadow, self.router, seed=cfg.rollout.salt)
        self._cleanup.callback(self._shadows.close)
        client_settings = _client_settings(cfg, base_url, username, api_key)
        from harness.orders.python import PythonOrderClient

        rust = None
        if self.native.available:
            from harness.orders._rust import RustOrderClient

            rust = RustOrderClient(client_settings)
        self.capturer = Capturer(self.router, seed=cfg.rollout.salt, build_id=self.build_id)
        """Samples calls for `harness replay` (`rollout.migrations.<name>.capture`)."""
        self.orders = RoutedOrderClient(
            self.router, PythonOrderClient(client_settings), rust, self._shadows, self.capturer
        )
        """Routed order client (the `harness.orders.OrderClient` protocol)."""
        self.bars = RoutedBars(self.router, self._shadows, self.capturer)
        """Routed `aggregate` and `Aggregator` (as `harness.bars`, minus `impl`, plus
        `contract=`)."""
        shutdown.watch(self)
        atexit.register(self._at_exit)

    def _ensure_migration(self, name: str) -> None:
        """The store's state of migration `name`, created at its start stage (with a `start`
        event, judged by this config's gate settings for it) when the store has none."""
        cfg = self.config
        gate = cfg.gate.for_migration(cfg.rollout.migration(name))
        ensure_state(
            self.engine,
            cfg.rollout.start_of(name),
            migration=name,
            run_id=self.run_id,
            gate=stage_gate(gate),  # what judges the start stage, if this creates it
            wait_s=cfg.db.write_wait_s,
        )

    def register_operation(
        self,
        name: str,
        *,
        python: Callable[..., Any],
        rust: Callable[..., Any],
        migration: str | None = None,
        key: KeyFunction | None = None,
        compare: Callable[[Any, Any], str | None] | None = None,
        idempotent: bool = True,
        caller_errors: tuple[type[BaseException], ...] = (ValueError, TypeError),
    ) -> Callable[..., Any]:
        """The bot's own operation, routed like the built-in ones; returns the routed callable.

        `python` and `rust` are the two implementations (any callables: a PyO3 function of the
        bot's own crate, or anything else), both sync (the result is a sync callable) or both
        coroutine functions (the result returns an awaitable). `migration` names the group it
        climbs with (default: its own name); one not in the config starts on the default ladder
        (`rollout.stages`), with its row in the store and a `start` event. `key(*args,
        **kwargs)` returns the routing key (text) or `(key, attributes)` for targeting
        (`symbol`, `account`, or any attribute); without it the key is the first argument's
        `repr` (sticky per first argument) and a stage that targets sends every call to
        Python, not targeted. `compare(python_result, rust_result)` returns None when equal,
        else a difference text (default: `harness.compare.describe_difference`).
        `idempotent=False` declares a call that must never be repeated: a Rust failure is
        raised to the caller and the Python side is not called. `caller_errors` are the
        exception classes that mean the caller's input was wrong (default `ValueError`,
        `TypeError`; `InvalidInputError` is a `ValueError`): raised to the caller as they are,
        recorded as an error, never a fallback and never counted toward the breaker; `()`
        makes every Rust exception a fallback (`harness.router.registered`).

        Criteria: `gate.ops.<name>` if configured, else the defaults. Raises `ConfigError`
        naming the field for a bad name (`NAME_PATTERN`), a clash with a built-in or another
        registered operation that is not the same, an operation of another migration, and
        `TypeError` when one side is a coroutine function and the other is not.
        """
        from harness.router.registered import register

        return register(
            self,
            name,
            python=python,
            rust=rust,
            migration=migration,
            key=key,
            compare=compare,
            idempotent=idempotent,
            caller_errors=caller_errors,
        )

    # ----- the live state and actions ------------------------------------------------------------

    @property
    def state(self) -> Snapshot:
        """The router's current snapshot: stage, per-operation shares, kill, breakers."""
        return self.router.snapshot

    def refresh(self) -> Snapshot:
        """Re-read the store's rollout state now (the poller does it every `refresh_s`)."""
        self._poller.refresh()
        return self.router.snapshot

    def kill(
        self, reason: str, who: str | None = None, *, migration: str | None = None
    ) -> Snapshot:
        """Set a kill switch in the store: `migration`'s, or (None) the global one, which sends
        every migration to Python, registered ones too. This process follows at once, others
        within `rollout.refresh_s`. `reason` and `who` follow the rule of `harness kill
        --reason/--who` (`ActionInputError` otherwise); a kill always lands, and writes nothing
        when the switch is already set."""
        said, who = _typed(reason, who)
        set_kill(self.engine, True, migration=migration, who=who or default_who(), reason=said)
        self._poller.refresh()
        return self.router.snapshot

    def unkill(
        self, reason: str | None = None, who: str | None = None, *, migration: str | None = None
    ) -> Snapshot:
        """Clear a kill switch in the store (`migration`'s; None: the global one and every
        migration's own). The config's `rollout.kill` and the environment's
        `TOPSTEPX_USE_RUST=false` still apply."""
        reason, who = _typed(reason, who)
        set_kill(self.engine, False, migration=migration, who=who or default_who(), reason=reason)
        self._poller.refresh()
        return self.router.snapshot

    def reset_breaker(
        self, op: Operation | str, *, who: str | None = None, reason: str | None = None
    ) -> bool:
        """Close `op`'s circuit breaker (a person's decision, written as an event); True if it
        was open in the store. `ValueError` for an operation this harness does not route."""
        operation = str(op)
        migration = self.router.migration_of(operation)
        if migration is None:
            raise ValueError(f"{operation!r} is not an operation of this harness")
        reason, who = _typed(reason, who)
        was_open = reset_breaker(
            self.engine, operation, migration=migration, who=who, reason=reason
        )
        self.router.breaker_reset(operation)
        self._poller.refresh()
        return was_open

    def stats(self) -> HarnessStats:
        """Figures since opening (see `HarnessStats`)."""
        snap = self.router.snapshot
        return HarnessStats(
            run_id=self.run_id,
            stage=snap.stage,
            native_available=self.native.available,
            native_error=self.native.error,
            calls={str(op): s for op, s in self.router.call_stats().items()},
            open_breakers=tuple(sorted(str(op) for op in snap.open_breakers)),
            recorder=self.recorder.stats(),
            shadows=self._shadows.stats(),
        )

    def wait_for_shadows(self, timeout: float | None = None) -> bool:
        """Wait until no shadow run is in flight; False on time-out (tests, benches)."""
        return self._shadows.wait(timeout)

    # ----- closing -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose(
            status="finished" if exc is None else "failed",
            reason=None if exc is None else failure_reason(exc),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(
            status="finished" if exc is None else "failed",
            reason=None if exc is None else failure_reason(exc),
        )

    async def aclose(self, status: str = "finished", reason: str | None = None) -> None:
        """Close everything (see the module docstring); idempotent. `reason`: why, for a
        `failed` run's row (`failure_reason(exc)` of what stopped it)."""
        if self._closed:
            return
        try:
            await self.orders.aclose()
        finally:
            await asyncio.get_running_loop().run_in_executor(None, self.close, status, reason)
            # close() ran on a worker thread, which cannot put a signal handler back: here.
            shutdown.unwatch(self)

    def flush(self, timeout_s: float | None = SHUTDOWN_FLUSH_S) -> bool:
        """Wait until every row recorded so far is in the store (seconds; None waits as long as
        it takes); False on time-out (the database is down: the rows wait, or are spilled).

        Safe from any thread and from a signal handler: it takes no lock the callers of the
        hot path hold. What a bot's own SIGTERM handler calls (module docstring)."""
        if self._closed:
            return True
        return self.recorder.flush(timeout_s)

    def close(self, status: str = "finished", reason: str | None = None) -> None:
        """Close without an event loop (order clients are left to their loop); idempotent.
        `reason`: as for `aclose`."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self._at_exit)
        self._cleanup.pop_all()  # the steps below replace the open-time callbacks, in order
        try:
            with contextlib.suppress(Exception):
                self._shadows.close()
            with contextlib.suppress(Exception):
                self._monitor.stop()
            with contextlib.suppress(Exception):
                self._poller.stop()
            stats = self.recorder.close(timeout=self.config.db.recorder.close_wait_s)
            self._end_run_quietly(status, stats, reason)
            if self.simulator is not None:
                self.simulator.stop()
            self.engine.dispose()
        finally:
            shutdown.unwatch(self)
        _log_losses(self.run_id, stats)
        if self.alerter is not None:
            if stats.dropped:
                notify(_dropped_alert(self.run_id, stats))
            self.alerter.close()  # what is pending: sent within alerts.flush_s

    def _end_run_quietly(
        self, status: str, stats: RecorderStats | None = None, reason: str | None = None
    ) -> None:
        """End the run row; a `failed` one always with its reason (secrets replaced by ***)."""
        recorder = getattr(self, "recorder", None)
        if stats is None and recorder is not None:
            stats = recorder.stats()
        summary: dict[str, Any] = {}
        if stats is not None:
            summary["recorder"] = dataclasses.asdict(stats)
        if status == "failed":
            reason = reason or self._failure or "closed as failed by its caller (no reason given)"
        if reason:
            for secret in self._secrets:
                reason = reason.replace(secret, "***")
            summary["reason"] = reason
        try:
            end_run(
                self.engine,
                self.run_id,
                status=status,
                rows_recorded=0 if stats is None else stats.written,
                rows_dropped=0 if stats is None else stats.dropped,
                summary=summary or None,
            )
        except Exception as exc:
            log.error("could not end run %s in the store: %s", self.run_id, exc)

    def _at_exit(self) -> None:
        self.close(status="interrupted")
