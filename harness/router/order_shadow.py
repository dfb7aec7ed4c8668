"""Order shadows: what the side not serving an order call would have sent, and how it reads
the answers the serving side received. Nothing is sent by the shadow.

At the stage's shadow sample rate (`rollout.stages[*].shadow_sample_rate`, drawn from the same
seeded RNG as every shadow) a place, modify or cancel is awaited inside
`harness.orders.trace.traced()`: the serving side records its exchanges with the broker. Once
the call has returned or raised (and its outcome is recorded), the comparison runs on the shadow
threads (`ShadowRunner.submit_call`), off the caller's path, with the pure build and read steps
of both sides (`harness.orders.codec`):

1. the build: the mutation request the other side builds from the same checked arguments,
   against the one the serving side sent (`body.stopPrice`, `path`); when the serving side's
   build refused the arguments (`InvalidInputError`, a price off the tick grid), the other
   side's refusal (`build.error_class`, `build.message`);
2. the reads: every answer the serving side received to `Order/place`, `Order/modify`,
   `Order/cancel` and the reconciliation look-ups `Order/search` and `Order/searchById`, read
   by both sides: the result, or the error class and `maybe_sent`, `retry_after`,
   `error_code`, `http_status`, `attempts` and the message (`read[2].error_class`);
3. the look-ups' requests: each `Order/search` / `Order/searchById` the serving side sent,
   against the other side's build of it (`request[1].body.startTimestamp`); the start of the
   search window is read from the request sent (it comes from the clock), the rest is built.

Not compared, and why: the decision to retry, look up, log in again or refresh the token (the
send step's policy, which is I/O and timing on each side, not a pure step: the conformance suite
`tests/orders` holds both clients to the same sequence of requests against the simulator's
faults); `Auth/*` exchanges (their bodies are secrets, recorded as `REDACTED`); contract
look-ups (the contract is an input of the build, resolved before it); exchanges that got no
answer (`NOT_SENT`, `LOST`: nothing to read); a call that fell back (its outcome row says why:
the trace then holds both sides' requests).

The first difference is recorded as one `shadow_comparisons` row: `field` is its path, the
serving side's value in `primary_value`, the other side's in `shadow_value`. A call whose
inputs the shadow cannot know without I/O (the contract of a placement, or the tick size of a
modify's order, that neither the serving call's exchanges nor either client's cache holds)
is not a comparison: counted in `ShadowStats.skipped`, never recorded.

Capture (`harness.router.capture`) samples order calls the same way, at the migration's
`capture.rate`: a captured call is traced too, and once it has settled its checked arguments,
the contract the build used and the serving side's exchanges go to the recorder
(`OrderShadow.capture_document`). `harness replay` (`harness.router.replay`) later feeds them
to `compare_order_call`, the same comparison, on both sides of the installed build.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Final, Protocol

from harness import projectx as px
from harness.compare import (
    Difference,
    describe_error,
    first_read_difference,
    first_request_difference,
)
from harness.errors import InvalidInputError
from harness.operations import Impl, Operation
from harness.orders.args import (
    ModifyArgs,
    PlaceArgs,
    check_market,
    check_modify,
    check_order_ref,
    check_place,
)
from harness.orders.codec import Codec, codec
from harness.orders.models import Contract, Order, PlacedOrder
from harness.orders.trace import Exchange, Trace, current, traced
from harness.recorder import ShadowRecord
from harness.router.core import Router
from harness.router.shadow import ShadowRunner

if TYPE_CHECKING:
    from harness.router.capture import Capturer

__all__ = [
    "Checked",
    "Known",
    "NotComparable",
    "OrderShadow",
    "ShadowedCall",
    "build_outcome",
    "checked_args",
    "compare_order_call",
]

log = logging.getLogger("harness.router")

RUST: Final = Impl.RUST
PYTHON: Final = Impl.PYTHON
PLACE: Final = Operation.PLACE_ORDER.value
MODIFY: Final = Operation.MODIFY_ORDER.value
CANCEL: Final = Operation.CANCEL_ORDER.value
MUTATION_PATH: Final = {PLACE: px.ORDER_PLACE, MODIFY: px.ORDER_MODIFY, CANCEL: px.ORDER_CANCEL}
# `OrderShadow.sample`'s answers, made once.
_COMPARE: Final = (True, False)
_CAPTURE: Final = (False, True)
_COMPARE_CAPTURE: Final = (True, True)
KNOWN: Final = 100_000
"""How many contracts and order contracts the shadow remembers (the oldest dropped)."""


class NotComparable(Exception):
    """The shadow cannot know an input of the build without I/O: not a comparison."""


Checked = PlaceArgs | ModifyArgs | tuple[int, int]
"""An order call's checked arguments: a placement's, a modify's, a cancel's (account, order)."""


class Known(Protocol):
    """What the build's inputs are, without I/O: the contracts and the orders' contracts
    (`OrderShadow` learns them from live traffic; a replay has them in the capture)."""

    def contract(self, key: str) -> Contract | None: ...
    def order_contract(self, order_id: int) -> str | None: ...
    def learn_contract(self, key: str, contract: Contract) -> None: ...
    def learn_order(self, order_id: int, contract_id: str) -> None: ...


class ShadowedCall:
    """One sampled order call: its inputs, and the trace its serving side records.

    `compare`: an order shadow compares it; `capture`: it is captured for `harness replay`.
    `checked` holds its checked arguments once known (a replay gives them)."""

    __slots__ = ("account_id", "capture", "checked", "compare", "inputs", "key", "kind", "op",
                 "order_id", "stage", "tag", "trace", "ts_ns")  # fmt: skip

    def __init__(
        self,
        op: str,
        kind: str,
        inputs: tuple[Any, ...],
        key: str,
        stage: str,
        ts_ns: int,
        *,
        compare: bool = True,
        capture: bool = False,
    ) -> None:
        self.op, self.kind, self.inputs = op, kind, inputs
        self.key, self.stage, self.ts_ns = key, stage, ts_ns
        self.compare, self.capture = compare, capture
        self.checked: Checked | None = None
        self.tag: str | None = None
        self.account_id: Any = None
        self.order_id: Any = None
        self.trace = Trace()

    async def run(self, awaitable: Any) -> Any:
        """Await the serving side's call inside a trace; the exchanges also go to a trace the
        caller itself opened (blocks nest, the innermost records)."""
        outer = current()
        with traced() as trace:
            self.trace = trace
            try:
                return await awaitable
            finally:
                if outer is not None:
                    outer.exchanges.extend(trace.exchanges)


class OrderShadow:
    """Samples order calls and compares them off the caller's path (see the module).

    `clients()` gives the routed client's current sides (their caches tell contracts and order
    contracts without I/O: `cached_contract`, `cached_order_contract`).
    """

    def __init__(
        self,
        router: Router,
        shadows: ShadowRunner,
        clients: Callable[[], tuple[object, ...]],
        capturer: Capturer | None = None,
    ) -> None:
        self._router = router
        self._shadows = shadows
        self._clients = clients
        self.capturer = capturer
        self._codecs: dict[Impl, Codec] = {}
        self._lock = threading.Lock()
        self._contracts: OrderedDict[str, Contract] = OrderedDict()
        self._order_contracts: OrderedDict[int, str] = OrderedDict()

    def use_codec(self, impl: Impl, replacement: Codec) -> Codec | None:
        """Test hook: side `impl`'s build and read steps are `replacement` (e.g. a wrapper that
        builds one field wrongly); returns the codec it replaces."""
        previous = self._codecs.get(impl)
        self._codecs[impl] = replacement
        return previous

    def codec(self, impl: Impl) -> Codec:
        """Side `impl`'s build and read steps (made at first use)."""
        found = self._codecs.get(impl)
        if found is None:
            found = self._codecs[impl] = codec(impl.value)
        return found

    def sample(self, op: str, routed: Impl) -> tuple[bool, bool] | None:
        """(compare, capture) when this call of `op`, routed to `routed`, is shadowed (the
        stage's shadow rate, the other side available) or captured (the migration's
        `capture.rate`), else None. Each RNG is drawn as `ShadowRunner.sample` and
        `Capturer.sample` draw it: once per call at a rate strictly between 0 and 1, never at
        0 or 1 (so which calls a seed samples does not change). The caller then builds the
        `ShadowedCall` (`shadowed_call`): an unsampled call builds nothing."""
        snapshot = self._router.snapshot
        rate = snapshot.shadow_rates[op]
        compare = (
            rate > 0.0
            and (routed is RUST or self._router.native_available)
            and (rate >= 1.0 or self._shadows.draw() < rate)
        )
        capturer = self.capturer
        capture = False
        if capturer is not None:
            kept = snapshot.capture_rates.get(op, 0.0)
            capture = kept > 0.0 and (kept >= 1.0 or capturer.draw() < kept)
        if compare:
            return _COMPARE_CAPTURE if capture else _COMPARE
        return _CAPTURE if capture else None

    def shadowed_call(
        self,
        op: str,
        kind: str,
        inputs: tuple[Any, ...],
        key: str,
        ts_ns: int,
        drawn: tuple[bool, bool],
    ) -> ShadowedCall:
        """The `ShadowedCall` of a call `sample` drew (`drawn`): `kind` is `place`, `market`,
        `modify` or `cancel`; `inputs` the caller's arguments as the client method takes
        them."""
        stage = self._router.snapshot.stages[op]
        compare, capture = drawn
        return ShadowedCall(op, kind, inputs, key, stage, ts_ns, compare=compare, capture=capture)

    def after(self, call: ShadowedCall) -> Callable[[Impl, Any, float], None]:
        """The routed call's `after` / `on_error` hook: hand the comparison to the shadow
        threads (returns at once; the comparison's errors never reach the caller)."""

        def settle(served: Impl, outcome: Any, latency_us: float) -> None:
            hint: Contract | None = None
            if call.capture and self.capturer is not None:
                exchanges = list(call.trace.exchanges)
                # The contract now, while the clients' caches hold it (the document is made
                # later, on the recorder's thread, perhaps once the clients have closed).
                hint = self._contract_hint(call)
                self.capturer.submit(
                    call.op, served.value, call.ts_ns,
                    lambda: self.capture_document(call, exchanges, hint),
                )  # fmt: skip
            if call.compare:
                # The contract too, for the same reason: the comparison may run after the
                # clients closed and forgot their caches (a call settled as the bot exits).
                if hint is None:
                    hint = self._contract_hint(call)
                self._shadows.submit_call(
                    lambda: self.compare(call, served, outcome, latency_us, hint)
                )

        return settle

    def _contract_hint(self, call: ShadowedCall) -> Contract | None:
        """The contract of a placement, or of a modify's order, from the caches (a dict look-up
        or two: the caller's `after` hook pays it, for a captured call only)."""
        inputs = call.inputs
        try:
            if call.kind in ("place", "market"):
                return self.contract(str(inputs[1]))
            if call.kind == "modify" and type(inputs[1]) is int:
                contract_id = self.order_contract(inputs[1])
                return None if contract_id is None else self.contract(contract_id)
        except Exception:  # the caller's input, unchecked yet: the document will say
            return None
        return None

    def capture_document(
        self, call: ShadowedCall, exchanges: list[Exchange], hint: Contract | None = None
    ) -> dict[str, Any] | None:
        """The capture of one settled call (`harness.router.capture`): its checked
        arguments, the contract its build used (`hint`, read when the call settled, else
        what the exchanges and caches tell now), its exchanges (scrubbed); None when the
        arguments did not pass the shared checks (nothing was built: nothing to replay)."""
        from dataclasses import asdict

        from harness.router.capture import scrub_exchange

        _learn(exchanges, self)
        try:
            args = checked_args(call)
        except InvalidInputError:
            return None
        contract = hint
        if contract is not None:
            pass
        elif isinstance(args, PlaceArgs):
            contract = self.contract(args.contract)
        elif isinstance(args, ModifyArgs):
            contract_id = self.order_contract(args.order_id)
            contract = None if contract_id is None else self.contract(contract_id)
        return {
            "kind": call.kind,
            "key": call.key,
            "args": list(args),
            "contract": None if contract is None else asdict(contract),
            "exchanges": [scrub_exchange(e) for e in exchanges],
        }

    def compare(
        self,
        call: ShadowedCall,
        served: Impl,
        outcome: Any,
        latency_us: float,
        hint: Contract | None = None,
    ) -> bool | None:
        """Compare one call and record the comparison; True when matched, None when it is not
        a comparison (an input unknown without I/O). `hint`: the contract of a placement or
        of a modify's order, read from the clients' caches when the call settled."""
        started = perf_counter_ns()
        if hint is not None:
            self._learn_hint(call, hint)
        other = PYTHON if served is RUST else RUST
        exchanges = list(call.trace.exchanges)
        try:
            diff, shadow_error = compare_order_call(
                call, exchanges, outcome, self.codec(served), self.codec(other), self
            )
        except NotComparable as why:
            log.debug("order shadow of %s (key %s) not compared: %s", call.op, call.key, why)
            return None
        shadow_us = (perf_counter_ns() - started) / 1000.0
        if diff is not None:
            log.warning("order shadow mismatch (%s, key %s): %s", call.op, call.key, diff)
        router = self._router
        router.record_shadow(
            ShadowRecord(
                call.ts_ns, router.run_id, call.op, call.stage, call.key, served.value,
                other.value, diff is None, None, None, None if diff is None else diff.field,
                None if diff is None else _text(diff.left),
                None if diff is None else _text(diff.right), latency_us, shadow_us,
                None if shadow_error is None else router.scrub(shadow_error)[:1000], None,
                router.migration_of(call.op),
            )
        )  # fmt: skip
        return diff is None

    def _learn_hint(self, call: ShadowedCall, hint: Contract) -> None:
        inputs = call.inputs
        if call.kind in ("place", "market"):
            self.learn_contract(str(inputs[1]), hint)
        elif call.kind == "modify" and type(inputs[1]) is int:
            self.learn_contract(hint.id, hint)
            self.learn_order(inputs[1], hint.id)

    # ----- what the shadow knows without I/O -----------------------------------------------------

    def contract(self, key: str) -> Contract | None:
        """The contract `key` (symbol or id) resolved to, from the serving side's exchanges or
        the clients' caches; None when unknown."""
        with self._lock:
            found = self._contracts.get(key) or self._contracts.get(key.strip())
        for client in self._clients():
            if found is not None:
                break
            cached = getattr(client, "cached_contract", None)
            found = None if cached is None else cached(key)
        return found

    def order_contract(self, order_id: int) -> str | None:
        """The contract id of `order_id`, from shadowed placements and look-ups, or the
        clients' caches; None when unknown."""
        with self._lock:
            found = self._order_contracts.get(order_id)
        for client in self._clients():
            if found is not None:
                break
            cached = getattr(client, "cached_order_contract", None)
            found = None if cached is None else cached(order_id)
        return found

    def learn_contract(self, key: str, contract: Contract) -> None:
        with self._lock:
            for k in (key.strip(), contract.id):
                self._contracts.pop(k, None)
                self._contracts[k] = contract
            while len(self._contracts) > KNOWN:
                self._contracts.popitem(last=False)

    def learn_order(self, order_id: int, contract_id: str) -> None:
        with self._lock:
            self._order_contracts.pop(order_id, None)
            self._order_contracts[order_id] = contract_id
            if len(self._order_contracts) > KNOWN:
                self._order_contracts.popitem(last=False)


