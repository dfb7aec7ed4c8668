"""The packaged config composed without Hydra, for the common case; Hydra for anything else.

Importing Hydra and composing with it costs about 0.5 s of CPU, several times what `harness
status` does with the result (issue 23). This module composes the packaged tree exactly as
Hydra 1.3 would (the same YAML reading as OmegaConf's loader, the defaults lists, group options
merged under their group, overrides applied in order, values typed by the schema), but only for
inputs it fully understands:

- the packaged tree only (`HARNESS_CONFIG_DIR` unset): a folder of the user's may hold anything
  Hydra reads (`# @package`, a `config.yaml` of its own, ...);
- group options of the primary defaults list (`db=postgres`, `gate=quick`), each at most once;
- `key=value` on a dotted key of the schema that holds one value (no list index, no section),
  through a mapping (`rollout.migrations.bars.start_stage`, `gate.ops.place_order.min_samples`)
  only by a name the composed files already hold (Hydra refuses a new one without `+`),
  each key at most once, with a value in a plain form: `true`/`false`, an integer, a decimal
  number, `null` where the key is optional, an enum member's name, or any text for a text key
  (taken literally, as `harness.config._literal_text` has Hydra take it), but never text that
  Hydra or OmegaConf would read further (`${...}` interpolations, backslashes, quotes);
- files without interpolations, `# @package` lines or defaults other than options of their own
  group followed by `_self_`; a mapping of the schema (`dict[str, X]`) holds text names, and an
  `Any` value (a stage's `percent`) holds a number or a mapping of text to numbers.

Anything else, and every input that is wrong, returns None: the caller composes with Hydra,
which gives the answer or the error it always gave. `tests/test_config_fast.py` holds the two
to the same result for every packaged combination and every kind of override accepted here.
"""

from __future__ import annotations

import re
import typing
from dataclasses import MISSING as NO_DEFAULT
from dataclasses import fields, is_dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, Final

from harness.config.schema import MISSING, HarnessConfig

__all__ = ["compose_packaged"]


class _NotPlain(Exception):
    """The input holds something only Hydra composes faithfully."""


