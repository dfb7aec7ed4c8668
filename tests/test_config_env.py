"""Configuration as a user meets it through the environment and overrides: where the broker's
URL comes from, appended keys the schema does not have, and database URLs whose password must
never be shown however it is written (in the user part, unescaped, or as `?password=`)."""

from __future__ import annotations

import pytest
import yaml
from run.kit import harness

from harness.cli import main
from harness.config import ConfigError, compose, redact_url, redacted

SECRET = "pw-7c41-never-shown"


def test_projectx_base_url_comes_from_the_environment_when_not_set():
    env = {"PROJECTX_BASE_URL": "http://127.0.0.1:9", "PROJECTX_USERNAME": "u"}
    assert compose(["broker=projectx"], environ=env).broker.base_url == "http://127.0.0.1:9"


def test_an_explicit_broker_base_url_wins_over_the_environment():
    env = {"PROJECTX_BASE_URL": "http://127.0.0.1:9"}
    cfg = compose(["broker=projectx", "broker.base_url=http://127.0.0.1:7"], environ=env)
    assert cfg.broker.base_url == "http://127.0.0.1:7"


def test_with_neither_the_live_gateway_is_named():
    assert compose(["broker=projectx"], environ={}).broker.base_url == "https://api.topstepx.com"


@pytest.mark.parametrize(
    ("override", "key", "schema"),
    [
        ("+workload.trdes=3", "workload.trdes", "WorkloadConfig"),
        ("++rollout.foo=2", "rollout.foo", "RolloutConfig"),
        ("+db.recorder.bar=1", "db.recorder.bar", "RecorderConfig"),
        ("+rollout.stages.1.bogus=1", "rollout.stages.1.bogus", "StageConfig"),
    ],
)
def test_an_appended_key_the_schema_lacks_is_refused_not_dropped(override, key, schema):
    with pytest.raises(ConfigError) as caught:
        compose([override], environ={})
    assert caught.value.field == key
    assert f"not in {schema}" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql+psycopg://u:{SECRET}@h:5/d", "postgresql+psycopg://u:***@h:5/d"),
        (f"postgresql+psycopg://u@h:5/d?password={SECRET}", "postgresql+psycopg://u@h:5/d?password=***"),
        (f"postgresql://h/d?sslmode=require&PassWord={SECRET}&a=b", "postgresql://h/d?sslmode=require&PassWord=***&a=b"),
        (f"postgresql+psycopg://u:{SECRET}@x@h:5/d", "postgresql+psycopg://u:***@h:5/d"),
        (f"postgresql+psycopg://u:a:{SECRET}@h:notaport/d", "postgresql+psycopg://u:***@h:notaport/d"),
        ("sqlite:///harness.db", "sqlite:///harness.db"),
        ("sqlite:////tmp/a b/x.db", "sqlite:////tmp/a b/x.db"),
    ],
)  # fmt: skip
def test_redact_url_hides_every_form_of_password(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"postgresql+psycopg://u:p@{SECRET}@127.0.0.1:9/h", "unescaped '@'"),
        (f"postgresql+psycopg://u:p@ss:{SECRET}@127.0.0.1:9/h", "port is not a number"),
        (f"postgresql+psycopg://u:{SECRET}@127.0.0.1:notaport/h", "port is not a number"),
    ],
)
def test_a_malformed_database_url_is_one_clear_error_without_the_password(url, reason, capsys):
    assert main(["status", f"db.url={url}"]) == 2
    err = capsys.readouterr().err
    assert "invalid db.url=" in err and reason in err and "Traceback" not in err
    assert SECRET not in err and SECRET[3:] not in err