def compare_order_call(
    call: ShadowedCall,
    exchanges: list[Exchange],
    outcome: Any,
    serving: Codec,
    other: Codec,
    known: Known,
) -> tuple[Difference | None, str | None]:
    """The first difference between the serving side's exchanges of one order call and the
    other side's build and read of them (see the module), and the other side's build error
    (`Class: message`) if it raised; raises `NotComparable`."""
    _learn(exchanges, known)
    shadow_error: str | None = None
    sent = next((e for e in exchanges if e.path == MUTATION_PATH[call.op]), None)
    try:
        built = _build(call, other, known, sent is not None)
    except InvalidInputError as refused:
        built, shadow_error = refused, describe_error(refused)
    if isinstance(built, BaseException):
        if sent is not None:
            return Difference(None, None, "build.error_class", "sent", _class(built)), shadow_error
        if isinstance(outcome, InvalidInputError):
            diff = first_read_difference(outcome, built, at="build")
            if diff is not None:
                return diff, shadow_error
    elif sent is not None:
        diff = first_request_difference((sent.path, sent.request), built)
        if diff is not None:
            return diff, shadow_error
    elif isinstance(outcome, InvalidInputError):
        return Difference(None, None, "build.error_class", _class(outcome), "ok"), shadow_error
    n: dict[str, int] = {}
    for i, exchange in enumerate(exchanges):
        n[exchange.path] = n.get(exchange.path, 0) + 1
        if exchange.status is None:
            continue
        read = _reader(call, exchange.path)
        if read is None:
            continue
        diff = _lookup_request_difference(call, exchange, other, i)
        if diff is not None:
            return diff, shadow_error
        mine = _outcome(read, serving, exchange, n[exchange.path])
        theirs = _outcome(read, other, exchange, n[exchange.path])
        diff = first_read_difference(mine, theirs, at=f"read[{i}]")
        if diff is not None:
            return diff, shadow_error
    if isinstance(outcome, PlacedOrder) and not isinstance(built, BaseException) and built:
        contract_id = built.body.get("contractId")
        if isinstance(contract_id, str):
            known.learn_order(outcome.order_id, contract_id)
    return None, shadow_error


