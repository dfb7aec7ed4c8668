"""Order clients side by side: per-call latency (p50, p99), throughput and resident memory.

    python benches/orders.py [--calls N] [--quick]
    python benches/orders.py --smoke       # CI: every client end to end, 64 calls, judges nothing

The simulator runs as a child process (bench profile: zero added latency, no rate limits), so
client and server never share a GIL. Each client is measured in a fresh subprocess of its own
(its memory is its own): the Python client (httpx), the Rust client (tokio + reqwest), and as
references the same raw `POST /api/Order/place` (same JSON body, same bearer token, the JSON
answer parsed) made with pyreqwest (an off-the-shelf Rust-backed HTTP client) and with httpx.
Every call places one market order with a fresh customTag, sequentially and then with 16 calls
in flight. Prints a table and the ratios against the targets, and writes
benches/reports/orders.md. Every run checks that the simulator saw exactly the orders the clients
placed; a smoke run prints its figures but judges no target and writes no report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from machine import describe

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "benches" / "reports" / "orders.md"
KINDS = ("python", "rust", "pyreqwest", "httpx")
LABELS = {
    "python": "Python client (httpx)",
    "rust": "Rust client (reqwest)",
    "pyreqwest": "raw POST, pyreqwest",
    "httpx": "raw POST, httpx",
}
ACCOUNT = 1001
CONTRACT = "CON.F.US.MNQ.Z26"
USER, KEY = "sim-user", "sim-key"
# Targets of the issue, judged on the sequential p50.
TARGET_RUST_VS_PYTHON = 0.25
TARGET_RUST_VS_PYREQWEST = 1.0

Call = Callable[[], Awaitable[Any]]
Close = Callable[[], Awaitable[None]]


# ----- memory -----------------------------------------------------------------------------


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB, from /proc/self/status (psutil when absent)."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        import psutil

        rss = psutil.Process().memory_info().rss // 1024
        return rss, rss


# ----- the clients under test (each built inside its own worker process) --------------------


def place_body() -> bytes:
    """The JSON body the order clients send for a market buy of 1, with a fresh tag."""
    return json.dumps(
        {
            "accountId": ACCOUNT,
            "contractId": CONTRACT,
            "type": 2,
            "side": 0,
            "size": 1,
            "limitPrice": None,
            "stopPrice": None,
            "trailPrice": None,
            "customTag": "hx-" + secrets.token_hex(12),
        },
        separators=(",", ":"),
    ).encode()


def check_answer(data: Any) -> None:
    if not (isinstance(data, dict) and data.get("success") and data.get("orderId") is not None):
        raise RuntimeError(f"place failed: {data!r}")


async def make_order_client(impl: str, url: str) -> tuple[Call, Close]:
    from harness.orders import ClientSettings, open_client

    client = open_client(ClientSettings(url, USER, KEY), impl)  # type: ignore[arg-type]

    async def call() -> Any:
        return await client.place_market_order(ACCOUNT, CONTRACT, "buy", 1)

    return call, client.aclose


async def make_pyreqwest(url: str) -> tuple[Call, Close]:
    from pyreqwest.client import ClientBuilder

    client = ClientBuilder().base_url(url).build()
    login = json.dumps({"userName": USER, "apiKey": KEY}).encode()
    resp = await (
        client.post("/api/Auth/loginKey")
        .header("Content-Type", "application/json")
        .body_bytes(login)
        .build()
        .send()
    )
    bearer = "Bearer " + (await resp.json())["token"]

    async def call() -> Any:
        response = await (
            client.post("/api/Order/place")
            .header("Content-Type", "application/json")
            .header("Authorization", bearer)
            .body_bytes(place_body())
            .build()
            .send()
        )
        data = await response.json()
        check_answer(data)
        return data

    async def close() -> None:
        await client.close()

    return call, close


async def make_httpx(url: str) -> tuple[Call, Close]:
    import httpx

    client = httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=32))
    login = await client.post("/api/Auth/loginKey", json={"userName": USER, "apiKey": KEY})
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Bearer " + login.json()["token"],
    }

    async def call() -> Any:
        response = await client.post("/api/Order/place", content=place_body(), headers=headers)
        data = json.loads(response.content)
        check_answer(data)
        return data

    return call, client.aclose


async def make(kind: str, url: str) -> tuple[Call, Close]:
    if kind in ("python", "rust"):
        return await make_order_client(kind, url)
    if kind == "pyreqwest":
        return await make_pyreqwest(url)
    return await make_httpx(url)


# ----- one worker: one client, one process --------------------------------------------------


async def measure(kind: str, url: str, calls: int, warmup: int, in_flight: int) -> dict[str, Any]:
    rss_before, _ = rss_kib()
    call, close = await make(kind, url)
    for _ in range(warmup):  # connection, login, contract cache: a steady state
        await call()
    # ... and a pool of `in_flight` open connections before the concurrent phase.
    await asyncio.gather(*(call() for _ in range(in_flight)))

    sequential: list[int] = []
    started = time.perf_counter()
    for _ in range(calls):
        t = time.perf_counter_ns()
        await call()
        sequential.append(time.perf_counter_ns() - t)
    seq_wall = time.perf_counter() - started

    concurrent: list[int] = []
    per_worker = calls // in_flight

    async def worker() -> None:
        for _ in range(per_worker):
            t = time.perf_counter_ns()
            await call()
            concurrent.append(time.perf_counter_ns() - t)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    conc_wall = time.perf_counter() - started
    rss_after, hwm = rss_kib()
    await close()
    return {
        "kind": kind,
        "seq": summary(sequential, seq_wall),
        "conc": summary(concurrent, conc_wall),
        "rss_delta_kib": rss_after - rss_before,
        "hwm_kib": hwm,
    }


def summary(samples_ns: list[int], wall_s: float) -> dict[str, float]:
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50_us": statistics.median(ordered) / 1000,
        "p99_us": p99 / 1000,
        "per_s": len(ordered) / wall_s,
        "n": len(ordered),
    }


# ----- the driver -----------------------------------------------------------------------------


def run_worker(kind: str, url: str, calls: int, warmup: int, in_flight: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", kind, "--url", url, "--calls", str(calls)]
    cmd += ["--warmup", str(warmup), "--in-flight", str(in_flight)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict[str, dict[str, Any]], in_flight: int) -> str:
    head = (
        "| client | seq p50 µs | seq p99 µs | seq calls/s "
        f"| {in_flight} in flight p50 µs | p99 µs | calls/s | RSS delta MiB |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    rows = []
    for kind in KINDS:
        r = results[kind]
        s, c = r["seq"], r["conc"]
        rows.append(
            f"| {LABELS[kind]} | {s['p50_us']:.0f} | {s['p99_us']:.0f} | {s['per_s']:.0f} "
            f"| {c['p50_us']:.0f} | {c['p99_us']:.0f} | {c['per_s']:.0f} "
            f"| {r['rss_delta_kib'] / 1024:.1f} |"
        )
    return head + "\n".join(rows) + "\n"


def verdicts(results: dict[str, dict[str, Any]], in_flight: int, judge: bool = True) -> list[str]:
    def ratio(a: str, b: str, phase: str) -> float:
        return results[a][phase]["p50_us"] / results[b][phase]["p50_us"]

    lines = []
    for phase, name in (("seq", "sequential"), ("conc", f"{in_flight} in flight")):
        rp = ratio("rust", "python", phase)
        rq = ratio("rust", "pyreqwest", phase)
        if phase == "seq":
            ok_p = ("PASS" if rp <= TARGET_RUST_VS_PYTHON else "FAIL") if judge else "not judged"
            ok_q = ("PASS" if rq <= TARGET_RUST_VS_PYREQWEST else "FAIL") if judge else "not judged"
            lines.append(
                f"- {name}: rust/python p50 = {rp:.2f} (target <= {TARGET_RUST_VS_PYTHON}): "
                f"{ok_p}; rust/pyreqwest p50 = {rq:.2f} (target <= "
                f"{TARGET_RUST_VS_PYREQWEST}): {ok_q}"
            )
        else:
            lines.append(
                f"- {name} (no target, for reference): rust/python p50 = {rp:.2f}; "
                f"rust/pyreqwest p50 = {rq:.2f}"
            )
    mem = results["rust"]["rss_delta_kib"] / max(1, results["python"]["rss_delta_kib"])
    lines.append(f"- memory: rust/python RSS delta = {mem:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per phase (default 2000)")
    parser.add_argument("--quick", action="store_true", help="300 calls per phase, short warm-up")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="64 calls per phase, no target judged, no report: proves every client runs",
    )
    parser.add_argument("--in-flight", type=int, default=16, help="calls in flight (default 16)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls per client")
    parser.add_argument("--no-report", action="store_true", help="do not write the report")
    parser.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    calls = 64 if args.smoke else 300 if args.quick else args.calls
    calls = max(args.in_flight, calls - calls % args.in_flight)  # whole rounds of workers
    warmup = (
        args.warmup
        if args.warmup is not None
        else (10 if args.smoke else 50 if args.quick else 200)
    )

    if args.worker:
        result = asyncio.run(measure(args.worker, args.url, calls, warmup, args.in_flight))
        print(json.dumps(result), flush=True)
        # The measurement is out; skip interpreter finalization, where pyreqwest's runtime
        # threads can still reach for the GIL and abort the process (seen 1 run in 10).
        sys.stderr.flush()
        os._exit(0)

    sys.path.insert(0, str(ROOT))
    from harness.sim import SimSettings, Simulator
    from harness.sim.settings import load_profile

    settings = load_profile("bench", SimSettings(rate_limit=False, latency_ms=0.0))
    print(f"simulator: child process, bench profile; {calls} calls per phase, warm-up {warmup}")
    results: dict[str, dict[str, Any]] = {}
    with Simulator.spawn(settings) as sim:
        for kind in KINDS:
            print(f"  measuring {LABELS[kind]} ...", flush=True)
            results[kind] = run_worker(kind, sim.url, calls, warmup, args.in_flight)
        placed = sim.stats()["orders"]
    # Each client placed warm-up + one round in flight + sequential + concurrent orders.
    expected = len(KINDS) * (warmup + args.in_flight + 2 * calls)
    if placed != expected:
        print(f"FAIL: the simulator saw {placed} orders, the clients placed {expected}")
        return 1
    text = table(results, args.in_flight)
    lines = verdicts(results, args.in_flight, judge=not args.smoke)
    where = describe(["httpx", "pyreqwest"])
    print()
    print(text)
    print("\n".join(lines))
    print(f"\nmachine: {where}\norders placed on the simulator: {placed}")
    if not (args.no_report or args.smoke):
        command = "python benches/orders.py" + (" --quick" if args.quick else f" --calls {calls}")
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(
            "# Order clients on loopback\n\n"
            f"Command: `{command}` (simulator in a child process, bench profile: zero added "
            "latency, no rate limits). Each call places one market order "
            "(`POST /api/Order/place`, fresh customTag, JSON answer parsed); every client runs "
            f"in a fresh process; {calls} sequential calls, then {calls} with "
            f"{args.in_flight} in flight, after {warmup} warm-up calls. RSS delta: resident "
            "memory after the run minus before the client was imported.\n\n"
            f"Machine: {where}.\n\n{text}\n" + "\n".join(lines) + "\n"
        )
        print(f"report: {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
