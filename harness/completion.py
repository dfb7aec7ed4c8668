"""`harness completion bash|zsh`: print the shell's completion script for every command.

The script is generated from the same parser `harness` runs with (every subcommand's options
declared) by shtab, and is static: completing a word runs shell code only, never Python. That
is why shtab and not argcomplete, which completes by running `harness` itself on every TAB and
needs a hook read at the start of every command, the quick ones (`harness status`) included.
The price: Hydra overrides (`key=value`) are not completed, only commands, options and their
choices.

Install (docs/configuration.md): `eval "$(harness completion bash)"` in `~/.bashrc`, or
`harness completion zsh > "${fpath[1]}/_harness"` once for zsh (or any folder of `$fpath`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

SHELLS: Final = ("bash", "zsh")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`SHELL`: bash or zsh."""
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash or zsh")


def run(args: argparse.Namespace) -> int:
    """Write the completion script of `args.shell` on stdout; 0."""
    import shtab

    from harness.cli import COMMANDS, build_parser

    parser = build_parser(COMMANDS)
    sys.stdout.write(shtab.complete(parser, shell=args.shell))
    return 0
