"""The one routed-call path: call the side decided, fall back if the policy says it is safe,
record the outcome. Every operation goes through it: the order mutations, aggregation, the live
aggregator and every operation a bot registers.

    side, targeted = router.route_call(op, key, attrs)          # targets, hash, kill, breaker
    result = await call_async(router, op, side, key, call, ...)  # or call_sync(...)

`call(side)` runs the operation on `side`. When the Rust side raises, `failure(exc)` (the
operation's `OperationSpec.failure` rule, `harness.router.policy`) says what follows:
- `RAISE`: the exception reaches the caller (the caller's input, the broker's own answer, or a
  non-idempotent operation: never repeated, the Python side is never called);
- `FALLBACK`: `call(PYTHON)`, the request certainly not having reached anything;
- `RECONCILE`: `reconcile(exc)` finds out first (orders: the order may exist) and returns
  `(result, what was done)`.
A Rust failure that led to a fallback counts toward the operation's circuit breaker unless
`blame(rust_failure, python_failure)` says otherwise (the broker out of reach of both clients is
not Rust's fault). Then one outcome row, with why it fell back, and whether the stage's targets
left it out (`targeted`). What differs per operation comes in as these hooks; the skeleton is
written once, here, and each line of it is one of the contracts of DESIGN.md.

`detail(result)` gives the order columns of a success (attempts, order_id, reconciled);
`shown(exc)` what the caller and the store get of an exception (aggregation maps the engine's
row indexes back to the caller's rows); `after(side, result, engine_us)` runs once the outcome is
recorded (the shadow of an aggregation or a registered operation).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter_ns, time_ns
from typing import Any, Final, TypeVar

from harness.operations import Impl
from harness.router.core import Router
from harness.router.policy import Action

__all__ = ["Why", "call_async", "call_sync"]

T = TypeVar("T")
RUST: Final = Impl.RUST
PYTHON: Final = Impl.PYTHON
Detail = Callable[[Any], tuple[int | None, int | None, bool]]


class Why:
    """Why a call fell back: the Rust failure, what the rule said, and what was done."""

    __slots__ = ("action", "failure", "how", "sent_words")

    def __init__(
        self, failure: BaseException, action: Action, how: str, sent_words: bool = True
    ) -> None:
        self.failure = failure
        self.action = action
        self.how = how
        self.sent_words = sent_words

    def text(self) -> str:
        """`rust <Class> (not sent|maybe sent); <what was done>: <message>` (for the store);
        without `sent_words` (nothing is sent anywhere): `rust <Class>; <done>: <message>`."""
        if not self.sent_words:
            return f"rust {type(self.failure).__name__}; {self.how}: {self.failure}"
        sent = "not sent" if self.action is Action.FALLBACK else "maybe sent"
        return f"rust {type(self.failure).__name__} ({sent}); {self.how}: {self.failure}"


def _no_detail(_result: Any) -> tuple[int | None, int | None, bool]:
    return None, None, False


async def call_async(
    router: Router,
    op: str,
    routed: Impl,
    key: str,
    call: Callable[[Impl], Awaitable[T]],
    # Not keyword-only: the order placement passes them by position (binding 13 keywords
    # cost it ~0.3 us a call); the other callers name them.
    failure: Callable[[BaseException], Action],
    how: str,
    targeted: bool = True,
    reconcile: Callable[[BaseException], Awaitable[tuple[T, str]]] | None = None,
    blame: Callable[[BaseException, BaseException], bool] | None = None,
    detail: Detail = _no_detail,
    order_id: int | None = None,
    custom_tag: str | None = None,
    settled: Callable[[str], bool] | None = None,
    after: Callable[[Impl, Any, float], None] | None = None,
    on_error: Callable[[Impl, BaseException, float], None] | None = None,
    served_by: Callable[[Impl, Any], None] | None = None,
    ts_ns: int | None = None,
    started: int | None = None,
) -> T:
    """One awaited routed call (see the module docstring); returns what the serving side
    returned, raises what the caller must see. `how` says what a fallback does (`placed on
    python`); `settled(how)` whether the way a reconciliation ended is a `reconciled` outcome;
    `served_by(side, result)` is told which side's answer the caller gets (the order router
    remembers the placing side); `on_error(side, exc, latency_us)` runs after a failure of the
    side routed to that did not fall back (an order shadow compares failures too), as `after`
    runs after such a success.
    """
    if ts_ns is None:
        ts_ns = time_ns()
    if started is None:
        started = perf_counter_ns()
    stage = router.snapshot.stages[op]
    served, why = routed, None
    try:
        if routed is PYTHON:
            result = await call(PYTHON)
        else:
            try:
                result = await call(RUST)
            except BaseException as exc:
                action = failure(exc)
                if action is Action.RAISE:
                    raise
                served, why = PYTHON, Why(exc, action, how)
                try:
                    if action is Action.FALLBACK or reconcile is None:
                        result = await call(PYTHON)
                    else:
                        result, why.how = await reconcile(exc)
                except BaseException as python_failure:
                    if blame is None or blame(exc, python_failure):
                        router.rust_failed(op, exc)
                    raise
                router.rust_failed(op, exc)
    except BaseException as exc:
        router.record(
            op, ts_ns, started, stage, routed, served, key=key, fell_back=why is not None,
            reason=None if why is None else why.text(), error=exc, order_id=order_id,
            custom_tag=custom_tag, targeted=targeted,
        )  # fmt: skip
        if on_error is not None and why is None and isinstance(exc, Exception):
            on_error(served, exc, (perf_counter_ns() - started) / 1000.0)
        raise
    if why is None:
        attempts, placed_id, reconciled = detail(result)
        router.record_ok(
            op, ts_ns, started, stage, served, key, attempts,
            order_id if placed_id is None else placed_id, custom_tag, reconciled, targeted,
        )  # fmt: skip
        if after is not None:
            after(served, result, (perf_counter_ns() - started) / 1000.0)
        if served_by is not None:
            served_by(served, result)
    else:
        if served_by is not None:
            served_by(served, result)
        attempts, placed_id, reconciled = detail(result)
        if settled is not None:
            reconciled = reconciled or settled(why.how)
        router.record(
            op, ts_ns, started, stage, routed, served, key=key, fell_back=True,
            reason=why.text(), attempts=attempts,
            order_id=order_id if placed_id is None else placed_id, custom_tag=custom_tag,
            reconciled=reconciled, targeted=targeted,
        )  # fmt: skip
    return result


def call_sync(
    router: Router,
    op: str,
    routed: Impl,
    key: str,
    call: Callable[[Impl], T],
    *,
    failure: Callable[[BaseException], Action],
    how: str,
    targeted: bool = True,
    shown: Callable[[BaseException], BaseException] | None = None,
    after: Callable[[Impl, Any, float], None] | None = None,
    on_error: Callable[[Impl, BaseException, float], None] | None = None,
    ts_ns: int | None = None,
    started: int | None = None,
) -> T:
    """One synchronous routed call (see the module docstring): no reconciliation (a
    synchronous operation reaches no broker). `after(side, result, latency_us)` runs after a
    success that did not fall back; `on_error(side, exc, latency_us)` after a failure of the
    side routed to that did not fall back (a shadow compares failures too)."""
    if ts_ns is None:
        ts_ns = time_ns()
    if started is None:
        started = perf_counter_ns()
    stage = router.snapshot.stages[op]
    served, why = routed, None
    try:
        if routed is PYTHON:
            result = call(PYTHON)
        else:
            try:
                result = call(RUST)
            except BaseException as exc:
                action = failure(exc)
                if action is Action.RAISE:
                    raise
                router.rust_failed(op, exc)
                served, why = PYTHON, Why(exc, action, how, sent_words=False)
                result = call(PYTHON)
    except BaseException as exc:
        caller_sees = exc if shown is None else shown(exc)
        router.record(
            op, ts_ns, started, stage, routed, served, key=key, fell_back=why is not None,
            reason=None if why is None else why.text(), error=caller_sees, targeted=targeted,
        )  # fmt: skip
        if on_error is not None and why is None and isinstance(exc, Exception):
            on_error(served, exc, (perf_counter_ns() - started) / 1000.0)
        if caller_sees is not exc:
            raise caller_sees from None
        raise
    if why is None:
        router.record_ok(op, ts_ns, started, stage, served, key, targeted=targeted)
        if after is not None:
            after(served, result, (perf_counter_ns() - started) / 1000.0)
    else:
        router.record(
            op, ts_ns, started, stage, routed, served, key=key, fell_back=True,
            reason=why.text(), targeted=targeted,
        )  # fmt: skip
    return result
