"""The simulator across restarts and idle connections: `state_file` keeps the book (orders,
positions, trades, sessions) when the process stops and starts again on the same port, and
`idle_close_ms` closes keep-alive connections left idle, as a load balancer does."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from simkit import ACCOUNT, MNQ, Api

from harness.sim import SimSettings, Simulator
from harness.sim.gateway import Gateway

PLACE = "/api/Order/place"


def _stop_body(tag: str) -> dict:
    # A sell stop far below the price: it rests Open.
    return {"accountId": ACCOUNT, "contractId": MNQ, "type": 4, "side": 1, "size": 1,
            "stopPrice": 1000.0, "customTag": tag}  # fmt: skip


def test_a_restarted_simulator_keeps_orders_positions_tags_and_sessions(tmp_path: Path) -> None:
    state = tmp_path / "book.json"
    first = Simulator(SimSettings(rate_limit=False, state_file=str(state))).start()
    port = int(first.url.rsplit(":", 1)[1])
    api = Api(first)
    try:
        assert api.login()["success"]
        filled = api.place(customTag="kept-entry")  # a market buy: a position of 1
        resting = api.call(PLACE, _stop_body("kept-stop"))
        assert filled["success"] and resting["success"]
        before = first.ledger()
    finally:
        api.close()
        first.stop()
    assert state.exists() and not (tmp_path / "book.json.partial").exists()

    again = Simulator(SimSettings(rate_limit=False, port=port, state_file=str(state))).start()
    http = httpx.Client(base_url=again.url, timeout=10.0)
    try:
        assert again.ledger() == before
        assert [(p["contractId"], p["size"]) for p in again.positions()] == [(MNQ, 1)]
        caller = Api(again, http)
        caller.token = api.token  # the session survived: no new login
        opened = caller.call("/api/Order/searchOpen", {"accountId": ACCOUNT})
        assert [o["customTag"] for o in opened["orders"]] == ["kept-stop"]
        duplicate = caller.call(PLACE, _stop_body("kept-stop"))
        assert (duplicate["success"], duplicate["errorCode"]) == (False, 2)  # tags remembered
        fresh = caller.place(customTag="after-restart")
        assert fresh["orderId"] > max(o["id"] for o in before)  # ids never reused
    finally:
        http.close()
        again.stop()


def test_an_unreadable_state_file_is_named(tmp_path: Path) -> None:
    state = tmp_path / "book.json"
    state.write_text('{"version": 99}')
    with pytest.raises(ValueError, match=r"state_file .*book\.json.*version 99"):
        Simulator(SimSettings(state_file=str(state)))


# A book of the right version with one part of the wrong shape: (the part named, the change).
MALFORMED: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "sessions not an object": ("sessions", lambda b: {**b, "sessions": []}),
    "a session not a pair": ("sessions", lambda b: {**b, "sessions": {"tok": ["trader"]}}),
    "three id counters": ("next", lambda b: {**b, "next": b["next"][:3]}),
    "a counter not a number": ("next", lambda b: {**b, "next": [*b["next"][:3], "x"]}),
    "accounts an object": ("accounts", lambda b: {**b, "accounts": {"1001": 1}}),
    "an order without fields": ("orders", lambda b: {**b, "orders": [{"id": 1}]}),
    "a position not an object": ("positions", lambda b: {**b, "positions": ["x"]}),
    "trades null": ("trades", lambda b: {**b, "trades": None}),
    "secret a number": ("secret", lambda b: {**b, "secret": 5}),
    "swept_to a list": ("swept_to", lambda b: {**b, "swept_to": [1]}),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_book_is_refused_whole_naming_its_part(case: str) -> None:
    gateway = Gateway(SimSettings())
    token = gateway.issue_token("trader", 1_700_000_000.0)
    part, change = MALFORMED[case]
    bad = change(gateway.book())
    before = json.dumps(gateway.book())
    with pytest.raises(ValueError, match=rf"^book: {part}: "):
        gateway.restore(bad)
    assert json.dumps(gateway.book()) == before  # nothing half-restored
    assert token in gateway.sessions


def test_idle_keep_alive_connections_are_closed_after_idle_close_ms() -> None:
    with Simulator(SimSettings(rate_limit=False, idle_close_ms=100)) as sim:
        host, port = sim.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=60) as conn:
            # From before the request: the idle time starts once the answer is out, so at least
            # 100 ms pass before the FIN however the machine is loaded (no upper bound judged).
            began = time.monotonic()
            conn.sendall(b"GET /api/Status/ping HTTP/1.1\r\nHost: sim\r\n\r\n")
            answer = conn.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200") and b"pong" in answer
            assert conn.recv(4096) == b""  # the server closed the idle connection (FIN)
            assert time.monotonic() - began >= 0.1
        assert sim.stats()["idle_closed"] == 1


def test_a_connection_in_use_is_not_closed_as_idle() -> None:
    # The answer takes 300 ms, three times the idle time: a connection serving a request is in
    # use, never idle, however slow the machine (closed under the request, the GET would fail).
    settings = SimSettings(rate_limit=False, idle_close_ms=100, latency_ms=300.0)
    with Simulator(settings) as sim, httpx.Client(base_url=sim.url, timeout=30.0) as http:
        began = time.monotonic()
        assert http.get("/api/Status/ping").status_code == 200
        assert time.monotonic() - began >= 0.3  # it was in use longer than the idle time
        assert sim.stats()["connections"] == 1
