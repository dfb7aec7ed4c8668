"""Capture: a sample of routed calls' inputs and answers, kept in the store for `harness replay`.

At `rollout.migrations.<name>.capture.rate` (drawn from a seeded RNG, as the shadows are) a
routed call is captured. Once it has returned or raised, the router hands the recorder a
`CaptureRecord` whose payload the recorder's writer makes on its own thread (never on the
caller's path, `harness.recorder.writer`): zlib of compact UTF-8 JSON, format `FORMAT`:

- an order call (`place_order`, `modify_order`, `cancel_order`): `kind` (`place`, `market`,
  `modify`, `cancel`), the checked arguments (`harness.orders.args`: `args`), the contract
  the build used (`contract`, None when none was known) and the serving side's exchanges with
  the broker as its trace recorded them (`harness.orders.trace`): path, request, status, raw
  answer, `retry_after`, failure. Bodies are text (`request`, `response`), or base64
  (`request_b64`, `response_b64`) when not UTF-8;
- an aggregation (`aggregate_bars`): the 1-minute input columns as the engines take them
  (`t` int64 ns, `o h l c` float64, `v` int64: little-endian bytes in base64, exact) and the
  arguments (`periods`, `offsets` in ns, `names` of the timeframes).

Secrets: the trace records `Auth/*` bodies as `REDACTED` and no `Authorization` header; the
capture scrubs again, by one rule (`scrub_exchange`): every `Auth/*` body is `REDACTED`, a
JSON body's `token`, `apiKey`, `password`, `Authorization` (any case) is `***`, URL
credentials (`scheme://user:password@`) lose their password, and every secret the router knows
(`Router.scrub`: the API key) is `***` wherever it appears.

Over `max_bytes` (the compressed payload) a call is not captured, and counted
(`RecorderStats.captures_oversize`). Captures older than `capture.retention` are deleted as
new ones are written, and by `harness db prune`.
"""

from __future__ import annotations

import base64
import json
import random
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from harness.durations import parse_duration
from harness.orders.trace import REDACTED, Exchange
from harness.recorder import CaptureRecord
from harness.router.core import Router

__all__ = [
    "FORMAT",
    "Capturer",
    "bars_document",
    "bars_inputs",
    "decode",
    "encode",
    "exchange_of",
    "scrub_exchange",
]

FORMAT: Final = 1
"""The payload's format version (`captures.format`); `harness replay` reads this one."""
SECRET_FIELDS: Final = frozenset({"token", "apikey", "password", "authorization"})
"""JSON keys whose value is a secret wherever they appear in a body (compared in lower case)."""
_URL_CREDENTIALS: Final = re.compile(r"(://[^/?#@:\s\"]*):[^@/\s\"]*@")
_AUTH_PREFIX: Final = "/api/Auth/"


class Capturer:
    """Samples routed calls and hands their captures to the recorder (see the module).

    `build_id` is the native module's build of this run (`harness.native.build_id`)."""

    def __init__(self, router: Router, *, seed: str, build_id: str | None) -> None:
        self._router = router
        self._rng = random.Random(f"{seed}|capture")
        self.draw: Callable[[], float] = self._rng.random
        """The capture RNG's next draw in [0, 1) (`sample`; the order shadow draws inline)."""
        self.build_id = build_id
        self._retention: dict[str, int] = {}

    def sample(self, op: str) -> bool:
        """Whether this call of `op` is captured (its migration's `capture.rate`)."""
        rate = self._router.snapshot.capture_rates.get(op, 0.0)
        if rate <= 0.0:
            return False
        return rate >= 1.0 or self._rng.random() < rate

    def submit(
        self, op: str, served: str, ts_ns: int, document: Callable[[], dict[str, Any] | None]
    ) -> None:
        """Queue the capture of one call; `document()` (run on the recorder's thread) makes its
        JSON document, or None when there is nothing to keep. Returns at once."""
        router = self._router
        migration = router.migration_of(op)
        if migration is None:
            return
        config = router.rollout.migration(migration).capture
        retention = self._retention.get(migration)
        if retention is None:
            retention = self._retention[migration] = parse_duration(config.retention)
        scrub = router.scrub

        def payload() -> bytes | None:
            found = document()
            return None if found is None else encode(found, scrub)

        router.recorder.record_capture(
            CaptureRecord(
                ts_ns, router.run_id, migration, op, served, self.build_id, FORMAT, payload,
                config.max_bytes, retention,
            )
        )  # fmt: skip


