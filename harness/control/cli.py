"""`harness gate | promote | rollback | kill | unkill | status | breaker`: the rollout by hand.

Each command reads the configured database (`db.url`, `HARNESS_DB_URL`), acts through
`harness.control.actions` (the same functions the dashboard calls) and prints a table, or JSON
with `--json`. Exit status: 0 done (for `gate`: PASS), 1 refused or FAIL (the state moved since
`--from STAGE` included), 2 bad input, an unusable database or one that stayed busy for
`db.write_wait_s`, 3 `gate` INCONCLUSIVE.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from harness.config import HarnessConfig
from harness.control import actions
from harness.control.gates import stage_gate
from harness.gate import Verdict
from harness.gate.verdict import Outcome
from harness.operations import Operation
from harness.output import print_json, print_table, printable
from harness.router.policy import RUST_ENV
from harness.store.db import open_store, unavailable_error
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


def _from_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--from",
        dest="from_stage",
        default=None,
        metavar="STAGE",
        help=f"the stage you decided on: {what} only if the stage is still STAGE (exit 1 "
        "otherwise, nothing written); default: the stage this command reads",
    )


def _rejudge_flag(parser: argparse.ArgumentParser, more: str = "; nothing is written") -> None:
    parser.add_argument(
        "--rejudge",
        action="store_true",
        help="judge with this command's gate settings instead of those stored with the stage "
        f"when it started (shown as such{more})",
    )


def _waiting(command: str) -> Callable[[str], None] | None:
    """On a terminal, a line saying why an action waits on a busy database (a script gets
    only the outcome: the result, or the one-line error)."""
    if not sys.stderr.isatty():
        return None
    return lambda text: print(f"harness {command}: waiting: {text}", file=sys.stderr)


def settings_text(verdict: Verdict) -> str:
    """Which gate settings judged `verdict`, for a person: `gate settings 'quick'
    (1a2b3c4d5e6f7a8b, stored with the stage)`."""
    ref = verdict.gate_settings
    if ref is None:
        return "gate settings: not recorded"
    how = {
        "stored": "stored with the stage",
        "command": "this command's; none stored with the stage",
        "rejudged": "this command's, --rejudge",
    }.get(ref["source"], ref["source"])
    return f"gate settings {ref['name']!r} ({ref['fingerprint']}, {how})"


def _note(command: str, engine_cfg: tuple[Any, HarnessConfig], *, rejudge: bool = False) -> None:
    """The one-line warning when the stage is judged by gate settings other than this
    command's own (stderr, so `--json` stays one document)."""
    engine, cfg = engine_cfg
    state = actions.current_state(engine, cfg)
    note = actions.gate_judging(cfg, state, rejudge=rejudge).note(state.stage)
    if note is not None:
        print(f"harness {command}: warning: {note}", file=sys.stderr)


