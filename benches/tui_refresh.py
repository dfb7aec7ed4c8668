"""The dashboard's refresh with 1,000,000 outcomes in the store, on SQLite and PostgreSQL.

    python benches/tui_refresh.py          # 1,000,000 outcomes; writes the report
    python benches/tui_refresh.py --smoke  # 20,000 outcomes, no target judged, no report

The report is benches/reports/tui_refresh.md.

A refresh is `harness.tui.data.load_snapshot`: all the database work the dashboard does once
a second (the rollout state, the gate's window figures and verdict, breakers, the latest run,
and the last 30 minutes of latency and rates per minute). The outcomes are loaded by
`benches/history.py`'s loader (through the real recorder, 24 hours of them, rollups
compacted), and the stage is set to have begun with the first of them, so the stage window the
dashboard reads holds every outcome: the worst case. The same refresh is timed on a store of
`--small` outcomes too, side by side in the same run, so the table shows whether the cost grows
with the history. Each figure is the median of 15 refreshes after two warm-ups.
Target: a refresh under 100 ms at 1,000,000 outcomes, on both databases.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from history import DAY_NS, load
from machine import describe
from sqlalchemy import Engine, func, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import pgcluster

from harness.config import HarnessConfig, compose
from harness.store.models import MigrationState, Outcome
from harness.store.rollups import MINUTE_NS
from harness.tui.data import load_snapshot

REPORT = Path(__file__).parent / "reports" / "tui_refresh.md"
TARGET_S = 0.100
REPEATS = 15


def stage_from_first_outcome(engine: Engine) -> int:
    """Make the current stage begin with the first stored outcome; returns that time."""
    with engine.begin() as conn:
        first = int(conn.execute(select(func.min(Outcome.ts_ns))).scalar_one())
        conn.execute(update(MigrationState).values(stage_since_ns=first))
    return first


def refresh_s(engine: Engine, cfg: HarnessConfig) -> tuple[float, int]:
    """Median seconds of a refresh, and the calls the snapshot counted in the stage window."""
    samples = []
    calls = 0
    for i in range(REPEATS + 2):
        began = time.perf_counter()
        snapshot = load_snapshot(engine, cfg, time.time_ns())
        took = time.perf_counter() - began
        calls = sum(row.calls for row in snapshot.ops())
        if i >= 2:
            samples.append(took)
    return statistics.median(samples), calls


def measure(name: str, url: str, n: int, spill: Path) -> tuple[float, int, float]:
    print(f"{name}, {n:,} outcomes:")
    engine, _stage, _since = load(url, n, spill)
    first = stage_from_first_outcome(engine)
    cfg = compose([f"db.url={url}"])
    took, calls = refresh_s(engine, cfg)
    hours = (time.time_ns() - first) / (60 * MINUTE_NS)
    print(f"  refresh {took * 1000:.1f} ms (median of {REPEATS}); stage window {hours:.1f} h")
    engine.dispose()
    return took, calls, hours


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outcomes", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000, help="the small store, for contrast")
    parser.add_argument("--smoke", action="store_true", help="20,000 outcomes, no target")
    parser.add_argument("--pg-url", default=None, help="a server to use instead of a throwaway one")
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args()
    big = 20_000 if args.smoke else args.outcomes
    sizes = [args.small, big]
    machine = describe(["SQLAlchemy", "psycopg", "textual", "numpy"])
    print(machine)
    work = Path(tempfile.mkdtemp(prefix="harness-tui-refresh-"))
    work.chmod(0o755)
    results: dict[tuple[str, int], tuple[float, int, float]] = {}
    try:
        for n in sizes:
            url = f"sqlite:///{work / f'refresh-{n}.db'}"
            results[("SQLite", n)] = measure("SQLite", url, n, work)
        pg_folder = work / "pg"
        server = args.pg_url or pgcluster.start(pg_folder)
        try:
            for n in sizes:
                url = _database(server, f"refresh_{n}")
                results[("PostgreSQL", n)] = measure("PostgreSQL", url, n, work)
        finally:
            if args.pg_url is None:
                pgcluster.stop(pg_folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    days = DAY_NS / (1_440 * MINUTE_NS)
    lines = [
        "# The dashboard's refresh over stored outcomes",
        "",
        f"`python benches/tui_refresh.py{' --smoke' if args.smoke else ''}`: one refresh is "
        "`harness.tui.data.load_snapshot` (state, the gate's window figures and verdict, "
        "breakers, latest run, 30 minutes of latency and rates per minute). Outcomes loaded "
        f"through the recorder by `benches/history.py` ({days:g} day of them, rollups "
        "compacted); the stage begins with the first outcome, so its window holds them all. "
        f"Median of {REPEATS} refreshes after two warm-ups.",
        "",
        f"Machine: {machine}",
        "",
        "| outcomes in the store | SQLite ms | PostgreSQL ms | calls in the stage window |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for n in sizes:
        sqlite_s, calls, _ = results[("SQLite", n)]
        pg_s, _, _ = results[("PostgreSQL", n)]
        lines.append(f"| {n:,} | {sqlite_s * 1000:.1f} | {pg_s * 1000:.1f} | {calls:,} |")
    growth = ", ".join(
        f"{db} {results[(db, big)][0] / results[(db, args.small)][0]:.1f}x"
        for db in ("SQLite", "PostgreSQL")
    )
    lines += [
        "",
        f"With {big // args.small:,} times the outcomes over the same 24 hours a refresh took "
        f"{growth} the time in this run (the machine is shared: repeated runs differ by a third "
        "or so). What can grow with the outcomes is bounded: denser minutes fill more rollup "
        "groups (operation, side routed and served, fallback, success), but the rows read are "
        "at most the groups times (the window's hours + 2 x 60 edge minutes + 30 chart "
        "minutes), however many outcomes those hold; a longer stage adds one hourly row per "
        "group per hour.",
    ]
    verdicts = []
    failed = False
    for db in ("SQLite", "PostgreSQL"):
        took = results[(db, big)][0]
        ok = took < TARGET_S
        failed |= not ok
        mark = "PASS" if ok else "FAIL"
        what = f"{db}: refresh < {TARGET_S * 1000:.0f} ms at {big:,}"
        verdicts.append(f"| {what} | {mark} | {took * 1000:.1f} ms |")
    lines += ["", "| target | result | measured |", "| --- | --- | --- |", *verdicts, ""]
    text = "\n".join(lines)
    print(text)
    if args.smoke:
        print("smoke run: target not judged, no report written")
        return 0
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text)
    return 1 if failed else 0


def _database(server: str, name: str) -> str:
    """A fresh database `name` on the PostgreSQL `server`; its URL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from harness.store.db import open_engine

    admin = open_engine(server)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


if __name__ == "__main__":
    raise SystemExit(main())