def encode(document: Mapping[str, Any], scrub: Callable[[str], str] = lambda t: t) -> bytes:
    """The payload of `document`: compact JSON, URL credentials and the known secrets
    (`scrub`) removed from the text, UTF-8, zlib (level 6)."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    text = scrub(_URL_CREDENTIALS.sub(r"\1:***@", text))
    return zlib.compress(text.encode("utf-8"), 6)


def decode(payload: bytes) -> dict[str, Any]:
    """The document of a payload; `ValueError` when it is not zlib of a JSON object."""
    try:
        document = json.loads(zlib.decompress(payload).decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a capture payload: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError("not a capture payload: not a JSON object")
    return document


# ----- orders -----------------------------------------------------------------------------------


def scrub_exchange(exchange: Exchange) -> dict[str, Any]:
    """One exchange as JSON, its secrets scrubbed (see the module)."""
    auth = exchange.path.startswith(_AUTH_PREFIX)
    row: dict[str, Any] = {
        "path": exchange.path,
        "status": exchange.status,
        "retry_after": exchange.retry_after,
        "failure": exchange.failure,
    }
    for name, content in (("request", exchange.request), ("response", exchange.response)):
        body = REDACTED if auth else _scrub_body(content)
        try:
            row[name] = body.decode("utf-8")
        except UnicodeDecodeError:
            row[f"{name}_b64"] = base64.b64encode(body).decode("ascii")
    return row


def exchange_of(row: Mapping[str, Any]) -> Exchange:
    """The `Exchange` of one captured exchange (`scrub_exchange`'s inverse)."""

    def body(name: str) -> bytes:
        if f"{name}_b64" in row:
            return base64.b64decode(row[f"{name}_b64"])
        return str(row.get(name, "")).encode("utf-8")

    retry = row.get("retry_after")
    return Exchange(
        str(row["path"]),
        body("request"),
        None if row.get("status") is None else int(row["status"]),
        body("response"),
        None if retry is None else float(retry),
        row.get("failure"),
    )


def _scrub_body(content: bytes) -> bytes:
    """A JSON body with the values of `SECRET_FIELDS` replaced by `***` (at any depth); a
    body that is not JSON is kept (the known secrets are scrubbed from the whole text)."""
    if not content:
        return content
    try:
        parsed = json.loads(content)
    except ValueError:
        return content
    scrubbed, changed = _scrub_value(parsed)
    if not changed:
        return content  # byte for byte as sent: the replay compares it
    return json.dumps(scrubbed, separators=(",", ":")).encode("utf-8")


def _scrub_value(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, inner in value.items():
            if str(key).lower() in SECRET_FIELDS and inner not in (None, ""):
                out[key], changed = "***", True
                continue
            out[key], inner_changed = _scrub_value(inner)
            changed = changed or inner_changed
        return out, changed
    if isinstance(value, list):
        items = [_scrub_value(v) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    return value, False


# ----- bars -------------------------------------------------------------------------------------

_COLUMNS: Final = (("t", "<i8"), ("o", "<f8"), ("h", "<f8"), ("l", "<f8"), ("c", "<f8"),
                   ("v", "<i8"))  # fmt: skip


def bars_document(
    columns: Sequence[Any], periods: Sequence[int], offsets: Sequence[int], names: Sequence[str]
) -> dict[str, Any]:
    """The document of one aggregation: its prepared columns (t, o, h, l, c, v) and arguments."""
    import numpy as np

    data = {
        name: base64.b64encode(np.ascontiguousarray(col, dtype=dtype).tobytes()).decode("ascii")
        for (name, dtype), col in zip(_COLUMNS, columns, strict=True)
    }
    return {
        "kind": "aggregate",
        "rows": len(columns[0]),
        "columns": data,
        "periods": [int(p) for p in periods],
        "offsets": [int(o) for o in offsets],
        "names": [str(n) for n in names],
    }


def bars_inputs(
    document: Mapping[str, Any],
) -> tuple[tuple[Any, ...], list[int], list[int], list[str]]:
    """(columns, periods, offsets, names) of an aggregation's document, as the engines'
    `aggregate_columns` takes them; `ValueError` for a malformed document."""
    import numpy as np

    try:
        data = document["columns"]
        columns = tuple(
            np.frombuffer(base64.b64decode(data[name]), dtype=dtype).astype(dtype[1:])
            for name, dtype in _COLUMNS
        )
        periods = [int(p) for p in document["periods"]]
        offsets = [int(o) for o in document["offsets"]]
        names = [str(n) for n in document["names"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an aggregation capture: {exc!r}") from None
    return columns, periods, offsets, names
