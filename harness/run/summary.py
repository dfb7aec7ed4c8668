"""What `harness run` prints at the end: the run's figures read back from the store.

The figures come from the store after the recorder flushed, through the same queries as
`harness query` (`queries.latency` and `queries.op_figures` with `Filters(run=...)`) and
`harness gate` (`actions.verdict`), so the table and `--json` agree with them to the digit.

`--json` prints one object; its keys are stable (documented in docs/run.md):

    run, status, exit_status, interrupted_by, stage, elapsed_s, account_id, symbols,
    concurrency, budget_wait_s, round_trips {planned, started, completed, failed, cancelled,
    stopped_out},
    ops [{op, migration, calls, calls_made, to_rust, served_by_rust, rust_share, not_targeted,
          fallbacks, errors, reconciled, shadow_comparisons, shadow_mismatches,
          rust {calls, count, mean_ms, p50_ms, p95_ms, p99_ms, max_ms}, python {...}}],
    recorder {rows, dropped, in_spill, spill_file, earlier_lost, damaged_files}, gate (as
    `harness gate --json`: every migration's criteria together, the worst verdict, and each
    migration's own verdict in `gate.migrations.<name>`), problems [{trade, symbol, step,
    error, action}], leftovers {found, after_sweep}, stale_runs [{run, pid, started, kind,
    open_orders, open_positions, swept {cancelled, closed, failed} or null, status}],
    crashed, native {available, error}, build_id, env_kill (TOPSTEPX_USE_RUST was false: all
    to Python), shadows {submitted, skipped, failed, abandoned} (this process's shadow runs)

`ops` has a row per built-in operation and per other operation (a bot's registered one) with
calls in this run; `migration` is the migration the operation belongs to (the config's, else
the one its calls were recorded under). `not_targeted` counts the calls that went to Python
because the stage's targets (`targets: {symbols, accounts}`) left them out, apart from those
the hash sent there. `calls` is what the store holds for the operation; `calls_made` what this
process's router counted (they are equal once the recorder flushed: nothing lost);
`reconciled` the calls settled by a look-up after an attempt of unknown outcome
(`outcomes.reconciled`);
`rust`/`python` are `harness query latency` rows (`calls` served by that side, `count` of them
successful without a fallback, latency of those). `recorder` holds what this process's recorder
counted, not what its run row says (a full or read-only database may not have taken the last
update): `rows` written, `dropped` lost (refused by the database, or neither writable nor
spillable), `in_spill` left in `spill_file` for the next run on the folder, and, of spill files
left by earlier runs, `earlier_lost` rows that could not be replayed and the `damaged_files`
kept aside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import Engine

from harness.config import HarnessConfig
from harness.control import actions
from harness.operations import Impl
from harness.output import print_table, table_cell
from harness.router.core import CallStats
from harness.router.policy import RUST_ENV, env_allows_rust
from harness.run.workload import Problem, Settlement, Tally
from harness.store import queries

if TYPE_CHECKING:
    from harness.recorder import RecorderStats
    from harness.router.shadow import ShadowStats

__all__ = ["RunFacts", "build_summary", "print_summary"]

TABLE_WIDTH = 120
"""The summary table's width at least (a pipe is 80 columns, which would fold every name)."""

_EMPTY_SIDE: dict[str, Any] = {
    "calls": 0,
    "count": 0,
    "mean_ms": None,
    "p50_ms": None,
    "p95_ms": None,
    "p99_ms": None,
    "max_ms": None,
}


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the run itself knows, beside the store: how it went and ended."""

    run_id: str
    status: str
    exit_status: int
    interrupted_by: str | None
    elapsed_s: float
    account_id: int | None
    symbols: tuple[str, ...]
    concurrency: int
    budget_wait_s: float
    tally: Tally
    calls_made: dict[str, CallStats]
    problems: tuple[Problem, ...]
    settlement: Settlement | None
    stale_runs: tuple[dict[str, Any], ...]
    crashed: str | None
    recorder: RecorderStats
    """The recorder's figures at close."""
    native_error: str | None = None
    """Why the native module could not be used (None: it was available)."""
    build_id: str | None = None
    """The native module's build (`harness.native.build_id`)."""
    shadows: ShadowStats | None = None
    """This process's shadow runs at close (`Harness.stats().shadows`)."""


