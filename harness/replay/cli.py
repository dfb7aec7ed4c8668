"""`harness replay [--run ID] [--since WHEN] [--op OP] [--migration NAME] [--json]`.

Runs every captured call the filters select through both sides of the installed build,
offline (`harness.replay.core`), prints per operation how many were replayed, matched,
mismatched, skipped (an input of the build not captured) and unreadable, with the first
differences (field path, both values and whose they are), and records the result per
operation in the store (`replays`: the gate's `replay` criterion reads it).

Exit status: 0 nothing mismatched (nothing captured included: it says so); 1 a mismatch or an
unreadable capture; 2 bad input (an unknown `--op`, `--migration` or `--run`, a malformed
`--since`), an unusable database, or no native module (there is no Rust side to replay on).
"""

from __future__ import annotations

import argparse
from typing import Any

from harness.config import HarnessConfig, redact_url
from harness.errors import InvalidInputError

__all__ = ["Replay"]

COLUMNS = ["op", "migration", "replayed", "matched", "mismatched", "skipped", "unreadable"]


class Replay:
    """`harness replay`: see the module."""

    help = "run captured calls through both sides of the installed build, offline"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness replay`."""
        parser.add_argument("--run", help="only the captures of one run (its id)")
        parser.add_argument(
            "--since", help="only captures since: a duration back from now (1h, 7d) or ISO-8601"
        )
        parser.add_argument("--op", help="only one operation's captures, e.g. place_order")
        parser.add_argument("--migration", help="only one migration's captures, e.g. orders")
        parser.add_argument(
            "--first", type=int, default=5, help="differences listed per operation (default 5)"
        )
        parser.add_argument("--json", action="store_true", help="one JSON object, stable keys")

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Replay, print, record; the exit status (see the module)."""
        from sqlalchemy import select

        from harness.native import build_id, load_native
        from harness.output import error, print_json, print_table
        from harness.replay.core import record, replay
        from harness.store.db import open_store
        from harness.store.models import Capture, Run
        from harness.store.queries import parse_instant

        since = None if args.since is None else parse_instant(args.since, "since")
        if args.first < 0:
            raise InvalidInputError("first", args.first, "must be >= 0")
        native = load_native()
        if not native.available:  # a replay compares both sides: Rust must be there
            error("replay", f"the native module is unavailable ({native.error}): no Rust side")
            return 2
        engine = open_store(cfg.db.url)
        try:
            with engine.connect() as conn:
                if args.run is not None:
                    found = conn.execute(select(Run.id).where(Run.id == args.run)).first()
                    if found is None:
                        raise InvalidInputError("run", args.run, "no such run in the store")
                _check_name(conn, Capture.op, "op", args.op, cfg)
                _check_name(conn, Capture.migration, "migration", args.migration, cfg)
            build = build_id(native)
            report = replay(
                engine, build, run=args.run, since_ns=since, op=args.op,
                migration=args.migration, first=args.first,
            )  # fmt: skip
            record(engine, report)
        finally:
            engine.dispose()
        failed = any(r.mismatched or r.unreadable for r in report.ops.values())
        if args.json:
            print_json({"url": redact_url(cfg.db.url), **report.to_dict()})
            return 1 if failed else 0
        rows = [r.to_dict() for r in report.ops.values()]
        if not rows:
            print(f"no captures to replay in {redact_url(cfg.db.url)} (build {build})")
            return 0
        print_table(f"replay of build {build}", COLUMNS, rows, right=COLUMNS[2:])
        for r in report.ops.values():
            for d in r.differences:
                print(
                    f"  {r.op} capture {d['capture_id'][:12]}: {d['field']} differs: "
                    f"{d['left_side']} {d['left']!r}, {d['right_side']} {d['right']!r}"
                )
        return 1 if failed else 0


def _check_name(conn: Any, column: Any, field: str, value: str | None, cfg: HarnessConfig) -> None:
    """Refuse an `--op` / `--migration` that neither the captures nor the config know (a typo
    would otherwise replay nothing and exit 0)."""
    if value is None:
        return
    from sqlalchemy import select

    known = {str(v) for (v,) in conn.execute(select(column).distinct())}
    for name in cfg.rollout.migration_names():
        known |= {name} if field == "migration" else set(cfg.rollout.operations_of(name))
    if value not in known:
        reason = f"no such {'operation' if field == 'op' else 'migration'}; known: "
        raise InvalidInputError(field, value, reason + ", ".join(sorted(known)))
