"""Replay: every captured call through both sides of the installed build, offline.

    report = replay(engine, since_ns=..., op="place_order")
    report.ops["place_order"].mismatched        # 0: today's build does what the captures did
    record(engine, report)                      # the `replays` rows the gate reads

No broker and no clock: each capture (`harness.router.capture`) holds what the call's build
and reads need.

- An order call (`place_order`, `modify_order`, `cancel_order`) goes through
  `harness.router.order_shadow.compare_order_call`, the order shadow's own comparison, twice:
  once with Rust as the side compared and once with Python. So each side's build of the
  mutation request (from the captured checked arguments and contract) is compared with the
  request the capture sent, each reconciliation look-up's request likewise, and every captured
  answer is read by both sides and the two readings compared. A call whose build needs an
  input the capture does not hold (its contract was unknown) is `skipped`.
- An aggregation (`aggregate_bars`) runs the captured 1-minute columns through both engines'
  `aggregate_columns` and compares the results with `harness.compare.first_result_difference`
  (the contract tests' equality).

A difference is named by its field path (`body.stopPrice`, `read[0].order_id`,
`build.error_class`; a bar column with its timeframe and index for an aggregation,
`5m.c[12]`), with both values and whose they are: a request against the captured one
(`captured` vs `rust`), a reading or an aggregation of one side against the other's
(`python` vs `rust`). A capture that cannot be read (another format, a damaged payload)
counts as `unreadable`, never as a match.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from sqlalchemy import Engine, insert, select

from harness.compare import Difference, first_result_difference
from harness.operations import Impl, Operation
from harness.orders.args import Bracket, ModifyArgs, PlaceArgs
from harness.orders.codec import Codec
from harness.orders.models import Contract
from harness.router.capture import FORMAT, bars_inputs, decode, exchange_of
from harness.router.order_shadow import (
    MUTATION_PATH,
    Checked,
    NotComparable,
    ShadowedCall,
    build_outcome,
    compare_order_call,
)
from harness.store.db import write_transaction
from harness.store.models import Capture, Replay

__all__ = ["CallResult", "OpReplay", "ReplayReport", "record", "replay", "replay_one"]

AGGREGATE: Final = Operation.AGGREGATE_BARS.value
ORDER_OPS: Final = frozenset(
    {Operation.PLACE_ORDER.value, Operation.MODIFY_ORDER.value, Operation.CANCEL_ORDER.value}
)
TEXT: Final = 200
"""A difference's values are shown cut to this many characters."""


@dataclass(frozen=True, slots=True)
class CallResult:
    """One captured call replayed: `verdict` is `matched`, `mismatched`, `skipped` (an input of
    the build unknown) or `unreadable` (another format, a damaged payload); a mismatch names
    its first difference: `field`, and the two values with whose they are (`left_side`:
    `captured` for the request the capture sent, else `python` or `rust`; `right_side`: the
    side that differed from it); a skip or unreadable its `note`."""

    verdict: str
    field: str | None = None
    left_side: str | None = None
    left: Any = None
    right_side: str | None = None
    right: Any = None
    note: str | None = None


@dataclass
class OpReplay:
    """One operation's replay: counts, and the first differences (at most `first` of them,
    each with its capture's `capture_id` and `ts_ns`)."""

    op: str
    migration: str
    replayed: int = 0
    matched: int = 0
    mismatched: int = 0
    skipped: int = 0
    unreadable: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (stable keys)."""
        return asdict(self)


@dataclass
class ReplayReport:
    """A whole replay: the installed build (`build_id`), per operation its `OpReplay`."""

    build_id: str
    ops: dict[str, OpReplay] = field(default_factory=dict)

    @property
    def mismatched(self) -> int:
        """Mismatches in all (the command exits 1 when not 0)."""
        return sum(r.mismatched for r in self.ops.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (stable keys): `build_id`, `mismatched`, `ops` (a list)."""
        return {
            "build_id": self.build_id,
            "mismatched": self.mismatched,
            "ops": [r.to_dict() for r in self.ops.values()],
        }