def build_outcome(call: ShadowedCall, side: Codec, known: Known) -> InvalidInputError | None:
    """Side `side`'s build of the call from its arguments, as an outcome: the refusal it
    raises (`InvalidInputError`, a price off the tick grid), else None (a replay's serving
    side: what it would have returned before anything was sent). Raises `NotComparable`."""
    try:
        _build(call, side, known, False)
    except InvalidInputError as refused:
        return refused
    return None


def checked_args(call: ShadowedCall) -> Checked:
    """The call's checked arguments (`call.checked`, else its inputs through the shared
    checks, remembered); raises `InvalidInputError` as both clients would."""
    if call.checked is not None:
        return call.checked
    inputs = call.inputs
    found: Checked
    if call.kind == "place":
        found = check_place(*inputs[:4], **inputs[4])
    elif call.kind == "market":
        found = check_market(*inputs)
    elif call.kind == "modify":
        found = check_modify(*inputs[:2], **inputs[2])
    else:
        found = check_order_ref(*inputs)
    call.checked = found
    return found


def _build(call: ShadowedCall, side: Codec, known: Known, was_sent: bool) -> Any:
    """The other side's request from the call's arguments (the shared checks first: a refusal
    there is the same on both sides, since both clients run them in Python)."""
    checked = checked_args(call)
    if isinstance(checked, PlaceArgs):
        args = checked
        call.account_id = args.account_id
        call.tag = args.custom_tag
        contract = known.contract(args.contract)
        if contract is None:
            if was_sent:
                raise NotComparable(f"contract {args.contract!r} not known without a look-up")
            return None
        assert args.custom_tag is not None  # the router makes the tag before routing
        return side.build_place(args, contract, args.custom_tag)
    if isinstance(checked, ModifyArgs):
        margs = checked
        call.account_id, call.order_id = margs.account_id, margs.order_id
        tick = None
        if not (margs.limit_price is None and margs.stop_price is None
                and margs.trail_price is None):  # fmt: skip
            contract_id = known.order_contract(margs.order_id)
            contract = None if contract_id is None else known.contract(contract_id)
            if contract is None and was_sent:
                raise NotComparable(f"the tick size of order {margs.order_id} not known")
            tick = None if contract is None else contract.tick_size
        return side.build_modify(margs, tick)
    account_id, order_id = checked
    call.account_id, call.order_id = account_id, order_id
    return side.build_cancel(account_id, order_id)


