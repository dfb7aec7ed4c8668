"""`harness sim`: serve the gateway simulator until interrupted; the URL is the first line out.

Settings are layered: the defaults, then `--profile` (a packaged profile name, a YAML/JSON file, or
`-` for JSON on stdin), then the flags given on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import signal
import sys
from typing import Any

from harness.sim.server import App, new_event_loop, serve, shutdown, url_of
from harness.sim.settings import SimSettings, load_profile, merge_settings


def _loopback(value: str) -> str:
    host = value.strip()
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--host {value!r}: not an IP address") from None
    if not ip.is_loopback:
        raise argparse.ArgumentTypeError(f"--host {value!r}: the simulator binds loopback only")
    return host


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port {value!r}: not an integer") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"--port {value!r}: must be within 0..65535")
    return port


def _non_negative(option: str) -> Any:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} {value!r}: not a number") from None
        if not number >= 0 or number == float("inf"):
            raise argparse.ArgumentTypeError(f"{option} {value!r}: must be a finite number >= 0")
        return number

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the `harness sim` options."""
    parser.description = __doc__
    parser.add_argument("--host", type=_loopback, help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="TCP port, 0 = any free one (default 0)")
    parser.add_argument("--username", help="the one accepted userName (default sim-user)")
    parser.add_argument("--api-key", help="the one accepted apiKey (default sim-key)")
    parser.add_argument(
        "--profile", help="profile name (default, demo, bench, chaos), a YAML/JSON file, or -"
    )
    parser.add_argument("--seed", type=int, help="seed of the price path and fault draws")
    parser.add_argument("--latency-ms", type=_non_negative("--latency-ms"))
    parser.add_argument("--latency-jitter-ms", type=_non_negative("--latency-jitter-ms"))
    parser.add_argument("--token-ttl-s", type=_non_negative("--token-ttl-s"))
    parser.add_argument(
        "--string-ids", action="store_true", default=None, help="order ids as numeric strings"
    )
    parser.add_argument("--bar-timestamp", choices=["open", "close"])
    parser.add_argument(
        "--no-rate-limit", dest="rate_limit", action="store_false", default=None,
        help="disable the 429 rate limits",
    )  # fmt: skip


_FLAGS: tuple[str, ...] = ("host", "port", "username", "api_key", "seed", "latency_ms")
_FLAGS += ("latency_jitter_ms", "token_ttl_s", "string_ids", "bar_timestamp", "rate_limit")


def settings_from_args(args: argparse.Namespace) -> SimSettings:
    """Defaults, then the profile, then the flags; ValueError names a bad option or value."""
    settings = SimSettings()
    profile = getattr(args, "profile", None)
    if profile == "-":
        try:
            data = json.loads(sys.stdin.read() or "{}")
        except ValueError as exc:
            raise ValueError(f"--profile -: stdin is not JSON ({exc})") from None
        settings = merge_settings(data, source="--profile -")
    elif profile:
        settings = load_profile(profile)
    overrides = {k: getattr(args, k) for k in _FLAGS if getattr(args, k, None) is not None}
    if overrides:
        settings = merge_settings(overrides, settings, source="command line")
    return settings


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; exit status 0 on a clean stop, 2 on bad settings."""
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"harness sim: error: {exc}", file=sys.stderr)
        return 2
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_serve(settings))
    finally:
        loop.close()


async def _serve(settings: SimSettings) -> int:
    app = App(settings)
    try:
        server = await serve(app, settings.host, settings.port)
    except OSError as exc:
        print(f"harness sim: error: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)  # fmt: skip
        return 1
    print(url_of(server, settings.host), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await shutdown(app, server)
    return 0
