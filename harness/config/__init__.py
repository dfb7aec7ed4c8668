"""Configuration: Hydra composes `conf/` once, at the edge, into typed `HarnessConfig` objects.

    cfg = compose(["rollout.start_stage=canary", "db=postgres"])   # -> HarnessConfig
    print(to_yaml(cfg))                                             # secrets shown as ***

The config tree ships inside the package (`harness/conf/`, linked from the repository's `conf/`)
so an installed harness composes from any folder; `HARNESS_CONFIG_DIR=DIR` adds a folder of your
own, searched first (your own `rollout/mine.yaml`, chosen with `rollout=mine`). Every problem,
from an unknown group option to a percentage of 140, is a `ConfigError` naming the key and value.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Final

from harness.config.fast import compose_packaged
from harness.config.hours import TradingHours, parse_trading_hours
from harness.config.schema import (
    ALERT_KINDS,
    AlertsConfig,
    BreakerConfig,
    BrokerConfig,
    BrokerKind,
    CaptureConfig,
    Criterion,
    DbConfig,
    GateConfig,
    HarnessConfig,
    MigrationConfig,
    MigrationGateConfig,
    OpCriteria,
    Percentages,
    RecorderConfig,
    RolloutConfig,
    ShadowConfig,
    ShadowMechanism,
    SimBrokerConfig,
    StageConfig,
    TargetsConfig,
    TradingHoursConfig,
    WorkloadConfig,
)
from harness.errors import ConfigError, InvalidInputError
from harness.operations import BUILTIN_MIGRATIONS, NAME_PATTERN, check_name
from harness.output import unsafe_character
from harness.redact import REDACTED, redact_url

__all__ = [
    "CONF_DIR",
    "AlertsConfig",
    "BreakerConfig",
    "BrokerConfig",
    "BrokerKind",
    "CaptureConfig",
    "ConfigError",
    "Criterion",
    "DbConfig",
    "GateConfig",
    "HarnessConfig",
    "MigrationConfig",
    "MigrationGateConfig",
    "OpCriteria",
    "Percentages",
    "RecorderConfig",
    "RolloutConfig",
    "ShadowConfig",
    "ShadowMechanism",
    "SimBrokerConfig",
    "StageConfig",
    "TargetsConfig",
    "TradingHours",
    "TradingHoursConfig",
    "WorkloadConfig",
    "auto_promote_until",
    "compose",
    "redact_target",
    "redact_url",
    "redacted",
    "resolve_credentials",
    "to_yaml",
    "trading_hours",
    "validate",
    "validate_ladder",
]

CONF_DIR: Final = Path(__file__).resolve().parent.parent / "conf"
"""The packaged config tree (`harness/conf/`)."""
_SCHEMA: Final = "harness_schema"
_registered = False


def _register() -> None:
    """Register the schema in Hydra's ConfigStore (once per process)."""
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=_SCHEMA, node=HarnessConfig)
    _registered = True


def compose(
    overrides: Sequence[str] = (),
    *,
    config_dir: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
) -> HarnessConfig:
    """Compose `config.yaml` with `overrides` (Hydra syntax: `key=value`, `group=option`).

    `HARNESS_DB_URL` replaces `db.url` unless an override sets `db.url` itself; broker
    credentials left unset are read from the environment (see `resolve_credentials`). Raises
    `ConfigError` naming the key and value for anything invalid; nothing has run yet then.
    """
    env = os.environ if environ is None else environ
    overrides = [str(o) for o in overrides]
    for override in overrides:
        if not _OVERRIDE.match(override):
            error = ConfigError("override", override, "expected key=value (or group=option)")
            raise _without_secrets(error, overrides)
    extra_dir = config_dir or env.get("HARNESS_CONFIG_DIR") or None
    hydra_overrides = [_literal_text(o) for o in overrides]
    if extra_dir is not None:
        folder = Path(extra_dir).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError("HARNESS_CONFIG_DIR", str(extra_dir), "no such folder")
        hydra_overrides.insert(0, f"hydra.searchpath=[file://{folder}]")
    db_url = env.get("HARNESS_DB_URL")
    if db_url and not any(_override_key(o) == "db.url" for o in overrides):
        hydra_overrides.append(f"db.url={_quote(db_url)}")
    for override in overrides:  # `rollout=null`: Hydra raises a bare ValueError for it
        group, _, value = override.partition("=")
        if group in _GROUPS and value.strip() == "null":
            reason = f"must name an option of the group: {_options(group)}"
            raise ConfigError(group, "null", reason)
    # Hydra costs 0.5 s of CPU to import and compose: the packaged tree with plain overrides is
    # composed without it, to the same result (harness.config.fast); anything else by Hydra.
    fast = None if extra_dir is not None else compose_packaged(CONF_DIR, overrides, db_url)
    if fast is not None:
        cfg, choices = fast
        if not any(_override_key(o) == "gate.name" for o in overrides):
            cfg.gate.name = _gate_name(choices.get("gate"), overrides)
        resolve_credentials(cfg, env)
        validate(cfg)
        return cfg
    import yaml
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    _register()
    # With one operation's percent among them, every percent override is applied after
    # composing, in the order given (Hydra cannot give a key to a stage's single number).
    percents = [(o, _PERCENT.match(o)) for o in hydra_overrides]
    per_op = [o for o, m in percents if m] if any(m and m.group(2) for _, m in percents) else []
    entries = [o for o in hydra_overrides if o not in per_op and _entry_override(o) is not None]
    hydra_overrides = [o for o in hydra_overrides if o not in entries and o not in per_op]
    try:
        with initialize_config_dir(
            config_dir=str(CONF_DIR), version_base="1.3", job_name="harness"
        ):
            # With Hydra's own node, for the group options chosen (the gate's name below).
            composed = hydra_compose("config", overrides=hydra_overrides, return_hydra_config=True)
        _apply_entry_overrides(composed, entries)
        _apply_percent_of_op(composed, per_op)
        choices = composed.hydra.runtime.choices
        sections = [f.name for f in fields(HarnessConfig)]
        for key in composed:
            if key not in sections and key != "hydra":
                raise ConfigError(str(key), _value_of(str(key), overrides), "unknown key")
        built: dict[str, Any] = {name: OmegaConf.to_object(composed[name]) for name in sections}
        for name in sections:  # `+key=...` can add a key the schema does not have: refuse it
            unknown = _unknown_key(composed[name], built[name], name)
            if unknown is not None:
                full, parent = unknown
                reason = f"unknown key (not in {parent})"
                raise ConfigError(full, _value_of(full, overrides), reason)
        cfg = HarnessConfig(**built)
        if not any(_override_key(o) == "gate.name" for o in overrides):
            cfg.gate.name = _gate_name(choices.get("gate"), overrides)
    except ConfigError:
        raise
    except (HydraException, OmegaConfBaseException) as exc:
        raise _without_secrets(_config_error(exc, overrides), overrides) from None
    except (ValueError, TypeError) as exc:  # OmegaConf.update on a path it cannot walk
        raise _without_secrets(_unwalkable(exc, overrides), overrides) from None
    except yaml.YAMLError as exc:  # a file of HARNESS_CONFIG_DIR that is not YAML
        raise _yaml_error(exc, overrides) from None
    resolve_credentials(cfg, env)
    validate(cfg)
    return cfg