def print_verdict(verdict: Verdict) -> None:
    """The verdict as a table of criteria, then the overall line and the settings that
    judged it."""
    rows: list[dict[str, Any]] = [
        {
            "op": str(c.op) if c.op is not None else "(stage)",
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
    print(f"verdict: {verdict.result.value}  ({settings_text(verdict)})")


def _act(
    args: argparse.Namespace,
    cfg: HarnessConfig,
    action: Callable[..., actions.ActionResult],
    **options: Any,
) -> int:
    """Run one action on the configured store, print what it did (or its JSON); 0.

    A database failure in the middle (the server gone, a read-only file) is one line naming
    the database, exit 2 (`StoreUnavailableError`), never a traceback."""
    engine = open_store(cfg.db.url)
    try:
        result = action(
            engine,
            cfg,
            who=args.who,
            reason=args.reason,
            on_busy=_waiting(args.command),
            **options,
        )
    except SQLAlchemyError as exc:
        raise unavailable_error(engine, exc) from None
    finally:
        engine.dispose()
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
    _judged_note(args.command, result, cfg)
    return 0


def _judged_note(command: str, result: actions.ActionResult, cfg: HarnessConfig) -> None:
    """After a promotion or rollback judged by settings other than this command's own: one
    line naming both (the new stage is stored with this command's)."""
    judged_by = None if result.verdict is None else result.verdict.gate_settings
    if command not in ("promote", "rollback") or judged_by is None:
        return
    own = stage_gate(cfg.gate)
    if judged_by["source"] == "stored" and judged_by["fingerprint"] != own.fingerprint:
        print(
            f"harness {command}: warning: stage {result.before.stage!r} was judged by the gate "
            f"settings stored with it, {judged_by['name']!r} ({judged_by['fingerprint']}), not "
            f"by this command's {own.name!r} ({own.fingerprint}), which are stored with "
            f"{result.after.stage!r}",
            file=sys.stderr,
        )


class Gate:
    """`harness gate`: judge the current stage's window."""

    help = "judge the current stage against the gate's criteria"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness gate`."""
        _rejudge_flag(parser)
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Print the verdict; exit 0 PASS, 1 FAIL, 3 INCONCLUSIVE."""
        engine = open_store(cfg.db.url, read_only=True)
        try:
            _note("gate", (engine, cfg), rejudge=args.rejudge)
            verdict = actions.verdict(engine, cfg, rejudge=args.rejudge)
        except SQLAlchemyError as exc:
            raise unavailable_error(engine, exc) from None
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
        _from_flag(parser, "promote")
        _rejudge_flag(parser, "; needs --reason, recorded in the event's verdict")
        _who_reason(parser, reason_help="why (required with --force and --rejudge)")
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Promote; exit 1 (and nothing written) if the gate does not pass or the state moved
        since `--from`."""
        return _act(
            args,
            cfg,
            actions.promote,
            force=args.force,
            from_stage=args.from_stage,
            rejudge=args.rejudge,
        )


class Rollback:
    """`harness rollback`: one stage down, or `--to STAGE`, at once."""

    help = "move down the ladder at once (one stage, or --to STAGE)"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness rollback`."""
        parser.add_argument("--to", default=None, metavar="STAGE", help="the stage to return to")
        _from_flag(parser, "roll back")
        _who_reason(parser, reason_help="why, for the event")
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Roll back."""
        return _act(args, cfg, actions.rollback, to=args.to, from_stage=args.from_stage)


class Kill:
    """`harness kill`: everything to Python in every process, within about a second."""

    help = (
        "send every operation to Python in every process (the store's kill flag); it always "
        "lands, whatever else happens at the same moment"
    )

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
        _from_flag(parser, "resume routing")
        _who_reason(parser, reason_help="why, for the event")
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Clear the kill flag."""
        return _act(args, cfg, actions.unkill, from_stage=args.from_stage)


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
        _from_flag(parser, "reset")
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
                try:
                    result = actions.reset_breaker(
                        engine,
                        cfg,
                        Operation(args.op),
                        who=args.who,
                        reason=args.reason,
                        from_stage=args.from_stage,
                        on_busy=_waiting("breaker"),
                    )
                except SQLAlchemyError as exc:
                    raise unavailable_error(engine, exc) from None
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
        _rejudge_flag(parser)
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Print the status (read-only: a store without a rollout state is shown as the stage
        the first run would start, and not written)."""
        engine = open_store(cfg.db.url, read_only=True)
        try:
            data = actions.status(engine, cfg, rejudge=args.rejudge)
        except SQLAlchemyError as exc:
            raise unavailable_error(engine, exc) from None
        finally:
            engine.dispose()
        if data["gate_settings"]["note"] is not None:
            print(f"harness status: warning: {data['gate_settings']['note']}", file=sys.stderr)
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
            why = printable(data["kill_reason"] or "no reason given")
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
        judged_by = data["gate_settings"]["judged_by"]
        print(
            f"gate: {data['verdict']}  (gate settings {judged_by['name']!r}, "
            f"{judged_by['fingerprint']}; `harness gate` for the criteria)"
        )
        for criterion in data["gate"]["criteria"]:
            if criterion["result"] == "FAIL":  # e.g. a fallback rate, with its figures
                where = criterion["op"] or "stage"
                print(f"  FAIL {where} {criterion['criterion']}: {criterion['detail']}")
        return 0
