"""`harness metrics`: serve the store as Prometheus metrics over HTTP (`/metrics`).

Binds 127.0.0.1 unless `--host` says otherwise (the metrics name operations, stages and
migrations: exposing them beyond the machine is a decision, not a default). `--port 0` takes a
free port; the first line printed is the URL served, once signals stop the server cleanly.
SIGINT and SIGTERM stop it: one line on stderr, exit status 130 or 143. `--once` prints one
scrape to stdout instead of serving. The database's password is never printed.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import signal
import socket
import sys
from typing import TYPE_CHECKING, Final

from harness.config import HarnessConfig, redact_url
from harness.errors import InvalidInputError
from harness.output import error
from harness.store import queries

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["DEFAULT_PORT", "DEFAULT_WINDOW", "READ_TIMEOUT_S", "Metrics"]

DEFAULT_PORT: Final = 9464
"""The port served by default (the one OpenTelemetry's Prometheus exporters use)."""
DEFAULT_WINDOW: Final = "5m"
"""The latency quantiles' window by default: a few 15 s scrapes see the same calls, and a
slow minute still moves p99 within five minutes."""
READ_TIMEOUT_S: Final = 5.0
"""How long one scrape's statements may run on PostgreSQL (half Prometheus's default 10 s
scrape time-out): a hung server gives `harness_store_up 0`, not a hung scrape."""
EXIT_FOR_SIGNAL: Final = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}


class Metrics:
    """`harness metrics [--host ADDR] [--port N] [--window DURATION] [--once]`."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness metrics` (values checked by `run`, one line each)."""
        parser.add_argument(
            "--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)"
        )
        parser.add_argument(
            "--port",
            default=str(DEFAULT_PORT),
            help=f"the TCP port (default {DEFAULT_PORT}; 0: a free one, printed)",
        )
        parser.add_argument(
            "--window",
            default=DEFAULT_WINDOW,
            help=f"the latency quantiles' trailing window (default {DEFAULT_WINDOW})",
        )
        parser.add_argument(
            "--once", action="store_true", help="print one scrape to stdout and exit"
        )

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Serve until SIGINT/SIGTERM (130/143), or print one scrape (`--once`, 0).

        Raises `InvalidInputError` for a bad flag (exit 2), `StoreUnavailableError` or
        `SchemaError` for a store that cannot be read at the start (exit 2).
        """
        host = _host(args.host)
        port = _port(args.port)
        window_ns = queries.parse_duration(args.window, "--window", "30s, 5m, 1h")

        from prometheus_client import CollectorRegistry, generate_latest

        from harness.metrics.collector import StoreCollector
        from harness.store.db import open_store

        engine = open_store(cfg.db.url, read_only=True, read_timeout_s=READ_TIMEOUT_S)
        try:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(StoreCollector(engine, cfg.rollout, window_ns))
            if args.once:
                sys.stdout.write(generate_latest(registry).decode())
                return 0
            return _serve(registry, host, port, redact_url(cfg.db.url))
        finally:
            engine.dispose()


def _host(text: str) -> str:
    """An IP address, or a name this machine resolves (`localhost`)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        socket.getaddrinfo(text, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        reason = "not an IP address or a name this machine resolves"
        raise InvalidInputError("--host", text, reason) from None
    return text


def _port(text: str) -> int:
    try:
        port = int(text, 10)
    except ValueError:
        port = -1
    if not 0 <= port <= 65_535 or text.strip() != text:
        raise InvalidInputError("--port", text, "expected a TCP port, 0 to 65535 (0: any free)")
    return port


def _serve(registry: CollectorRegistry, host: str, port: int, where: str) -> int:
    """Serve `registry` on host:port until SIGINT or SIGTERM; the exit status."""
    from prometheus_client import start_http_server

    # The signals are blocked before the server's threads start (they inherit the mask) and
    # taken with `sigwait` here: no handler runs inside a scrape, and none can be missed.
    signals = set(EXIT_FOR_SIGNAL)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            reason = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            if exc.errno == errno.EADDRINUSE:
                raise InvalidInputError("--port", port, reason) from None
            raise InvalidInputError("--host", host, reason) from None
        shown = f"[{host}]" if ":" in host else host
        print(f"serving http://{shown}:{server.server_port}/metrics from {where}", flush=True)
        received = signal.sigwait(signals)
        server.shutdown()
        server.server_close()
        thread.join()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    status, said = EXIT_FOR_SIGNAL[signal.Signals(received)]
    error("metrics", said)
    return status
