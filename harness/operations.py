"""Operations and implementations: the one table of what the router can send to Rust or Python.

An operation is a name (`place_order`, `aggregate_bars`, or any name a bot registers with
`Harness.register_operation`), used in configuration (`rollout.migrations.<m>.operations`,
`gate.ops.<op>`), in the store (`outcomes.op`) and in every output. Each operation belongs to
exactly one migration (`orders`, `bars`, or one a bot names): the group that climbs a ladder
together. `OperationSpec` holds the per-operation facts the one routed-call path
(`harness.router.call`) needs: its migration, how a call's routing key and targeting
attributes are found, what a Rust failure leads to, how a shadow compares.

`Operation` keeps the built-in names as constants; nothing depends on the set being closed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "BUILTIN_MIGRATIONS",
    "BUILTIN_SPECS",
    "NAME_PATTERN",
    "ORDER_OPERATIONS",
    "Failure",
    "Impl",
    "KeyFunction",
    "Operation",
    "OperationSpec",
    "Targeting",
    "check_name",
    "shipped_migration",
    "symbol_of",
]


class Operation(StrEnum):
    """A built-in migrated operation; the value is the name used in config and in the store.

    `place_order` covers every order type; `place_market_order` is its shortcut and is routed and
    recorded as `place_order`. Registered operations are plain strings: every table keyed by an
    operation takes either (a `StrEnum` member hashes and compares as its value).
    """

    PLACE_ORDER = "place_order"
    MODIFY_ORDER = "modify_order"
    CANCEL_ORDER = "cancel_order"
    AGGREGATE_BARS = "aggregate_bars"


class Impl(StrEnum):
    """One of the two implementations of every operation."""

    RUST = "rust"
    PYTHON = "python"


class Failure(StrEnum):
    """What a Rust failure of an operation leads to (`OperationSpec.failure`).

    - `pure`: the operation is safe to repeat (a pure function, an idempotent request): any
      `Exception` that is not the caller's input reruns on Python (the caller's input:
      `InvalidInputError` for the built-ins, `OperationSpec.caller_errors` for a registered one).
    - `not_idempotent`: never repeated: the Rust failure is raised to the caller, and the Python
      side is not called (a registered callable declares `idempotent=False`).
    - `orders`: the order clients' rule (`harness.router.policy.order_failure_action`): not
      sent -> Python at once; maybe sent -> reconcile by customTag or by reading the order.
    """

    pure = "pure"
    not_idempotent = "not_idempotent"
    orders = "orders"


NAME_PATTERN: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
"""An operation's or a migration's name: lower-case letters, digits and `_`, at most 32
characters (`outcomes.op` is String(32)), starting with a letter."""

Targeting = Mapping[str, Any]
"""A call's targeting attributes: `symbol` (a contract symbol, `MNQ`), `account` (an account
id), or any attribute a registered operation's key function returns."""
KeyFunction = Callable[..., "str | tuple[str, Targeting]"]
"""A registered operation's key rule: from the call's arguments, the routing key (text) or
`(key, attributes)`."""


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """The facts of one operation the routed-call path needs (see the module docstring).

    `python` / `rust` are the two implementations of a registered operation (None for the
    built-ins, whose implementations are the order clients' methods and the bars engines);
    `is_async` whether they are coroutine functions; `key` the routing-key rule of a registered
    operation (None: the built-in rule of its router module); `failure` what a Rust failure
    leads to; `compare(python_result, rust_result)` returns None when equal, else a difference
    text (None: `harness.compare.describe_difference`); `shadow_in` where a shadow runs
    (`thread`, `process` or `auto`: see `harness.router.shadow`); `caller_errors` the
    exception classes that mean the caller's input was wrong (raised to the caller as they are,
    never a fallback nor a breaker's failure; the built-ins use `InvalidInputError`).
    """

    name: str
    migration: str
    python: Callable[..., Any] | None = None
    rust: Callable[..., Any] | None = None
    is_async: bool = False
    key: KeyFunction | None = None
    failure: Failure = Failure.pure
    compare: Callable[[Any, Any], str | None] | None = None
    shadow_in: str = "auto"
    builtin: bool = False
    caller_errors: tuple[type[BaseException], ...] = ()

    @property
    def idempotent(self) -> bool:
        """Whether a failed Rust call may be repeated on Python at all."""
        return self.failure is not Failure.not_idempotent


BUILTIN_MIGRATIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "orders": (Operation.PLACE_ORDER, Operation.MODIFY_ORDER, Operation.CANCEL_ORDER),
    "bars": (Operation.AGGREGATE_BARS,),
}
"""The shipped migrations and their operations: order execution moves as one (modify and
cancel follow the side that placed the order), aggregation on its own."""

BUILTIN_SPECS: Final[Mapping[str, OperationSpec]] = {
    Operation.PLACE_ORDER: OperationSpec(
        Operation.PLACE_ORDER, "orders", failure=Failure.orders, shadow_in="thread", builtin=True
    ),
    Operation.MODIFY_ORDER: OperationSpec(
        Operation.MODIFY_ORDER, "orders", failure=Failure.orders, shadow_in="thread", builtin=True
    ),
    Operation.CANCEL_ORDER: OperationSpec(
        Operation.CANCEL_ORDER, "orders", failure=Failure.orders, shadow_in="thread", builtin=True
    ),
    Operation.AGGREGATE_BARS: OperationSpec(
        Operation.AGGREGATE_BARS, "bars", failure=Failure.pure, shadow_in="auto", builtin=True
    ),
}
"""The built-in operations as entries of the one table (their implementations are bound to
the order clients and bars engines of an open harness)."""

ORDER_OPERATIONS: Final = BUILTIN_MIGRATIONS["orders"]
"""The operations served by an order client (`harness.orders.OrderClient`)."""


def shipped_migration(op: str) -> str | None:
    """The shipped migration of a built-in operation (None for any other name)."""
    spec = BUILTIN_SPECS.get(op)
    return None if spec is None else spec.migration


def check_name(field: str, name: Any) -> str:
    """`name` if it is a valid operation or migration name (`NAME_PATTERN`); raises
    `ConfigError` naming `field` and the value otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        from harness.errors import ConfigError

        reason = "must be lower-case letters, digits and _, starting with a letter, at most 32"
        raise ConfigError(field, name, reason)
    return name


def symbol_of(contract: Any) -> str | None:
    """The contract's symbol: `MNQ` of `CON.F.US.MNQ.Z26` (the ProjectX contract id's fourth
    part), else the text itself (`MNQ`); None for anything that is not text."""
    if not isinstance(contract, str) or not contract:
        return None
    if contract.startswith("CON."):
        parts = contract.split(".")
        if len(parts) >= 4:
            return parts[3]
    return contract