_ENTRY_MAPPINGS: Final[dict[str, type]] = {
    "gate.ops": OpCriteria,
    "rollout.migrations": MigrationConfig,
}
"""The mappings of the schema whose entries are sections, by any name (an operation's, a
migration's): an override may add an entry to them (`harness.config._apply_entry_overrides`)."""


def _entry_override(override: str) -> tuple[str, str, str, Any] | None:
    """For an override of an entry of a mapping in `_ENTRY_MAPPINGS` or a key inside one
    (`+gate.ops.ema.min_samples=20`, `gate.ops.ema={min_samples: 20}`): the mapping's key,
    the entry's name, the key inside the entry ('' for the whole entry), and the value as
    Hydra's grammar reads it; None for any other override (a deletion `~` too)."""
    found = _ASSIGNMENT.match(override)
    if found is None:
        return None
    key = found.group(2)
    for mapping in _ENTRY_MAPPINGS:
        if key.startswith(f"{mapping}."):
            name, _, inner = key[len(mapping) + 1 :].partition(".")
            from hydra.core.override_parser.overrides_parser import OverridesParser

            parsed = OverridesParser.create().parse_override(override)
            return mapping, name, inner, parsed.value()
    return None


def _apply_entry_overrides(composed: Any, entries: Sequence[str]) -> None:
    """Apply, in order, overrides of entries of the schema's mappings of sections, creating
    an entry the files do not hold with its section's defaults first.

    Hydra cannot: `+gate.ops.ema.min_samples=20` makes `gate.ops.ema` a plain mapping, which
    OmegaConf refuses in a `dict[str, OpCriteria]` (and `gate.ops.ema={...}` without `+` is
    "could not override"), though an operation a bot registers at run time has no entry in
    the packaged files. A leading `+` or `++` changes nothing here: the entry and every key of
    its section exist once created. Errors are OmegaConf's, turned into `ConfigError` naming
    the full key by the caller."""
    from omegaconf import OmegaConf, open_dict

    for override in entries:
        parsed = _entry_override(override)
        assert parsed is not None
        mapping, name, inner, value = parsed
        check_name(mapping, name)
        node = OmegaConf.select(composed, mapping)
        if name not in node:
            with open_dict(node):  # Hydra composes in struct mode: new keys are refused
                node[name] = _ENTRY_MAPPINGS[mapping]()
        OmegaConf.update(node, f"{name}.{inner}" if inner else name, value, merge=True)


_PERCENT: Final = re.compile(
    r"^[+]{0,2}(rollout\.(?:migrations\.\w+\.)?stages\.\d+\.percent)(?:\.(\w+))?=(.*)$",
    re.DOTALL,
)
"""An override of a stage's `percent`: whole (`rollout.stages.2.percent=7`) or one operation's
(`rollout.stages.2.percent.place_order=10`; `_apply_percent_of_op`)."""


