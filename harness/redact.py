"""Secrets out of every text that leaves the process: the one rule, for alerts and logs alike.

`redact_url` hides the password of one URL; `Scrubber` replaces, in any text, the secrets the
process knows (the broker's API key, the database password, alert targets) and the shapes of a
secret it cannot know in advance: the password of any URL in the text, a JWT (a ProjectX
session token is one) and the token after `Bearer`. Standard library only: the log handler of
every command uses it, `harness --help` included in what it must not slow down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["REDACTED", "Scrubber", "redact_url", "url_passwords"]

REDACTED: Final = "***"
"""What a secret is replaced by, everywhere."""

_URL: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_QUERY_PASSWORD: Final = re.compile(r"([?&][^=&#]*pass[^=&#]*=)[^&#]*", re.IGNORECASE)
# A JWT: three base64url parts, the first a JSON header (`{"` is `eyJ` in base64). RFC 7519.
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# An HTTP Authorization value (RFC 6750): the token after `Bearer`, whatever its shape.
_BEARER: Final = re.compile(r"(\bbearer\s+)[^\s'\",;]+", re.IGNORECASE)
MIN_SECRET_LENGTH: Final = 4
"""Shorter values are not replaced: `***` for every `a` of a text would hide more than a key."""


def redact_url(url: str) -> str:
    """A database URL with its password replaced by `***`: the password of the user part (all
    of it up to the last `@`, so an unescaped `@` in it hides nothing) and the value of any
    query parameter whose name holds `pass` (`?password=...`, as libpq accepts). Works on text
    that is not a valid URL too; it never parses more than it must."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return REDACTED if ":" in url or "@" in url else url
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        rest = f"{user}:{REDACTED}@{rest[at + 1 :]}" if colon else rest
    rest = _QUERY_PASSWORD.sub(lambda m: m.group(1) + REDACTED, rest)
    return f"{scheme}://{rest}"


def url_passwords(url: str) -> list[str]:
    """The passwords a URL carries, as `redact_url` finds them (the user part's, any `pass`
    query parameter's), each as written and percent-decoded: the secrets to scrub from texts
    that may repeat either form. Empty for none, or for text that is not a URL."""
    from urllib.parse import unquote

    _scheme, sep, rest = url.partition("://")
    if not sep:
        return []
    found: list[str] = []
    at = rest.rfind("@")
    if at >= 0:
        _user, colon, password = rest[:at].partition(":")
        if colon and password:
            found.append(password)
    for match in _QUERY_PASSWORD.finditer(rest):
        value = rest[match.end() :]
        value = re.split(r"[&#]", value, maxsplit=1)[0]
        if value:
            found.append(value)
    return list(dict.fromkeys(found + [unquote(p) for p in found]))


class Scrubber:
    """Replaces secrets by `***` in a text: the ones given (at least `MIN_SECRET_LENGTH`
    characters, longest first, so a key that contains another is hidden whole), then the
    password of any URL, any JWT and any `Bearer` token. Thread-safe to call while `add` runs
    (the list is swapped, never changed in place)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Know these secrets too (empty and short values are ignored)."""
        found = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH} | set(self._secrets)
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
        text = _JWT.sub(REDACTED, text)
        return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
