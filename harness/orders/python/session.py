"""The session of the Python client: one token shared by every task and thread, logged in on
first use, refreshed with `Auth/validate` after 90% of its lifetime, logged in again after a
401. The token is a secret: it lives in the `Authorization` header value only, never in a repr,
a log line or an exception text.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from harness import projectx as px
from harness.errors import AuthError, BrokerError
from harness.orders.codec import Request
from harness.orders.python.build import build_login, build_validate
from harness.orders.python.read import read_answer
from harness.orders.python.transport import Ambiguous, Attempts, Transport, Unauthorized
from harness.orders.settings import ClientSettings

__all__ = ["REFRESH_AT", "Session", "Sessions", "refresh_delay"]

log = logging.getLogger("harness.orders")

# Share of a token's lifetime after which it is refreshed with Auth/validate.
REFRESH_AT: Final = 0.9


def _jwt_times(token: str) -> tuple[float, float | None] | None:
    """`exp` and `iat` of a JWT's payload; None when the token is not a JWT with `exp`."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict):
        return None

    def number(key: str) -> float | None:
        v = claims.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return None
        return float(v)

    exp = number("exp")
    return None if exp is None else (exp, number("iat"))


def refresh_delay(token: str, now_unix: float) -> float:
    """Seconds until a token just received is due for refresh (90% of its lifetime).

    The lifetime comes from the JWT's `exp` and `iat`; an opaque token is taken to live 24 h.
    """
    times = _jwt_times(token)
    if times is None:
        lifetime, elapsed = float(px.TOKEN_LIFETIME_S), 0.0
    elif times[1] is not None and times[0] > times[1]:
        lifetime, elapsed = times[0] - times[1], now_unix - times[1]
    else:
        lifetime, elapsed = times[0] - now_unix, 0.0
    seconds = REFRESH_AT * lifetime - max(elapsed, 0.0)
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


@dataclass(frozen=True)
class Session:
    """A cached token; `generation` grows with every new token."""

    header: str = field(repr=False)
    generation: int
    refresh_at: float  # time.monotonic() when it is due for refresh

    def due(self) -> bool:
        """Whether the token has passed 90% of its lifetime."""
        return time.monotonic() >= self.refresh_at


def _auth_failure(path: str, what: str, status: int | None, attempts: int) -> AuthError:
    return AuthError(f"{path}: {what}", endpoint=path, http_status=status, attempts=attempts)


class Sessions:
    """The token cache of one client; read and written under a `threading.Lock` never held
    across an await. Logging in and refreshing happen under the event loop's refresh lock, so
    concurrent callers share one log-in."""

    def __init__(self, settings: ClientSettings, transport: Transport) -> None:
        self._settings = settings
        self._transport = transport
        self._session: Session | None = None
        self._guard = threading.Lock()

    def forget(self) -> None:
        """Drop the token (on close)."""
        with self._guard:
            self._session = None

    def _cached(self) -> Session | None:
        with self._guard:
            return self._session

    def _store(self, token: str) -> Session:
        delay = refresh_delay(token, time.time())
        with self._guard:
            generation = 1 if self._session is None else self._session.generation + 1
            self._session = Session(f"Bearer {token}", generation, time.monotonic() + delay)
            return self._session

    async def current(self) -> Session:
        """A session that is not due: the cached one, a refreshed one, or a fresh log-in."""
        session = self._cached()
        if session is not None and not session.due():
            return session
        async with self._transport.here().refresh_lock:
            session = self._cached()
            if session is not None and not session.due():
                return session
            if session is not None:
                try:
                    return await self._validate(session)
                except BrokerError as exc:
                    log.info("token refresh failed (%s): logging in again", type(exc).__name__)
            return await self._login()

    async def relogin(self, stale_generation: int) -> Session:
        """After a 401 on the session of `stale_generation`: a new one (another task's fresh
        log-in if it came meanwhile)."""
        async with self._transport.here().refresh_lock:
            session = self._cached()
            if session is not None and session.generation != stale_generation and not session.due():
                return session
            return await self._login()

    async def _answer(
        self, request: Request, header: str | None, what_401: str
    ) -> tuple[dict[str, Any], int]:
        """The JSON object of a successful answer and the attempts it took; a 401 is
        `AuthError(what_401)`."""
        path = request.path
        attempts = Attempts()
        read = partial(read_answer, path)
        try:
            return await self._transport.send(request, header, attempts, read), attempts.n
        except Unauthorized:
            raise _auth_failure(path, what_401, 401, attempts.n) from None
        except Ambiguous as exc:  # not reachable: log-in and validate are repeated, not ambiguous
            raise exc.error from None

    async def _login(self) -> Session:
        """`Auth/loginKey`; call with the refresh lock held."""
        s = self._settings
        request = build_login(s.username, s.api_key)
        data, n = await self._answer(request, None, "login refused (HTTP 401)")
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise _auth_failure(px.LOGIN_KEY, "login answered success without a token", 200, n)
        log.debug("logged in as %s", s.username)
        return self._store(token)

    async def _validate(self, session: Session) -> Session:
        """`Auth/validate` with the current token; call with the refresh lock held."""
        path = px.VALIDATE
        what = "session expired (HTTP 401)"
        data, n = await self._answer(build_validate(), session.header, what)
        token = data.get("newToken")
        if not isinstance(token, str) or not token:
            raise _auth_failure(path, "validate answered no token", 200, n)
        log.debug("token refreshed with validate")
        return self._store(token)
