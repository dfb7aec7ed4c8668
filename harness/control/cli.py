"""`harness gate | promote | rollback | kill | unkill | status | breaker`: the rollout by hand.

Each command reads the configured database (`db.url`, `HARNESS_DB_URL`), acts through
`harness.control.actions` (the same functions the dashboard calls) and prints a table, or JSON
with `--json`. Each takes `--migration NAME` to act on one migration (an unknown name: exit 2,
naming the known ones); without it `promote` / `rollback` move every migration together,
`kill` / `unkill` set or clear the global kill flag, `gate` / `status` / `breaker` show every
migration. Exit status: 0 done (for `gate`: PASS), 1 refused or FAIL (the state moved since
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


def _migration_flag(parser: argparse.ArgumentParser, without: str) -> None:
    parser.add_argument(
        "--migration",
        default=None,
        metavar="NAME",
        help=f"act on this migration only (orders, bars, or one the store holds); without it: "
        f"{without}",
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
    which = "" if verdict.migration is None else f"migration {verdict.migration}: "
    title = f"{which}gate of stage {verdict.stage!r} (* = critical: a FAIL rolls the stage back)"
    print_table(title, ["op", "criterion", "result", "figure", "bound", "detail"], rows)
    if verdict.skipped:
        print(f"skipped: {len(verdict.skipped)} criteria that do not apply at this stage")
    print(f"verdict: {verdict.result.value}  ({settings_text(verdict)})")
    note = verdict.build_note()
    if note is not None:
        print(note)


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
            migration=args.migration,
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
    for part in result.parts or (result,):
        judged_by = None if part.verdict is None else part.verdict.gate_settings
        if command not in ("promote", "rollback") or judged_by is None:
            continue
        migration = part.migration
        own = stage_gate(cfg.gate if migration is None else actions.gate_of(cfg, migration))
        if judged_by["source"] == "stored" and judged_by["fingerprint"] != own.fingerprint:
            which = "" if migration is None else f"{migration}: "
            print(
                f"harness {command}: warning: {which}stage {part.before.stage!r} was judged by "
                f"the gate settings stored with it, {judged_by['name']!r} "
                f"({judged_by['fingerprint']}), not by this command's {own.name!r} "
                f"({own.fingerprint}), which are stored with {part.after.stage!r}",
                file=sys.stderr,
            )


class Gate:
    """`harness gate`: judge each migration's current stage over its own window."""

    help = "judge the current stage against the gate's criteria"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness gate`."""
        _migration_flag(parser, "every migration, one verdict each (exit status: the worst)")
        _rejudge_flag(parser)
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Print the verdict (one per migration without `--migration`); exit 0 PASS, 1 FAIL,
        3 INCONCLUSIVE: the worst of them."""
        engine = open_store(cfg.db.url, read_only=True)
        try:
            name = actions.check_migration(engine, cfg, args.migration)
            names = [name] if name is not None else actions.acted_on(engine, cfg)
            judged: dict[str, Verdict] = {}
            for each in names:
                state = actions.current_state(engine, cfg, each)
                note = actions.gate_judging(cfg, state, rejudge=args.rejudge).note(state.stage)
                if note is not None:
                    print(f"harness gate: warning: {each}: {note}", file=sys.stderr)
                judged[each] = actions.verdict(engine, cfg, state, rejudge=args.rejudge)
        except SQLAlchemyError as exc:
            raise unavailable_error(engine, exc) from None
        finally:
            engine.dispose()
        overall = actions.combined(judged)
        if args.json:
            data = judged[name].to_dict() if name is not None else overall.to_dict()
            data["migrations"] = {m: v.to_dict() for m, v in judged.items()}
            data["auto_promote"] = {m: actions.auto_promotion(cfg, m).to_dict() for m in judged}
            print_json(data)
        else:
            for i, (each, verdict) in enumerate(judged.items()):
                if i:
                    print()
                print_verdict(verdict)
                print(f"automatic promotion: {actions.auto_promotion(cfg, each).text()}")
            if name is None and len(judged) > 1:
                each_said = ", ".join(f"{m} {v.result.value}" for m, v in judged.items())
                print(f"\noverall: {overall.result.value} ({each_said})")
        return EXIT_FOR[overall.result]


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
        _migration_flag(
            parser,
            "every migration together, each to the next stage of its own ladder, all or none "
            "(one already at its last stage is left alone)",
        )
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
        _migration_flag(
            parser,
            "every migration together, all or none (one already at its first stage, or at or "
            "below --to, is left alone)",
        )
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
        _migration_flag(parser, "the global kill flag: every migration, later ones too")
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
        _migration_flag(parser, "the global kill flag and every migration's own")
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
            default=None,
            metavar="OP",
            help="reset: the operation whose breaker to close; show: only that operation's "
            "(any operation of a known migration)",
        )
        _migration_flag(parser, "every migration's operations")
        _from_flag(parser, "reset")
        _who_reason(parser, reason_help="why, for the event")
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Show or reset."""
        engine = open_store(cfg.db.url, read_only=args.action == "show")
        try:
            name = actions.check_migration(engine, cfg, args.migration)
            names = [name] if name is not None else actions.known_migrations(engine, cfg)
            ops = {op: m for m in names for op in actions.operations_of(engine, cfg, m)}
            if args.op is not None and args.op not in ops:
                where = f"migration {name}" if name is not None else "any known migration"
                raise actions.ActionInputError(
                    f"--op {printable(args.op)!r} is not an operation of {where} "
                    f"({', '.join(ops) or 'none'})"
                )
            if args.action == "reset":
                if args.op is None:
                    raise actions.ActionInputError("breaker reset needs --op OPERATION")
                try:
                    result = actions.reset_breaker(
                        engine,
                        cfg,
                        args.op,
                        who=args.who,
                        reason=args.reason,
                        from_stage=args.from_stage,
                        on_busy=_waiting("breaker"),
                        migration=name,
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
                "migration": migration,
                "op": op,
                **breakers.get(op, {"open": False, "reason": None, "failures": 0}),
            }
            for op, migration in ops.items()
            if args.op is None or op == args.op
        ]
        if args.json:
            print_json(rows)
        else:
            columns = ["migration", "op", "open", "failures", "reason"]
            print_table("circuit breakers", columns, rows)
        return 0


class Status:
    """`harness status`: each migration's stage, percentages, targets, kill flag, breakers and
    verdict, one line each; the native module; the kill switches."""

    help = "the rollout at a glance: each migration's stage, percentages, kill flag, verdict"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness status`."""
        _migration_flag(parser, "every migration, one line each")
        _rejudge_flag(parser)
        _json_flag(parser)

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Print the status (read-only: a store without a rollout state is shown as the stage
        the first run would start, and not written)."""
        engine = open_store(cfg.db.url, read_only=True)
        try:
            data = actions.status(engine, cfg, rejudge=args.rejudge, migration=args.migration)
        except SQLAlchemyError as exc:
            raise unavailable_error(engine, exc) from None
        finally:
            engine.dispose()
        for name, part in data["migrations"].items():
            if part["gate_settings"]["note"] is not None:
                note = part["gate_settings"]["note"]
                print(f"harness status: warning: {name}: {note}", file=sys.stderr)
        if args.json:
            print_json(data)
            return 0
        if data["kill"] and args.migration is None:
            why = printable(data["kill_reason"] or "no reason given")
            print(f"KILL SWITCH SET: everything goes to Python ({why})")
        if data["env_kill"]:
            print(
                f"KILL SWITCH IN THIS ENVIRONMENT: {RUST_ENV}={os.environ.get(RUST_ENV, '')!r}: "
                "a bot or `harness run` started from here sends everything to Python"
            )
        rows = [_status_row(name, part) for name, part in data["migrations"].items()]
        columns = ["migration", "stage", "% to Rust", "targets", "kill", "breakers", "verdict"]
        print_table(None, columns, rows)
        for name, part in data["migrations"].items():
            ladder = " -> ".join(f"[{s}]" if s == part["stage"] else s for s in part["ladder"])
            since = (
                f"since {part['stage_since']}"
                if part["started"]
                else "(no state yet: the first run or action starts it at this stage)"
            )
            auto = actions.auto_promotion_text(part["auto_promote"])
            print(f"{name}: {since}; ladder {ladder}; automatic promotion {auto}")
        native = data["native_available"]
        native_text = (
            "unknown (no run yet)"
            if native is None
            else ("available" if native else f"UNAVAILABLE: {data['native_error']}")
        )
        print(f"native module (latest run): {native_text}")
        print(f"build (latest run): {data['build_id'] or 'unknown'}")
        flag = f" --migration {args.migration}" if args.migration else " [--migration NAME]"
        print(f"gate: {data['verdict']}  (`harness gate{flag}` for the criteria)")
        for name, part in data["migrations"].items():
            for criterion in part["gate"]["criteria"]:
                if criterion["result"] == "FAIL":  # e.g. a fallback rate, with its figures
                    where = criterion["op"] or "stage"
                    print(f"  FAIL {name} {where} {criterion['criterion']}: {criterion['detail']}")
        return 0


def _percent_text(percent: dict[str, float]) -> str:
    """A migration's percentages: one number when its operations share it (`5%`), else each
    (`place_order 5%, cancel_order 0%`)."""
    values = set(percent.values())
    if len(values) == 1:
        return f"{values.pop():g}%"
    return ", ".join(f"{op} {pct:g}%" for op, pct in percent.items())


def _status_row(name: str, part: dict[str, Any]) -> dict[str, Any]:
    """One migration's line of `harness status`."""
    targets = part["targets"]
    aimed = [*targets["symbols"], *(str(a) for a in targets["accounts"])]
    kill = "KILLED" if part["kill"] else "-"
    if part["kill"] and part["kill_reason"]:
        kill += f" ({printable(part['kill_reason'])})"
    return {
        "migration": name,
        "stage": part["stage"] + ("" if part["started"] else " (not started)"),
        "% to Rust": _percent_text(part["percent"]),
        "targets": ", ".join(aimed) if aimed else "all",
        "kill": kill,
        "breakers": ("OPEN " + ", ".join(part["open_breakers"]))
        if part["open_breakers"]
        else "closed",
        "verdict": part["verdict"],
    }
