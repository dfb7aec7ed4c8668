"""What a simulator run is told: its settings, its fault rules, and the named profiles.

The profiles are YAML files in `harness/sim/profiles/` (package data, so an installed package has
them too); `conf/sim` in the checkout is a link to that folder.

Settings are plain dataclasses usable without any configuration framework; `load_profile` is the
one place that reads YAML (through OmegaConf, so a bad key or value is named in the error).
"""

from __future__ import annotations

import dataclasses
import math
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

    def __post_init__(self) -> None:
        if self.bar_timestamp not in ("open", "close"):
            raise ValueError(f"bar_timestamp={self.bar_timestamp!r}: must be 'open' or 'close'")
        if not (0 <= self.port <= 65535):
            raise ValueError(f"port={self.port!r}: must be within 0..65535")
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise ValueError(f"latency_ms={self.latency_ms!r}: must be >= 0")
        if not (math.isfinite(self.latency_jitter_ms) and self.latency_jitter_ms >= 0):
            raise ValueError(f"latency_jitter_ms={self.latency_jitter_ms!r}: must be >= 0")
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


def profile_dir() -> Path:
    """The folder of named profiles: `$HARNESS_SIM_PROFILES`, else the packaged profiles."""
    import os

    env = os.environ.get(PROFILE_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent / "profiles"


def profile_path(name_or_path: str) -> Path:
    """Resolve `--profile`: a name in the profile folder (`demo`) or a path to a YAML/JSON file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml", ".json") and candidate.is_file():
        return candidate
    folder = profile_dir()
    path = folder / f"{name_or_path}.yaml"
    if path.is_file():
        return path
    names = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    where = f"{folder}" if folder.is_dir() else f"{folder} (missing; set ${PROFILE_DIR_ENV})"
    raise ValueError(
        f"profile={name_or_path!r}: no such profile in {where}; known: {names or 'none'}"
    )


def load_profile(name_or_path: str, base: SimSettings | None = None) -> SimSettings:
    """Merge a profile (a packaged name such as `demo`, or a YAML/JSON file) onto `base`."""
    from omegaconf import OmegaConf

    path = profile_path(name_or_path)
    return merge_settings(OmegaConf.load(path), base, source=str(path))


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
