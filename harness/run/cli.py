"""`harness run`: play a trading session through the router and print what it measured.

With no arguments: the embedded simulator (`demo` profile, about 90 ms a round trip) and the
SQLite file `harness.db` in the working folder (created, schema included, if new). Any Hydra
override applies: `harness run workload.trades=500 "workload.symbols=[MNQ,MES]"
rollout.start_stage=canary db.url=... broker=projectx`. See `harness.run.workload` for what a
round trip does and `harness.run.summary` for the summary's keys.

A progress bar on stderr while it runs (when stderr is a terminal); at the end a table per
operation on stdout, or with `--json` one JSON object.

Exit status: 0 every round trip ended and nothing was left open; 1 an order left in an unknown
state or a position left open (found by the final check, then swept), the account not clean in
a traded contract before the start, or the workload stopped on an unexpected error; 2 bad input
(a key the broker cannot honour: `workload.symbols`, `workload.account`, `workload.timeframes`,
missing credentials), before any order; 4 rows were lost (the recorder dropped rows of this
run, or could not replay rows an earlier run spilled), unless 1 applies; 130 stopped by SIGINT,
143 stopped by SIGTERM (after the round trips in flight finished, the recorder flushed and the
summary printed), unless 1 or 4 applies. Once the round trips are over, signals are noted and
change nothing: the summary is always printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.config import HarnessConfig
from harness.output import WholeWrites, print_json
from harness.run.session import Session, Watcher
from harness.run.summary import print_summary
from harness.run.workload import Tally

__all__ = ["Run"]


class _ProgressWatcher(Watcher):
    """A rich progress bar and notes on stderr (the bar only when stderr is a terminal)."""

    def __init__(self) -> None:
        # rich is imported with this module, while the command starts (`harness.cli`): a
        # Ctrl-C then ends the process at once, never a KeyboardInterrupt inside an import.
        self.console = Console(stderr=True, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self._task: Any = None
        self._live = False

    def started(self, planned: int, symbols: list[str], account_id: int, workers: int) -> None:
        """Start the bar."""
        self._live = True
        self.progress.start()
        description = f"round trips on {account_id} ({', '.join(symbols)}; {workers} at a time)"
        self._task = self.progress.add_task(description, total=planned, status="")

    def trip_done(self, tally: Tally) -> None:
        """Advance the bar."""
        if self._task is not None:
            status = f"{tally.failed} with problems" if tally.failed else ""
            self.progress.update(self._task, completed=tally.finished, status=status)

    def note(self, text: str) -> None:
        """Print a note on one line (a reader of a log sees one line a note): above the bar
        while it runs, else in one `write(2)` of its own.

        A note is printed by a signal handler when the event loop is not running (before the
        round trips, or while the summary is written), and such a handler may interrupt
        another note: rich's console buffer is not re-entrant (the outer print wrote the
        inner note's text a second time, seen under load), and neither is Python's buffered
        stderr. One unbuffered write of the whole line is."""
        if self._live:  # notes then come from loop callbacks, one at a time
            self.console.print(text, markup=False, soft_wrap=True)
            return
        data = (" ".join(text.splitlines()) + "\n").encode(errors="replace")
        try:
            fd = sys.stderr.fileno()
            while data:
                data = data[os.write(fd, data) :]
        except (OSError, ValueError, AttributeError):  # no stderr to write to: nothing to say
            return

    def finished(self) -> None:
        """Remove the bar."""
        self._live = False
        self.progress.stop()


class Run:
    """`harness run`: the main job (see the module docstring)."""

    help = "play a trading session through the router and print what it measured"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness run`."""
        parser.add_argument(
            "--json",
            action="store_true",
            help="print the summary as one JSON object (stable keys, see docs/run.md)",
        )

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Play the session, print the summary; the exit status (module docstring)."""
        watcher = _ProgressWatcher()
        session = Session(cfg, watcher)
        # Signals are the session's until the summary is out: a second Ctrl-C, or a SIGTERM,
        # while it is built or written is noted, and the summary still printed whole.
        with session.signals():
            try:
                summary, exit_status = asyncio.run(session.run())
            finally:
                watcher.finished()
            out = WholeWrites.wrap(sys.stdout)  # a signal landing mid-write costs no byte
            if args.json:
                print_json(summary, out)
            else:
                print_summary(summary, out)
            out.flush()
        return exit_status
