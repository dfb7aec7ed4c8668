"""The `harness` console script: one subcommand per room, each defined beside the code it runs.

Every command takes Hydra overrides as trailing `key=value` arguments (`harness gate db=postgres`,
`harness run workload.trades=500 "workload.symbols=[MNQ,MES]"`) and `--cfg job`, which prints
the resolved configuration with secrets redacted and exits. The configuration is composed once,
here, and handed to the command as a typed `HarnessConfig`.

Exit status: 0 done; 1 refused or failed (a gate not passing, an action refused, orders left in
an unknown state); 2 bad input (a config key, a filter, a file, an action asked wrongly) or
an unusable database; 3 `harness gate` INCONCLUSIVE; 130 interrupted (SIGINT). Errors are one
line on stderr, never a traceback.

Ctrl-C (SIGINT) at any moment from the first line of `main` on is at most one line on stderr
and exit status 130 (or death by SIGINT, which a shell reports as 130 too). While the command
starts (arguments parsed, the config composed, its modules imported: nothing written yet) it
ends the process at once; once the command acts, it is a `KeyboardInterrupt` the command may
clean up after (`harness run` and `harness sim` stop gracefully instead). Before `main` runs,
the interpreter's own start-up answers a signal its own way: this module and `harness/__init__`
import little, so that this window stays a few milliseconds.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Any

# Nothing else at module level: until `main` has taken SIGINT over, a Ctrl-C is Python's
# KeyboardInterrupt with its traceback. argparse, logging and the rest are imported in `main`.
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Sequence

# Subcommand -> ("module" with `add_arguments(parser)` and `run(args)`, or "module:Object" whose
# `add_arguments(parser)` and `run(args, cfg)` receive the composed config), and its help line.
# Modules are imported only when chosen, so `harness bars` never pays for the store's imports.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("harness.run.cli:Run", "play a trading session through the router (the main job)"),
    "status": ("harness.control.cli:Status", "the rollout at a glance"),
    "gate": ("harness.control.cli:Gate", "judge the current stage against the gate"),
    "promote": ("harness.control.cli:Promote", "move to the next stage if the gate passes"),
    "rollback": ("harness.control.cli:Rollback", "move down the ladder at once"),
    "kill": ("harness.control.cli:Kill", "send everything to Python in every process"),
    "unkill": ("harness.control.cli:Unkill", "clear the kill flag"),
    "breaker": ("harness.control.cli:Breaker", "show or reset the circuit breakers"),
    "alerts": ("harness.alerts.cli:Alerts", "send a test alert to every target of alerts.urls"),
    "query": ("harness.store.cli:Query", "latency, rates, errors, fallbacks, shadow, events, runs"),
    "db": (
        "harness.store.cli:Db",
        "create or upgrade the store's schema, show its revision, prune old raw rows",
    ),
    "report": (
        "harness.report.cli:Report",
        "the decision report: gate, figures, pictures, mismatches, events in one HTML or Markdown "
        "file",
    ),
    "export": ("harness.report.cli:Export", "every recorded call as Parquet or CSV (pandas)"),
    "replay": (
        "harness.replay.cli:Replay",
        "run captured calls through both sides of the installed build, offline",
    ),
    "metrics": ("harness.metrics.cli:Metrics", "serve the store as Prometheus metrics (/metrics)"),
    "tui": ("harness.tui.cli:Tui", "the live dashboard: watch, judge the gate, promote, kill"),
    "sim": ("harness.sim.cli", "run the embedded ProjectX-compatible gateway simulator"),
    "bars": ("harness.bars.cli", "aggregate a CSV of 1-minute bars into higher timeframes"),
    "completion": ("harness.completion", "print the bash or zsh completion script"),
}

OVERRIDES_HELP = "Hydra overrides, e.g. db=postgres rollout.start_stage=canary (see conf/)"


def _target(name: str) -> Any:
    """The module or object registered for command `name`."""
    import importlib

    path = COMMANDS[name][0]
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def _takes_config(name: str) -> bool:
    return ":" in COMMANDS[name][0]


def build_parser(detailed: Iterable[str] = ()) -> argparse.ArgumentParser:
    """The `harness` parser; the subcommands named in `detailed` get their options declared.

    Only the chosen subcommand's module is imported on a normal run; tests pass every name.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="harness",
        description="The rollout harness: move a trading bot's hot paths from Python to Rust, "
        "one configured percentage at a time. `harness COMMAND --help` lists a command's "
        "options; every command takes Hydra overrides (key=value) and --cfg job.",
    )
    parser.add_argument("--version", action=_version_action(), nargs=0, help="print the version")
    _add_log_level(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = set(detailed)
    for name, (_, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        _add_log_level(sub_parser, default=argparse.SUPPRESS)  # the top level's unless given
        if name in wanted:
            _target(name).add_arguments(sub_parser)
            sub_parser.add_argument(
                "--cfg",
                choices=("job",),
                default=None,
                help="print the resolved configuration (secrets redacted) and exit",
            )
            sub_parser.add_argument(
                "overrides", nargs="*", metavar="key=value", default=[], help=OVERRIDES_HELP
            )
    return parser


def _add_log_level(parser: argparse.ArgumentParser, default: Any) -> None:
    """`--log-level LEVEL`, on the top-level parser and on every subcommand's (harness.logs)."""
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default=default,
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING or ERROR (any case); logs go to stderr "
        "(default: HARNESS_LOG_LEVEL, else WARNING; HARNESS_LOG_FORMAT=json for JSON lines)",
    )


def _log_level(value: str) -> str:
    """argparse's `type` of `--log-level`: its refusal names the option and the value."""
    import argparse

    from harness.logs import LEVELS

    level = value.strip().upper()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"{value!r} is not a log level ({', '.join(LEVELS)})")
    return level