Read = Callable[[Codec, Exchange, int], Any]


def _reader(call: ShadowedCall, path: str) -> Read | None:
    tag, order_id = call.tag, call.order_id
    if path == px.ORDER_PLACE and tag is not None:
        return lambda c, e, n: c.read_place(
            e.status or 0, e.response, e.retry_after, custom_tag=tag, attempts=n
        )
    if path == px.ORDER_MODIFY:
        return lambda c, e, n: c.read_modify(e.status or 0, e.response, e.retry_after, attempts=n)
    if path == px.ORDER_CANCEL:
        return lambda c, e, n: c.read_cancel(e.status or 0, e.response, e.retry_after, attempts=n)
    if path == px.ORDER_SEARCH and tag is not None:
        return lambda c, e, n: c.read_search_by_tag(
            e.status or 0, e.response, e.retry_after, custom_tag=tag, attempts=n
        )
    if path == px.ORDER_SEARCH_BY_ID and type(order_id) is int:
        return lambda c, e, n: c.read_search_by_id(
            e.status or 0, e.response, e.retry_after, order_id=order_id, attempts=n
        )
    return None


def _outcome(read: Read, side: Codec, exchange: Exchange, attempts: int) -> Any:
    try:
        return read(side, exchange, attempts)
    except Exception as exc:  # the read's verdict on this answer: compared, not raised
        return exc