_GROUP_OPTION: Final = re.compile(r"^([A-Za-z_]\w*)=([\w-]+)$")
_KEY_VALUE: Final = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)=(.*)$", re.DOTALL)
_INTEGER: Final = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
_DECIMAL: Final = re.compile(r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$")


def compose_packaged(
    conf_dir: Path, overrides: list[str], db_url: str | None
) -> tuple[HarnessConfig, dict[str, str]] | None:
    """The config of `conf_dir` with `overrides`, and the option chosen for each group; None
    when Hydra must compose it (module docstring). `db_url` (`HARNESS_DB_URL`) sets `db.url`
    unless an override does. Nothing is validated beyond types: `validate` does that."""
    try:
        return _compose(conf_dir, overrides, db_url)
    except Exception:  # _NotPlain, a YAML error, a file gone: Hydra says which
        return None


def _compose(
    conf_dir: Path, overrides: list[str], db_url: str | None
) -> tuple[HarnessConfig, dict[str, str]]:
    primary = _load(conf_dir / "config.yaml")
    defaults = primary.pop("defaults", None)
    if primary or not isinstance(defaults, list) or len(defaults) < 2:
        raise _NotPlain("the primary config holds more than a defaults list")
    if defaults[0] != "harness_schema" or defaults[-1] != "_self_":
        raise _NotPlain("the primary defaults list is not schema, groups, _self_")
    choices: dict[str, str] = {}
    for entry in defaults[1:-1]:
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise _NotPlain(f"defaults entry {entry!r}")
        ((group, option),) = entry.items()
        if not isinstance(option, str) or not _GROUP_OPTION.match(f"{group}={option}"):
            raise _NotPlain(f"defaults entry {entry!r}")
        choices[group] = option

    assignments: list[tuple[str, str]] = []
    seen: set[str] = set()
    for override in overrides:
        found = _GROUP_OPTION.match(override)
        if found is not None and found.group(1) in choices:
            group, option = found.groups()
            if group in seen or not (conf_dir / group / f"{option}.yaml").is_file():
                raise _NotPlain(f"override {override!r}")
            seen.add(group)
            choices[group] = option
            continue
        found = _KEY_VALUE.match(override)
        if found is None or found.group(1) in seen:
            raise _NotPlain(f"override {override!r}")
        seen.add(found.group(1))
        assignments.append((found.group(1), found.group(2)))
    if db_url and "db.url" not in seen:
        if db_url != db_url.strip():  # Hydra gets it quoted, spaces and all
            raise _NotPlain("HARNESS_DB_URL with spaces around it")
        assignments.append(("db.url", db_url))

    tree: dict[str, Any] = {}
    for group, option in choices.items():
        tree[group] = _group_option(conf_dir, group, option, ())
    for key, value in assignments:
        _assign(tree, key, _typed(key, value, tree))
    built = _build(HarnessConfig, tree)
    assert isinstance(built, HarnessConfig)
    return built, choices


def _group_option(conf_dir: Path, group: str, option: str, within: tuple[str, ...]) -> Any:
    """The content of `group/option.yaml` with its defaults merged in (Hydra's order: each
    default, then `_self_`)."""
    if option in within:  # a cycle: Hydra's error
        raise _NotPlain(f"{group}/{option} includes itself")
    content = _load(conf_dir / group / f"{option}.yaml")
    defaults = content.pop("defaults", ["_self_"])
    if not isinstance(defaults, list) or defaults[-1:] != ["_self_"]:
        raise _NotPlain(f"{group}/{option}: defaults other than options, then _self_")
    merged: dict[str, Any] = {}
    for entry in defaults[:-1]:
        if not (isinstance(entry, str) and re.fullmatch(r"[\w-]+", entry)):
            raise _NotPlain(f"{group}/{option}: defaults entry {entry!r}")
        merged = _merge(merged, _group_option(conf_dir, group, entry, (*within, option)))
    return _merge(merged, content)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """OmegaConf's merge of plain data: mappings merge key by key, anything else (a list too)
    replaces."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _assign(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise _NotPlain(f"{key}: a value on the way")
        node = child
    node[leaf] = value


def _typed(key: str, text: str, tree: dict[str, Any]) -> Any:
    """An override's value as Hydra parses it and OmegaConf types it for the key's schema
    type; `_NotPlain` for any form not listed in the module docstring."""
    kind = _leaf_type(key, tree)
    optional = type(None) in typing.get_args(kind)
    base = next(a for a in typing.get_args(kind) if a is not type(None)) if optional else kind
    value = text.strip()
    if base is str:
        # As `_literal_text` quotes it for Hydra: the stripped text, literally.
        if (
            not value
            or value == "null"
            or value[0] in "'\""
            or "${" in value
            or "\\" in value
            or not value.isprintable()
        ):
            raise _NotPlain(f"{key}: text Hydra reads further")
        return value
    if value == "null" and optional:
        return None
    if base is bool and value in ("true", "false"):
        return value == "true"
    if base is int and _INTEGER.match(value):
        return int(value)
    if base is float and _DECIMAL.match(value):
        return float(value)
    if isinstance(base, type) and issubclass(base, Enum) and value in base.__members__:
        return value  # a member's name, as the YAML files give it
    raise _NotPlain(f"{key}={text!r}")


def _leaf_type(key: str, tree: dict[str, Any]) -> Any:
    """The schema type at dotted `key` if it holds one value (text, number, flag, enum, each
    maybe optional); `_NotPlain` otherwise. A part that names an entry of a mapping
    (`rollout.migrations.<name>`, `gate.ops.<op>`) must name one `tree` (the composed files)
    already holds: Hydra refuses a new entry without `+`, and its error is Hydra's to give."""
    kind: Any = HarnessConfig
    node: Any = tree
    for part in key.split("."):
        if typing.get_origin(kind) is dict:
            if not (isinstance(node, dict) and isinstance(node.get(part), dict)):
                raise _NotPlain(f"{key}: {part!r} is not an entry of the mapping")
            kind, node = typing.get_args(kind)[1], node[part]
            continue
        if not (isinstance(kind, type) and is_dataclass(kind)):
            raise _NotPlain(f"{key}: not a key of a section")
        hints = _hints(kind)
        if part not in hints:
            raise _NotPlain(f"{key}: not in the schema")
        kind = hints[part]
        node = node.get(part) if isinstance(node, dict) else None
    args = typing.get_args(kind)
    base = next(a for a in args if a is not type(None)) if type(None) in args else kind
    plain = base in (str, int, float, bool) or (isinstance(base, type) and issubclass(base, Enum))
    if not plain:
        raise _NotPlain(f"{key}: holds more than one value")
    return kind


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(kind: Any, value: Any) -> Any:
    """`value` (plain data) as the schema type `kind`, as `OmegaConf.to_object` builds it from
    a node of that type; `_NotPlain` where OmegaConf would convert, interpolate or refuse."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if type(None) in args:
        if value is None:
            return None
        (kind,) = (a for a in args if a is not type(None))
        origin, args = typing.get_origin(kind), typing.get_args(kind)
    if value is None:
        raise _NotPlain("null for a key that is not optional")
    if is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _NotPlain(f"{kind.__name__}: not a mapping")
        hints = _hints(kind)
        unknown = set(value) - set(hints)
        if unknown:
            raise _NotPlain(f"{kind.__name__}: unknown keys {sorted(unknown)}")
        built: dict[str, Any] = {}
        for f in fields(kind):
            if f.name in value:
                built[f.name] = _build(hints[f.name], value[f.name])
            elif f.default is not NO_DEFAULT:
                if f.default == MISSING:
                    raise _NotPlain(f"{kind.__name__}.{f.name}: missing mandatory value")
                built[f.name] = f.default
            elif f.default_factory is not NO_DEFAULT:
                built[f.name] = f.default_factory()
        return kind(**built)
    if origin is list:
        if not isinstance(value, list):
            raise _NotPlain("not a list")
        return [_build(args[0], item) for item in value]
    if origin is dict:
        if args[0] is not str or not isinstance(value, dict):
            raise _NotPlain("not a mapping of names")
        if not all(isinstance(k, str) for k in value):
            raise _NotPlain("a mapping with keys that are not text")
        return {k: _build(args[1], item) for k, item in value.items()}
    if kind is Any:
        return _untyped(value)
    if isinstance(value, str) and ("${" in value or value == MISSING):
        raise _NotPlain("an interpolation or a missing value")
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    if isinstance(kind, type) and issubclass(kind, Enum) and isinstance(value, str):
        member = kind.__members__.get(value)
        if member is not None:
            return member
    raise _NotPlain(f"{value!r} as {kind}")


def _untyped(value: Any) -> Any:
    """An `Any` value (a stage's `percent`) as `OmegaConf.to_object` gives it: a number as
    read, a mapping of text to numbers as a plain dict; anything else is left to Hydra."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        for k, v in value.items()
    ):
        return dict(value)
    raise _NotPlain(f"{value!r} for an untyped key")


def _load(path: Path) -> dict[str, Any]:
    """A config file read as OmegaConf reads it (`omegaconf._utils.get_yaml_loader`), as a
    mapping; `_NotPlain` for a `# @package` line or content that is not a mapping."""
    import yaml

    text = path.read_text(encoding="utf-8")
    if "@package" in text:
        raise _NotPlain(f"{path}: a package directive")
    data = yaml.load(text, Loader=_loader())  # a SafeLoader subclass
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _NotPlain(f"{path}: not a mapping")
    return data


@cache
def _loader() -> Any:
    """OmegaConf 2.3's YAML loader, rebuilt here (importing OmegaConf costs 0.1 s): a
    SafeLoader that refuses duplicate keys, reads `1e3` and `.5` as floats, and never reads a
    timestamp."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            keys = set()
            for key_node, _ in node.value:
                if key_node.tag != yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG:
                    continue
                if key_node.value in keys:
                    raise _NotPlain(f"duplicate key {key_node.value}")  # Hydra's error
                keys.add(key_node.value)
            return super().construct_mapping(node, deep=deep)

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"""^(?:
         [-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
        |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
        |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
        list("-+0123456789."),
    )
    Loader.yaml_implicit_resolvers = {
        key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in Loader.yaml_implicit_resolvers.items()
    }
    return Loader
