"""One Prometheus scrape of `harness metrics` over 1,000,000 outcomes, on SQLite and PostgreSQL.

    python benches/metrics.py          # 1,000,000 outcomes; writes benches/reports/metrics.md
    python benches/metrics.py --smoke  # 20,000 outcomes, no targets judged

The store is the history bench's (`benches/history.py`: 8 operation-side groups over 24 hours,
2% errors, 1% fallbacks, loaded through the real recorder and compacted). Timed, median of 7
after a warm-up:
- `collect`: the collector's read of the store and the text exposition (`generate_latest`),
  in-process, with the default 5-minute latency window and with a 24-hour one;
- `GET /metrics`: one HTTP scrape of a real `harness metrics` process (what Prometheus pays).
Target: a scrape under 0.3 s on both databases, so a 15 s scrape interval spends under 2% of
one core on it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from history import DAY_NS, load, timed
from machine import describe

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import pgcluster
from prometheus_client import CollectorRegistry, generate_latest

from harness.config import compose
from harness.metrics import StoreCollector
from harness.store.rollups import MINUTE_NS

REPORT = Path(__file__).parent / "reports" / "metrics.md"
TARGET_S = 0.3


ROLLOUT = compose([]).rollout


def scrape_text(engine: object, window_ns: int) -> bytes:
    """One scrape's exposition, as the server builds it (the config composed once, before)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(engine, ROLLOUT, window_ns))  # type: ignore[arg-type]
    return generate_latest(registry)


def http_scrape(url: str, work: Path) -> float:
    """The median time of `GET /metrics` on a real `harness metrics --port 0` process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "metrics", "--port", "0", f"db.url={url}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its one line at the end, "terminated"
        text=True,
        cwd=work,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("serving "):
            raise RuntimeError(f"harness metrics did not start: {line!r}")
        target = line.split()[1]
        with httpx.Client(timeout=60) as client:
            return timed(lambda: client.get(target).raise_for_status())
    finally:
        process.terminate()
        process.wait(timeout=60)


def measure(name: str, url: str, n: int, work: Path) -> dict[str, float]:
    print(f"{name}:")
    engine, _, _ = load(url, n, work)
    result = {
        "collect, 5 min window": timed(lambda: scrape_text(engine, 5 * MINUTE_NS)),
        "collect, 24 h window": timed(lambda: scrape_text(engine, DAY_NS)),
        "GET /metrics (harness metrics process)": http_scrape(url, work),
    }
    size = len(scrape_text(engine, 5 * MINUTE_NS))
    print(f"  exposition: {size:,} bytes")
    for k, v in result.items():
        print(f"  {k:<40} {v * 1000:8.1f} ms")
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
    machine = describe(["prometheus_client", "SQLAlchemy", "psycopg"])
    print(machine)
    work = Path(tempfile.mkdtemp(prefix="harness-metrics-"))
    work.chmod(0o755)
    results = {}
    try:
        results["SQLite"] = measure("SQLite", f"sqlite:///{work / 'metrics.db'}", n, work)
        pg_folder = work / "pg"
        url = args.pg_url or pgcluster.start(pg_folder)
        try:
            results["PostgreSQL"] = measure("PostgreSQL", url, n, work)
        finally:
            if args.pg_url is None:
                pgcluster.stop(pg_folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "# One Prometheus scrape over stored outcomes",
        "",
        f"`python benches/metrics.py{' --smoke' if args.smoke else ''}`: {n:,} outcomes "
        "(the history bench's store: 8 operation-side groups over 24 h, 2% errors, 1% "
        "fallbacks), loaded through the recorder; median of 7 runs after a warm-up.",
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
        for what in ("collect, 5 min window", "GET /metrics (harness metrics process)"):
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
