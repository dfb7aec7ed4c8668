"""What alerts cost: a routed call with and without a dead endpoint, and `harness kill`'s wall
time with a dead one.

    python benches/alerts.py [--calls 20000]

Cases: no alerts; alerts to a port that refuses (every attempt fails at once and is retried
with backoff: the sender thread busiest); alerts to an endpoint that accepts and never answers
(an attempt waits `alerts.timeout_s`). In each, a registered operation (both sides trivial, at
production) is called `--calls` times on this thread while the sender holds a full queue of
alerts for the dead endpoint; p50 and p99 of one routed call in microseconds. Then
`harness kill` (a fresh process each) with the same endpoints: its wall time in seconds, which
`alerts.flush_s` (2 s) bounds. Writes benches/reports/alerts.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from machine import describe

REPORT = Path(__file__).with_name("reports") / "alerts.md"


def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/hook"


def hanging_server() -> tuple[ThreadingHTTPServer, str]:
    """An endpoint that reads the request and answers after 30 s (a slow endpoint)."""

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(30)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


def routed_call_us(folder: Path, target: str | None, calls: int) -> dict[str, float]:
    import harness
    from harness.alerts import Alert, notify

    overrides = [f"db.url=sqlite:///{folder / 'harness.db'}", "rollout.start_stage=production"]
    if target is not None:
        overrides.append(f"alerts.urls=['{target}']")
    with harness.open(overrides) as h:
        op = h.register_operation("square", python=lambda x: x * x, rust=lambda x: x * x)
        for i in range(2000):  # warm up
            op(i)
        for i in range(1000):  # a full queue for the dead endpoint, retried meanwhile
            notify(Alert(kind="kill", reason=f"bench {i}"))
        samples = []
        clock = time.perf_counter_ns
        for i in range(calls):
            t0 = clock()
            op(i)
            samples.append((clock() - t0) / 1000)
        stats = h.alerter.stats() if h.alerter is not None else None
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p99": samples[int(len(samples) * 0.99)],
        "retries": float(stats.retries) if stats else 0.0,
    }


def kill_s(folder: Path, target: str | None) -> float:
    db = f"db.url=sqlite:///{folder / 'harness.db'}"
    args = [sys.executable, "-m", "harness"]
    subprocess.run([*args, "db", "upgrade", db], check=True, capture_output=True)
    extra = [] if target is None else [f"alerts.urls=['{target}']"]
    t0 = time.perf_counter()
    done = subprocess.run(
        [*args, "kill", "--reason", "bench", db, *extra], capture_output=True, text=True
    )
    took = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    subprocess.run([*args, "unkill", "--reason", "bench", db, *extra], capture_output=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    server, slow = hanging_server()
    cases = {"no alerts": None, "refusing port": refused_url(), "never answers": slow}
    lines = [
        "# Alerts: what a dead endpoint costs",
        "",
        f"Machine: {describe(['httpx', 'apprise'])}",
        "",
        f"Command: `python benches/alerts.py --calls {args.calls}`",
        "",
        "| endpoint | routed call p50 (us) | p99 (us) | sender retries meanwhile | "
        "`harness kill` wall (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, target in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            call = routed_call_us(Path(tmp), target, args.calls)
        with tempfile.TemporaryDirectory() as tmp:
            kill = kill_s(Path(tmp), target)
        row = (
            f"| {name} | {call['p50']:.1f} | {call['p99']:.1f} | {call['retries']:.0f} "
            f"| {kill:.2f} |"
        )
        print(row, flush=True)
        lines.append(row)
    server.shutdown()
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    os.environ.pop("HARNESS_NO_NATIVE", None)
    main()
