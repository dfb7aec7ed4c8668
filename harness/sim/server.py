"""The simulator's HTTP/1.1 server: a raw asyncio protocol over the httptools parser.

Why raw: the order-client benchmark measures clients on loopback, so the server's cost per
request must stay tiny. A request with no latency and no fault is parsed, answered and written
inside one `data_received` call: no task, no logging, no framework. Latency, `slow` faults and
inspection calls are the only paths that schedule work. Keep-alive and Content-Length bodies
are supported; chunked request bodies are refused with 411.

`App` owns the policy around the broker: routing, the fault plan (seeded), latency, rate
limits, the counters of `/_sim/stats`, and the inspection paths (never under `/api/`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import sys
from collections import Counter, deque
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httptools
import orjson

from harness import projectx as px
from harness.errors import InvalidInputError
from harness.sim.gateway import (
    ROUTES,
    BadRequest,
    Gateway,
    RateLimited,
    Unauthorized,
)
from harness.sim.settings import BEFORE_KINDS, FaultRule, SimSettings, loopback_host

MAX_BODY = 1 << 20

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_JSON = b"Content-Type: application/json; charset=utf-8\r\n"
_TEXT = b"Content-Type: text/plain; charset=utf-8\r\n"


def _status_line(status: int) -> bytes:
    return f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n".encode()


_STATUS_LINES = {s: _status_line(s) for s in _REASONS}


@dataclasses.dataclass(slots=True)
class Request:
    """One parsed request."""

    method: bytes
    path: str
    query: str
    authorization: bytes | None
    body: bytes
    keep_alive: bool


@dataclasses.dataclass(slots=True)
class Outcome:
    """What to do with a request: answer (status, headers, body), or drop the connection."""

    status: int = 200
    body: bytes = b""
    headers: bytes = _JSON
    drop: bool = False
    delay: float = 0.0

    def encode(self, keep_alive: bool) -> bytes:
        """The full HTTP response."""
        line = _STATUS_LINES.get(self.status) or _status_line(self.status)
        length = b"Content-Length: " + str(len(self.body)).encode() + b"\r\n"
        close = b"" if keep_alive else b"Connection: close\r\n"
        return line + self.headers + length + close + b"\r\n" + self.body


DROP = Outcome(drop=True)
_UNAUTHORIZED = Outcome(401, b"", b'WWW-Authenticate: Bearer error="invalid_token"\r\n')
_NOT_FOUND = Outcome(404, b"", _TEXT)


def _json(obj: Any, status: int = 200) -> Outcome:
    return Outcome(status, orjson.dumps(obj))


def check_state_file(path: Path) -> None:
    """Refuse at start a state file the book could not be written to when the simulator stops
    (ValueError naming `--state-file` and the path): its folder missing, not a folder, or not
    writable, or the path itself a folder. Caught then, not after a session of trading."""
    shown = f"state file {str(path)!r} (--state-file)"
    folder = path.parent
    if path.is_dir():
        raise ValueError(f"{shown}: is a folder; give a file path")
    if not folder.exists():
        raise ValueError(f"{shown}: the folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ValueError(f"{shown}: {str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{shown}: the folder {str(folder)!r} is not writable")


class App:
    """Routing, faults, latency, counters and inspection around one `Gateway`."""

    def __init__(self, settings: SimSettings) -> None:
        self.initial = dataclasses.replace(settings, faults=list(settings.faults))
        self.settings = dataclasses.replace(settings, faults=list(settings.faults))
        self.gateway = Gateway(self.settings)
        self.idle_closed = 0
        if settings.state_file is not None:
            check_state_file(Path(settings.state_file))
            self.load_state(Path(settings.state_file))
        self._fault_rng = random.Random(settings.seed)
        self._latency_rng = random.Random(settings.seed + 1)
        self.faults: list[FaultRule] = []
        self.set_faults([dataclasses.replace(r) for r in settings.faults])
        self.requests: Counter[str] = Counter()
        self.fault_counts: Counter[str] = Counter()
        self.fault_paths: Counter[str] = Counter()
        self.responses: Counter[int] = Counter()
        self.connections = 0
        self.open_connections: set[HttpProtocol] = set()
        self.internal_errors: list[str] = []

    # -- control (also reachable in-process through Simulator) -----------------------------
    def set_faults(self, rules: list[FaultRule], **live: Any) -> None:
        """Replace the fault plan; optionally change token_ttl_s, string_ids, latency, limits."""
        allowed = {"token_ttl_s", "string_ids", "latency_ms", "latency_jitter_ms", "rate_limit"}
        allowed |= {"rate_limit_retry_after", "bar_timestamp", "idle_close_ms"}
        unknown = sorted(set(live) - allowed)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; live settings: {sorted(allowed)}")
        if live:
            # Validate through the dataclass before touching the live object.
            checked = dataclasses.replace(self.settings, faults=[], **live)
            for name in live:
                setattr(self.settings, name, getattr(checked, name))
        self.faults = [dataclasses.replace(r) for r in rules]

    def load_state(self, path: Path) -> bool:
        """Take the book from `path` if it exists (True); ValueError naming the file if it
        cannot be read."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ValueError(f"state_file {str(path)!r}: cannot read: {exc.strerror}") from None
        try:
            self.gateway.restore(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise ValueError(f"state_file {str(path)!r}: {exc}") from None
        return True

    def save_state(self) -> None:
        """Write the book to `state_file` (whole or not at all: a temporary file renamed)."""
        if self.settings.state_file is None:
            return
        path = Path(self.settings.state_file)
        partial = path.with_name(path.name + ".partial")
        try:
            partial.write_bytes(orjson.dumps(self.gateway.book()))
            os.replace(partial, path)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise

    def reset(self) -> None:
        """Back to the start: no orders, sessions, counters or faults; initial settings."""
        for f in dataclasses.fields(self.initial):
            if f.name != "faults":
                setattr(self.settings, f.name, getattr(self.initial, f.name))
        self.set_faults([dataclasses.replace(r) for r in self.initial.faults])
        self.gateway.reset()
        self.requests.clear()
        self.fault_counts.clear()
        self.fault_paths.clear()
        self.responses.clear()
        self.internal_errors.clear()
        self.idle_closed = 0

    def stats(self) -> dict[str, Any]:
        """Counters: requests per path, faults per kind (and per path), responses per status."""
        g = self.gateway
        return {
            "requests": dict(self.requests),
            "faults": dict(self.fault_counts),
            "faults_by_path": dict(self.fault_paths),
            "responses": {str(k): v for k, v in self.responses.items()},
            "orders": len(g.orders),
            "open_orders": len(g.open_orders),
            "positions": len(g.positions),
            "trades": len(g.trades),
            "sessions": len(g.sessions),
            "connections": self.connections,
            "idle_closed": self.idle_closed,
            "internal_errors": self.internal_errors[-20:],
        }

    def fault_plan(self) -> dict[str, Any]:
        """The live fault plan and live settings (the shape `POST /_sim/faults` takes)."""
        s = self.settings
        return {
            "rules": [r.to_json() for r in self.faults],
            "token_ttl_s": s.token_ttl_s,
            "string_ids": s.string_ids,
            "latency_ms": s.latency_ms,
            "latency_jitter_ms": s.latency_jitter_ms,
            "rate_limit": s.rate_limit,
            "rate_limit_retry_after": s.rate_limit_retry_after,
            "bar_timestamp": s.bar_timestamp,
            "idle_close_ms": s.idle_close_ms,
        }

    # -- per request ---------------------------------------------------------------------------
    def _pick(self, path: str, authed: bool) -> FaultRule | None:
        for rule in self.faults:
            if rule.path != "*" and rule.path != path:
                continue
            if rule.count is not None and rule.count <= 0:
                continue
            if rule.kind == "expire_token" and not authed:
                continue
            if rule.probability < 1.0 and self._fault_rng.random() >= rule.probability:
                continue
            if rule.count is not None:
                rule.count -= 1
            self.fault_counts[rule.kind] += 1
            self.fault_paths[f"{rule.kind} {path}"] += 1
            return rule
        return None

    def latency(self) -> float:
        """One round trip's added latency in seconds (seeded; never negative)."""
        s = self.settings
        if s.latency_ms <= 0 and s.latency_jitter_ms <= 0:
            return 0.0
        ms = s.latency_ms
        if s.latency_jitter_ms > 0:
            ms = self._latency_rng.gauss(ms, s.latency_jitter_ms)
        return max(0.0, ms) / 1000.0

    def plan(self, req: Request) -> tuple[FaultRule | None, float]:
        """Count the request, choose its fault (if any) and its latency."""
        route = ROUTES.get(req.path)
        if route is None:
            return None, 0.0
        self.requests[req.path] += 1
        if route[0] != req.method:
            return None, 0.0
        return self._pick(req.path, route[1]), self.latency()

    def execute(self, req: Request, rule: FaultRule | None) -> Outcome:
        """Answer one request (faults applied); never raises."""
        if req.path.startswith("/_sim/"):
            return self._inspect(req)
        route = ROUTES.get(req.path)
        if route is None:
            return _NOT_FOUND
        method, authed, handler = route
        if method != req.method:
            out = Outcome(405, b"", _TEXT + b"Allow: " + method + b"\r\n")
            self.responses[405] += 1
            return out
        if rule is not None and rule.kind in BEFORE_KINDS:
            out = self._before(req, rule)
        else:
            try:
                out = self._process(req, authed, handler)
            except Exception as exc:  # a simulator bug must answer, never hang the client
                self.internal_errors.append(f"{req.path}: {exc!r}")
                out = Outcome(500, b"simulator internal error", _TEXT)
            if rule is not None:
                out = self._after(rule, out)
        self.responses[0 if out.drop else out.status] += 1
        return out

    def _before(self, req: Request, rule: FaultRule) -> Outcome:
        kind = rule.kind
        if kind == "drop_before":
            return DROP
        if kind == "rate_limit":
            header = b""
            if rule.retry_after_text is not None:
                header = b"Retry-After: " + rule.retry_after_text.encode() + b"\r\n"
            elif rule.retry_after is not None:
                ra = rule.retry_after
                text = str(int(ra)) if float(ra).is_integer() else repr(float(ra))
                header = b"Retry-After: " + text.encode() + b"\r\n"
            return Outcome(429, b"", _TEXT + header)
        if kind == "expire_token":
            self.gateway.expire(req.authorization)
            return _UNAUTHORIZED
        status = rule.http_status()
        return Outcome(status, b"simulated fault before processing", _TEXT)

    @staticmethod
    def _after(rule: FaultRule, out: Outcome) -> Outcome:
        if rule.kind == "drop_after":
            return DROP
        if rule.kind == "slow":
            return dataclasses.replace(out, delay=rule.delay_ms / 1000.0)
        return Outcome(rule.http_status(), b"simulated fault after processing", _TEXT)

    def _process(self, req: Request, authed: bool, handler: Any) -> Outcome:
        g = self.gateway
        path = req.path
        if path == px.STATUS_PING:
            return Outcome(200, b'"pong"')
        now = g.clock()
        try:
            token = ""
            if authed:
                token = g.authenticate(req.authorization, now)
                if self.settings.rate_limit:
                    g.check_rate(token, path, now)
            if path == px.VALIDATE:
                return _json(g.validate(token, now))
            if path == px.LOGOUT:
                return _json(g.logout(token))
            body = self._body(req.body)
            g.sweep(now)
            return _json(handler(g, body, now))
        except Unauthorized:
            return _UNAUTHORIZED
        except RateLimited as exc:
            header = b""
            if exc.retry_after is not None:
                header = b"Retry-After: " + str(exc.retry_after).encode() + b"\r\n"
            return Outcome(429, b"", _TEXT + header)
        except BadRequest as exc:
            return Outcome(400, exc.body(), b"Content-Type: application/problem+json\r\n")

    @staticmethod
    def _body(raw: bytes) -> dict[str, Any]:
        if not raw.strip():
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest("$", "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise BadRequest("$", "The request body must be a JSON object.")
        return body

    # -- inspection (not under /api/) --------------------------------------------------------
    def _inspect(self, req: Request) -> Outcome:
        g = self.gateway
        key = (req.method, req.path)
        try:
            if key == (b"GET", "/_sim/orders"):
                return _json(g.ledger())
            if key == (b"GET", "/_sim/stats"):
                return _json(self.stats())
            if key == (b"GET", "/_sim/faults"):
                return _json(self.fault_plan())
            if key == (b"GET", "/_sim/positions"):
                return _json([p.to_json() for p in g.positions.values()])
            if key == (b"GET", "/_sim/trades"):
                return _json([t.to_json() for t in g.trades])
            if key == (b"GET", "/_sim/price"):
                cid = parse_qs(req.query).get("contractId", [""])[0]
                try:
                    price = g.price_of(cid, g.clock())
                except InvalidInputError as exc:
                    unknown = {"field": exc.field, "value": exc.value, "reason": exc.reason}
                    return _json({"error": str(exc), **unknown}, 404)
                return _json({"contractId": cid, "price": price})
            if key == (b"POST", "/_sim/faults"):
                body = orjson.loads(req.body or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                rules = [FaultRule.from_json(r) for r in body.pop("rules", [])]
                self.set_faults(rules, **body)
                return _json(self.fault_plan())
            if key == (b"POST", "/_sim/reset"):
                self.reset()
                return _json({"reset": True})
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _NOT_FOUND


class HttpProtocol(asyncio.Protocol):
    """One client connection: parse with httptools, answer in order, keep alive."""

    __slots__ = (
        "_auth",
        "_body",
        "_busy",
        "_chunked",
        "_header_name",
        "_idle",
        "_pending",
        "_url",
        "app",
        "parser",
        "transport",
    )

    def __init__(self, app: App) -> None:
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._url = b""
        self._auth: bytes | None = None
        self._body: list[bytes] = []
        self._chunked = False
        self._busy = False
        self._pending: deque[Request] = deque()
        self._idle: asyncio.TimerHandle | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count the connection."""
        self.transport = transport  # type: ignore[assignment]
        self.app.connections += 1
        self.app.open_connections.add(self)
        self._arm_idle_close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget queued work."""
        self.transport = None
        self._pending.clear()
        self.app.open_connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def data_received(self, data: bytes) -> None:
        """Feed the parser; a malformed request gets 400 and the connection closes."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b"upgrades are not supported")
        except httptools.HttpParserError:
            self._fail(400, b"malformed HTTP request")

    # httptools callbacks
    def on_message_begin(self) -> None:
        """Start a request."""
        self._url = b""
        self._auth = None
        self._body = []
        self._chunked = False

    def on_url(self, url: bytes) -> None:
        """Collect the target."""
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        """Keep only the headers the simulator reads."""
        lname = name.lower()
        if lname == b"authorization":
            self._auth = value
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            self._chunked = True

    def on_headers_complete(self) -> None:
        """Refuse chunked bodies before reading them."""
        if self._chunked:
            self._fail(411, b"chunked request bodies are not supported; send Content-Length")

    def on_body(self, body: bytes) -> None:
        """Collect the body (bounded)."""
        self._body.append(body)
        if sum(map(len, self._body)) > MAX_BODY:
            self._fail(413, b"request body too large")

    def on_message_complete(self) -> None:
        """Dispatch the request, or queue it behind one still being answered."""
        if self.transport is None or self.transport.is_closing():
            return
        url = httptools.parse_url(self._url)
        req = Request(
            self.parser.get_method(),
            url.path.decode("latin-1"),
            (url.query or b"").decode("latin-1"),
            self._auth,
            b"".join(self._body),
            self.parser.should_keep_alive(),
        )
        if self._busy:
            self._pending.append(req)
        else:
            self._start(req)

    # answering
    def _start(self, req: Request) -> None:
        rule, latency = self.app.plan(req)
        if latency > 0:
            self._busy = True
            asyncio.get_running_loop().create_task(self._later(req, rule, latency))
            return
        out = self.app.execute(req, rule)
        if out.delay > 0:
            self._busy = True
            asyncio.get_running_loop().create_task(self._send_later(out, req.keep_alive, out.delay))
            return
        self._send(out, req.keep_alive)

    async def _later(self, req: Request, rule: FaultRule | None, latency: float) -> None:
        await asyncio.sleep(latency / 2)  # request on its way in
        if self.transport is None:
            return
        out = self.app.execute(req, rule)
        await self._send_later(out, req.keep_alive, latency / 2 + out.delay)

    async def _send_later(self, out: Outcome, keep_alive: bool, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        self._busy = False
        if self.transport is not None:
            self._send(out, keep_alive)

    def _send(self, out: Outcome, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if out.drop:
            transport.abort()  # no answer at all: the client sees the connection die
            self.transport = None
            return
        transport.write(out.encode(keep_alive))
        if not keep_alive:
            transport.close()
            return
        if self._pending and not self._busy:
            self._start(self._pending.popleft())
        elif not self._busy:
            self._arm_idle_close()

    def _arm_idle_close(self) -> None:
        """With `idle_close_ms`, close this connection once it has been idle that long."""
        idle_ms = self.app.settings.idle_close_ms
        if idle_ms > 0 and self._idle is None:
            loop = asyncio.get_running_loop()
            self._idle = loop.call_later(idle_ms / 1000.0, self._close_idle)

    def _close_idle(self) -> None:
        """Close an idle keep-alive connection (a FIN, as a load balancer's idle time-out)."""
        self._idle = None
        transport = self.transport
        if transport is None or transport.is_closing() or self._busy or self._pending:
            return
        self.app.idle_closed += 1
        transport.close()

    def _fail(self, status: int, message: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(Outcome(status, message, _TEXT).encode(keep_alive=False))
        transport.close()
        self.transport = None


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is importable, else the stdlib one."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships wherever the dependency resolves
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def serve(app: App, host: str, port: int) -> asyncio.Server:
    """Start listening on `host` (loopback only: `InvalidInputError` naming `host` otherwise,
    since the `/_sim/` paths answer without authentication); returns the server (its first
    socket holds the bound port)."""
    host = loopback_host(host)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HttpProtocol(app), host, port, reuse_address=True, backlog=1024
    )


async def shutdown(app: App, server: asyncio.Server) -> bool:
    """Stop listening, close every open connection, wait (bounded) for the server to close,
    and write the book to `state_file` when one is set; False if that write failed (said on
    stderr), so that the CLI exits non-zero instead of losing the book quietly."""
    server.close()
    for conn in list(app.open_connections):
        if conn.transport is not None:
            conn.transport.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), timeout=5.0)
    try:
        app.save_state()
    except OSError as exc:
        where = app.settings.state_file
        print(
            f"harness sim: error: cannot write the book to state_file {where!r} "
            f"(--state-file): {exc.strerror or exc}; the book is lost",
            file=sys.stderr,
        )
        return False
    return True


def url_of(server: asyncio.Server, host: str) -> str:
    """`http://HOST:PORT` of a listening server."""
    port = server.sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
