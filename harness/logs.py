"""How every command logs: to stderr, at a chosen level, as text or one JSON object per line,
secrets scrubbed.

- Level: `--log-level LEVEL` (any command, before or after its name), else `HARNESS_LOG_LEVEL`,
  else WARNING. LEVEL is DEBUG, INFO, WARNING or ERROR, in any case.
- Format: `HARNESS_LOG_FORMAT=text` (the default: `LEVEL logger: message`) or `json`: exactly one
  JSON object per line, for Loki, Elasticsearch/Logstash or any shipper that reads JSON lines:
  `ts` (ISO-8601 UTC, microseconds, `Z`), `level`, `logger`, `message`, `exception` (the
  traceback, when there is one) and the record's `extra` fields under their own names.
- Secrets: every line passes through one `harness.redact.Scrubber` (the rule alerts use too):
  the broker's API key and the database password once the config names them (`add_secrets`),
  and in any text the password of a URL, a JWT (a ProjectX session token) and a `Bearer`
  token. In JSON every string value is scrubbed, extras included.

Stdout stays the command's output: logs never go there, so `harness status --json | jq` parses.
Standard library only (`harness.redact` included): set up on every command's start.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from harness.errors import ConfigError
from harness.redact import Scrubber

__all__ = [
    "FORMATS",
    "FORMAT_ENV",
    "LEVELS",
    "LEVEL_ENV",
    "JsonFormatter",
    "TextFormatter",
    "add_secrets",
    "parse_level",
    "setup",
]

LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
LEVEL_ENV: Final = "HARNESS_LOG_LEVEL"
FORMATS: Final = ("text", "json")
FORMAT_ENV: Final = "HARNESS_LOG_FORMAT"
DEFAULT_LEVEL: Final = "WARNING"
TEXT_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has: what is left in a record's __dict__ is its `extra`.
_STANDARD: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)

_scrub = Scrubber()
"""The process's scrubber: the shapes from the start, the config's secrets once composed."""


def parse_level(value: str, field: str) -> str:
    """`value` as a level name (`debug` -> `DEBUG`). Raises `ConfigError` naming `field` (the
    option or the variable it came from) and the value when it is not one of `LEVELS`."""
    level = value.strip().upper()
    if level not in LEVELS:
        raise ConfigError(field, value, f"not a log level ({', '.join(LEVELS)})")
    return level


def _parse_format(value: str) -> str:
    fmt = value.strip().lower()
    if fmt not in FORMATS:
        raise ConfigError(FORMAT_ENV, value, f"not a log format ({' or '.join(FORMATS)})")
    return fmt


def setup(
    level: str | None = None,
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the root logger to `stream` (default stderr) at `level` (a name already checked,
    from `--log-level`), else `HARNESS_LOG_LEVEL`, else WARNING, in the format
    `HARNESS_LOG_FORMAT` names; replaces any handler the root had. Returns the handler.

    Raises `ConfigError` (field `HARNESS_LOG_LEVEL` or `HARNESS_LOG_FORMAT`, and the value) for
    a variable set to something else; nothing is changed then. An empty variable is unset."""
    import os

    env = os.environ if environ is None else environ
    if level is None:
        raw_level = env.get(LEVEL_ENV, "")
        level = parse_level(raw_level, LEVEL_ENV) if raw_level.strip() else DEFAULT_LEVEL
    raw_format = env.get(FORMAT_ENV, "")
    fmt = _parse_format(raw_format) if raw_format.strip() else "text"
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter(_scrub) if fmt == "json" else TextFormatter(_scrub))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def add_secrets(secrets: Iterable[str | None]) -> None:
    """Scrub these values from every log line from now on (None and short values ignored)."""
    _scrub.add(s for s in secrets if s)


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message` (and the traceback on the lines after), scrubbed."""

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__(TEXT_FORMAT)
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self._scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped): `ts`,
    `level`, `logger`, `message`, `exception` when the record has one, then its `extra` fields
    (a value JSON cannot hold is written as its `str`). Every string scrubbed."""

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds")
        entry: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        # ASCII only: a U+2028 left raw would be a line break to a reader that splits lines
        # as Python's `str.splitlines` does.
        return json.dumps(self._clean(entry), default=str)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._scrub(value)
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)  # NaN is not JSON
        if isinstance(value, dict):
            return {str(k): self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return self._scrub(str(value))
