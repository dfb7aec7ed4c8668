"""The bot's own operations (`Harness.register_operation`): routed like the built-in ones.

A registered operation is an entry of the same operation table (`OperationSpec`) and goes
through the same routed-call path (`harness.router.call`): targets, the sticky hash, kill
switches, its migration's breaker, fallback on a Rust exception when it is safe, recording,
the gate and the history queries. What differs from the built-ins is only what the bot hands
over: the two callables, the key rule, the comparison, and whether a call may be repeated.

- Key: `key(*args, **kwargs)` returns the routing key (text) or `(key, attributes)` (the
  targeting attributes: `symbol`, `account`, or any other); without `key` the key is the
  `repr` of the first argument (sticky per first argument; "" without arguments), and a stage
  with targets sends every call to Python, recorded as not targeted (nothing to match on).
- Failure: an idempotent operation (the default: a pure function is always safe to repeat)
  reruns on Python after any `Exception` of the Rust side that is not the caller's input;
  `idempotent=False` raises the Rust failure to the caller, and the Python side is never
  called for that call. The caller's input is told by class, `caller_errors`: by default
  `(ValueError, TypeError)`, Python's own convention for a bad argument (and what PyO3 raises
  for an argument it cannot convert; `InvalidInputError` is a `ValueError`). Such an
  exception is raised to the caller as it is and recorded as an error, never a fallback and
  never a failure that counts toward the breaker: rerunning bad input on Python would only
  raise again, after tripping the breaker of a Rust side that did nothing wrong. A bot whose
  Rust side raises `ValueError` for its own faults passes `caller_errors=()` (every exception
  falls back) or its own classes.
- Shadow: at the stage's shadow sample rate the other side also runs on a shadow thread, off
  the caller's path, with the same arguments; `compare(python_result, rust_result)` (default
  `harness.compare.describe_difference`) decides, and the comparison is recorded. A thread,
  not a process: a bot's callables need not pickle. A pure-Python shadow holds the GIL while it
  runs, which the bot's event loop feels as lag (`benches/router.py` measures it for
  aggregation: a 10% Python shadow on a thread raised the loop's lag p99 by about 2 ms, in a
  process by nothing); a Rust callable that releases the GIL costs the loop nothing. A
  non-idempotent operation is never shadowed (the shadow would repeat it).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from time import perf_counter_ns, time_ns
from typing import TYPE_CHECKING, Any, Final

from harness.compare import describe_difference, describe_error
from harness.config import MigrationConfig, validate_ladder
from harness.errors import ConfigError
from harness.operations import BUILTIN_SPECS, Failure, Impl, OperationSpec, check_name
from harness.recorder import ShadowRecord
from harness.router.call import call_async, call_sync
from harness.router.policy import Action

if TYPE_CHECKING:
    from harness.api import Harness

__all__ = ["register"]

RUST: Final = Impl.RUST
PYTHON: Final = Impl.PYTHON


CALLER_ERRORS: Final[tuple[type[BaseException], ...]] = (ValueError, TypeError)
"""The default `caller_errors` of a registered operation (module docstring)."""


def _never(_exc: BaseException) -> Action:
    return Action.RAISE


def _failure_action(caller_errors: tuple[type[BaseException], ...]) -> Any:
    """What a Rust exception of an idempotent registered operation leads to: raised when it is
    the caller's (`caller_errors`) or not an `Exception` (KeyboardInterrupt, ...), else a
    rerun on Python."""

    def action(exc: BaseException) -> Action:
        if not isinstance(exc, Exception) or isinstance(exc, caller_errors):
            return Action.RAISE
        return Action.FALLBACK

    return action


def _default_key(args: tuple[Any, ...], _kwargs: dict[str, Any]) -> tuple[str, None]:
    return (repr(args[0]) if args else ""), None


def register(
    h: Harness,
    name: str,
    *,
    python: Callable[..., Any],
    rust: Callable[..., Any],
    migration: str | None,
    key: Callable[..., Any] | None,
    compare: Callable[[Any, Any], str | None] | None,
    idempotent: bool,
    caller_errors: tuple[type[BaseException], ...] = CALLER_ERRORS,
) -> Callable[..., Any]:
    """See `Harness.register_operation`."""
    check_name("name", name)
    caller_errors = tuple(caller_errors)
    if not all(isinstance(c, type) and issubclass(c, BaseException) for c in caller_errors):
        raise TypeError(
            f"register_operation({name!r}): caller_errors must be a tuple of exception classes"
        )
    if name in BUILTIN_SPECS:
        raise ConfigError("name", name, "is a built-in operation")
    if not callable(python) or not callable(rust):
        raise TypeError(f"register_operation({name!r}): python and rust must be callables")
    is_async = inspect.iscoroutinefunction(python)
    if inspect.iscoroutinefunction(rust) is not is_async:
        raise TypeError(
            f"register_operation({name!r}): python and rust must both be coroutine functions "
            "or both plain callables"
        )
    group = check_name("migration", migration or name)
    spec = OperationSpec(
        name, group, python=python, rust=rust, is_async=is_async, key=key,
        failure=Failure.pure if idempotent else Failure.not_idempotent, compare=compare,
        shadow_in="thread", caller_errors=caller_errors,
    )  # fmt: skip
    registry: dict[str, tuple[OperationSpec, Callable[..., Any]]] = h.__dict__.setdefault(
        "_registered", {}
    )
    known = registry.get(name)
    if known is not None:
        if known[0] == spec:
            return known[1]
        raise ConfigError("name", name, "is registered already, with other callables or settings")
    rollout = h.config.rollout
    owner = rollout.migration_of(name)
    if owner is not None and owner != group:
        raise ConfigError("migration", group, f"{name} is an operation of migration {owner!r}")
    if group not in rollout.migrations:
        validate_ladder("rollout.stages", rollout.stages, [name])
        rollout.migrations[group] = MigrationConfig(operations=[name])
    elif name not in rollout.migrations[group].operations:
        ladder = rollout.migrations[group].stages
        if ladder:
            validate_ladder(f"rollout.migrations.{group}.stages", ladder, [name])
        else:
            validate_ladder("rollout.stages", rollout.stages, [name])
        rollout.migrations[group].operations.append(name)
    h.router.add_operation(name, group)
    h._ensure_migration(group)
    h.refresh()
    routed = _routed_callable(h, spec)
    registry[name] = (spec, routed)
    return routed


def _routed_callable(h: Harness, spec: OperationSpec) -> Callable[..., Any]:
    router, shadows = h.router, h._shadows
    name, python, rust = spec.name, spec.python, spec.rust
    assert python is not None and rust is not None
    sides: Mapping[Impl, Callable[..., Any]] = {PYTHON: python, RUST: rust}
    failure = _failure_action(spec.caller_errors) if spec.idempotent else _never
    same = spec.compare or describe_difference
    user_key = spec.key

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
        if user_key is None:
            return _default_key(args, kwargs)
        found = user_key(*args, **kwargs)
        if isinstance(found, tuple):
            text, attrs = found
            return str(text), attrs
        return str(found), None

    def shadow_hook(
        args: tuple[Any, ...], kwargs: dict[str, Any], key: str, ts_ns: int
    ) -> Callable[[Impl, Any, float], None] | None:
        rate = router.snapshot.shadow_rates[name]
        if rate <= 0.0 or not spec.idempotent or not shadows.sample(rate):
            return None
        stage = router.snapshot.stages[name]

        def after(served: Impl, result: Any, latency_us: float) -> None:
            other = PYTHON if served is RUST else RUST

            def work() -> bool:
                started = perf_counter_ns()
                error: str | None = None
                try:
                    value = sides[other](*args, **kwargs)
                    if spec.is_async:
                        value = asyncio.run(value)
                except Exception as exc:
                    value, error = exc, describe_error(exc)
                shadow_us = (perf_counter_ns() - started) / 1000.0
                py, rs = (result, value) if served is PYTHON else (value, result)
                diff = same(py, rs) if error is None else f"{other.value} raised: {error}"
                router.record_shadow(
                    ShadowRecord(
                        ts_ns, router.run_id, name, stage, key, served.value, other.value,
                        diff is None, None, None, None if diff is None else "result",
                        None if diff is None else _text(py), None if diff is None else _text(rs),
                        latency_us, shadow_us, None if error is None else router.scrub(error),
                        None, router.migration_of(name),
                    )
                )  # fmt: skip
                return diff is None

            shadows.submit_call(work)

        return after

    if spec.is_async:

        async def routed_async(*args: Any, **kwargs: Any) -> Any:
            ts_ns, started = time_ns(), perf_counter_ns()
            key, attrs = key_of(args, kwargs)
            side, targeted = router.route_call(name, key, attrs)
            return await call_async(
                router, name, side, key, lambda s: sides[s](*args, **kwargs), failure=failure,
                how="reran on python", targeted=targeted,
                after=shadow_hook(args, kwargs, key, ts_ns), ts_ns=ts_ns, started=started,
            )  # fmt: skip

        routed_async.__name__ = routed_async.__qualname__ = name
        routed_async.__doc__ = f"`{name}`, routed by the harness (register_operation)."
        return routed_async

    def routed_sync(*args: Any, **kwargs: Any) -> Any:
        ts_ns, started = time_ns(), perf_counter_ns()
        key, attrs = key_of(args, kwargs)
        side, targeted = router.route_call(name, key, attrs)
        return call_sync(
            router, name, side, key, lambda s: sides[s](*args, **kwargs), failure=failure,
            how="reran on python", targeted=targeted,
            after=shadow_hook(args, kwargs, key, ts_ns), ts_ns=ts_ns, started=started,
        )  # fmt: skip

    routed_sync.__name__ = routed_sync.__qualname__ = name
    routed_sync.__doc__ = f"`{name}`, routed by the harness (register_operation)."
    return routed_sync


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:1000]
