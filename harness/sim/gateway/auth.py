"""Sessions and the `Auth/*` paths: JWT-shaped tokens issued, checked on every call, expired
on demand (the `expire_token` fault) and rate-limited per token; `Auth/loginKey`,
`Auth/validate` and `Auth/logout`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections import deque
from typing import Any

from harness import projectx as px
from harness.sim.gateway.book import Session
from harness.sim.gateway.broker import Broker
from harness.sim.gateway.wire import RateLimited, Unauthorized, fail, ok, req_str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_JWT_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())


class AuthPaths(Broker):
    """Tokens and the `Auth/*` paths."""

    # -- sessions ----------------------------------------------------------------------------
    def issue_token(self, username: str, now: float) -> str:
        """A new JWT-shaped session token; its payload carries numeric `iat` and `exp`."""
        ttl = self.settings.token_ttl_s
        if ttl >= 60:  # whole seconds, as real tokens carry
            iat: float = int(now)
            exp: float = iat + round(ttl)
        else:  # short test lifetimes stay exact
            iat = round(now, 3)
            exp = round(now + ttl, 3)
        self._next_token += 1
        claims = {"sub": username, "iat": iat, "exp": exp, "jti": str(self._next_token)}
        claims.update(iss="harness-sim", aud="harness-sim")
        signing = f"{_JWT_HEADER}.{_b64(json.dumps(claims).encode())}"
        sig = hmac.new(self._secret, signing.encode(), hashlib.sha256).digest()
        token = f"{signing}.{_b64(sig)}"
        self.sessions[token] = Session(username, float(exp))
        return token

    def authenticate(self, authorization: bytes | None, now: float) -> str:
        """The token of a valid `Authorization: Bearer` header; Unauthorized otherwise."""
        if not authorization or not authorization[:7].lower() == b"bearer ":
            raise Unauthorized
        token = authorization[7:].strip().decode("latin-1")
        session = self.sessions.get(token)
        if session is None or now >= session.expires:
            raise Unauthorized
        return token

    def expire(self, authorization: bytes | None) -> None:
        """Make the request's token expired from now on (the `expire_token` fault)."""
        if authorization and authorization[:7].lower() == b"bearer ":
            session = self.sessions.get(authorization[7:].strip().decode("latin-1"))
            if session is not None:
                session.expires = 0.0

    def check_rate(self, token: str, path: str, now: float) -> None:
        """Sliding-window limits per token: bars 50 per 30 s, everything else 200 per 60 s."""
        bars = path == px.HISTORY_RETRIEVE_BARS
        limit, window = (50, 30.0) if bars else (200, 60.0)
        key = (token, bars)
        stamps = self.windows.get(key)
        if stamps is None:
            stamps = self.windows[key] = deque()
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        if len(stamps) >= limit:
            wait = stamps[0] + window - now
            raise RateLimited(
                max(1, math.ceil(wait)) if self.settings.rate_limit_retry_after else None
            )
        stamps.append(now)

    # -- Auth --------------------------------------------------------------------------------
    def login_key(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Auth/loginKey`: unknown user -> 1 UserNotFound, wrong key -> 3 InvalidCredentials."""
        username = req_str(body, "userName")
        api_key = req_str(body, "apiKey")
        if username != self.settings.username:
            return fail(px.LoginCode.USER_NOT_FOUND, "User not found.", token=None)
        if not hmac.compare_digest(str(api_key).encode(), self.settings.api_key.encode()):
            return fail(px.LoginCode.INVALID_CREDENTIALS, "Invalid credentials.", token=None)
        return {"token": self.issue_token(username, now), **ok()}

    def validate(self, token: str, now: float) -> dict[str, Any]:
        """`Auth/validate`: a fresh token for the same user (the old one stays valid)."""
        return {"newToken": self.issue_token(self.sessions[token].username, now), **ok()}

    def logout(self, token: str) -> dict[str, Any]:
        """`Auth/logout`: the token stops working."""
        self.sessions.pop(token, None)
        return ok()
