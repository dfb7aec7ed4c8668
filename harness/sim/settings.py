"""What a simulator run is told: its settings, its fault rules, and the named profiles.

The packaged profiles are YAML files in `harness/sim/profiles/` (package data, so an installed
package has them too); `conf/sim` in the checkout is a link to that folder, and the folders of
`$HARNESS_SIM_PROFILES` are searched before it.

Settings are plain dataclasses usable without any configuration framework; `load_profile` is the
one place that reads profile files (YAML through OmegaConf's loader, JSON through `json`), so a
syntax error is named with its file, line and column, and a bad key or value by its file, line
and full key (`faults.2.kind`). An error never shows the value of a secret (`api_key`), nor a
key that is not a setting's name (a line such as `api_key s3cr3t` with its colon missing).

The simulator binds loopback only, however it is configured (a profile, `--host`, the config's
`broker.sim.profile`, `SimSettings(host=...)`): its `/_sim/` paths (reset, faults, the order
ledger) answer anyone who can connect, without authentication. Reach it from another machine
through an SSH tunnel (`ssh -L 8000:127.0.0.1:8000 host`), never by binding 0.0.0.0.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import ipaddress
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness.errors import InvalidInputError

FAULT_KINDS = (
    "error_before",
    "error_after",
    "drop_before",
    "drop_after",
    "rate_limit",
    "slow",
    "expire_token",
)
BEFORE_KINDS = frozenset({"error_before", "drop_before", "rate_limit", "expire_token"})

SECRET_SETTINGS: Final = frozenset({"api_key"})
"""Settings whose value no error, log or listing shows."""
LOOPBACK_ONLY: Final = (
    "the simulator binds loopback only (127.0.0.1, ::1 or localhost): its /_sim/ paths "
    "(reset, faults) have no authentication; reach it from elsewhere through an SSH tunnel"
)


def loopback_host(host: Any, field_name: str = "host") -> str:
    """`host` if it is a loopback address (127.0.0.0/8 or ::1), `localhost` as 127.0.0.1.

    Raises `InvalidInputError(field_name, host, LOOPBACK_ONLY)` for anything else: another
    address (0.0.0.0 listens on every interface), a name that is not `localhost`, not a string.
    The one check behind `--host`, profiles, `SimSettings` and `serve`.
    """
    if isinstance(host, str):
        text = host.strip()
        if text == "localhost":
            return "127.0.0.1"
        try:
            if ipaddress.ip_address(text).is_loopback:
                return text
        except ValueError:
            pass
    raise InvalidInputError(field_name, host, LOOPBACK_ONLY)


@dataclass
class FaultRule:
    """One injected fault: which path, what kind, how often (seeded), and its parameters.

    A bad value raises `InvalidInputError` naming the field (`kind`, `probability`, ...).
    """

    path: str = "*"
    kind: str = "error_before"
    count: int | None = None
    probability: float = 1.0
    status: int | None = None
    retry_after: float | None = None
    # Sent verbatim as the `Retry-After` value instead of `retry_after`: what an odd gateway may
    # print (an HTTP date, "inf", "-5"), to test the clients against it.
    retry_after_text: str | None = None
    delay_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise InvalidInputError("kind", self.kind, f"must be one of {', '.join(FAULT_KINDS)}")
        if self.path != "*" and not self.path.startswith("/api/"):
            raise InvalidInputError("path", self.path, "must be '*' or start with '/api/'")
        if self.count is not None and (isinstance(self.count, bool) or self.count < 0):
            raise InvalidInputError("count", self.count, "must be null or an integer >= 0")
        if not (0.0 <= float(self.probability) <= 1.0):
            raise InvalidInputError("probability", self.probability, "must be within [0, 1]")
        if self.status is not None and not (100 <= int(self.status) <= 599):
            raise InvalidInputError("status", self.status, "must be an HTTP status 100..599")
        if self.retry_after is not None and not (
            math.isfinite(self.retry_after) and self.retry_after >= 0
        ):
            raise InvalidInputError("retry_after", self.retry_after, "must be >= 0 or null")
        text = self.retry_after_text
        if text is not None and not (
            isinstance(text, str) and all(" " <= ch <= "~" for ch in text)
        ):
            raise InvalidInputError(
                "retry_after_text", text, "must be printable ASCII text or null"
            )
        if not (math.isfinite(self.delay_ms) and self.delay_ms >= 0):
            raise InvalidInputError("delay_ms", self.delay_ms, "must be >= 0")

    def http_status(self) -> int:
        """The HTTP status an error fault answers (default 503 before processing, 500 after)."""
        if self.status is not None:
            return int(self.status)
        return 500 if self.kind == "error_after" else 503

    @classmethod
    def from_json(cls, obj: Any) -> FaultRule:
        """Build a rule from a JSON object, naming any unknown key or bad value."""
        if not isinstance(obj, dict):
            raise ValueError(f"fault rule must be an object, got {_kind(obj)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ValueError(f"fault rule: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**obj)

    def to_json(self) -> dict[str, Any]:
        """The rule as a JSON object (the shape `POST /_sim/faults` accepts)."""
        return dataclasses.asdict(self)


@dataclass
class SimSettings:
    """Everything a simulator run is configured with; every field has a working default.

    A bad value raises `InvalidInputError` naming the field (`faults.2.kind` for a fault rule's);
    `host` must be a loopback address (see `loopback_host`); `api_key` is never shown.
    """

    host: str = "127.0.0.1"
    port: int = 0
    username: str = "sim-user"
    api_key: str = field(default="sim-key", repr=False)
    seed: int = 7
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    token_ttl_s: float = 86400.0
    string_ids: bool = False
    bar_timestamp: str = "open"
    rate_limit: bool = True
    rate_limit_retry_after: bool = True
    faults: list[FaultRule] = field(default_factory=list)
    # A keep-alive connection idle this long is closed by the server, as load balancers do
    # (0: never). A client must tell that "never sent" from a request that was processed.
    idle_close_ms: float = 0.0
    # The book (orders, positions, trades, sessions) is loaded from this file at start and
    # written to it when the simulator stops cleanly, so a restart keeps the broker's state.
    state_file: str | None = None

    def __post_init__(self) -> None:
        self.host = loopback_host(self.host)
        if self.bar_timestamp not in ("open", "close"):
            raise InvalidInputError("bar_timestamp", self.bar_timestamp, "must be open or close")
        if not (0 <= self.port <= 65535):
            raise InvalidInputError("port", self.port, "must be within 0..65535")
        for name in ("latency_ms", "latency_jitter_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInputError(name, value, "must be a finite number >= 0")
        if not (math.isfinite(self.idle_close_ms) and self.idle_close_ms >= 0):
            raise InvalidInputError(
                "idle_close_ms", self.idle_close_ms, "must be a finite number >= 0 (0: never)"
            )
        if self.state_file is not None and not str(self.state_file).strip():
            raise InvalidInputError(
                "state_file", self.state_file, "give a file path, or null for no state file"
            )
        if not (math.isfinite(self.token_ttl_s) and self.token_ttl_s > 0):
            raise InvalidInputError("token_ttl_s", self.token_ttl_s, "must be a finite number > 0")
        if not self.username:
            raise InvalidInputError("username", self.username, "must be non-empty")
        if not self.api_key:
            raise InvalidInputError("api_key", None, "must be non-empty")
        rules = []
        for i, rule in enumerate(self.faults):
            try:
                rules.append(rule if isinstance(rule, FaultRule) else FaultRule.from_json(rule))
            except InvalidInputError as exc:
                raise InvalidInputError(f"faults.{i}.{exc.field}", exc.value, exc.reason) from None
        self.faults = rules

    def to_json(self) -> dict[str, Any]:
        """All fields as plain JSON values (used to hand settings to a child process)."""
        return dataclasses.asdict(self)


PROFILE_DIR_ENV = "HARNESS_SIM_PROFILES"
PACKAGED_PROFILES = Path(__file__).resolve().parent / "profiles"
PROFILE_SUFFIXES = (".yaml", ".yml", ".json")


def profile_dirs() -> list[Path]:
    """The folders searched for a profile name, first match wins.

    The folders of `$HARNESS_SIM_PROFILES` (several joined by `os.pathsep`, like `PATH`) come
    first, then the packaged profiles: a folder of your own adds profiles (and may shadow a
    packaged one by name), it never hides the packaged ones. A folder named there that does not
    exist is a `ValueError`, so a typo is not silently ignored.
    """
    folders = []
    for entry in os.environ.get(PROFILE_DIR_ENV, "").split(os.pathsep):
        if not entry:
            continue
        folder = Path(entry)
        if not folder.is_dir():
            raise ValueError(f"${PROFILE_DIR_ENV}: {entry!r} is not a folder")
        folders.append(folder)
    return [*folders, PACKAGED_PROFILES]


def profile_names() -> list[str]:
    """Every profile name the search folders offer (sorted, each once)."""
    return sorted({p.stem for folder in profile_dirs() for p in folder.iterdir() if _is_profile(p)})


def _is_profile(path: Path) -> bool:
    return path.suffix in PROFILE_SUFFIXES and path.is_file()


def profile_path(name_or_path: str) -> Path:
    """Resolve `--profile`: a file path, or a name looked up in `profile_dirs()`.

    A value with a folder separator or a `.yaml`/`.yml`/`.json` suffix is a path; anything else
    is a name (`demo` finds `demo.yaml`, `demo.yml` or `demo.json`). `ValueError` when the file
    does not exist or is a folder, or when no search folder holds the name (the message lists
    the known names and the folders searched).
    """
    candidate = Path(name_or_path)
    if "/" in name_or_path or os.sep in name_or_path or candidate.suffix in PROFILE_SUFFIXES:
        if candidate.is_dir():
            raise ValueError(f"profile {name_or_path!r} is a folder, not a YAML or JSON file")
        if not candidate.exists():
            raise ValueError(f"profile file {name_or_path!r} does not exist")
        return candidate
    folders = profile_dirs()
    for folder in folders:
        for suffix in PROFILE_SUFFIXES:
            path = folder / f"{name_or_path}{suffix}"
            if path.is_file():
                return path
    searched = ", ".join(str(folder) for folder in folders)
    known = ", ".join(profile_names()) or "none"
    raise ValueError(f"no such profile {name_or_path!r} (known: {known}; searched {searched})")


def load_profile(name_or_path: str, base: SimSettings | None = None) -> SimSettings:
    """Merge a profile (a name such as `demo`, or a YAML/JSON file) onto `base`.

    `ValueError` names the file for anything wrong in it: unreadable, not YAML/JSON (with the
    line and column of the syntax error), not a mapping, or a bad key or value (with its line
    and full key; never the value of a secret such as `api_key`).
    """
    path = profile_path(name_or_path)
    text = read_text(path)
    return merge_settings(parse_profile(text, str(path)), base, source=str(path), text=text)


def read_text(path: Path) -> str:
    """A profile file's text: `ValueError` naming the file if unreadable or not UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


def read_profile(path: Path) -> Any:
    """What a YAML or JSON profile file holds (see `parse_profile`)."""
    return parse_profile(read_text(path), str(path))


def parse_profile(text: str, source: str) -> Any:
    """The data of a profile's text: JSON when `source` ends in `.json` (or is stdin, `-`),
    YAML otherwise (OmegaConf's loader: duplicate keys refused, `1e3` read as a number); `{}`
    for an empty text. `ValueError` `source:line:column: not valid YAML/JSON: problem`, whose
    problem is the parser's own words, never the text itself."""
    import yaml
    from omegaconf import ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not text.strip():
        return {}
    if source.endswith(".json") or source == "--profile -":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
            ) from None
    try:
        loaded = OmegaConf.load(io.StringIO(text))
    except yaml.YAMLError as exc:
        raise ValueError(_yaml_error(source, exc)) from None
    except OmegaConfBaseException as exc:
        raise ValueError(f"{source}: {str(exc).splitlines()[0]}") from None
    return [] if isinstance(loaded, ListConfig) else OmegaConf.to_container(loaded)