def _apply_percent_of_op(composed: Any, overrides: Sequence[str]) -> None:
    """Apply, in order, overrides of a stage's `percent` (`_PERCENT`), whole or of one
    operation. Onto a stage whose `percent` is one number for every operation (the shipped
    ladder), Hydra cannot give one operation its own (a number has no key `place_order`): the
    number stays every other operation's (`'*'`) and the operation gets its own,
    `{'*': 5, place_order: 10}` (`percentages`). `ConfigError` naming the key for an
    operation's name that is not one, or a stage the ladder does not have."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import DictConfig, OmegaConf

    for override in overrides:
        value = OverridesParser.create().parse_override(override).value()
        found = _PERCENT.match(override)
        assert found is not None
        where, op = found.group(1), found.group(2)
        if op is None:  # the whole percent
            OmegaConf.update(composed, where, value, merge=False)
            continue
        if not NAME_PATTERN.match(op):
            reason = "not an operation's name (lower-case letters, digits and _, at most 32)"
            raise ConfigError(f"{where}.{op}", value, reason)
        ladder, _, index = where.removesuffix(".percent").rpartition(".")
        stages = OmegaConf.select(composed, ladder)
        if stages is None or int(index) >= len(stages):
            have = f"stages 0..{len(stages) - 1}" if stages else "no ladder of its own"
            if not stages and ladder != "rollout.stages":
                have += " (the migration climbs rollout.stages)"
            raise ConfigError(f"{where}.{op}", value, f"no stage {index}: {ladder} has {have}")
        node = OmegaConf.select(composed, where)
        mapping = dict(node) if isinstance(node, DictConfig) else {"*": node}
        mapping[op] = value
        OmegaConf.update(composed, where, mapping, merge=False)


_GROUPS: Final = ("rollout", "broker", "db", "gate", "workload")
"""The config groups: a folder of options each, under `harness/conf/`."""


def _options(group: str) -> str:
    """The packaged options of a config group, comma-separated (`default, postgres`)."""
    return ", ".join(sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")))


def _unwalkable(exc: Exception, overrides: Sequence[str]) -> ConfigError:
    """The override whose key the schema has no place for, for an error Hydra lets through
    bare (`rollout.stages.name=x`: a list needs an index, `rollout.stages.0.name=x`)."""
    for override in overrides:
        found = _ASSIGNMENT.match(override)
        if found is None or found.group(2).startswith("hydra."):
            continue
        key = found.group(2)
        if "." in key and _schema_type(key) is None:
            reason = "not a key of the schema (an item of a list is named by its index: "
            reason += "rollout.stages.0.name)"
            return ConfigError(key, found.group(3), reason)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConfigError("override", overrides[0] if overrides else None, first)


def _gate_name(choice: Any, overrides: Sequence[str]) -> str:
    """The gate settings' name: the option chosen (`quick`), then the `gate.*` overrides as
    given (`default gate.min_soak_s=60`), so that every verdict says what judged it."""
    tweaks = [o for o in overrides if _override_key(o).startswith("gate.")]
    return " ".join([str(choice or "custom"), *tweaks])


def _unknown_key(node: Any, built: Any, path: str) -> tuple[str, str] | None:
    """The first key of the composed `node` that its typed counterpart `built` has no place for
    (a dataclass without that field), with the dataclass's name; None when every key fits.
    OmegaConf drops such keys silently when it builds the dataclass, so a misspelt appended
    override (`+workload.trdes=3`) would otherwise be ignored."""
    from omegaconf import DictConfig, ListConfig

    if isinstance(node, DictConfig):
        names = {f.name for f in fields(built)} if is_dataclass(built) else None
        for raw in node:
            key = str(raw)
            if names is not None and key not in names:
                return f"{path}.{key}", type(built).__name__
            child = getattr(built, key, None) if names is not None else None
            if child is None and isinstance(built, dict):
                child = built.get(raw)
            found = _unknown_key(node[raw], child, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(node, ListConfig) and isinstance(built, list):
        for i, (item, typed) in enumerate(zip(node, built, strict=False)):
            found = _unknown_key(item, typed, f"{path}.{i}")
            if found is not None:
                return found
    return None


def _override_key(override: str) -> str:
    key = override.split("=", 1)[0].strip()
    return key.lstrip("+~")


def _quote(value: str) -> str:
    """A value as a Hydra override string, quoted so that every character stays literal (`:`,
    `@`, `/`, `?`, `&`, spaces, non-ASCII). Hydra's rule for quoted values: a quote is escaped
    with a backslash, and backslashes are doubled only where they precede a quote or end the
    value; any other backslash is kept as it is."""
    escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
    return f"'{escaped}'"


_ASSIGNMENT = re.compile(r"^([+]{0,2})([\w.@/-]+)=(.*)$", re.DOTALL)


def _literal_text(override: str) -> str:
    """`key=value` with the value quoted for Hydra when `key` is a text setting of the schema
    (`db.url`, `broker.base_url`, `rollout.salt`, ...): Hydra's unquoted grammar refuses `?`,
    spaces, non-ASCII and more, which a URL or a path may well hold
    (`db.url=postgresql+psycopg://u@h/db?sslmode=require`). A value already quoted, `null`,
    and the overrides of other keys are passed unchanged. An interpolation (`${oc.env:VAR}`)
    still resolves inside quotes."""
    found = _ASSIGNMENT.match(override)
    if found is None:
        return override
    prefix, key, value = found.groups()
    kind = _schema_type(key)
    text = value.strip()
    if kind is None or _base_type(kind) is not str or text[:1] in ("'", '"'):
        return override
    if text == "null":  # null itself, for Hydra to take (or refuse where not optional)
        return override
    return f"{prefix}{key}={_quote(text)}"


_OVERRIDE = re.compile(r"^(~[\w.@/-]+(=.*)?|[+]{0,2}[\w.@/-]+=.*)$", re.DOTALL)
_FULL_KEY = re.compile(r"full_key:\s*(\S+)")
_MISSING_OPTION = re.compile(r"Could not find '([^']+)/([^']+)'")
_NOT_IN = re.compile(r"Key '([^']+)' not in '([^']+)'")
_CONVERT = re.compile(r"Value '(.*?)' (?:of type '[^']+' )?could not be converted to (\w+)")
_ENUM = re.compile(r"Invalid value '(.*?)', expected one of \[([^\]]*)\]")
_NOT_VALID = re.compile(r"Value '(.*?)' is not a valid \w+")
_APPEND = re.compile(r"Could not append to config\. An item is already at '([^']+)'")
_INDEX = re.compile(r"\[(\d+)\]")


def _config_error(exc: Exception, overrides: Sequence[str]) -> ConfigError:
    """A Hydra or OmegaConf failure as a ConfigError naming the key and value."""
    text = str(exc)
    cause = exc.__cause__ or exc.__context__
    chain = f"{text}\n{cause}" if cause is not None else text
    if (found := _MISSING_OPTION.search(chain)) is not None:
        group, option = found.groups()
        # The options are the indented lines under the heading (up to "Config search path:").
        available = re.search(r"Available options in '[^']+':\n((?:[ \t]+\S+\n?)*)", chain)
        names = ", ".join(available.group(1).split()) if available else ""
        reason = "unknown option" + (f"; available: {names}" if names else "")
        return ConfigError(group, option, reason)
    key_match = _FULL_KEY.search(chain)
    key = _INDEX.sub(r".\1", key_match.group(1)) if key_match else None
    if (found := _NOT_IN.search(chain)) is not None:
        name, parent = found.groups()
        full = key or name
        return ConfigError(full, _value_of(full, overrides), f"unknown key (not in {parent})")
    if key is not None and ("is not Optional" in chain or "Incompatible value 'None'" in chain):
        return ConfigError(key, "null", f"must be {_expected(key)}, not null")
    if (found := _ENUM.search(chain)) is not None:
        value, choices = found.groups()
        options = ", ".join(c.strip() for c in choices.split(","))
        return ConfigError(key or "config", value, f"must be one of {options}")
    if key is not None and (found := _NOT_VALID.search(chain)) is not None:
        return ConfigError(key, found.group(1), f"must be {_expected(key)}")
    if (found := _APPEND.search(chain)) is not None:
        full = found.group(1)
        return ConfigError(full, _value_of(full, overrides), "is already set: drop the leading +")
    if (found := _CONVERT.search(chain)) is not None:
        value, kind = found.groups()
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        expected = _expected(key) if key is not None else f"{article} {kind.lower()}"
        return ConfigError(key or "config", value, f"must be {expected}")
    if key is not None and (
        "is not a ListConfig, list or tuple" in chain
        or "Cannot convert" in chain
        or "Cannot merge" in chain
        or "Invalid type assigned" in chain
        or "Cannot assign" in chain
    ):
        return ConfigError(key, _value_of(key, overrides), f"must be {_expected(key)}")
    if "Missing mandatory value" in chain:
        return ConfigError(key or "config", None, "missing mandatory value")
    if "override" in chain.lower() and "parse" in type(exc).__name__.lower():
        bad = next((o for o in overrides if o in chain), overrides[0] if overrides else "")
        return ConfigError("override", bad, _UNPARSED)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return ConfigError(key or "config", _value_of(key, overrides), first)


_UNPARSED: Final = (
    "Hydra's override grammar cannot read this value: quote it, key='value' (in a list, "
    "[a,'b c']), when it holds characters such as ? & = spaces, quotes or non-ASCII letters"
)


# ----- what each key of the schema takes --------------------------------------------------------


def _schema_type(key: str) -> Any:
    """The declared type of the setting at dotted `key` (`rollout.stages.0.name` -> str), or
    None for a key the schema does not have."""
    import typing

    kind: Any = HarnessConfig
    for part in key.split("."):
        kind = _base_type(kind)
        if typing.get_origin(kind) is list:
            if not part.isdigit():
                return None
            kind = typing.get_args(kind)[0]
        elif typing.get_origin(kind) is dict:
            kind = typing.get_args(kind)[1]
        elif is_dataclass(kind):
            hints = typing.get_type_hints(kind)
            if part not in hints:
                return None
            kind = hints[part]
        else:
            return None
    return kind


def _optional(kind: Any) -> bool:
    import typing

    return type(None) in typing.get_args(kind)


def _base_type(kind: Any) -> Any:
    """`X` of `X | None`; any other type as it is."""
    import typing

    if _optional(kind):
        return next(a for a in typing.get_args(kind) if a is not type(None))
    return kind


def _expected(key: str) -> str:
    """What the setting at `key` takes, in words: `an integer`, `a number or null`, `one of
    sim, projectx`, `a list, e.g. [a,b]`, `a section (profile, seed, port)`."""
    import typing

    kind = _schema_type(key)
    if kind is None:
        return "a value of the right type"
    base = _base_type(kind)
    words: dict[Any, str] = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
    }
    if base in words:
        text = words[base]
    elif isinstance(base, type) and issubclass(base, Enum):
        text = "one of " + ", ".join(str(m.value) for m in base)
    elif typing.get_origin(base) is list:
        text = "a list, e.g. [a,b]"
    elif is_dataclass(base):
        text = "a section (" + ", ".join(f.name for f in fields(base)) + ")"
    else:
        text = "a value of the right type"
    return f"{text} or null" if _optional(kind) else text


_SECRET_KEYS: Final = frozenset({"broker.api_key"})
_URL_PASSWORD = re.compile(r"://[^/?#@:]*:(.+)@")
_URL_QUERY_SECRET = re.compile(r"[?&][^=&#]*pass[^=&#]*=([^&#'\"]+)", re.IGNORECASE)


def _secrets_in(overrides: Sequence[str]) -> list[str]:
    """The secret values an override may carry: `broker.api_key=...`, and the password of a
    `db.url=...` (found in the text itself, so an override too broken to parse is covered)."""
    found = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            continue
        key = key.strip().lstrip("+~")
        if key in _SECRET_KEYS and value.strip():
            found.append(value.strip())
            found.append(value.strip().strip("'\"[]${}"))  # as Hydra's message may quote it
        if key.startswith("alerts.urls"):  # a target's path or host may be its token
            found += [v.strip(" '\"") for v in value.strip("[] ").split(",") if v.strip()]
        if key == "db.url":
            found += [m.group(1) for m in _URL_PASSWORD.finditer(value)]
            found += [m.group(1) for m in _URL_QUERY_SECRET.finditer(value)]
    return sorted({f for f in found if f}, key=len, reverse=True)


def _without_secrets(error: ConfigError, overrides: Sequence[str]) -> ConfigError:
    """`error` with every secret of the overrides replaced by `***` in its field, value and
    reason: an error about a broken `broker.api_key=...` or `db.url=...` override must not
    print the key or the password it carries."""
    secrets = _secrets_in(overrides)
    if not secrets:
        return error

    def scrub(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return text

    value = REDACTED if error.field in _SECRET_KEYS and error.value else scrub(error.value)
    return ConfigError(scrub(error.field), value, scrub(error.reason))


def _yaml_error(exc: Exception, overrides: Sequence[str]) -> ConfigError:
    """A config file that is not YAML, named with its line and column (1-based)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    if mark is None:
        return ConfigError("config file", None, f"not valid YAML: {problem}")
    where = f"{mark.name}:{mark.line + 1}:{mark.column + 1}"
    # The group option that chose the file (`rollout=mine` for .../rollout/mine.yaml).
    path = Path(str(mark.name))
    key = path.parent.name
    value = _value_of(key, overrides) or path.stem
    return ConfigError(key, value, f"{where}: not valid YAML: {problem}")


