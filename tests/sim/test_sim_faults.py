"""Fault injection over real HTTP: every kind, seeded draws, counters, and the ambiguous cases."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from simkit import ACCOUNT, MNQ, Api

from harness.sim import FaultRule, SimSettings, Simulator

PLACE = "/api/Order/place"


def _place_body(tag: str) -> dict:
    return {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": 0, "size": 1,
            "customTag": tag}  # fmt: skip


def _tags(api: Api) -> list[str]:
    return [o["customTag"] for o in api.sim.ledger()]


def test_error_before_answers_503_and_creates_nothing(api: Api) -> None:
    api.sim.set_faults([FaultRule(path=PLACE, kind="error_before", count=1)])
    assert api.raw(PLACE, _place_body("eb")).status_code == 503
    assert _tags(api) == []
    assert api.raw(PLACE, _place_body("eb")).status_code == 200  # count=1: fired once
    assert _tags(api) == ["eb"]
    assert api.sim.stats()["faults"] == {"error_before": 1}


def test_error_after_creates_the_order_then_answers_500(api: Api) -> None:
    api.sim.set_faults([FaultRule(path=PLACE, kind="error_after", count=1)])
    resp = api.raw(PLACE, _place_body("ea"))
    assert resp.status_code == 500
    assert _tags(api) == ["ea"]  # the ambiguous case: it exists although the client saw 5xx
    again = api.call(PLACE, _place_body("ea"))
    assert (again["success"], again["errorCode"]) == (False, 2)  # a blind retry is refused


def test_error_status_is_configurable(api: Api) -> None:
    api.sim.set_faults([FaultRule(path="*", kind="error_before", status=502, count=1)])
    assert api.raw("/api/Order/searchOpen", {"accountId": ACCOUNT}).status_code == 502


def test_drop_before_closes_the_connection_without_processing(api: Api) -> None:
    api.sim.set_faults([FaultRule(path=PLACE, kind="drop_before", count=1)])
    with pytest.raises(httpx.RemoteProtocolError):
        api.raw(PLACE, _place_body("db"))
    assert _tags(api) == []
    assert api.sim.stats()["faults"] == {"drop_before": 1}


def test_drop_after_creates_the_order_and_closes_the_connection(api: Api) -> None:
    api.sim.set_faults([FaultRule(path=PLACE, kind="drop_after", count=1)])
    with pytest.raises(httpx.RemoteProtocolError):
        api.raw(PLACE, _place_body("da"))
    assert _tags(api) == ["da"]
    assert api.raw(PLACE, _place_body("da-2")).status_code == 200  # a new connection works


def test_drop_after_cancel_cancels(api: Api) -> None:
    below = api.sim.price(MNQ) - 500
    order_id = api.place(type=1, limitPrice=below)["orderId"]
    api.sim.set_faults([FaultRule(path="/api/Order/cancel", kind="drop_after")])
    with pytest.raises(httpx.RemoteProtocolError):
        api.raw("/api/Order/cancel", {"accountId": ACCOUNT, "orderId": order_id})
    assert api.sim.ledger()[0]["status"] == 3


def test_rate_limit_fault_with_and_without_retry_after(api: Api) -> None:
    api.sim.set_faults([
        FaultRule(path=PLACE, kind="rate_limit", count=1, retry_after=2),
        FaultRule(path=PLACE, kind="rate_limit", count=1),
        FaultRule(path=PLACE, kind="rate_limit", count=1, retry_after=0.25),
    ])  # fmt: skip
    first = api.raw(PLACE, _place_body("rl"))
    assert first.status_code == 429 and first.headers["retry-after"] == "2"
    second = api.raw(PLACE, _place_body("rl"))
    assert second.status_code == 429 and "retry-after" not in second.headers
    third = api.raw(PLACE, _place_body("rl"))
    assert third.status_code == 429 and third.headers["retry-after"] == "0.25"
    assert _tags(api) == []
    assert api.raw(PLACE, _place_body("rl")).status_code == 200


def test_expire_token_answers_401_and_the_token_stays_dead(api: Api) -> None:
    api.sim.set_faults([FaultRule(path="*", kind="expire_token", count=1)])
    body = {"accountId": ACCOUNT}
    assert api.raw("/api/Order/searchOpen", body).status_code == 401
    assert api.raw("/api/Order/searchOpen", body).status_code == 401
    assert api.login()["success"]  # login is never hit by expire_token
    assert api.raw("/api/Order/searchOpen", body).status_code == 200


def test_slow_answers_late_without_blocking_other_requests(api: Api) -> None:
    # 60 s late: every check below ends long before, however loaded the machine (and a ping
    # answered at all while it waits proves the wait blocks nothing).
    api.sim.set_faults([FaultRule(path=PLACE, kind="slow", delay_ms=60_000, count=1)])
    headers = {"Authorization": f"Bearer {api.token}"}
    impatient_read = httpx.Timeout(30.0, read=0.3)  # only the answer is awaited impatiently
    with (
        httpx.Client(base_url=api.sim.url, timeout=impatient_read) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post(PLACE, json=_place_body("slow"), headers=headers)
    # The order was processed before the wait; meanwhile other requests flow.
    assert _tags(api) == ["slow"]
    assert api.http.get("/api/Status/ping", timeout=30.0).json() == "pong"
    assert api.raw(PLACE, _place_body("fast")).status_code == 200


def test_latency_keeps_requests_working_and_is_seeded() -> None:
    settings = SimSettings(latency_ms=20.0, latency_jitter_ms=5.0, seed=3)
    with Simulator(settings) as sim:
        caller = Api(sim)
        assert caller.login()["success"]
        assert caller.place()["success"]
        caller.close()
    draws = [Simulator(settings).app.latency() for _ in range(2)]
    assert draws[0] == draws[1] and draws[0] > 0


def _pattern(seed: int) -> list[int]:
    """Statuses of 20 calls through a 50% error rule on a fresh simulator with `seed`."""
    with Simulator(SimSettings(seed=seed, rate_limit=False)) as sim:
        caller = Api(sim)
        caller.login()
        sim.set_faults([FaultRule(path="*", kind="error_before", probability=0.5)])
        codes = [caller.raw("/api/Order/searchOpen", {"accountId": ACCOUNT}).status_code
                 for _ in range(20)]  # fmt: skip
        caller.close()
    return codes


def test_probability_draws_are_seeded() -> None:
    first = _pattern(seed=21)
    assert 200 in first and 503 in first
    assert _pattern(seed=21) == first
    assert _pattern(seed=22) != first


def test_faults_only_fire_on_their_path(api: Api) -> None:
    api.sim.set_faults([FaultRule(path=PLACE, kind="error_before")])
    assert api.raw("/api/Order/searchOpen", {"accountId": ACCOUNT}).status_code == 200
    assert api.raw(PLACE, _place_body("x")).status_code == 503


def test_stats_count_requests_and_faults(api: Api) -> None:
    api.sim.set_faults([FaultRule(path=PLACE, kind="error_after", count=2)])
    for i in range(3):
        api.raw(PLACE, _place_body(f"c{i}"))
    stats = api.sim.stats()
    assert stats["requests"][PLACE] == 3 and stats["faults"] == {"error_after": 2}
    assert stats["faults_by_path"] == {f"error_after {PLACE}": 2}
    assert stats["responses"]["500"] == 2 and stats["orders"] == 3


def test_inspection_over_http_is_separate_from_the_api(api: Api) -> None:
    http = api.http
    api.place(customTag="seen")
    assert [o["customTag"] for o in http.get("/_sim/orders").json()] == ["seen"]
    assert http.get("/_sim/stats").json()["requests"][PLACE] == 1
    plan = {"rules": [{"path": PLACE, "kind": "error_before", "count": 1}], "string_ids": True}
    assert http.post("/_sim/faults", json=plan).status_code == 200
    assert http.get("/_sim/faults").json()["rules"][0]["kind"] == "error_before"
    assert api.raw(PLACE, _place_body("f")).status_code == 503
    bad = http.post("/_sim/faults", json={"rules": [{"kind": "meteor"}]})
    assert bad.status_code == 400 and "meteor" in bad.json()["error"]
    bad = http.post("/_sim/faults", json={"rules": [], "colour": "red"})
    assert bad.status_code == 400 and "colour" in bad.json()["error"]
    assert http.get("/_sim/price", params={"contractId": MNQ}).json()["price"] % 0.25 == 0
    assert http.get("/_sim/positions").json()[0]["size"] == 1
    assert http.get("/_sim/trades").json()[0]["orderId"] == api.sim.ledger()[0]["id"]
    assert http.post("/_sim/reset").json() == {"reset": True}
    assert http.get("/_sim/orders").json() == []
    assert http.get("/_sim/stats").json()["requests"] == {}
    assert http.get("/_sim/faults").json()["rules"] == []
    assert api.raw("/api/Order/searchOpen", {"accountId": ACCOUNT}).status_code == 401  # tokens


# -- the real rate limits (a simulator of its own, limits on) ----------------------------------
@pytest.fixture(scope="module")
def limited() -> Iterator[Simulator]:
    with Simulator(SimSettings(rate_limit=True)) as sim:
        yield sim


def _bars_calls(caller: Api, n: int) -> list[httpx.Response]:
    body = {"contractId": MNQ, "live": False, "startTime": "2026-11-01T00:00:00Z",
            "endTime": "2026-11-01T00:05:00Z", "unit": 2, "unitNumber": 1, "limit": 5,
            "includePartialBar": False}  # fmt: skip
    return [caller.raw("/api/History/retrieveBars", body) for _ in range(n)]


def test_bars_are_limited_to_50_per_30_s_with_retry_after(limited: Simulator) -> None:
    limited.reset()
    caller = Api(limited)
    caller.login()
    statuses = [r.status_code for r in _bars_calls(caller, 50)]
    assert statuses == [200] * 50
    [over] = _bars_calls(caller, 1)
    assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 30
    # Other endpoints have their own budget, and the limit is per token.
    assert caller.raw("/api/Order/searchOpen", {"accountId": ACCOUNT}).status_code == 200
    caller.login()
    assert [r.status_code for r in _bars_calls(caller, 1)] == [200]
    caller.close()


def test_other_endpoints_are_limited_to_200_per_60_s(limited: Simulator) -> None:
    limited.reset()
    limited.set_faults([], rate_limit_retry_after=False)
    caller = Api(limited)
    caller.login()
    codes = [caller.raw("/api/Order/searchOpen", {"accountId": ACCOUNT}).status_code
             for _ in range(201)]  # fmt: skip
    assert codes[:200] == [200] * 200 and codes[200] == 429
    resp = caller.raw("/api/Order/searchOpen", {"accountId": ACCOUNT})
    assert resp.status_code == 429 and "retry-after" not in resp.headers
    caller.close()


# -- raw HTTP/1.1 behaviour --------------------------------------------------------------------
def _raw_exchange(url: str, payload: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(payload)
        chunks = []
        while True:
            data = conn.recv(65536)
            if not data:
                break
            chunks.append(data)
            if b"".join(chunks).count(b"pong") >= 2:
                break
        return b"".join(chunks)


def test_keep_alive_answers_pipelined_requests_in_order(api: Api) -> None:
    ping = b"GET /api/Status/ping HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _raw_exchange(api.sim.url, ping + ping)
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and answer.count(b'"pong"') == 2


def test_garbage_gets_400_and_a_closed_connection(api: Api) -> None:
    answer = _raw_exchange(api.sim.url, b"NONSENSE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


def test_many_clients_at_once(api: Api) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with httpx.Client(base_url=api.sim.url, timeout=10) as client:
                headers = {"Authorization": f"Bearer {api.token}"}
                for j in range(10):
                    resp = client.post(PLACE, json=_place_body(f"t{i}-{j}"), headers=headers)
                    assert resp.json()["success"]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(_tags(api))) == 80