def _lookup_request_difference(
    call: ShadowedCall, exchange: Exchange, other: Codec, i: int
) -> Difference | None:
    """A reconciliation look-up's request against the other side's build of it."""
    at = f"request[{i}]."
    if exchange.path == px.ORDER_SEARCH_BY_ID:
        built = other.build_search_by_id(call.account_id, call.order_id)
        return first_request_difference((exchange.path, exchange.request), built, at=at)
    if exchange.path == px.ORDER_SEARCH:
        start = _body(exchange.request).get("startTimestamp")
        try:
            start_s = datetime.fromisoformat(str(start)).timestamp()
        except ValueError:
            return Difference(None, None, f"{at}body.startTimestamp", start, "a timestamp")
        built = other.build_search_by_tag(call.account_id, start_s)
        return first_request_difference((exchange.path, exchange.request), built, at=at)
    return None


def _learn(exchanges: list[Exchange], known: Known) -> None:
    """Contracts and order contracts the serving side's answers told (read by the Python
    read steps: an input of the build, not a comparison)."""
    from harness.orders.python import read

    for e in exchanges:
        if e.status != 200:
            continue
        try:
            if e.path == px.CONTRACT_SEARCH:
                symbol = str(_body(e.request).get("searchText"))
                found = read.read_contract_search(e.status, e.response, symbol=symbol)
                if found is not None:
                    known.learn_contract(symbol, found)
            elif e.path == px.CONTRACT_SEARCH_BY_ID:
                contract_id = str(_body(e.request).get("contractId"))
                found = read.read_contract_by_id(e.status, e.response, contract_id=contract_id)
                if found is not None:
                    known.learn_contract(contract_id, found)
            elif e.path == px.ORDER_SEARCH_BY_ID:
                order_id = _body(e.request).get("orderId")
                if type(order_id) is int:
                    order: Order | None = read.read_search_by_id(
                        e.status, e.response, order_id=order_id
                    )
                    if order is not None:
                        known.learn_order(order.id, order.contract_id)
        except Exception:  # an answer that does not read is the comparison's business
            continue


def _body(content: bytes) -> Mapping[str, Any]:
    import json

    try:
        body = json.loads(content) if content else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _class(outcome: Any) -> str:
    return type(outcome).__name__ if isinstance(outcome, BaseException) else "ok"


def _text(value: Any) -> str:
    return (value if isinstance(value, str) else repr(value))[:1000]