def test_a_query_password_is_redacted_in_cfg_job_and_in_what_runs_store(monkeypatch, capsys):
    url = f"postgresql+psycopg://u@127.0.0.1:9/h?password={SECRET}"
    monkeypatch.setenv("HARNESS_DB_URL", url)
    assert main(["status", "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert "password=***" in out and SECRET not in out
    assert SECRET not in repr(redacted(compose([], environ={"HARNESS_DB_URL": url})))
    assert main(["status", f"db.url='{url}'"]) != 0  # nothing listens on port 9
    err = capsys.readouterr().err
    assert "cannot open the database" in err and SECRET not in err


# ----- a text setting takes any text: the CLI quotes it for Hydra -----------------------------

ODD_TEXTS = [
    "postgresql+psycopg://u@h/db?sslmode=require",
    "postgresql+psycopg://u@h:5432/db?sslmode=verify-full&application_name=bot 1",
    "sqlite:////tmp/données/h.db",
    "sqlite:////tmp/a b/x.db?timeout=5",
    "sqlite:///it's.db",
    "sqlite:///C:\\data\\h.db",
    "sqlite:///ends-with\\",
    "sqlite:///q\\'uote.db",
    "sqlite:///eq=sign,comma[1]{2}.db",
]


@pytest.mark.parametrize("url", ODD_TEXTS)
def test_a_text_value_is_taken_literally_as_typed_quoted_or_from_the_environment(url):
    assert compose([f"db.url={url}"], environ={}).db.url == url
    assert compose([], environ={"HARNESS_DB_URL": url}).db.url == url
    assert compose([f"rollout.salt={url}"], environ={}).rollout.salt == url


def test_quoting_that_already_works_is_kept_and_null_stays_null(monkeypatch):
    monkeypatch.setenv("H_URL", "sqlite:///from-env.db")
    url = "postgresql+psycopg://u@h/db?sslmode=require"
    assert compose([f"db.url='{url}'"], environ={}).db.url == url
    assert compose([f'db.url="{url}"'], environ={}).db.url == url
    assert compose(["db.url=${oc.env:H_URL}"], environ={}).db.url == "sqlite:///from-env.db"
    assert compose(["broker.base_url=null"], environ={}).broker.base_url is None
    key = "k'[1]{x}"  # an API key is text too: taken as typed
    assert compose(["broker=projectx", f"broker.api_key={key}"], environ={}).broker.api_key == key
    with pytest.raises(ConfigError, match="must be a string, not null"):
        compose(["rollout.salt=null"], environ={})


def test_the_real_cli_takes_a_url_with_query_parameters_and_non_ascii(tmp_path, pg_url):
    folder = tmp_path / "données d'essai"
    folder.mkdir()
    sqlite = f"sqlite:///{folder}/h.db?timeout=5"
    done = harness(tmp_path, "db", "upgrade", f"db.url={sqlite}")
    assert done.returncode == 0, done.stderr
    assert (folder / "h.db").is_file()
    pg = f"{pg_url}?sslmode=disable&application_name=bot é"
    for args in (("db", "upgrade"), ("status", "--json")):
        done = harness(tmp_path, *args, f"db.url={pg}")
        assert done.returncode == 0, done.stderr
    shown = harness(tmp_path, "status", "--cfg", "job", f"db.url={pg}")
    assert yaml.safe_load(shown.stdout)["db"]["url"] == pg  # (no password in this URL)


def test_a_value_hydra_cannot_read_says_how_to_quote_it(tmp_path):
    done = harness(tmp_path, "status", "workload.symbols=[MNQ,MÉS]")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert "invalid override='workload.symbols=[MNQ,MÉS]'" in line
    assert "quote it, key='value' (in a list, [a,'b c'])" in line
    quoted = compose(["workload.symbols=[MNQ,'MÉS']"], environ={})
    assert quoted.workload.symbols == ["MNQ", "MÉS"]


# ----- null and wrong types: one line naming the key and what it takes ------------------------


def _leaves(kind, prefix=""):  # type: ignore[no-untyped-def]
    """(dotted key, declared type) of every setting of the schema, sections included."""
    import dataclasses
    import typing

    for f in dataclasses.fields(kind):
        declared = typing.get_type_hints(kind)[f.name]
        args = typing.get_args(declared)
        base = next(a for a in args if a is not type(None)) if type(None) in args else declared
        key = f"{prefix}{f.name}"
        yield key, declared, base
        if dataclasses.is_dataclass(base):
            yield from _leaves(base, key + ".")
        elif typing.get_origin(base) is list and dataclasses.is_dataclass(typing.get_args(base)[0]):
            yield from _leaves(typing.get_args(base)[0], key + ".0.")


def _bad_values():  # type: ignore[no-untyped-def]
    import dataclasses
    import enum
    import typing

    from harness.config import HarnessConfig

    wrong = {int: "abc", float: "abc", bool: "maybe"}
    for key, declared, base in _leaves(HarnessConfig):
        if type(None) not in typing.get_args(declared):
            yield key, "null"
        if base in wrong:
            yield key, wrong[base]
        elif isinstance(base, type) and issubclass(base, enum.Enum):
            yield key, "nope"
        elif typing.get_origin(base) is list:
            yield key, "{a:1}"
        elif dataclasses.is_dataclass(base) and "." in key:
            yield key, "abc"


HYDRA_WORDS = ("merging", "full_key", "object_type", "reference_type", "OmegaConf", "Hydra ex")


@pytest.mark.parametrize(("key", "value"), list(_bad_values()))
def test_every_key_refuses_null_and_a_wrong_type_in_one_line_naming_it(key, value):
    with pytest.raises(ConfigError) as refused:
        compose([f"{key}={value}"], environ={})
    text = str(refused.value)
    assert refused.value.field == key and "\n" not in text
    assert text.startswith(f"invalid {key}=") and "must " in text
    assert not any(word in text for word in HYDRA_WORDS), text


@pytest.mark.parametrize(
    ("override", "said"),
    [
        ("workload.trades=null", "invalid workload.trades='null': must be an integer, not null"),
        ("broker.kind=null", "invalid broker.kind='null': must be one of sim, projectx, not null"),
        ("rollout.kill=maybe", "invalid rollout.kill='maybe': must be true or false"),
        ("broker.timeout_s=soon", "invalid broker.timeout_s='soon': must be a number"),
        ("rollout.refresh_s=inf", "invalid rollout.refresh_s=inf: must be a finite number > 0"),
        ("workload=null", "invalid workload='null': must name an option of the group: default"),
        ("+db.url=sqlite:///x.db", "invalid db.url='sqlite:///x.db': is already set"),
        ("rollout.stages.name=x", "invalid rollout.stages.name='x': not a key of the schema"),
    ],
)
def test_the_real_cli_says_what_a_key_expects_exit_2(tmp_path, override, said):
    done = harness(tmp_path, "status", override)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"harness status: error: {said}"), line
    assert not (tmp_path / "harness.db").exists()