def _value_of(key: str | None, overrides: Sequence[str]) -> Any:
    if key is None:
        return None
    for override in overrides:
        if _override_key(override) == key and "=" in override:
            return override.split("=", 1)[1]
    return None


# ----- what the environment supplies ------------------------------------------------------------


def resolve_credentials(cfg: HarnessConfig, environ: dict[str, str] | Any = None) -> None:
    """Fill unset broker credentials from the environment, in place.

    `broker.username` <- `PROJECTX_USERNAME`, else `TOPSTEPX_USERNAME`; `broker.api_key` <-
    `PROJECTX_API_KEY`, else `TOPSTEPX_API_KEY`; `broker.base_url` (projectx only) <-
    `PROJECTX_BASE_URL`, else the live gateway (`DEFAULT_BASE_URL`); an empty variable counts as
    unset. The rule is `harness.orders.settings.credentials_from_env`, which
    `ClientSettings.from_env` reads by too. The embedded simulator (`broker=sim`) needs none.
    """
    broker = cfg.broker
    if broker.kind is not BrokerKind.projectx:
        return
    # The one rule, shared with `ClientSettings.from_env`.
    from harness.orders.settings import DEFAULT_BASE_URL, credentials_from_env

    found = credentials_from_env(os.environ if environ is None else environ)
    if not broker.username:
        broker.username = found.username
    if not broker.api_key:
        broker.api_key = found.api_key
    if not broker.base_url:
        broker.base_url = found.base_url or DEFAULT_BASE_URL