def build_summary(engine: Engine, cfg: HarnessConfig, facts: RunFacts) -> dict[str, Any]:
    """The summary object (see the module docstring), read from the store for `facts.run_id`."""
    filters = queries.Filters(run=facts.run_id)
    latency_rows = queries.latency(engine, filters)
    latency = {(row.op, row.impl): row.to_dict() for row in latency_rows}
    figures = queries.op_figures(engine, filters)
    reconciled = queries.reconciled(engine, filters)
    judged = actions.verdicts(engine, cfg)
    verdict = actions.combined(judged)
    rec = facts.recorder
    recorded_under = {row.op: row.migration for row in latency_rows if row.migration}
    ops = []
    for op, f in figures.items():
        calls = f.rust.calls + f.python.calls
        served_by_rust = f.rust.calls - f.rust.fallbacks
        made = facts.calls_made.get(op)
        sides = {}
        for side in Impl:
            row = dict(latency.get((op, side.value), _EMPTY_SIDE))
            for key in ("op", "impl", "migration", "not_targeted"):
                row.pop(key, None)
            sides[side.value] = row
        ops.append(
            {
                "op": op,
                "migration": cfg.rollout.migration_of(op) or recorded_under.get(op),
                "calls": calls,
                "calls_made": 0 if made is None else made.calls,
                "to_rust": f.rust.calls,
                "served_by_rust": served_by_rust,
                "rust_share": None if calls == 0 else round(served_by_rust / calls, 4),
                "not_targeted": f.rust.not_targeted + f.python.not_targeted,
                "fallbacks": f.rust.fallbacks + f.python.fallbacks,
                "errors": f.rust.errors + f.python.errors,
                "reconciled": reconciled.get(op, 0),
                "shadow_comparisons": f.shadow_comparisons,
                "shadow_mismatches": f.shadow_mismatches,
                "rust": sides["rust"],
                "python": sides["python"],
            }
        )
    return {
        "run": facts.run_id,
        "status": facts.status,
        "exit_status": facts.exit_status,
        "interrupted_by": facts.interrupted_by,
        "stage": verdict.stage,
        "elapsed_s": round(facts.elapsed_s, 3),
        "account_id": facts.account_id,
        "symbols": list(facts.symbols),
        "concurrency": facts.concurrency,
        "budget_wait_s": round(facts.budget_wait_s, 3),
        "round_trips": facts.tally.to_dict(),
        "ops": ops,
        "recorder": {
            "rows": rec.written,
            "dropped": rec.dropped,
            "in_spill": rec.in_spill,
            "spill_file": rec.spill_file,
            "earlier_lost": rec.earlier_lost,
            "damaged_files": list(rec.damaged_files),
        },
        "gate": {
            **verdict.to_dict(),
            "migrations": {name: each.to_dict() for name, each in judged.items()},
        },
        "problems": [p.to_dict() for p in facts.problems],
        "leftovers": None if facts.settlement is None else facts.settlement.to_dict(),
        "stale_runs": list(facts.stale_runs),
        "crashed": facts.crashed,
        "native": {"available": facts.native_error is None, "error": facts.native_error},
        "build_id": facts.build_id,
        "env_kill": not env_allows_rust(),
        "shadows": None if facts.shadows is None else _shadows(facts.shadows),
    }


def _shadows(stats: ShadowStats) -> dict[str, int]:
    return {
        "submitted": stats.submitted,
        "skipped": stats.skipped,
        "failed": stats.failed,
        "abandoned": stats.abandoned,
    }


def _ms(side: dict[str, Any], key: str) -> str:
    # Significant digits as every table shows a float (0.001234, 90.12): two decimals showed a
    # 4 us aggregation as 0.00.
    return table_cell(side.get(key))


