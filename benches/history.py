"""The gate and the history query over 1,000,000 outcomes, on SQLite and PostgreSQL.

    python benches/history.py          # 1,000,000 outcomes; writes benches/reports/history.md
    python benches/history.py --smoke  # 20,000 outcomes, no targets judged

Loads the outcomes through the real recorder (8 operation-side groups over 24 hours, lognormal
latencies per group, 2% errors, 1% fallbacks on Rust routes), lets it compact the rollups, then
times, in one process and side by side:
- `gate`: `window_figures` + `judge` of the stage's window (what `harness gate` computes);
- `query latency`: `harness.store.queries.latency` over all time, per operation and side;
- for reference, the same latency answer from a plain index over the raw rows (every latency
  fetched and sorted in numpy), which is what the rollups are there to avoid.
Each figure is the median of 7 runs after one warm-up; the whole commands (`harness gate`,
`harness query latency`, including Python's start-up) are timed too when the CLI exists.
PostgreSQL is a throwaway cluster started by the bench (tests/pgcluster.py), or
`--pg-url URL`. Targets: gate and query latency under 0.3 s each, on both databases.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine import describe

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import pgcluster
from sqlalchemy import update

from harness.config import GateConfig, RecorderConfig, compose
from harness.gate import judge
from harness.recorder import OutcomeRecord, Recorder
from harness.store.db import open_engine, upgrade
from harness.store.models import MigrationState, Outcome
from harness.store.queries import Filters, latency, window_figures
from harness.store.rollups import MINUTE_NS, compact
from harness.store.runs import start_run
from harness.store.state import ensure_state

REPORT = Path(__file__).parent / "reports" / "history.md"
TARGET_S = 0.3
DAY_NS = 1_440 * MINUTE_NS
# Median latency (us) per (operation, side): orders are network-bound, bars CPU-bound.
MEDIANS = {
    ("place_order", "rust"): 90_000.0,
    ("place_order", "python"): 92_000.0,
    ("modify_order", "rust"): 88_000.0,
    ("modify_order", "python"): 91_000.0,
    ("cancel_order", "rust"): 87_000.0,
    ("cancel_order", "python"): 90_000.0,
    ("aggregate_bars", "rust"): 40.0,
    ("aggregate_bars", "python"): 9_000.0,
}


def outcomes(run_id: str, n: int, start_ns: int, stage: str, seed: int = 11) -> list[OutcomeRecord]:
    """n outcomes over 24 h: operations and sides in equal shares, realistic latencies."""
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(start_ns, start_ns + DAY_NS, n))
    groups = list(MEDIANS)
    which = rng.integers(0, len(groups), n)
    noise = rng.lognormal(0.0, 0.35, n)
    failed = rng.random(n) < 0.02
    fell = rng.random(n) < 0.01
    rows = []
    for i in range(n):
        op, side = groups[which[i]]
        fell_back = side == "rust" and bool(fell[i])
        served = "python" if fell_back else side
        ok = not failed[i]
        rows.append(
            OutcomeRecord(
                int(ts[i]),
                run_id,
                op,
                stage,
                side,
                served,
                fell_back,
                "BrokerUnavailableError" if fell_back else None,
                ok,
                None if ok else "OrderRejectedError",
                None if ok else "rejected by the bench",
                float(MEDIANS[(op, served)] * noise[i]),
                1,
                200,
                None,
                None,
                None,
            )
        )
    return rows


def load(url: str, n: int, spill: Path) -> tuple[object, str, int]:
    """A fresh store holding n outcomes of stage `canary`; returns (engine, stage, since)."""
    engine = open_engine(url)
    upgrade(engine)
    state = ensure_state(engine, "canary")
    run_id = start_run(engine, kind="bench", config={}, native_available=True)
    start = state.stage_since_ns - DAY_NS - MINUTE_NS
    rows = outcomes(run_id, n, start, "canary")
    recorder = Recorder(engine, RecorderConfig(batch_size=10_000), spill_dir=spill, name=run_id)
    began = time.perf_counter()
    for first in range(0, len(rows), 50_000):  # a bot's pace, not one burst past the queue
        for row in rows[first : first + 50_000]:
            recorder.record(row)
        recorder.flush(None)
    loaded = time.perf_counter() - began
    recorder.close()
    began = time.perf_counter()
    while compact(engine, limit=2_000):
        pass
    compacted = time.perf_counter() - began
    print(f"  loaded {n:,} outcomes in {loaded:.1f} s, compacted in {compacted:.1f} s")
    # The stage was entered when the window opened: what `harness gate` judges is these rows.
    with engine.begin() as conn:
        conn.execute(update(MigrationState).values(stage_since_ns=start))
    return engine, "canary", start


def timed(fn: Callable[[], object], repeats: int = 7) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def plain_latency(engine: object) -> object:
    """The latency answer from raw rows: every latency fetched, sorted per group in numpy."""
    from sqlalchemy import select

    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            select(Outcome.op, Outcome.served, Outcome.latency_us).where(
                Outcome.ok.is_(True), Outcome.fell_back.is_(False)
            )
        ).all()
    out = {}
    data: dict[tuple[str, str], list[float]] = {}
    for op, served, value in rows:
        data.setdefault((op, served), []).append(value)
    for key, values in data.items():
        out[key] = np.percentile(np.asarray(values), [50, 95, 99], method="inverted_cdf")
    return out


def command(url: str, *args: str) -> None:
    """Run a `harness` command on the store, as a person would: a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args, f"db.url={url}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "HARNESS_DB_URL"},
    )
    if done.returncode not in (0, 1, 3):  # 1 / 3: a gate that fails / is inconclusive
        raise RuntimeError(f"harness {' '.join(args)} failed: {done.stderr.strip()}")