# ----- checks a type cannot express -------------------------------------------------------------


def _fraction(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(key, value, "must be within 0..1")


def _positive(key: str, value: float, *, zero_ok: bool = False) -> None:
    """A finite number > 0 (>= 0 with `zero_ok`): NaN and inf are refused (a time-out or an
    interval of inf would wait for ever, or overflow the sleep that takes it)."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        reason = "must be a finite number " + (">= 0" if zero_ok else "> 0")
        raise ConfigError(key, value, reason)


def validate(cfg: HarnessConfig) -> None:
    """Check ranges, the migrations and their ladders; raises `ConfigError` naming the first
    bad key and value. Normalises in place what OmegaConf cannot type: each stage's `percent`
    becomes a `Percentages`, and a built-in operation no migration lists joins its shipped
    migration (`orders`, `bars`)."""
    rollout = cfg.rollout
    if not rollout.stages:
        raise ConfigError("rollout.stages", [], "the ladder needs at least one stage")
    owner: dict[str, str] = {}
    for name, migration in rollout.migrations.items():
        check_name("rollout.migrations", name)
        for i, op in enumerate(migration.operations):
            check_name(f"rollout.migrations.{name}.operations.{i}", op)
            if op in owner:
                reason = f"already in migration {owner[op]!r}: an operation belongs to one"
                raise ConfigError(f"rollout.migrations.{name}.operations.{i}", op, reason)
            owner[op] = name
    for name, ops in BUILTIN_MIGRATIONS.items():
        missing = [str(op) for op in ops if op not in owner]
        if missing:
            migration = rollout.migrations.setdefault(name, MigrationConfig())
            migration.operations = [*migration.operations, *missing]
            owner.update(dict.fromkeys(missing, name))
    default_ops = sorted(
        {op for name, m in rollout.migrations.items() if not m.stages for op in m.operations}
    )
    validate_ladder("rollout.stages", rollout.stages, default_ops)
    # A migration with a ladder of its own starts at `rollout.start_stage` if its ladder has it.
    stage_names = rollout.stage_names()
    if rollout.start_stage is not None and rollout.start_stage not in stage_names:
        names = ", ".join(stage_names)
        raise ConfigError("rollout.start_stage", rollout.start_stage, f"not a stage ({names})")
    for name, migration in rollout.migrations.items():
        where = f"rollout.migrations.{name}"
        if migration.stages:
            validate_ladder(f"{where}.stages", migration.stages, migration.operations)
        ladder = rollout.ladder(name)
        if migration.start_stage is not None and migration.start_stage not in {
            s.name for s in ladder
        }:
            names = ", ".join(s.name for s in ladder)
            raise ConfigError(
                f"{where}.start_stage", migration.start_stage, f"not a stage ({names})"
            )
        own_breaker = migration.breaker
        if own_breaker.failures is not None and own_breaker.failures < 1:
            raise ConfigError(f"{where}.breaker.failures", own_breaker.failures, "must be >= 1")
        if own_breaker.window_s is not None:
            _positive(f"{where}.breaker.window_s", own_breaker.window_s)
        _validate_migration_gate(f"{where}.gate", migration.gate)
        _validate_capture(f"{where}.capture", migration.capture)
    trading_hours(cfg.gate, "gate.trading_hours")
    for name, migration in rollout.migrations.items():
        _validate_auto_promote(cfg, name, migration)
    until = cfg.gate.auto_promote_until
    # Judged against each migration's ladder where automatic promotion applies (above); here
    # a typo is caught even while it is off.
    if until is not None and until not in stage_names:
        reason = f"not a stage of any ladder ({', '.join(stage_names)})"
        raise ConfigError("gate.auto_promote_until", until, reason)
    if not rollout.salt:
        raise ConfigError("rollout.salt", rollout.salt, "must be a non-empty string")
    _positive("rollout.refresh_s", rollout.refresh_s)
    _validate_breaker("rollout.breaker", rollout.breaker)
    if rollout.shadow.max_in_flight < 1:
        value = rollout.shadow.max_in_flight
        raise ConfigError("rollout.shadow.max_in_flight", value, "must be >= 1")
    _positive("rollout.shadow.timeout_s", rollout.shadow.timeout_s)

    broker = cfg.broker
    if broker.base_url is not None and not broker.base_url.startswith(("http://", "https://")):
        raise ConfigError("broker.base_url", broker.base_url, "must start with http(s)://")
    _positive("broker.timeout_s", broker.timeout_s)
    _positive("broker.connect_timeout_s", broker.connect_timeout_s)
    for i, delay in enumerate(broker.retry_delays_s):
        _positive(f"broker.retry_delays_s.{i}", delay, zero_ok=True)
    if broker.max_retry_after_s is not None:
        _positive("broker.max_retry_after_s", broker.max_retry_after_s, zero_ok=True)
    if broker.max_connections < 1:
        raise ConfigError("broker.max_connections", broker.max_connections, "must be >= 1")
    if not 0 <= broker.sim.port <= 65535:
        raise ConfigError("broker.sim.port", broker.sim.port, "must be within 0..65535")

    _validate_db(cfg.db)
    _validate_gate(cfg.gate)
    _validate_workload(cfg.workload)
    _validate_alerts(cfg.alerts)


def _validate_alerts(alerts: AlertsConfig) -> None:
    for i, url in enumerate(alerts.urls):
        scheme, sep, rest = str(url).partition("://")
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) or not rest:
            reason = "not a notification URL (http(s)://... or an Apprise scheme://...)"
            raise ConfigError(f"alerts.urls.{i}", redact_target(str(url)), reason)
    for i, kind in enumerate(alerts.events):
        if kind not in ALERT_KINDS:
            raise ConfigError(
                f"alerts.events.{i}", kind, f"not an event ({', '.join(ALERT_KINDS)})"
            )
    _positive("alerts.timeout_s", alerts.timeout_s)
    _positive("alerts.deadline_s", alerts.deadline_s, zero_ok=True)
    _positive("alerts.flush_s", alerts.flush_s, zero_ok=True)
    if alerts.max_pending < 1:
        raise ConfigError("alerts.max_pending", alerts.max_pending, "must be >= 1")


def percentages(where: str, value: Any) -> Percentages:
    """A stage's `percent` (a number, a mapping op -> number, or a `Percentages`) as a
    `Percentages`; `ConfigError` naming `where` (and the op) for anything else."""
    if isinstance(value, Percentages):
        return value
    if isinstance(value, bool):
        raise ConfigError(where, value, "must be a number or a mapping op -> number")
    if isinstance(value, int | float):
        return Percentages(float(value))
    if isinstance(value, dict):
        numbers: dict[str, float] = {}
        for op, number in value.items():
            if str(op) != "*":  # '*': every operation the mapping does not name
                check_name(where, str(op))
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ConfigError(f"{where}.{op}", number, "must be a number")
            numbers[str(op)] = float(number)
        return Percentages(numbers.pop("*", None), numbers)
    raise ConfigError(where, value, "must be a number or a mapping op -> number")


def validate_ladder(where: str, stages: list[StageConfig], ops: Sequence[str]) -> None:
    """Check one ladder in place (`percent` normalised): unique names, percentages within
    0..100 that never go down for any of `ops`, targets that never narrow once Rust gets
    traffic (a stage's targets hold every target of the stage below, or are empty:
    everything), so that no key ever moves back from Rust to Python along the ladder."""
    if not stages:
        raise ConfigError(where, [], "the ladder needs at least one stage")
    seen: set[str] = set()
    previous: StageConfig | None = None
    for i, stage in enumerate(stages):
        at = f"{where}.{i}"
        if not stage.name or not stage.name.strip() or stage.name != stage.name.strip():
            raise ConfigError(f"{at}.name", stage.name, "must be a non-blank name")
        if stage.name in seen:
            raise ConfigError(f"{at}.name", stage.name, "stage names must be unique")
        seen.add(stage.name)
        stage.percent = percentages(f"{at}.percent", stage.percent)
        named = sorted({*ops, *stage.percent.per_op})
        for op in named:
            value = stage.percent.of(op)
            key = f"{at}.percent" + (f".{op}" if op in stage.percent.per_op else "")
            if not math.isfinite(value) or not 0.0 <= value <= 100.0:
                raise ConfigError(key, value, "must be within 0..100")
            if previous is not None and value < previous.percent.of(op):
                reason = (
                    f"the ladder must not go down: stage {previous.name!r} already sends "
                    f"{previous.percent.of(op):g}% of {op} to Rust"
                )
                raise ConfigError(key, value, reason)
        _fraction(f"{at}.shadow_sample_rate", stage.shadow_sample_rate)
        targets = stage.targets
        for j, symbol in enumerate(targets.symbols):
            if not isinstance(symbol, str) or not symbol.strip() or symbol != symbol.strip():
                raise ConfigError(f"{at}.targets.symbols.{j}", symbol, "must be a symbol (MNQ)")
        for j, account in enumerate(targets.accounts):
            if isinstance(account, bool) or not isinstance(account, int) or account < 1:
                raise ConfigError(f"{at}.targets.accounts.{j}", account, "must be an account id")
        # Targets matter only once a stage sends something to Rust: from a 0% stage (off,
        # shadow) any targets may follow; after that they may only widen.
        if previous is not None and any(previous.percent.of(op) > 0.0 for op in named):
            for kind in ("symbols", "accounts"):
                below, here = getattr(previous.targets, kind), getattr(targets, kind)
                narrowed = (here and not below) or (here and set(below) - set(here))
                if narrowed:
                    reason = (
                        f"targets must not narrow along the ladder: stage {previous.name!r} "
                        f"targets {list(below) or 'everything'}"
                    )
                    raise ConfigError(f"{at}.targets.{kind}", list(here), reason)
        previous = stage


def _validate_breaker(where: str, breaker: BreakerConfig) -> None:
    if breaker.failures < 1:
        raise ConfigError(f"{where}.failures", breaker.failures, "must be >= 1")
    _positive(f"{where}.window_s", breaker.window_s)


MIN_CAPTURE_BYTES: Final = 256
"""The least `capture.max_bytes`: a compressed order call takes a few hundred bytes."""


def _validate_capture(where: str, capture: CaptureConfig) -> None:
    """`rate` 0..1, `max_bytes` >= `MIN_CAPTURE_BYTES`, `retention` a duration of at least a
    minute (as `harness db prune --older-than` takes it)."""
    from harness.durations import parse_duration

    if isinstance(capture.rate, bool) or not math.isfinite(capture.rate):
        raise ConfigError(f"{where}.rate", capture.rate, "must be within 0..1")
    _fraction(f"{where}.rate", capture.rate)
    if isinstance(capture.max_bytes, bool) or capture.max_bytes < MIN_CAPTURE_BYTES:
        reason = f"must be an integer >= {MIN_CAPTURE_BYTES} (bytes a call, compressed)"
        raise ConfigError(f"{where}.max_bytes", capture.max_bytes, reason)
    try:
        retention_ns = parse_duration(str(capture.retention), f"{where}.retention", "7d, 12h, 2w")
    except InvalidInputError as exc:
        raise ConfigError(f"{where}.retention", capture.retention, exc.reason) from None
    if retention_ns < 60 * 1_000_000_000:
        raise ConfigError(f"{where}.retention", capture.retention, "must be at least 1m")


def _validate_migration_gate(where: str, gate: MigrationGateConfig) -> None:
    if gate.alpha is not None and not 0.0 < gate.alpha < 1.0:
        raise ConfigError(f"{where}.alpha", gate.alpha, "must be within 0..1 (exclusive)")
    if gate.min_soak_s is not None:
        _positive(f"{where}.min_soak_s", gate.min_soak_s, zero_ok=True)
    if gate.check_interval_s is not None:
        _positive(f"{where}.check_interval_s", gate.check_interval_s)


def trading_hours(gate: GateConfig, where: str = "gate.trading_hours") -> TradingHours | None:
    """`gate.trading_hours` parsed (`harness.config.hours`; None: not configured);
    `ConfigError` naming the key under `where` and the value when it is wrong."""
    hours = gate.trading_hours
    return parse_trading_hours(where, hours.tz, hours.open, hours.close, hours.days)


def auto_promote_until(cfg: HarnessConfig, name: str) -> str | None:
    """The last stage migration `name` is promoted to automatically: its
    `gate.auto_promote_until`, else the stage before the last of its ladder (None: a ladder of
    one stage, nothing to promote to automatically)."""
    until = cfg.gate.for_migration(cfg.rollout.migration(name)).auto_promote_until
    if until is not None:
        return until
    ladder = cfg.rollout.ladder(name)
    return ladder[-2].name if len(ladder) > 1 else None


def _validate_auto_promote(cfg: HarnessConfig, name: str, migration: MigrationConfig) -> None:
    """A migration's automatic promotion: `auto_promote_until` a stage of its ladder below the
    last (the step to production stays a person's), its trading hours readable."""
    where = f"rollout.migrations.{name}.gate"
    own_hours = migration.gate.trading_hours
    gate = cfg.gate.for_migration(migration)
    if any(getattr(own_hours, f) is not None for f in ("tz", "open", "close", "days")):
        trading_hours(gate, f"{where}.trading_hours")
    until = gate.auto_promote_until
    if until is None or (not gate.auto_promote and migration.gate.auto_promote_until is None):
        return
    key = (
        f"{where}.auto_promote_until"
        if migration.gate.auto_promote_until is not None
        else "gate.auto_promote_until"
    )
    ladder = [s.name for s in cfg.rollout.ladder(name)]
    if until not in ladder:
        reason = f"not a stage of migration {name}'s ladder ({', '.join(ladder)})"
        raise ConfigError(key, until, reason)
    if until == ladder[-1]:
        reason = (
            f"must be below the last stage of migration {name}'s ladder ({until}): the step "
            "to production stays a person's"
        )
        raise ConfigError(key, until, reason)


def _validate_db(db: DbConfig) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(db.url)
    except ArgumentError:
        raise ConfigError("db.url", redact_url(db.url), "not a database URL") from None
    except ValueError:  # SQLAlchemy reads a port that is not a number: its message shows it
        reason = (
            "not a database URL: the port is not a number, or the password holds an unescaped "
            "'@', ':' or '/' (percent-encode them: %40, %3A, %2F)"
        )
        raise ConfigError("db.url", redact_url(db.url), reason) from None
    if "@" in (url.host or ""):  # user:pa@ss@host: SQLAlchemy takes "ss@host" for the host
        reason = "the password holds an unescaped '@' (percent-encode it: %40)"
        raise ConfigError("db.url", redact_url(db.url), reason)
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        reason = "only sqlite:/// and postgresql+psycopg:// are supported"
        raise ConfigError("db.url", redact_url(db.url), reason)
    rec = db.recorder
    for name in ("queue_bound", "batch_size", "buffer_rows"):
        if getattr(rec, name) < 1:
            raise ConfigError(f"db.recorder.{name}", getattr(rec, name), "must be >= 1")
    _positive("db.recorder.flush_interval_s", rec.flush_interval_s)
    _positive("db.recorder.retry_s", rec.retry_s)
    _positive("db.recorder.close_wait_s", rec.close_wait_s, zero_ok=True)
    _positive("db.write_wait_s", db.write_wait_s, zero_ok=True)


def _validate_gate(gate: GateConfig) -> None:
    if not gate.name.strip() or unsafe_character(gate.name) is not None:
        raise ConfigError("gate.name", gate.name, "must be a name without control characters")
    if not 0.0 < gate.alpha < 1.0:
        raise ConfigError("gate.alpha", gate.alpha, "must be within 0..1 (exclusive)")
    _positive("gate.min_soak_s", gate.min_soak_s, zero_ok=True)
    _positive("gate.check_interval_s", gate.check_interval_s)
    for op, c in gate.ops.items():
        check_name("gate.ops", op)
        where = f"gate.ops.{op}"
        if c.min_samples < 0:
            raise ConfigError(f"{where}.min_samples", c.min_samples, "must be >= 0")
        for name in ("max_fallback_rate", "max_error_rate", "max_error_excess"):
            _fraction(f"{where}.{name}", getattr(c, name))
        for name in ("max_p50_ratio", "max_p99_ratio"):
            if getattr(c, name) is not None:
                _positive(f"{where}.{name}", getattr(c, name))
        if not 0.0 < c.not_slower_margin <= 1.0:
            value = c.not_slower_margin
            raise ConfigError(
                f"{where}.not_slower_margin", value, "must be within 0..1 (0 excluded)"
            )
        if c.min_shadow_comparisons < 0:
            value = c.min_shadow_comparisons
            raise ConfigError(f"{where}.min_shadow_comparisons", value, "must be >= 0")
        if c.max_shadow_mismatches < 0:
            value = c.max_shadow_mismatches
            raise ConfigError(f"{where}.max_shadow_mismatches", value, "must be >= 0")


def _validate_workload(w: WorkloadConfig) -> None:
    for name in ("trades", "concurrency", "size", "stop_ticks", "bars_lookback"):
        if getattr(w, name) < 1:
            raise ConfigError(f"workload.{name}", getattr(w, name), "must be >= 1")
    if w.modifies < 1:
        raise ConfigError("workload.modifies", w.modifies, "must be >= 1 (a stop is moved)")
    _positive("workload.pace_ms", w.pace_ms, zero_ok=True)
    if not w.symbols or any(not s or not s.strip() for s in w.symbols):
        raise ConfigError("workload.symbols", list(w.symbols), "must list contract symbols")
    if w.account is not None and w.account < 1:
        raise ConfigError("workload.account", w.account, "must be a positive account id")
    if w.bars_lookback > 20_000:
        raise ConfigError("workload.bars_lookback", w.bars_lookback, "at most 20000 (API limit)")
    if not w.timeframes:
        raise ConfigError("workload.timeframes", [], "must list at least one timeframe")
    # Each timeframe's grammar is checked by `harness.bars.parse_timeframe` where the workload
    # starts (before any order): importing the bars here would load the native module into
    # processes that never aggregate, such as the dashboard.


# ----- showing a config -------------------------------------------------------------------------


def redact_target(url: str) -> str:
    """A notification target as it may be shown: `https://hooks.slack.com/***`.

    A webhook's path and query are often its token (Slack's `/services/T/B/X`, Discord's
    `/api/webhooks/ID/TOKEN`, `?token=`) and its user part a password, so an `http(s)://`
    target keeps only its scheme, host and port; any other scheme (Apprise's) may hold a token
    anywhere, its host included (`slack://TOKEN_A/...`, `tgram://BOT_TOKEN/...`), and keeps
    only its scheme. Text that is not a URL is `***` whole."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return REDACTED
    if scheme.lower() not in ("http", "https"):
        return f"{scheme}://{REDACTED}"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = authority[authority.rfind("@") + 1 :]
    shown = f"{scheme}://{REDACTED + '@' if '@' in authority else ''}{host}"
    return f"{shown}/{REDACTED}" if rest[len(authority) :].strip("/") else shown


def _plain(value: Any) -> Any:
    if isinstance(value, Percentages):
        return value.plain()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def redacted(cfg: HarnessConfig) -> dict[str, Any]:
    """The config as plain data with every secret replaced by `***` (safe to print or store)."""
    if not is_dataclass(cfg):  # pragma: no cover - typed callers
        raise TypeError("redacted() takes a HarnessConfig")
    data: dict[str, Any] = _plain(asdict(cfg))
    if data["broker"].get("api_key"):
        data["broker"]["api_key"] = REDACTED
    data["db"]["url"] = redact_url(data["db"]["url"])
    data["alerts"]["urls"] = [redact_target(url) for url in data["alerts"]["urls"]]
    return data


def to_yaml(cfg: HarnessConfig) -> str:
    """The resolved config as YAML, secrets redacted (what `--cfg job` prints)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(redacted(cfg)))
