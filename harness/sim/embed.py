"""Running the simulator from other code: in a background thread, or as a child process.

`Simulator` owns a thread with its own event loop (uvloop when available) so a test or a
benchmark can use it from synchronous or asynchronous code alike; state is only touched on that
loop, and the inspection methods hop onto it. `Simulator.spawn` runs `harness sim` in a child
process (so client and server do not share a GIL) and reads the URL from its first line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import selectors
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from harness.errors import InvalidInputError
from harness.sim.server import App, new_event_loop, serve, shutdown, url_of
from harness.sim.settings import FaultRule, SimSettings

T = TypeVar("T")


def _rules(rules: list[FaultRule] | list[dict[str, Any]]) -> list[FaultRule]:
    return [r if isinstance(r, FaultRule) else FaultRule.from_json(r) for r in rules]


class Simulator:
    """The gateway simulator on loopback, served from a background thread."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.settings = settings if settings is not None else SimSettings()
        self.app = App(self.settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:43123` (only while running)."""
        if self._url is None:
            raise RuntimeError("the simulator is not running; use `with Simulator(...)`")
        return self._url

    def start(self) -> Simulator:
        """Start serving; returns self once the port is bound."""
        if self._thread is not None:
            return self
        ready: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="harness-sim", daemon=True
        )
        self._thread.start()
        try:
            self._url = ready.result(timeout=30)
        except BaseException:
            self._thread = None
            raise
        return self

    def _run(self, ready: concurrent.futures.Future[str]) -> None:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                serve(self.app, self.settings.host, self.settings.port)
            )
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(url_of(self._server, self.settings.host))
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(shutdown(self.app, self._server))
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None
        self._url = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop (state is only ever touched there)."""
        loop = self._loop
        if loop is None:
            return fn()
        if threading.current_thread() is self._thread:
            return fn()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=30)

    # -- inspection, in-process ------------------------------------------------------------
    def ledger(self) -> list[dict[str, Any]]:
        """Every order created since the last reset (as `GET /_sim/orders`)."""
        return self._call(self.app.gateway.ledger)

    def stats(self) -> dict[str, Any]:
        """Request, fault and response counters (as `GET /_sim/stats`)."""
        return self._call(self.app.stats)

    def positions(self) -> list[dict[str, Any]]:
        """Every open position, of every account (as `GET /_sim/positions`)."""
        gateway = self.app.gateway
        return self._call(lambda: [p.to_json() for p in gateway.positions.values()])

    def set_faults(self, rules: list[FaultRule] | list[dict[str, Any]], **live: Any) -> None:
        """Replace the fault plan (as `POST /_sim/faults`); `live` as that body's extra keys."""
        parsed = _rules(rules)
        self._call(lambda: self.app.set_faults(parsed, **live))

    def reset(self) -> None:
        """Clear orders, positions, trades, tokens, counters and faults (as `POST /_sim/reset`)."""
        self._call(self.app.reset)

    def price(self, contract_id: str) -> float:
        """The current price of a contract (as `GET /_sim/price?contractId=`).

        Raises `harness.errors.InvalidInputError` (field `contract_id`, a `ValueError`) for an id
        the simulator does not list, e.g. `"NOPE"` or a symbol such as `"MNQ"`.
        """
        gateway = self.app.gateway
        return self._call(lambda: gateway.price_of(contract_id, gateway.clock()))

    @staticmethod
    def spawn(settings: SimSettings | None = None, *, timeout_s: float = 60.0) -> SpawnedSimulator:
        """Run `harness sim` as a child process with these settings; returns once it listens."""
        return SpawnedSimulator(settings if settings is not None else SimSettings(), timeout_s)


class SpawnedSimulator:
    """A `harness sim` child process: `.url`, `.stop()`, and inspection over HTTP."""

    def __init__(self, settings: SimSettings, timeout_s: float = 60.0) -> None:
        self.settings = settings
        # The settings (faults included) travel on stdin, not in argv: no key shows in `ps`.
        cmd = [sys.executable, "-m", "harness", "sim", "--profile", "-"]
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True
        )
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(settings.to_json()))
            self.process.stdin.close()
            self.url = self._read_url(timeout_s)
        except BaseException:
            self.stop()
            raise
        # Drain anything printed later so the child can never block on a full pipe.
        threading.Thread(target=self._drain, name="harness-sim-stdout", daemon=True).start()

    def _read_url(self, timeout_s: float) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"harness sim printed no URL within {timeout_s} s")
                if sel.select(left):
                    break
        line = self.process.stdout.readline().strip()
        if not line.startswith("http://"):
            code = self.process.poll()
            raise RuntimeError(f"harness sim did not start (exit {code}); first line {line!r}")
        return line

    def _drain(self) -> None:
        stream = self.process.stdout
        if stream is not None:
            for _ in stream:
                pass

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM the child and wait for it (SIGKILL after `timeout_s`); its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def __enter__(self) -> SpawnedSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _http(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def ledger(self) -> list[dict[str, Any]]:
        """Every order created since the last reset."""
        orders: list[dict[str, Any]] = self._http("GET", "/_sim/orders")
        return orders

    def stats(self) -> dict[str, Any]:
        """Request, fault and response counters."""
        counters: dict[str, Any] = self._http("GET", "/_sim/stats")
        return counters

    def positions(self) -> list[dict[str, Any]]:
        """Every open position, of every account."""
        held: list[dict[str, Any]] = self._http("GET", "/_sim/positions")
        return held

    def set_faults(self, rules: list[FaultRule] | list[dict[str, Any]], **live: Any) -> None:
        """Replace the fault plan."""
        self._http("POST", "/_sim/faults", {"rules": [r.to_json() for r in _rules(rules)], **live})

    def reset(self) -> None:
        """Clear orders, positions, trades, tokens, counters and faults."""
        self._http("POST", "/_sim/reset", {})

    def price(self, contract_id: str) -> float:
        """The current price of a contract; `InvalidInputError` for an unknown id (as embedded)."""
        query = urllib.parse.urlencode({"contractId": contract_id})
        try:
            answer = self._http("GET", f"/_sim/price?{query}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            unknown = json.loads(exc.read())
            raise InvalidInputError(unknown["field"], unknown["value"], unknown["reason"]) from None
        return float(answer["price"])