class _Recorded:
    """What a capture tells the build (`harness.router.order_shadow.Known`): its contract."""

    def __init__(self, contract: Contract | None) -> None:
        self._contract = contract

    def contract(self, key: str) -> Contract | None:
        return self._contract

    def order_contract(self, order_id: int) -> str | None:
        return None if self._contract is None else self._contract.id

    def learn_contract(self, key: str, contract: Contract) -> None:
        pass

    def learn_order(self, order_id: int, contract_id: str) -> None:
        pass


def _checked(kind: str, args: list[Any]) -> Checked:
    """The checked arguments of a captured order call (`list(args)` of `PlaceArgs`,
    `ModifyArgs`, or a cancel's `(account_id, order_id)`)."""
    if kind in ("place", "market"):
        if len(args) != len(PlaceArgs._fields):
            raise ValueError(f"a placement of {len(args)} arguments")
        stop_loss, take_profit = args[9], args[10]
        brackets = (
            None if stop_loss is None else Bracket(*stop_loss),
            None if take_profit is None else Bracket(*take_profit),
        )
        return PlaceArgs._make([*args[:9], *brackets])
    if kind == "modify":
        return ModifyArgs(*args)
    account_id, order_id = args
    return int(account_id), int(order_id)


def replay_order(
    op: str, document: Mapping[str, Any], codecs: Mapping[Impl, Codec], ts_ns: int = 0
) -> CallResult:
    """Replay one captured order call on both sides (see the module)."""
    try:
        kind = str(document["kind"])
        checked = _checked(kind, list(document["args"]))
        raw = document.get("contract")
        contract = None if raw is None else Contract(**raw)
        exchanges = [exchange_of(e) for e in document["exchanges"]]
        key = str(document.get("key", ""))
    except (KeyError, TypeError, ValueError) as exc:
        return CallResult("unreadable", note=f"not an order capture: {exc!r}")
    known = _Recorded(contract)
    for serving, other in ((Impl.PYTHON, Impl.RUST), (Impl.RUST, Impl.PYTHON)):
        call = ShadowedCall(op, kind, (), key, "replay", ts_ns)
        call.checked = checked
        try:
            outcome = build_outcome(call, codecs[serving], known)
            diff, _ = compare_order_call(
                call, exchanges, outcome, codecs[serving], codecs[other], known
            )
        except NotComparable as why:
            return CallResult("skipped", note=str(why))
        if diff is not None:
            # A reading is the serving side's against the other's; so is a refusal when no
            # request was sent; anything else is a request against the captured one.
            own = diff.field.startswith("read[") or (
                diff.field.startswith("build.")
                and not any(e.path == MUTATION_PATH[op] for e in exchanges)
            )
            return _mismatch(diff, serving.value if own else "captured", other.value)
    return CallResult("matched")


def replay_bars(document: Mapping[str, Any], engines: Mapping[Impl, Any]) -> CallResult:
    """Replay one captured aggregation on both engines (see the module)."""
    from harness.bars import Bars

    try:
        columns, periods, offsets, names = bars_inputs(document)
    except ValueError as exc:
        return CallResult("unreadable", note=str(exc))
    outcomes: dict[Impl, Any] = {}
    for side in (Impl.PYTHON, Impl.RUST):
        try:
            series = engines[side].aggregate_columns(*columns, periods, offsets)
            outcomes[side] = {n: Bars(*one) for n, one in zip(names, series, strict=True)}
        except Exception as exc:  # the engine's verdict on this input: compared, not raised
            outcomes[side] = exc
    diff = first_result_difference(outcomes[Impl.PYTHON], outcomes[Impl.RUST])
    if diff is None:
        return CallResult("matched")
    return _mismatch(diff, Impl.PYTHON.value, Impl.RUST.value)


def _mismatch(diff: Difference, left_side: str, right_side: str) -> CallResult:
    where = "" if diff.timeframe is None else f"{diff.timeframe}."
    at = "" if diff.index is None else f"[{diff.index}]"
    return CallResult(
        "mismatched", f"{where}{diff.field}{at}", left_side, _shown(diff.left), right_side,
        _shown(diff.right),
    )  # fmt: skip


