"""Configuration as a user meets it through the environment and overrides: where the broker's
URL comes from, appended keys the schema does not have, and database URLs whose password must
never be shown however it is written (in the user part, unescaped, or as `?password=`)."""

from __future__ import annotations

import pytest

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
