"""A fleet of bot processes writing to one database: PostgreSQL and one SQLite file.

    python benches/fleet.py          # 1, 2, 4, 8 processes, 10 s each; writes reports/fleet.md
    python benches/fleet.py --smoke  # 1 and 2 processes, 2 s each, no targets judged

Each process is a bot: `harness.open()` on the shared database (the embedded simulator on
loopback, stage `canary`), then routed `h.bars.aggregate` calls of 30 one-minute bars for the
same number of seconds, all processes starting together; each call is one outcome row. A process
makes calls as fast as its recorder commits them (it pauses while more than `BACKLOG` rows wait),
so the figure is what the database takes, not what a caller produces. Printed per fleet size:
- the aggregate rows per second (rows committed by all processes / seconds from the common
  start until the last process had flushed);
- each process's share of the rows;
- PostgreSQL: the lock-wait share of busy backends, sampled every 20 ms from
  `pg_stat_activity` (`wait_event_type = 'Lock'` among the fleet's `active` backends), and the
  statement most often waiting; SQLite: the writes that failed with "database is locked" and
  were retried (the recorder's "database unavailable" warnings);
- rows recorded (counted in `outcomes`) against calls made: rows lost must be 0.
PostgreSQL is a throwaway cluster on loopback (tests/pgcluster.py) or `--pg-url URL`.
Targets: 4 processes write at least as many rows/s together as 1, the lock-wait share under 5%,
0 rows lost, on both databases. Bounded: at most 8 processes, `--seconds` each (at most 60).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from machine import describe

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import pgcluster

REPORT = Path(__file__).parent / "reports" / "fleet.md"
BACKLOG = 20_000
"""A process pauses its calls while more rows than this wait for its recorder."""
SAMPLE_S = 0.02
LOCK_TARGET = 0.05
WORKER_TIMEOUT_S = 180.0


# ----- one bot process ---------------------------------------------------------------------------


def worker(url: str, seconds: float, spill_dir: str) -> int:
    """One bot: open, say `ready`, wait for `go` on stdin, call for `seconds`, close, print JSON."""
    import numpy as np

    import harness
    from harness.config import compose

    cfg = compose(
        [
            f"db.url={url}",
            "broker.sim.profile=bench",
            "rollout.start_stage=canary",
            f"db.recorder.spill_dir={spill_dir}",
        ]
    )
    h = harness.open(config=cfg)
    n = 30
    t = (29_000_000 + np.arange(n, dtype=np.int64)) * 60_000_000_000
    o = np.full(n, 4000.0)
    bars = {"t": t, "o": o, "h": o + 1, "l": o - 1, "c": o, "v": np.ones(n, np.int64)}
    print("ready", flush=True)
    sys.stdin.readline()
    calls = 0
    paused = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(200):
            h.bars.aggregate(bars, "5m")
        calls += 200
        while h.stats().recorder.pending > BACKLOG and time.monotonic() < end:
            time.sleep(0.005)
            paused += 0.005
    h.close()
    stats = h.stats().recorder
    print(
        json.dumps(
            {
                "run_id": h.run_id,
                "calls": calls,
                "written": stats.written,
                "dropped": stats.dropped,
                "in_spill": stats.in_spill,
                "paused_s": paused,
                "done": time.time(),
            }
        ),
        flush=True,
    )
    return 0


# ----- the fleet ---------------------------------------------------------------------------------


@dataclass
class Sampler:
    """Samples PostgreSQL's active backends (other than its own) every `SAMPLE_S`."""

    url: str
    busy: int = 0
    locked: int = 0
    waiting: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        import psycopg

        dsn = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    "SELECT wait_event_type, query FROM pg_stat_activity "
                    "WHERE state = 'active' AND backend_type = 'client backend' "
                    "AND pid <> pg_backend_pid()"
                ).fetchall()
                self.busy += len(rows)
                for kind, query in rows:
                    if kind == "Lock":
                        self.locked += 1
                        self.waiting[" ".join(str(query).split())[:80]] += 1
                time.sleep(SAMPLE_S)


def count_rows(url: str, run_ids: list[str]) -> dict[str, int]:
    from sqlalchemy import func, select

    from harness.store.db import open_engine
    from harness.store.models import Outcome

    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Outcome.run_id, func.count())
                .where(Outcome.run_id.in_(run_ids))
                .group_by(Outcome.run_id)
            ).all()
    finally:
        engine.dispose()
    return {str(r): int(n) for r, n in rows}


