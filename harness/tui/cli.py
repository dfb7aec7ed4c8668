"""`harness tui`: the live dashboard on the configured database.

The database is checked before the screen opens (a missing file or a schema that needs
`harness db upgrade` is the usual one-line error and exit 2, never a dashboard of nothing);
once it runs, a database that goes away shows as a banner over the last figures.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness.config import HarnessConfig
from harness.store.db import can_write, open_store

__all__ = ["Tui"]


class Tui:
    """`harness tui`: watch the rollout, judge the gate, act."""

    help = "the live dashboard: watch the rollout, judge the gate, promote, roll back, kill"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness tui`."""
        parser.add_argument(
            "--refresh",
            type=float,
            default=1.0,
            metavar="S",
            help="seconds between refreshes (default 1; at least 0.2)",
        )
        parser.add_argument(
            "--light", action="store_true", help="start in the light theme (t toggles)"
        )
        parser.add_argument(
            "--screenshots",
            metavar="DIR",
            help="folder the palette's Screenshot command saves to (default: the current "
            "folder; it must exist and be writable)",
        )

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Run the dashboard until the user quits; 0."""
        from harness.errors import InvalidInputError

        if not args.refresh >= 0.2:
            raise InvalidInputError("refresh", args.refresh, "must be at least 0.2 seconds")
        shots = None if args.screenshots is None else Path(args.screenshots)
        # A folder asked for is checked now; the default (here) only when a shot is taken,
        # so a dashboard started in a read-only folder still starts.
        if shots is not None and not shots.is_dir():
            raise InvalidInputError("--screenshots", args.screenshots, "is not a folder")
        if shots is not None and not os.access(shots, os.W_OK | os.X_OK):
            raise InvalidInputError("--screenshots", args.screenshots, "is not writable")
        # Fail fast, with the CLI's own error, before the screen. A store this process cannot
        # write (a copy, a read-only mount) is watched read-only; its actions then fail, shown.
        open_store(cfg.db.url, read_only=not can_write(cfg.db.url)).dispose()
        from harness.tui.app import LIGHT, make_app

        app = make_app(cfg, refresh_s=args.refresh, screenshot_dir=shots)
        if args.light:
            app.theme = LIGHT
        app.run()
        return 0
