"""What a simulator run is told: its settings, its fault rules, and the named profiles.

The packaged profiles are YAML files in `harness/sim/profiles/` (package data, so an installed
package has them too); `conf/sim` in the checkout is a link to that folder, and the folders of
`$HARNESS_SIM_PROFILES` are searched before it.

Settings are plain dataclasses usable without any configuration framework; `load_profile` is the
one place that reads profile files (YAML through OmegaConf's loader, JSON through `json`), so a
syntax error is named with its file, line and column, and a bad key or value by name.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class FaultRule:
    """One injected fault: which path, what kind, how often (seeded), and its parameters."""

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
            raise ValueError(f"fault kind={self.kind!r}: must be one of {', '.join(FAULT_KINDS)}")
        if self.path != "*" and not self.path.startswith("/api/"):
            raise ValueError(f"fault path={self.path!r}: must be '*' or start with '/api/'")
        if self.count is not None and (isinstance(self.count, bool) or self.count < 0):
            raise ValueError(f"fault count={self.count!r}: must be null or an integer >= 0")
        if not (0.0 <= float(self.probability) <= 1.0):
            raise ValueError(f"fault probability={self.probability!r}: must be within [0, 1]")
        if self.status is not None and not (100 <= int(self.status) <= 599):
            raise ValueError(f"fault status={self.status!r}: must be an HTTP status 100..599")
        if self.retry_after is not None and not (
            math.isfinite(self.retry_after) and self.retry_after >= 0
        ):
            raise ValueError(f"fault retry_after={self.retry_after!r}: must be >= 0 or null")
        text = self.retry_after_text
        if text is not None and not (
            isinstance(text, str) and all(" " <= ch <= "~" for ch in text)
        ):
            raise ValueError(f"fault retry_after_text={text!r}: printable ASCII text or null")
        if not (math.isfinite(self.delay_ms) and self.delay_ms >= 0):
            raise ValueError(f"fault delay_ms={self.delay_ms!r}: must be >= 0")

    def http_status(self) -> int:
        """The HTTP status an error fault answers (default 503 before processing, 500 after)."""
        if self.status is not None:
            return int(self.status)
        return 500 if self.kind == "error_after" else 503

    @classmethod
    def from_json(cls, obj: Any) -> FaultRule:
        """Build a rule from a JSON object, naming any unknown key or bad value."""
        if not isinstance(obj, dict):
            raise ValueError(f"fault rule must be an object, got {obj!r}")
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
    """Everything a simulator run is configured with; every field has a working default."""

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
        if self.bar_timestamp not in ("open", "close"):
            raise ValueError(f"bar_timestamp={self.bar_timestamp!r}: must be 'open' or 'close'")
        if not (0 <= self.port <= 65535):
            raise ValueError(f"port={self.port!r}: must be within 0..65535")
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise ValueError(f"latency_ms={self.latency_ms!r}: must be >= 0")
        if not (math.isfinite(self.latency_jitter_ms) and self.latency_jitter_ms >= 0):
            raise ValueError(f"latency_jitter_ms={self.latency_jitter_ms!r}: must be >= 0")
        if not (math.isfinite(self.idle_close_ms) and self.idle_close_ms >= 0):
            raise ValueError(f"idle_close_ms={self.idle_close_ms!r}: must be >= 0 (0: never)")
        if self.state_file is not None and not str(self.state_file).strip():
            raise ValueError("state_file='': give a file path, or null for no state file")
        if not (math.isfinite(self.token_ttl_s) and self.token_ttl_s > 0):
            raise ValueError(f"token_ttl_s={self.token_ttl_s!r}: must be > 0")
        if not self.username or not self.api_key:
            raise ValueError("username and api_key must be non-empty")
        self.faults = [
            rule if isinstance(rule, FaultRule) else FaultRule.from_json(rule)
            for rule in self.faults
        ]

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
    line and column of the syntax error), not a mapping, or a bad key or value.
    """
    path = profile_path(name_or_path)
    return merge_settings(read_profile(path), base, source=str(path))


def read_profile(path: Path) -> dict[str, Any]:
    """The mapping in a YAML or JSON file (JSON by the `.json` suffix; YAML otherwise).

    YAML is read by OmegaConf's loader (duplicate keys refused, `1e3` read as a number).
    """
    import yaml
    from omegaconf import ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            where = f"{path}:{exc.lineno}:{exc.colno}"
            raise ValueError(f"{where}: not valid JSON: {exc.msg}") from None
    else:
        try:
            loaded = OmegaConf.load(io.StringIO(text))
        except yaml.YAMLError as exc:
            raise ValueError(_yaml_error(path, exc)) from None
        except OmegaConfBaseException as exc:
            raise ValueError(f"{path}: {str(exc).splitlines()[0]}") from None
        data = [] if isinstance(loaded, ListConfig) else OmegaConf.to_container(loaded)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a profile must be a mapping of settings, not {_kind(data)}")
    return data


def _yaml_error(path: Path, exc: Exception) -> str:
    """`file:line:column: not valid YAML: problem` from a PyYAML error (1-based line)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{where}: not valid YAML: {problem}"


def _kind(data: object) -> str:
    return "a list" if isinstance(data, list) else f"{type(data).__name__} {data!r}"


def merge_settings(
    data: Any, base: SimSettings | None = None, source: str = "settings"
) -> SimSettings:
    """Merge a mapping onto `base` (default: the defaults), checked against the dataclass types.

    OmegaConf names the offending key and value in its error; that message is kept.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        schema = OmegaConf.structured(base if base is not None else SimSettings)
        merged = OmegaConf.merge(schema, data)
        settings = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        first = str(exc).splitlines()[0]
        key = getattr(exc, "full_key", None)
        where = f"{source}: {key}" if key else source
        raise ValueError(f"{where}: {first}") from None
    assert isinstance(settings, SimSettings)
    # Rebuild so every check in __post_init__ (fault rules included) runs on the merged values.
    return SimSettings(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)})
