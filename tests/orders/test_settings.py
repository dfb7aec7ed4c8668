"""Credentials from the environment: `ClientSettings.from_env` reads them by the config's rule.

One rule (`credentials_from_env`): `PROJECTX_*` first, else the bot's `TOPSTEPX_*`; an empty
variable counts as unset; a missing one is a `ConfigError` naming the variable, never a value.
"""

from __future__ import annotations

import pytest

from harness.config import compose
from harness.errors import ConfigError
from harness.orders import ClientSettings
from harness.orders.settings import DEFAULT_BASE_URL

VARIABLES = (
    "PROJECTX_BASE_URL",
    "PROJECTX_USERNAME",
    "PROJECTX_API_KEY",
    "TOPSTEPX_USERNAME",
    "TOPSTEPX_API_KEY",
)
KEY = "key-5d1e-never-shown"

ENVIRONMENTS = {
    "projectx only": {"PROJECTX_USERNAME": "px", "PROJECTX_API_KEY": KEY},
    "topstepx only": {"TOPSTEPX_USERNAME": "tx", "TOPSTEPX_API_KEY": KEY},
    "projectx wins": {
        "PROJECTX_USERNAME": "px",
        "TOPSTEPX_USERNAME": "tx",
        "PROJECTX_API_KEY": KEY,
        "TOPSTEPX_API_KEY": "other",
    },
    "empty projectx falls back": {
        "PROJECTX_USERNAME": "",
        "TOPSTEPX_USERNAME": "tx",
        "PROJECTX_API_KEY": "",
        "TOPSTEPX_API_KEY": KEY,
    },
    "mixed, with a base url": {
        "PROJECTX_BASE_URL": "http://127.0.0.1:9",
        "TOPSTEPX_USERNAME": "tx",
        "PROJECTX_API_KEY": KEY,
    },
}


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without any broker credential."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("case", list(ENVIRONMENTS))
def test_from_env_reads_credentials_as_the_config_does(environ, case):
    env = ENVIRONMENTS[case]
    for name, value in env.items():
        environ.setenv(name, value)
    settings = ClientSettings.from_env(timeout_s=5.0)
    broker = compose(["broker=projectx"], environ=env).broker
    assert (settings.base_url, settings.username, settings.api_key) == (
        broker.base_url,
        broker.username,
        broker.api_key,
    )
    assert settings.timeout_s == 5.0
    assert settings.api_key == KEY
    assert KEY not in repr(settings)


def test_from_env_takes_an_environment_mapping(environ):
    settings = ClientSettings.from_env({"TOPSTEPX_USERNAME": "tx", "TOPSTEPX_API_KEY": KEY})
    assert (settings.base_url, settings.username) == (DEFAULT_BASE_URL, "tx")


@pytest.mark.parametrize(
    ("env", "field", "reason"),
    [
        (
            {"PROJECTX_USERNAME": "px"},
            "PROJECTX_API_KEY",
            "missing: set PROJECTX_API_KEY (or TOPSTEPX_API_KEY)",
        ),
        (
            {"TOPSTEPX_API_KEY": KEY},
            "PROJECTX_USERNAME",
            "missing: set PROJECTX_USERNAME (or TOPSTEPX_USERNAME)",
        ),
        (
            {"PROJECTX_API_KEY": ""},
            "PROJECTX_API_KEY",
            "missing: set PROJECTX_API_KEY (or TOPSTEPX_API_KEY), "
            "and PROJECTX_USERNAME (or TOPSTEPX_USERNAME)",
        ),
    ],
)
def test_a_missing_credential_is_a_config_error_naming_the_variable(environ, env, field, reason):
    for name, value in env.items():
        environ.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        ClientSettings.from_env()
    err = caught.value
    assert (err.field, err.value, err.reason) == (field, None, reason)
    assert KEY not in str(err)