def print_summary(summary: dict[str, Any], stream: TextIO | None = None) -> None:
    """The summary for a person: the table per operation, then the verdict and any problems."""
    import sys

    out = stream or sys.stdout
    trips = summary["round_trips"]
    recorder = summary["recorder"]
    headline = (
        f"run {summary['run']}: {summary['status']}, stage {summary['stage']}, "
        f"{trips['completed']}/{trips['planned']} round trips completed"
        + (f", {trips['failed']} with problems" if trips["failed"] else "")
        + (f", {trips['cancelled']} cancelled" if trips["cancelled"] else "")
        + (f", {trips['stopped_out']} stopped out" if trips["stopped_out"] else "")
        + f" in {summary['elapsed_s']:.1f} s"
        + (
            f" ({summary['budget_wait_s']:.1f} s of it waiting to stay under the rate limits)"
            if summary["budget_wait_s"] >= 0.1
            else ""
        )
    )
    rows = [
        {
            "op": o["op"],
            "migration": o["migration"],
            "calls": o["calls"],
            "rust %": None if o["rust_share"] is None else f"{100 * o['rust_share']:.0f}%",
            "not targeted": o["not_targeted"],
            "fallbacks": o["fallbacks"],
            "errors": o["errors"],
            "rust p50": _ms(o["rust"], "p50_ms"),
            "rust p99": _ms(o["rust"], "p99_ms"),
            "py p50": _ms(o["python"], "p50_ms"),
            "py p99": _ms(o["python"], "p99_ms"),
            "shadow": o["shadow_comparisons"],
            "mismatches": o["shadow_mismatches"],
        }
        for o in summary["ops"]
    ]
    columns = list(rows[0])
    print(headline, file=out)
    if summary.get("build_id"):
        print(f"build: {summary['build_id']}", file=out)
    print_table(
        "latency in ms (successful calls served without a fallback)",
        columns,
        rows,
        stream=out,
        right=columns[2:],
        min_width=TABLE_WIDTH,
    )
    made = sum(o["calls_made"] for o in summary["ops"])
    stored = sum(o["calls"] for o in summary["ops"])
    print(
        f"recorded: {table_cell(stored)} of {table_cell(made)} calls"
        f" (dropped: {table_cell(recorder['dropped'])})",
        file=out,
    )
    if recorder["dropped"]:
        print(
            f"ROWS LOST: the recorder could not record {table_cell(recorder['dropped'])} rows "
            "(refused by the database, or neither writable nor spillable; the log says which)",
            file=out,
        )
    if recorder["in_spill"]:
        print(
            f"{table_cell(recorder['in_spill'])} rows the database did not take wait in "
            f"{recorder['spill_file']}: the next run on this folder writes them",
            file=out,
        )
    if recorder["earlier_lost"]:
        kept = ", ".join(recorder["damaged_files"]) or "none"
        print(
            f"ROWS LOST by an earlier run: {table_cell(recorder['earlier_lost'])} rows of its "
            f"spill file could not be replayed (damaged file kept: {kept})",
            file=out,
        )
    shadows = summary.get("shadows")
    if shadows and (shadows["skipped"] or shadows["failed"] or shadows["abandoned"]):
        print(
            f"shadows not compared: {table_cell(shadows['skipped'])} skipped (max_in_flight "
            f"reached, or an order's input unknown without I/O), {table_cell(shadows['failed'])}"
            f" failed to run, {table_cell(shadows['abandoned'])} abandoned at close",
            file=out,
        )
    settled = [f"{o['op']} {o['reconciled']}" for o in summary["ops"] if o["reconciled"]]
    if settled:
        print(
            "reconciled (an attempt's outcome was unknown; a look-up found it): "
            + ", ".join(settled),
            file=out,
        )
    for name, gate in summary["gate"]["migrations"].items():  # each judged on its own
        not_passing = [c for c in gate["criteria"] if c["result"] != "PASS"]
        detail = ""
        if not_passing and gate["verdict"] != "PASS":
            shown = ", ".join(
                f"{c['op'] or 'stage'} {c['criterion']} {c['result']}" for c in not_passing[:4]
            )
            detail = f" ({shown}{', ...' if len(not_passing) > 4 else ''})"
        print(f"gate for {name} at stage {gate['stage']}: {gate['verdict']}{detail}", file=out)
    for stale in summary["stale_runs"]:
        orders, held = stale["open_orders"], stale["open_positions"]
        left = (
            f"left {len(orders)} order(s) open: " + ", ".join(str(o["id"]) for o in orders)
            if orders
            else "no open orders of it found"
        )
        if held:
            left += "; positions in its contracts: " + ", ".join(
                f"{p['contract_id']} x{p['size']}" for p in held
            )
        swept = stale["swept"]
        if swept is not None:
            left += (
                f"; swept: {len(swept['cancelled'])} order(s) cancelled, position(s) closed in "
                f"{', '.join(swept['closed']) or 'none'}"
                + (f", FAILED: {'; '.join(swept['failed'])}" if swept["failed"] else "")
            )
        left += "; marked died in the store" if stale["status"] == "died" else "; still reported"
        print(
            f"earlier run {stale['run']} (pid {stale['pid']}, started {stale['started']}) "
            f"died without closing; {left}",
            file=out,
        )
    for problem in summary["problems"]:
        where = (
            f"trip {problem['trade']} {problem['symbol']}" if problem["trade"] is not None else ""
        )
        print(
            f"problem: {where} {problem['step']}: {problem['error']} -> {problem['action']}",
            file=out,
        )
    leftovers = summary["leftovers"]
    if leftovers is not None:
        found = leftovers["found"]
        if any(found[k] for k in ("open_orders", "open_positions", "unknown_tags", "read_error")):
            after = leftovers["after_sweep"] or {}
            print(
                f"LEFT OPEN at the end: {_left(found)}; after the sweep: {_left(after)}", file=out
            )
    if summary.get("env_kill"):
        print(
            f"kill switch: {RUST_ENV} is false in the environment: everything went to Python",
            file=out,
        )
    if not summary["native"]["available"]:
        print(
            f"native module unavailable ({summary['native']['error']}): everything ran on Python",
            file=out,
        )
    if summary["crashed"]:
        print(f"the workload stopped on an unexpected error: {summary['crashed']}", file=out)
    if summary["interrupted_by"]:
        print(f"interrupted by {summary['interrupted_by']}", file=out)


def _left(part: dict[str, Any]) -> str:
    if not part:
        return "-"
    if part.get("read_error"):
        return f"could not read the account ({part['read_error']})"
    bits = []
    if part["open_orders"]:
        bits.append(f"{len(part['open_orders'])} open order(s)")
    if part["open_positions"]:
        held = ", ".join(f"{p['contract_id']} x{p['size']}" for p in part["open_positions"])
        bits.append(f"position(s) {held}")
    if part["unknown_tags"]:
        bits.append(f"{len(part['unknown_tags'])} order(s) in an unknown state")
    return "; ".join(bits) or "nothing"
