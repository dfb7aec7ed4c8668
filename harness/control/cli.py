"""`harness gate | promote | rollback | kill | unkill | status | breaker`: the rollout by hand.

Each command reads the configured database (`db.url`, `HARNESS_DB_URL`), acts through
`harness.control.actions` (the same functions the dashboard calls) and prints a table, or JSON
with `--json`. Exit status: 0 done (for `gate`: PASS), 1 refused or FAIL, 2 bad input or an
unusable database, 3 `gate` INCONCLUSIVE.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from harness.config import HarnessConfig
from harness.control import actions
from harness.gate import Verdict
from harness.gate.verdict import Outcome
from harness.operations import Operation
from harness.output import print_json, print_table
from harness.router.policy import RUST_ENV
from harness.store.db import open_store
from harness.store.state import default_who

__all__ = ["Breaker", "Gate", "Kill", "Promote", "Rollback", "Status", "Unkill"]

EXIT_FOR = {Outcome.PASS: 0, Outcome.FAIL: 1, Outcome.INCONCLUSIVE: 3}


def _who_reason(parser: argparse.ArgumentParser, *, reason_help: str) -> None:
    parser.add_argument("--reason", default=None, help=reason_help)
    parser.add_argument(
        "--who",
        default=None,
        help=f"who acts, for the event (default: the OS user, {default_who()})",
    )


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def print_verdict(verdict: Verdict) -> None:
    """The verdict as a table of criteria, then the overall line."""
    rows: list[dict[str, Any]] = [
        {
            "op": c.op.value if c.op is not None else "(stage)",
            "criterion": c.criterion.value + (" *" if c.critical else ""),
            "result": c.result.value,
            "figure": c.figure,
            "bound": c.bound,
            "detail": c.detail,
        }
        for c in verdict.criteria
    ]
    title = f"gate of stage {verdict.stage!r} (* = critical: a FAIL rolls the stage back)"
    print_table(title, ["op", "criterion", "result", "figure", "bound", "detail"], rows)
    if verdict.skipped:
        print(f"skipped: {len(verdict.skipped)} criteria that do not apply at this stage")
    print(f"verdict: {verdict.result.value}")


def _act(
    args: argparse.Namespace,
    cfg: HarnessConfig,
    action: Callable[..., actions.ActionResult],
    **options: Any,
) -> int:
    """Run one action on the configured store, print what it did (or its JSON); 0."""
    engine = open_store(cfg.db.url)
    try:
        result = action(engine, cfg, who=args.who, reason=args.reason, **options)
    finally:
        engine.dispose()
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
    return 0


class Gate:
    """`harness gate`: judge the current stage's window."""

    help = "judge the current stage against the gate's criteria"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness gate`."""
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Print the verdict; exit 0 PASS, 1 FAIL, 3 INCONCLUSIVE."""
        engine = open_store(cfg.db.url, read_only=True)
        try:
            verdict = actions.verdict(engine, cfg)
        finally:
            engine.dispose()
        if args.json:
            print_json(verdict.to_dict())
        else:
            print_verdict(verdict)
        return EXIT_FOR[verdict.result]


class Promote:
    """`harness promote`: to the next stage, only on PASS (or forced, with a reason)."""

    help = "move to the next stage if the gate passes"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness promote`."""
        parser.add_argument(
            "--force",
            action="store_true",
            help="promote whatever the gate says (needs --reason; recorded as forced)",
        )
        _who_reason(parser, reason_help="why (required with --force)")
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Promote; exit 1 (and nothing written) if the gate does not pass."""
        return _act(args, cfg, actions.promote, force=args.force)


class Rollback:
    """`harness rollback`: one stage down, or `--to STAGE`, at once."""

    help = "move down the ladder at once (one stage, or --to STAGE)"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness rollback`."""
        parser.add_argument("--to", default=None, metavar="STAGE", help="the stage to return to")
        _who_reason(parser, reason_help="why, for the event")
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Roll back."""
        return _act(args, cfg, actions.rollback, to=args.to)


class Kill:
    """`harness kill`: everything to Python in every process, within about a second."""

    help = "send every operation to Python in every process (the store's kill flag)"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness kill`."""
        _who_reason(parser, reason_help="why, for the event")
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Set the kill flag."""
        return _act(args, cfg, actions.kill)


