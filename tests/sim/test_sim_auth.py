"""Sessions: login codes, JWT-shaped tokens, 401 on anything but a live token, validate, logout."""

from __future__ import annotations

import base64
import json
import time

import httpx
from simkit import ACCOUNT, Api

from harness.projectx import LoginCode


def _claims(token: str) -> dict:
    header, payload, signature = token.split(".")
    assert header and signature
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_login_answers_a_jwt_with_numeric_exp_and_iat(api: Api) -> None:
    body = api.login()
    assert body == {"token": body["token"], "success": True, "errorCode": 0, "errorMessage": None}
    claims = _claims(body["token"])
    assert isinstance(claims["exp"], int) and isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == 86400


def test_unknown_user_is_code_1_with_a_null_token(api: Api) -> None:
    body = api.login(username="someone-else")
    assert body["success"] is False and body["token"] is None
    assert body["errorCode"] == LoginCode.USER_NOT_FOUND


def test_wrong_key_is_code_3_invalid_credentials(api: Api) -> None:
    body = api.login(api_key="wrong")
    assert body["success"] is False and body["token"] is None
    assert body["errorCode"] == LoginCode.INVALID_CREDENTIALS


def test_login_without_a_required_field_is_400(api: Api) -> None:
    resp = api.http.post("/api/Auth/loginKey", json={"userName": "sim-user"})
    assert resp.status_code == 400
    assert "apiKey" in resp.json()["errors"]


def test_bearer_none_garbage_and_missing_tokens_are_401(api: Api) -> None:
    body = {"onlyActiveAccounts": True}
    assert api.raw("/api/Account/search", body, token="None").status_code == 401
    assert api.raw("/api/Account/search", body, token="a.b.c").status_code == 401
    assert api.http.post("/api/Account/search", json=body).status_code == 401
    assert api.raw("/api/Account/search", body).status_code == 200


def test_validate_accepts_an_empty_json_body_and_returns_a_new_token(api: Api) -> None:
    resp = api.http.post(
        "/api/Auth/validate",
        content=b"",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 200
    new = resp.json()["newToken"]
    assert new != api.token and _claims(new)["exp"] >= _claims(api.token)["exp"]
    # Both the new and the old token work: logging in again never invalidates earlier ones.
    assert (
        api.raw("/api/Account/search", {"onlyActiveAccounts": True}, token=new).status_code == 200
    )
    assert api.raw("/api/Account/search", {"onlyActiveAccounts": True}).status_code == 200


def test_logout_with_an_empty_body_ends_the_session(api: Api) -> None:
    resp = api.http.post(
        "/api/Auth/logout",
        content=b"",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 200 and resp.json()["success"] is True
    assert api.raw("/api/Account/search", {"onlyActiveAccounts": True}).status_code == 401


def test_a_short_lived_token_expires_into_401(api: Api) -> None:
    # The simulator's clock stands still, then jumps past the expiry: the token is live, then
    # expired, whatever the machine's load between two calls.
    gateway = api.sim.app.gateway
    real = gateway.clock
    now = [time.time()]
    api.sim._call(lambda: setattr(gateway, "clock", lambda: now[0]))
    try:
        api.sim.set_faults([], token_ttl_s=0.3)
        api.login()
        claims = _claims(api.token or "")
        assert abs(claims["exp"] - claims["iat"] - 0.3) < 1e-6
        assert api.raw("/api/Order/searchOpen", {"accountId": ACCOUNT}).status_code == 200
        now[0] += 1.0  # past the expiry
        assert api.raw("/api/Order/searchOpen", {"accountId": ACCOUNT}).status_code == 401
        assert api.raw("/api/Auth/validate").status_code == 401  # validate refuses it too
        api.login()
        assert api.raw("/api/Order/searchOpen", {"accountId": ACCOUNT}).status_code == 200
    finally:
        api.sim._call(lambda: setattr(gateway, "clock", real))


def test_ping_is_a_get_answering_the_json_string_pong(api: Api) -> None:
    resp = api.http.get("/api/Status/ping")
    assert resp.status_code == 200 and resp.json() == "pong"
    assert api.http.post("/api/Status/ping").status_code == 405


def test_unknown_paths_are_404_and_wrong_methods_405(api: Api) -> None:
    assert api.raw("/api/Order/teleport", {}).status_code == 404
    resp = api.http.get("/api/Order/place")
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"


def test_malformed_json_is_400(api: Api) -> None:
    resp = api.http.post(
        "/api/Order/searchOpen",
        content=b"{not json",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 400


def test_chunked_request_bodies_are_refused_with_411(api: Api) -> None:
    def chunks():
        yield b'{"accountId": 1001}'

    resp = httpx.post(
        api.sim.url + "/api/Order/searchOpen",
        content=chunks(),
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert resp.status_code == 411
