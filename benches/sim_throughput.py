"""Requests per second and server CPU per request of the gateway simulator on loopback.

Starts `harness sim --profile bench` (no latency, no rate limits) as a child process, logs in,
drives each endpoint with `wrk` (apt-get install -y wrk) for a bounded time, and reads the
server's CPU time from /proc before and after. Prints a table; loopback only.

    python benches/sim_throughput.py [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from machine import describe

PLACE = (
    '{"accountId":1001,"contractId":"CON.F.US.MNQ.Z26","type":2,"side":0,"size":1,'
    '"limitPrice":null,"stopPrice":null,"trailPrice":null}'
)
CASES = [
    ("GET /api/Status/ping", "/api/Status/ping", None),
    ("POST /api/Order/place (market)", "/api/Order/place", PLACE),
    ("POST /api/Order/searchOpen", "/api/Order/searchOpen", '{"accountId":1001}'),
]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def main() -> int:
    """Run the measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not 1 <= args.seconds <= 60 or not 1 <= args.connections <= 256:
        parser.error("--seconds must be 1..60 and --connections 1..256")
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sim", "--profile", "bench", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        body = {"userName": "sim-user", "apiKey": "sim-key"}
        token = _post(url + "/api/Auth/loginKey", body)["token"]
        print(f"machine: {describe(['httptools', 'uvloop', 'orjson'])}")
        print(f"wrk -t1 -c{args.connections} -d{args.seconds}s against {url} (server: one process)")
        print(f"{'endpoint':34} {'req/s':>9} {'p50':>8} {'server CPU/req':>15}")
        for name, path, payload in CASES:
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
                script.write('wrk.headers["Authorization"] = "Bearer " .. os.getenv("SIM_T")\n')
                if payload is not None:
                    script.write('wrk.method = "POST"\n')
                    script.write('wrk.headers["Content-Type"] = "application/json"\n')
                    script.write(f"wrk.body = '{payload}'\n")
            cpu0 = _cpu_seconds(proc.pid)
            done = subprocess.run(
                [wrk, "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
                 "-s", script.name, url + path],
                capture_output=True, text=True, env={**os.environ, "SIM_T": token},
                timeout=args.seconds + 30, check=True,
            )  # fmt: skip
            cpu = _cpu_seconds(proc.pid) - cpu0
            os.unlink(script.name)
            out = done.stdout
            total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
            p50 = re.search(r"50%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
            bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            note = f"  ({bad.group(1)} non-2xx!)" if bad else ""
            print(f"{name:34} {rps:9.0f} {p50:>8} {cpu / total * 1e6:12.1f} us{note}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