def fleet(url: str, procs: int, seconds: float, work: Path) -> dict[str, Any]:
    """Start `procs` bots on `url` together; their figures."""
    spill = work / f"spill-{procs}"
    spill.mkdir(exist_ok=True)
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, str(seconds), str(spill)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(procs)
    ]
    for child in children:
        assert child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != "ready":
            err = child.stderr.read() if child.stderr else ""
            raise RuntimeError(f"a bot did not start: {line!r} {err[-2000:]}")
    sampler = Sampler(url) if url.startswith("postgresql") else None
    thread = None
    if sampler is not None:
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
    start = time.time()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    retried = 0
    for child in children:
        out, err = child.communicate(timeout=WORKER_TIMEOUT_S)
        if child.returncode != 0:
            raise RuntimeError(f"a bot failed ({child.returncode}): {err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
        retried += err.count("database unavailable")
    if sampler is not None and thread is not None:
        sampler.stop.set()
        thread.join()
    elapsed = max(r["done"] for r in results) - start
    stored = count_rows(url, [r["run_id"] for r in results])
    rows = sum(stored.values())
    calls = sum(r["calls"] for r in results)
    return {
        "procs": procs,
        "rows_per_s": rows / elapsed,
        "shares": sorted((stored.get(r["run_id"], 0) / rows if rows else 0.0) for r in results),
        "calls": calls,
        "rows": rows,
        "lost": calls - rows,
        "dropped": sum(r["dropped"] for r in results),
        "lock_share": None if sampler is None else sampler.locked / max(1, sampler.busy),
        "busy_samples": None if sampler is None else sampler.busy,
        "top_wait": None if sampler is None else sampler.waiting.most_common(1),
        "retried": retried,
    }


def measure(
    name: str, url: str, sizes: list[int], seconds: float, work: Path
) -> list[dict[str, Any]]:
    from harness.store.db import open_engine, upgrade

    engine = open_engine(url)
    upgrade(engine)
    engine.dispose()
    out = []
    for procs in sizes:
        result = fleet(url, procs, seconds, work)
        lock = result["lock_share"]
        print(
            f"{name:<10} {procs} procs: {result['rows_per_s']:9,.0f} rows/s, shares "
            f"{', '.join(f'{s:.0%}' for s in result['shares'])}, lost {result['lost']}, "
            + (
                f"lock-wait {lock:.1%} of {result['busy_samples']} busy, "
                if lock is not None
                else ""
            )
            + f"retried writes {result['retried']}"
            + (f", most waiting: {result['top_wait']}" if result["top_wait"] else ""),
            flush=True,
        )
        out.append(result)
    return out


def table(name: str, results: list[dict[str, Any]]) -> list[str]:
    base = results[0]["rows_per_s"]
    lines = [
        f"### {name}",
        "",
        "| processes | rows/s together | x 1 process | each process's share | lock-wait share "
        "of busy backends | writes retried (locked) | calls made | rows recorded | rows lost |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lock = "-" if r["lock_share"] is None else f"{r['lock_share']:.1%}"
        shares = ", ".join(f"{s:.0%}" for s in r["shares"])
        lines.append(
            f"| {r['procs']} | {r['rows_per_s']:,.0f} | {r['rows_per_s'] / base:.2f} | {shares} "
            f"| {lock} | {r['retried']} | {r['calls']:,} | {r['rows']:,} | {r['lost']} |"
        )
    waits = [(r["procs"], r["top_wait"]) for r in results if r["top_wait"]]
    if waits:
        lines += ["", "Statements most often waiting on a lock:"]
        lines += [f"- {p} processes: `{w[0][0]}` ({w[0][1]} samples)" for p, w in waits]
    return [*lines, ""]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=3, metavar=("URL", "SECONDS", "SPILL_DIR"))
    parser.add_argument("--smoke", action="store_true", help="1 and 2 processes, 2 s, no targets")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pg-url", default=None, help="use this server instead of a throwaway one")
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args()
    if args.worker:
        url, seconds, spill = args.worker
        return worker(url, float(seconds), spill)
    sizes = [1, 2] if args.smoke else [1, 2, 4, 8]
    seconds = 2.0 if args.smoke else min(60.0, args.seconds)
    machine = describe(["SQLAlchemy", "psycopg"])
    print(machine)
    work = Path(tempfile.mkdtemp(prefix="harness-fleet-"))
    work.chmod(0o755)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        results["SQLite"] = measure(
            "SQLite", f"sqlite:///{work / 'fleet.db'}", sizes, seconds, work
        )
        pg_folder = work / "pg"
        url = args.pg_url or pgcluster.start(pg_folder)
        try:
            results["PostgreSQL"] = measure("PostgreSQL", url, sizes, seconds, work)
        finally:
            if args.pg_url is None:
                pgcluster.stop(pg_folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "# A fleet of processes on one database",
        "",
        f"`python benches/fleet.py{' --smoke' if args.smoke else ''}`: "
        f"{', '.join(map(str, sizes))} bot processes, each `harness.open()` and routed "
        "`h.bars.aggregate` calls for "
        f"{seconds:g} s, started together; every call is one outcome row.",
        "",
        f"Machine: {machine}",
        "",
    ]
    for name, rs in results.items():
        lines += table(name, rs)
    verdicts = []
    failed = False
    for name, rs in results.items():
        by = {r["procs"]: r for r in rs}
        checks = [
            (
                f"{name}: 0 rows lost",
                all(r["lost"] == 0 and r["dropped"] == 0 for r in rs),
                f"{sum(r['lost'] for r in rs)} lost",
            )
        ]
        if 4 in by:
            ratio = by[4]["rows_per_s"] / by[1]["rows_per_s"]
            checks.append(
                (f"{name}: 4 processes >= 1 process rows/s", ratio >= 1.0, f"{ratio:.2f}x")
            )
        locks = [r["lock_share"] for r in rs if r["lock_share"] is not None]
        if locks:
            checks.append(
                (
                    f"{name}: lock-wait share < 5%",
                    max(locks) < LOCK_TARGET,
                    f"at most {max(locks):.1%}",
                )
            )
        for what, ok, figure in checks:
            failed |= not ok
            verdicts.append(f"| {what} | {'PASS' if ok else 'FAIL'} | {figure} |")
    lines += ["| target | result | measured |", "| --- | --- | --- |", *verdicts, ""]
    text = "\n".join(lines)
    print(text)
    if args.smoke:
        print("smoke run: targets not judged, no report written")
        return 0
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
