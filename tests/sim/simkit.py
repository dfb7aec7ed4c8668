"""Helpers of the simulator suite: a thin HTTP caller and the ids tests use."""

from __future__ import annotations

from typing import Any

import httpx

from harness.sim import Simulator

MNQ = "CON.F.US.MNQ.Z26"
ACCOUNT = 1001


class Api:
    """A thin synchronous caller: log in once, then POST JSON with the bearer token."""

    def __init__(self, sim: Simulator, http: httpx.Client | None = None) -> None:
        self.sim = sim
        self._owns_http = http is None
        self.http = http if http is not None else httpx.Client(base_url=sim.url, timeout=10.0)
        self.token: str | None = None

    def login(self, username: str = "sim-user", api_key: str = "sim-key") -> dict[str, Any]:
        """Log in; keeps the token on success."""
        body = self.http.post(
            "/api/Auth/loginKey", json={"userName": username, "apiKey": api_key}
        ).json()
        if body["success"]:
            self.token = body["token"]
        return body

    def raw(self, path: str, body: Any = None, token: str | None = None) -> httpx.Response:
        """POST and return the response, whatever its status."""
        tok = token if token is not None else self.token
        headers = {"Authorization": f"Bearer {tok}"} if tok is not None else {}
        return self.http.post(path, json=body, headers=headers)

    def call(self, path: str, body: Any = None) -> dict[str, Any]:
        """POST, assert HTTP 200, return the JSON envelope."""
        resp = self.raw(path, body)
        assert resp.status_code == 200, (path, resp.status_code, resp.text)
        return resp.json()

    def place(self, **fields: Any) -> dict[str, Any]:
        """Order/place with defaults (market buy 1 MNQ on the first account)."""
        body = {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": 0, "size": 1}
        body.update(limitPrice=None, stopPrice=None, trailPrice=None)
        body.update(fields)
        return self.call("/api/Order/place", body)

    def close(self) -> None:
        """Close the HTTP client (when this caller made it)."""
        if self._owns_http:
            self.http.close()
