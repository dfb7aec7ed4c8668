"""`harness sim`: serve the gateway simulator until interrupted; the URL is the first line out.

Settings are layered: the defaults, then `--profile` (a packaged profile name, a YAML/JSON file, or
`-` for JSON on stdin), then the flags given on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from harness.errors import InvalidInputError
from harness.sim.server import App, new_event_loop, serve, shutdown, url_of
from harness.sim.settings import (
    SimSettings,
    load_profile,
    loopback_host,
    merge_settings,
    parse_profile,
)


def _loopback(value: str) -> str:
    try:
        return loopback_host(value, "--host")
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(f"--host {value!r}: {exc.reason}") from None


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
    """Declare the `harness sim` options (each one's default is that of `SimSettings`)."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add = parser.add_argument
    add(
        "--host",
        type=_loopback,
        help="loopback address to bind (default 127.0.0.1); the simulator never binds another: "
        "its /_sim/ paths have no authentication",
    )
    add("--port", type=_port, help="TCP port, 0 = any free one (default 0)")
    add("--username", help="the one accepted userName (default sim-user)")
    add("--api-key", help="the one accepted apiKey (default sim-key)")
    add(
        "--profile",
        help="a profile name (packaged: default, demo, bench, chaos; $HARNESS_SIM_PROFILES "
        "adds folders searched first), a .yaml/.yml/.json file, or - for JSON on stdin",
    )
    add("--seed", type=int, help="seed of the price path, fault draws and jitter (default 7)")
    add(
        "--latency-ms",
        type=_non_negative("--latency-ms"),
        help="milliseconds added before every answer (default 0; the demo profile: 90)",
    )
    add(
        "--latency-jitter-ms",
        type=_non_negative("--latency-jitter-ms"),
        help="standard deviation of a seeded normal draw around --latency-ms, never below 0 "
        "(default 0)",
    )
    add(
        "--token-ttl-s",
        type=_non_negative("--token-ttl-s"),
        help="lifetime of a session token in seconds, the JWT's exp - iat (default 86400)",
    )
    add(
        "--string-ids",
        action="store_true",
        default=None,
        help="print order ids as numeric strings (a client must accept both forms)",
    )
    add(
        "--bar-timestamp",
        choices=["open", "close"],
        help="what a History/retrieveBars bar's t is: the start (open) or the end (close) of "
        "its interval (default open; the public record does not say which the gateway uses)",
    )
    add(
        "--idle-close-ms",
        type=_non_negative("--idle-close-ms"),
        help="close a keep-alive connection idle this many milliseconds, as load balancers do "
        "(default 0: never)",
    )
    add(
        "--state-file",
        help="keep the book (orders, positions, trades, sessions) in this JSON file: loaded at "
        "start if it exists, written when the simulator stops, so a restart keeps its state",
    )
    add(
        "--no-rate-limit",
        dest="rate_limit",
        action="store_false",
        default=None,
        help="disable the 429 rate limits (50 per 30 s for bars, 200 per 60 s otherwise)",
    )


_FLAGS: tuple[str, ...] = ("host", "port", "username", "api_key", "seed", "latency_ms")
_FLAGS += ("latency_jitter_ms", "token_ttl_s", "string_ids", "bar_timestamp", "rate_limit")
_FLAGS += ("idle_close_ms", "state_file")


def settings_from_args(args: argparse.Namespace) -> SimSettings:
    """Defaults, then the profile, then the flags; ValueError names a bad option or value."""
    settings = SimSettings()
    profile = getattr(args, "profile", None)
    if profile == "-":
        text = sys.stdin.read()
        source = "--profile -"
        settings = merge_settings(parse_profile(text, source), source=source, text=text)
    elif profile:
        settings = load_profile(profile)
    overrides = {k: getattr(args, k) for k in _FLAGS if getattr(args, k, None) is not None}
    if overrides:
        settings = merge_settings(overrides, settings, source="command line")
    return settings


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; exit status 0 on a clean stop, 1 if the book could not be
    written to the state file at the stop, 2 on bad settings (a state file whose folder is
    missing or not writable among them)."""
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
    try:
        app = App(settings)
    except ValueError as exc:  # a state_file that cannot be read, or written at the end
        print(f"harness sim: error: {exc}", file=sys.stderr)
        return 2
    try:
        server = await serve(app, settings.host, settings.port)
    except OSError as exc:
        print(f"harness sim: error: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)  # fmt: skip
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The URL only once a signal stops cleanly: a caller may signal as soon as it reads it.
    print(url_of(server, settings.host), flush=True)
    await stop.wait()
    return 0 if await shutdown(app, server) else 1