class Unkill:
    """`harness unkill`: clear the kill flag."""

    help = "clear the kill flag (routing follows the stage again)"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness unkill`."""
        _who_reason(parser, reason_help="why, for the event")
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Clear the kill flag."""
        return _act(args, cfg, actions.unkill)


class Breaker:
    """`harness breaker`: show the circuit breakers, or `reset --op OP` one."""

    help = "show the circuit breakers, or reset one (reset --op OP)"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness breaker`."""
        parser.add_argument(
            "action", nargs="?", choices=("show", "reset"), default="show", help="show or reset"
        )
        parser.add_argument(
            "--op",
            choices=[op.value for op in Operation],
            default=None,
            help="reset: the operation whose breaker to close; show: only that operation's",
        )
        _who_reason(parser, reason_help="why, for the event")
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Show or reset."""
        engine = open_store(cfg.db.url, read_only=args.action == "show")
        try:
            if args.action == "reset":
                if args.op is None:
                    raise actions.ActionInputError("breaker reset needs --op OPERATION")
                result = actions.reset_breaker(
                    engine, cfg, Operation(args.op), who=args.who, reason=args.reason
                )
                print_json(result.to_dict()) if args.json else print(f"{args.op}: breaker closed")
                return 0
            breakers = actions.status(engine, cfg)["breakers"]
        finally:
            engine.dispose()
        rows = [
            {
                "op": op.value,
                **breakers.get(op.value, {"open": False, "reason": None, "failures": 0}),
            }
            for op in Operation
            if args.op is None or op.value == args.op
        ]
        if args.json:
            print_json(rows)
        else:
            print_table("circuit breakers", ["op", "open", "failures", "reason"], rows)
        return 0


class Status:
    """`harness status`: stage, percentages, kill flag, breakers, native module, verdict."""

    help = "the rollout at a glance: stage, percentages, kill flag, breakers, verdict"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness status`."""
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Print the status (read-only: a store without a rollout state is shown as the stage
        the first run would start, and not written)."""
        engine = open_store(cfg.db.url, read_only=True)
        try:
            data = actions.status(engine, cfg)
        finally:
            engine.dispose()
        if args.json:
            print_json(data)
            return 0
        ladder = " -> ".join(f"[{s}]" if s == data["stage"] else s for s in data["ladder"])
        since = (
            f"since {data['stage_since']}"
            if data["started"]
            else "(no rollout state yet: the first run or action starts it at this stage)"
        )
        print(f"stage: {data['stage']} {since}   ladder: {ladder}")
        if data["kill"]:
            why = data["kill_reason"] or "no reason given"
            print(f"KILL SWITCH SET: everything goes to Python ({why})")
        if data["env_kill"]:
            print(
                f"KILL SWITCH IN THIS ENVIRONMENT: {RUST_ENV}={os.environ.get(RUST_ENV, '')!r}: "
                "a bot or `harness run` started from here sends everything to Python"
            )
        rows = [
            {
                "op": op,
                "% to Rust": pct,
                "breaker": "OPEN" if data["breakers"].get(op, {}).get("open") else "closed",
            }
            for op, pct in data["percent"].items()
        ]
        print_table(None, ["op", "% to Rust", "breaker"], rows, right=["% to Rust"])
        print(f"shadow sample rate: {data['shadow_sample_rate']:g}")
        native = data["native_available"]
        native_text = (
            "unknown (no run yet)"
            if native is None
            else ("available" if native else f"UNAVAILABLE: {data['native_error']}")
        )
        print(f"native module (latest run): {native_text}")
        print(f"gate: {data['verdict']}  (`harness gate` for the criteria)")
        for criterion in data["gate"]["criteria"]:
            if criterion["result"] == "FAIL":  # e.g. a fallback rate, with its figures
                where = criterion["op"] or "stage"
                print(f"  FAIL {where} {criterion['criterion']}: {criterion['detail']}")
        return 0