def measure(name: str, url: str, n: int, spill: Path, gate: GateConfig, stage_cfg: object) -> dict:
    print(f"{name}:")
    engine, stage, since = load(url, n, spill)
    result = {
        "gate": timed(lambda: judge(window_figures(engine, stage, since), gate, stage_cfg)),
        "query latency": timed(lambda: latency(engine, Filters())),
        "plain index, raw rows": timed(lambda: plain_latency(engine), repeats=3),
        "`harness gate --json` (whole command)": timed(
            lambda: command(url, "gate", "--json"), repeats=3
        ),
        "`harness query latency --json` (whole command)": timed(
            lambda: command(url, "query", "latency", "--json"), repeats=3
        ),
    }
    for k, v in result.items():
        print(f"  {k:<24} {v * 1000:8.1f} ms")
    engine.dispose()  # type: ignore[attr-defined]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outcomes", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="20,000 outcomes, no targets")
    parser.add_argument("--pg-url", default=None, help="use this server instead of a throwaway one")
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args()
    n = 20_000 if args.smoke else args.outcomes
    cfg = compose([])
    stage_cfg = next(s for s in cfg.rollout.stages if s.name == "canary")
    machine = describe(["numpy", "SQLAlchemy", "psycopg"])
    print(machine)
    work = Path(tempfile.mkdtemp(prefix="harness-history-"))
    work.chmod(0o755)
    results = {}
    try:
        results["SQLite"] = measure(
            "SQLite", f"sqlite:///{work / 'history.db'}", n, work, cfg.gate, stage_cfg
        )
        pg_folder = work / "pg"
        url = args.pg_url or pgcluster.start(pg_folder)
        try:
            results["PostgreSQL"] = measure("PostgreSQL", url, n, work, cfg.gate, stage_cfg)
        finally:
            if args.pg_url is None:
                pgcluster.stop(pg_folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "# History and gate over stored outcomes",
        "",
        f"`python benches/history.py{' --smoke' if args.smoke else ''}`: {n:,} outcomes "
        "(8 operation-side groups over 24 h, 2% errors, 1% fallbacks), loaded through the "
        "recorder; median of 7 runs after a warm-up.",
        "",
        f"Machine: {machine}",
        "",
        "| what | SQLite ms | PostgreSQL ms |",
        "| --- | ---: | ---: |",
    ]
    for what in results["SQLite"]:
        lines.append(
            f"| {what} | {results['SQLite'][what] * 1000:.1f} | "
            f"{results['PostgreSQL'][what] * 1000:.1f} |"
        )
    verdicts = []
    failed = False
    for db in ("SQLite", "PostgreSQL"):
        for what in ("gate", "query latency"):
            took = results[db][what]
            ok = took < TARGET_S
            failed |= not ok
            mark = "PASS" if ok else "FAIL"
            verdicts.append(f"| {db}: {what} < {TARGET_S} s | {mark} | {took * 1000:.1f} ms |")
    lines += ["", "| target | result | measured |", "| --- | --- | --- |", *verdicts, ""]
    text = "\n".join(lines)
    print(text)
    if args.smoke:
        print("smoke run: targets not judged, no report written")
        return 0
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
