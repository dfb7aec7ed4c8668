"""The `harness` console script: one subcommand per room, each defined beside the code it runs."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand name -> module with `add_arguments(parser)` and `run(args) -> int`. Imported only
# when chosen, so `harness bars` never pays for the simulator's imports and vice versa.
COMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("harness.sim.cli", "run the embedded ProjectX-compatible gateway simulator"),
    "bars": ("harness.bars.cli", "aggregate a CSV of 1-minute bars into higher timeframes"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen subcommand; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(sub_parser)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
