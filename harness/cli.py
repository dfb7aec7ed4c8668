"""The `harness` console script: one subcommand per room, each defined beside the code it runs."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable, Sequence

# Subcommand name -> module with `add_arguments(parser)` and `run(args) -> int`. Imported only
# when chosen, so `harness bars` never pays for the simulator's imports and vice versa.
COMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("harness.sim.cli", "run the embedded ProjectX-compatible gateway simulator"),
    "bars": ("harness.bars.cli", "aggregate a CSV of 1-minute bars into higher timeframes"),
}


def build_parser(detailed: Iterable[str] = ()) -> argparse.ArgumentParser:
    """The `harness` parser; the subcommands named in `detailed` get their options declared.

    Only the chosen subcommand's module is imported on a normal run; tests pass every name.
    """
    from harness import __version__

    parser = argparse.ArgumentParser(
        prog="harness",
        description="The rollout harness: a ProjectX gateway simulator and bar aggregation. "
        "`harness COMMAND --help` lists a command's options.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = set(detailed)
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name in wanted:
            importlib.import_module(module_name).add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen subcommand; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = [argv[0]] if argv and argv[0] in COMMANDS else []
    args = build_parser(chosen).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