def _yaml_error(source: str, exc: Exception) -> str:
    """`file:line:column: not valid YAML: problem` from a PyYAML error (1-based line)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "syntax error"
    # Where the parser was when it noticed may be past the line at fault (`api_key s3cr3t` is
    # noticed on the next line): the context says where the construct began.
    context, started = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and started is not None and mark is not None and started.line != mark.line:
        problem = f"{problem} ({context} at line {started.line + 1})"
    return f"{where}: not valid YAML: {problem}"


def _kind(data: object) -> str:
    """What kind of value `data` is, in words, without showing it (it may be a secret)."""
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "true/false"
    if isinstance(data, int | float):
        return "a number"
    if isinstance(data, str):
        return "a string"
    if isinstance(data, list | tuple):
        return "a list"
    if isinstance(data, Mapping):
        return "a mapping"
    return type(data).__name__


# ----- merging, with errors that name the key and line and never show a secret -----------------

_ABSENT: Final = object()
_SETTING_NAME = re.compile(r"[a-z_]{1,40}")
_SHOWN_CHARS: Final = 60


class _Refused(ValueError):
    """A refused setting: its full key as a path (`["faults", 2, "kind"]`) and the words."""

    def __init__(self, path: list[str | int], reason: str, value: Any = _ABSENT) -> None:
        self.path = path
        self.reason = reason
        self.value = value
        super().__init__(reason)


def merge_settings(
    data: Any, base: SimSettings | None = None, source: str = "settings", text: str | None = None
) -> SimSettings:
    """Merge a mapping onto `base` (default: the defaults), checked against the dataclass types.

    `source` names where `data` came from (a file, `--profile -`, `command line`); with the
    source's `text`, errors also give the line of the offending key. `ValueError` as
    `SOURCE:LINE: KEY=VALUE: what it must be`: the key in full (`faults.2.kind`; for the command
    line, the flag), the value unless the key is secret (`SECRET_SETTINGS`), and an unknown key
    only when it looks like a setting's name (else it may be a line whose value ran into it).
    """
    try:
        return _merge(data, base)
    except _Refused as exc:
        raise ValueError(_say(exc, source, text)) from None
    except InvalidInputError as exc:  # a range check of SimSettings or FaultRule
        path: list[str | int] = [int(p) if p.isdigit() else p for p in exc.field.split(".")]
        raise ValueError(_say(_Refused(path, exc.reason, exc.value), source, text)) from None


def _merge(data: Any, base: SimSettings | None) -> SimSettings:
    if not isinstance(data, Mapping):
        raise _Refused(
            [], f"a profile must be a mapping of settings (key: value), not {_kind(data)}"
        )
    _known_keys(data, SimSettings, [])
    plain = {k: v for k, v in data.items() if k != "faults"}
    values = _converted(SimSettings if base is None else base, plain, [])
    if "faults" in data:
        faults = data["faults"]
        if faults is None:
            faults = []
        if not isinstance(faults, list | tuple):
            raise _Refused(["faults"], f"must be a list of fault rules, not {_kind(faults)}")
        rules = []
        for i, item in enumerate(faults):
            where: list[str | int] = ["faults", i]
            if not isinstance(item, Mapping):
                raise _Refused(where, f"must be a mapping (path, kind, ...), not {_kind(item)}")
            _known_keys(item, FaultRule, where)
            rules.append(_converted(FaultRule, item, where))
        values["faults"] = rules
    return SimSettings(**values)


def _known_keys(data: Mapping[Any, Any], kind: type, where: list[str | int]) -> None:
    known = [f.name for f in dataclasses.fields(kind)]
    for key in data:
        if key in known:
            continue
        name = str(key)
        hint = ""
        shown = "key"
        if isinstance(key, str) and _SETTING_NAME.fullmatch(key):
            shown = f"key {key!r}"
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
        else:
            # `api_key s3cr3t` or `api_key=s3cr3t`: a key and its value on one line without the
            # colon and space that YAML needs; the value is not shown, the known key is.
            first = re.split(r"[\s=:]", name, maxsplit=1)[0]
            if first in known:
                hint = f" (write `{first}: value`, with a colon and a space)"
        listing = ", ".join(sorted(known))
        raise _Refused([*where, key], f"unknown {shown}{hint}; known: {listing}")


def _converted(schema: Any, data: Mapping[Any, Any], where: list[str | int]) -> dict[str, Any]:
    """`data` merged onto the structured `schema` (a dataclass, or an instance as the base):
    the values converted to the field types (OmegaConf's rules: "5" for an int is 5)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), data)
        values = OmegaConf.to_container(merged)
    except OmegaConfBaseException as exc:
        key = exc.key if isinstance(exc.key, str) else str(exc.full_key)
        kind = schema if isinstance(schema, type) else type(schema)
        expected = _expected(kind, key)
        raise _Refused([*where, key], f"must be {expected}", data.get(key, _ABSENT)) from None
    assert isinstance(values, dict)
    return {str(k): v for k, v in values.items()}


def _expected(kind: type, name: str) -> str:
    """What field `name` of dataclass `kind` takes, in words (`an integer`, `a number or null`)."""
    import typing

    hint = typing.get_type_hints(kind).get(name)
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    text = words.get(args[0], "a list of fault rules" if name == "faults" else "a value")
    return f"{text} or null" if type(None) in typing.get_args(hint) else text


def _say(exc: _Refused, source: str, text: str | None) -> str:
    """`SOURCE[:LINE]: KEY[=VALUE]: reason` (see `merge_settings`)."""
    line = _line_of(text, exc.path) if text is not None else None
    where = source if line is None else f"{source}:{line}"
    if not exc.path:
        return f"{where}: {exc.reason}"
    key = ".".join(str(p) for p in exc.path)
    if source == "command line":
        key = "--" + key.replace("_", "-")
    secret = exc.path[0] in SECRET_SETTINGS
    if secret or exc.value is _ABSENT or exc.reason.startswith("unknown"):
        shown = "" if exc.reason.startswith("unknown") else key
    else:
        value = repr(exc.value)
        if len(value) > _SHOWN_CHARS:
            value = value[: _SHOWN_CHARS - 3] + "..."
        shown = f"{key}={value}"
    return f"{where}: {shown}: {exc.reason}" if shown else f"{where}: {exc.reason}"


def _line_of(text: str, path: Sequence[str | int]) -> int | None:
    """The 1-based line of the key at `path` in a YAML or JSON text (None if not found): the
    line of the deepest key of `path` the text has."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key_node, value_node in node.value:
                if str(key_node.value) == str(step):
                    found = (key_node, value_node)
                    break
            if found is None:
                return line
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(node.value):
                return line
            node = node.value[step]
            line = node.start_mark.line + 1
        elif line is None and node is not None:  # one scalar (`api_key s3cr3t`): its line
            return int(node.start_mark.line) + 1
        else:
            return line
    return line