def _shown(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text[:TEXT]


def replay_one(
    op: str,
    payload: bytes,
    format_version: int,
    codecs: Mapping[Impl, Codec],
    engines: Mapping[Impl, Any],
    ts_ns: int = 0,
) -> CallResult:
    """Replay one capture's payload (see the module)."""
    if format_version != FORMAT:
        return CallResult(
            "unreadable", note=f"format {format_version}, this harness reads {FORMAT}"
        )
    try:
        document = decode(payload)
    except ValueError as exc:
        return CallResult("unreadable", note=str(exc))
    if op == AGGREGATE:
        return replay_bars(document, engines)
    if op in ORDER_OPS:
        return replay_order(op, document, codecs, ts_ns)
    return CallResult("unreadable", note=f"no replay for operation {op!r}")


def _captures(
    engine: Engine,
    run: str | None,
    since_ns: int | None,
    op: str | None,
    migration: str | None,
) -> Iterator[Any]:
    c = Capture.__table__.c
    query = select(c.id, c.ts_ns, c.migration, c.op, c.format, c.payload).order_by(c.ts_ns, c.id)
    if run is not None:
        query = query.where(c.run_id == run)
    if since_ns is not None:
        query = query.where(c.ts_ns >= since_ns)
    if op is not None:
        query = query.where(c.op == op)
    if migration is not None:
        query = query.where(c.migration == migration)
    with engine.connect() as conn:
        yield from conn.execution_options(yield_per=200).execute(query)


def replay(
    engine: Engine,
    build_id: str,
    *,
    run: str | None = None,
    since_ns: int | None = None,
    op: str | None = None,
    migration: str | None = None,
    codecs: Mapping[Impl, Codec] | None = None,
    engines: Mapping[Impl, Any] | None = None,
    first: int = 5,
) -> ReplayReport:
    """Replay the captures the filters select (a run's id, since an instant in ns, one
    operation, one migration), oldest first, on `codecs` and `engines` (default: both sides of
    the installed build: `harness.orders.codec.codec` and `harness.router.shadow`'s
    `DEFAULT_ENGINES`). Keeps the `first` differences per operation. SQLAlchemy's errors
    propagate."""
    if codecs is None:
        from harness.orders.codec import codec

        codecs = {Impl.PYTHON: codec("python"), Impl.RUST: codec("rust")}
    if engines is None:
        import importlib

        from harness.router.shadow import DEFAULT_ENGINES

        engines = {side: importlib.import_module(name) for side, name in DEFAULT_ENGINES.items()}
    report = ReplayReport(build_id)
    for row in _captures(engine, run, since_ns, op, migration):
        one = report.ops.get(row.op)
        if one is None:
            one = report.ops[row.op] = OpReplay(row.op, row.migration)
        result = replay_one(row.op, bytes(row.payload), row.format, codecs, engines, row.ts_ns)
        one.replayed += 1
        if result.verdict == "matched":
            one.matched += 1
        elif result.verdict == "mismatched":
            one.mismatched += 1
            if len(one.differences) < first:
                one.differences.append({
                    "capture_id": row.id, "ts_ns": row.ts_ns, "field": result.field,
                    "left_side": result.left_side, "left": result.left,
                    "right_side": result.right_side, "right": result.right,
                })  # fmt: skip
        elif result.verdict == "skipped":
            one.skipped += 1
        else:
            one.unreadable += 1
    return report


def record(engine: Engine, report: ReplayReport, now_ns: int | None = None) -> None:
    """Write one `replays` row per operation of `report` (the gate's `replay` criterion reads
    the latest of each operation for a build). Unreadable captures count as mismatched there:
    the gate must not pass on what could not be replayed."""
    now = time.time_ns() if now_ns is None else now_ns
    rows = [
        {
            "id": uuid.uuid4().hex,
            "ts_ns": now,
            "build_id": report.build_id,
            "migration": r.migration,
            "op": r.op,
            "replayed": r.replayed,
            "matched": r.matched,
            "mismatched": r.mismatched + r.unreadable,
            "skipped": r.skipped,
            "first_field": (r.differences[0]["field"] or "")[:128] if r.differences else None,
        }
        for r in report.ops.values()
    ]
    if not rows:
        return
    with write_transaction(engine) as conn:
        conn.execute(insert(Replay), rows)