def _command_at(argv: Sequence[str]) -> int | None:
    """Where the subcommand's name stands in `argv`: after any `--log-level LEVEL`; None when
    another option or an unknown name comes first (argparse then says what is wrong)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in COMMANDS:
            return i
        if arg == "--log-level":
            i += 2
        elif arg.startswith("--log-level="):
            i += 1
        else:
            return None
    return None


def _version_action() -> type[argparse.Action]:
    import argparse

    class Version(argparse.Action):
        """`--version`: the version is read only when asked for (argparse's own action takes
        the text when the parser is built, which every command and `--help` would pay for)."""

        def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
            from harness import __version__

            sys.stdout.write(f"{parser.prog} {__version__}\n")  # where argparse's goes
            parser.exit()

    return Version


def _takes_value(parser: argparse.ArgumentParser, option: str) -> bool:
    """Whether `option` (as typed, without `=value`) consumes the next argument."""
    action = parser._option_string_actions.get(option)
    return action is not None and action.nargs != 0


def _split(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """Arguments and Hydra overrides (`key=value`, `+key=value`, `~key`), which may stand
    anywhere after the command: argparse takes positionals in one run only, so overrides are
    set apart first. A `key=value` right after an option that takes a value is that value."""
    plain: list[str] = []
    overrides: list[str] = []
    for i, arg in enumerate(argv):
        previous = argv[i - 1] if i else ""
        is_value = (
            previous.startswith("-") and "=" not in previous and _takes_value(parser, previous)
        )
        if not arg.startswith("-") and not is_value and ("=" in arg or arg.startswith("~")):
            overrides.append(arg)
        else:
            plain.append(arg)
    return plain, overrides


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, compose the config, run the chosen subcommand; the exit status.

    Ctrl-C at any moment is one line and 130 (module docstring); a reader that goes away
    (`harness status | head -3`) ends the command quietly, as `cat` does."""
    starting: _StartUp | None = None
    try:
        starting = _StartUp()
        return _main(argv, starting)
    except KeyboardInterrupt:
        # Tasks a run had started may be collected later with their errors unclaimed: after an
        # interrupt they are expected, not news (asyncio would log each with its traceback).
        import logging

        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        sys.stderr.write("harness: interrupted\n")
        return 130
    except BrokenPipeError:
        # Python's advice (signal docs, "Note on SIGPIPE"): point stdout at devnull so that
        # the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    finally:
        if starting is not None:
            starting.end()


