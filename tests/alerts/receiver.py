"""A webhook receiver on loopback for the alert suites: a small threaded HTTP server that keeps
every JSON body it is sent, or that accepts connections and never answers (`hang`)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """`url` receives POSTs; `bodies` holds (path, JSON body, monotonic time) per request.
    `status` is what it answers; with `hang` set it reads the request and never answers
    until `release()` (or its stop)."""

    def __init__(self, *, status: int = 204, hang: bool = False) -> None:
        self.status = status
        self.hang = hang
        self.bodies: list[tuple[str, Any, float]] = []
        self.raw: list[bytes] = []
        self.requests = 0
        self._release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests += 1
                    receiver.raw.append(data)
                if receiver.hang:
                    receiver._release.wait(120)
                    return
                try:
                    body: Any = json.loads(data)
                except ValueError:
                    body = data.decode("utf-8", "replace")
                with receiver._lock:
                    receiver.bodies.append((self.path, body, time.monotonic()))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The webhook bodies received (of `kind`), in order of arrival."""
        with self._lock:
            found = [b for _p, b, _t in self.bodies if isinstance(b, dict)]
        return [b for b in found if kind is None or b.get("event") == kind]

    def release(self) -> None:
        self._release.set()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def receiver(**options: Any) -> Iterator[Receiver]:
    r = Receiver(**options)
    try:
        yield r
    finally:
        r.stop()


def refused_url() -> str:
    """A loopback URL whose port refuses connections (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