class _StartUp:
    """SIGINT while the command starts: one line and exit status 130 at once.

    A KeyboardInterrupt raised inside an import can surface as another error (seen: a
    `TypeError` out of `import ssl`), and one raised inside code that `dataclasses` or
    `namedtuple` build with `exec` makes CPython die of SIGINT at exit even once caught. Before
    the command acts nothing is written, so there is nothing to clean up: `os._exit` is exact.
    Taken over on creation (from the main thread only: Python refuses elsewhere), given back by
    `end()`."""

    def __init__(self) -> None:
        self._previous: Any
        try:
            self._previous = signal.signal(signal.SIGINT, self._quit)
        except ValueError:  # not the main thread: signals are not ours to take
            self._previous = None

    @staticmethod
    def _quit(signum: int, frame: object) -> None:
        os.write(2, b"harness: interrupted\n")
        os._exit(130)

    def end(self) -> None:
        """The command acts from now on: SIGINT is the handler it was before (by default a
        KeyboardInterrupt). Idempotent."""
        if self._previous is not None:
            previous, self._previous = self._previous, None
            signal.signal(signal.SIGINT, previous)


def _main(argv: Sequence[str] | None, starting: _StartUp) -> int:
    import argparse
    import logging

    argv = list(sys.argv[1:] if argv is None else argv)
    at = _command_at(argv)
    command = None if at is None else argv[at]
    parser = build_parser([command] if command else [])
    if at is not None:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
            argv[at]
        ]
        plain, overrides = _split(sub, argv[at + 1 :])
        plain = argv[: at + 1] + plain
    else:
        plain, overrides = argv, []
    args = parser.parse_args(plain)
    args.overrides = list(getattr(args, "overrides", [])) + overrides
    name = args.command
    from harness import logs
    from harness.errors import ConfigError, HarnessError, InvalidInputError
    from harness.output import error

    try:
        logs.setup(args.log_level)  # before anything logs; a bad HARNESS_LOG_* is exit 2
    except ConfigError as exc:
        error(name, exc)
        return 2
    try:
        cfg = None
        if args.cfg is not None or _takes_config(name) or args.overrides:
            from harness.config import compose, to_yaml
            from harness.orders.settings import credentials_from_env
            from harness.redact import url_passwords

            cfg = compose(args.overrides)
            # The environment's key too: with broker=sim the config leaves it unread, and a
            # bot's own log line may still repeat it.
            env_key = credentials_from_env().api_key
            logs.add_secrets([cfg.broker.api_key, env_key, *url_passwords(cfg.db.url)])
            if args.cfg == "job":
                text = to_yaml(cfg)
                starting.end()
                sys.stdout.write(text)
                return 0
        target = _target(name)
        alerter = _alerter(name, cfg)
        # The command acts from here (it may write): SIGINT is a KeyboardInterrupt again.
        starting.end()
        try:
            return int(target.run(args, cfg) if _takes_config(name) else target.run(args))
        finally:
            if alerter is not None:  # what the command's events queued: at most alerts.flush_s
                alerter.close()
    except (ConfigError, InvalidInputError) as exc:
        error(name, exc)
        return 2
    except HarnessError as exc:
        error(name, exc)
        return _exit_for(exc)
    except KeyboardInterrupt:
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # as in main()
        error(name, "interrupted")
        return 130


def _alerter(name: str, cfg: Any) -> Any:
    """The command's alerter (`harness.alerts`), for the events it writes: None without
    `alerts.urls` (nothing imported then) and for `harness alerts`, which sends by itself."""
    if cfg is None or not cfg.alerts.urls or name == "alerts":
        return None
    from harness.alerts import open_alerter
    from harness.store.db import url_secrets

    secrets = [cfg.broker.api_key or "", *url_secrets(cfg.db.url)]
    return open_alerter(cfg.alerts, secrets)


def _exit_for(exc: Exception) -> int:
    """1 for a refused or failed action, 2 for an unusable database or an action asked wrongly."""
    from harness.control.actions import ActionInputError
    from harness.store.db import SchemaError, StoreUnavailableError

    return 2 if isinstance(exc, SchemaError | StoreUnavailableError | ActionInputError) else 1


if __name__ == "__main__":
    raise SystemExit(main())
