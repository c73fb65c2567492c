from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from broker.settings import VARIABLES, Environment, Settings, SettingsError

GOOD_KEY = "k1:" + "A" * 43 + "="
GOOD_SECRET = "s3cr3t-value-for-production-0123456789abcdef"


def test_defaults_describe_a_local_dev_service() -> None:
    settings = Settings.from_env({})
    assert settings.env is Environment.DEV
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert str(settings.database.url) == "sqlite+aiosqlite:///var/broker.db"
    assert settings.sqlite_path() == Path("var/broker.db")
    assert settings.is_dev


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_values_are_read_and_typed() -> None:
    settings = Settings.from_env(
        {
            "BROKER_PORT": "9100",
            "BROKER_PUBLIC_URL": "https://broker.example/",
            "BROKER_HTTP_READ_TIMEOUT": "2.5",
            "BROKER_LOG_LEVEL": "debug",
            "BROKER_DATABASE_URL": "postgresql+asyncpg://u:p@db/broker",
        }
    )
    assert settings.port == 9100
    assert settings.public_url == "https://broker.example"
    assert settings.http.read_timeout == 2.5
    assert settings.log_level == "DEBUG"
    assert settings.sqlite_path() is None


def test_secrets_never_show_in_repr() -> None:
    settings = Settings.from_env(
        {
            "BROKER_ENV": "prod",
            "BROKER_SECRET_KEY": GOOD_SECRET,
            "BROKER_ENCRYPTION_KEYS": GOOD_KEY,
            "BROKER_SIGNING_KEY_FILE": "/etc/broker/signing.jwk.json",
            "BROKER_DATABASE_URL": "postgresql+asyncpg://u:db-password-canary@db/broker",
        }
    )
    text = repr(settings)
    assert GOOD_SECRET not in text
    assert "A" * 43 not in text
    assert "db-password-canary" not in text
    assert str(settings.secret_key) == GOOD_SECRET
    assert GOOD_SECRET in settings.secret_values()
    assert "A" * 43 + "=" in settings.secret_values()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"BROKER_ENCRYPTION_KEYS": GOOD_KEY}, "BROKER_SECRET_KEY is missing"),
        (
            {
                "BROKER_SECRET_KEY": "change-me-change-me-change-me-change-me",
                "BROKER_ENCRYPTION_KEYS": GOOD_KEY,
            },
            "BROKER_SECRET_KEY is missing, too short or a placeholder",
        ),
        ({"BROKER_SECRET_KEY": "short", "BROKER_ENCRYPTION_KEYS": GOOD_KEY}, "too short"),
        ({"BROKER_SECRET_KEY": GOOD_SECRET}, "BROKER_ENCRYPTION_KEYS is missing"),
        (
            {"BROKER_SECRET_KEY": GOOD_SECRET, "BROKER_ENCRYPTION_KEYS": GOOD_KEY},
            "BROKER_SIGNING_KEY_FILE is missing",
        ),
        (
            {"BROKER_SECRET_KEY": GOOD_SECRET, "BROKER_ENCRYPTION_KEYS": "k1:placeholder"},
            "placeholder key",
        ),
    ],
)
def test_outside_dev_missing_or_placeholder_secrets_stop_start_up(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env({"BROKER_ENV": "prod", **environ})
    assert "BROKER_ENV=prod" in str(caught.value)
    assert GOOD_SECRET not in str(caught.value)


def test_local_webhook_urls_are_refused_outside_dev_and_test() -> None:
    prod = {
        "BROKER_ENV": "prod",
        "BROKER_SECRET_KEY": GOOD_SECRET,
        "BROKER_ENCRYPTION_KEYS": GOOD_KEY,
        "BROKER_SIGNING_KEY_FILE": "/etc/broker/signing.jwk.json",
    }
    assert Settings.from_env(prod).webhooks.allow_local is False
    with pytest.raises(SettingsError, match="BROKER_WEBHOOK_ALLOW_LOCAL=true is for dev"):
        Settings.from_env({**prod, "BROKER_WEBHOOK_ALLOW_LOCAL": "true"})
    local = Settings.from_env({"BROKER_ENV": "test", "BROKER_WEBHOOK_ALLOW_LOCAL": "true"})
    assert local.webhooks.allow_local is True
    assert local.webhooks.retry_schedule[0] == 5
    assert Settings.from_env({"BROKER_WEBHOOK_POLL_INTERVAL": "0"}).webhooks.poll_interval == 0


def test_dev_and_test_accept_the_built_in_dev_secret() -> None:
    for env in ("dev", "test"):
        assert Settings.from_env({"BROKER_ENV": env}).is_dev


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"BROKER_ENV": "staging"}, "BROKER_ENV must be one of"),
        ({"BROKER_PORT": "eighty"}, "BROKER_PORT must be an integer"),
        ({"BROKER_PORT": "-1"}, "must not be negative"),
        ({"BROKER_HTTP_READ_TIMEOUT": "0"}, "must be positive"),
        ({"BROKER_HTTP_READ_TIMEOUT": "soon"}, "must be a number"),
        ({"BROKER_LOG_LEVEL": "LOUD"}, "BROKER_LOG_LEVEL"),
        ({"BROKER_ALTINN_MODE": "both"}, "BROKER_ALTINN_MODE must be one of vendor, org"),
        ({"BROKER_WEBHOOK_LEASE": "15"}, "BROKER_WEBHOOK_LEASE must exceed BROKER_WEBHOOK_TIMEOUT"),
        ({"BROKER_WEBHOOK_CONCURRENCY": "0"}, "BROKER_WEBHOOK_CONCURRENCY must be at least 1"),
        ({"BROKER_WEBHOOK_RETRY_SCHEDULE": "5,soon"}, "comma-separated list of seconds"),
        ({"BROKER_WEBHOOK_RETRY_SCHEDULE": "5,0"}, "positive numbers of seconds"),
        ({"BROKER_WEBHOOK_POLL_INTERVAL": "-1"}, "must not be negative"),
        ({"BROKER_WEBHOOK_POLL_INTERVAL": "nan"}, "must not be negative"),
        ({"BROKER_WEBHOOK_POLL_INTERVAL": "often"}, "must be a number"),
        ({"BROKER_WEBHOOK_ALLOW_LOCAL": "yes"}, "must be one of true, false"),
        ({"BROKER_DATABSE_URL": "x"}, "unknown setting.*BROKER_DATABSE_URL"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


def test_other_environment_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "CI": "true"}).port == 8000


def test_the_readme_documents_every_variable_with_its_default() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = {}
    for line in readme.splitlines():
        if match := re.match(r"^\| `(BROKER_[A-Z0-9_]+)` \| (.*?) \| (.+) \|$", line):
            rows[match[1]] = match[2].strip("`")
    expected = {v.name: ("(dev only)" if v.secret and v.default else v.default) for v in VARIABLES}
    assert rows == expected


def test_altinn_2_and_the_generation_are_read() -> None:
    settings = Settings.from_env(
        {
            "BROKER_ALTINN_GENERATION": "altinn2",
            "BROKER_ALTINN2_URL": "https://tt02.altinn.no/",
            "BROKER_ALTINN2_API_KEY": "api-key-canary-0123456789",
            "BROKER_ALTINN2_AUTH": "apikey",
            "BROKER_ALTINN2_SERVICE": "5616_3",
            "BROKER_ENHETSREGISTERET_URL": "https://data.brreg.no/enhetsregisteret/api/",
        }
    )
    assert settings.consent.generation == "altinn2"
    assert settings.upstreams.altinn2_url == "https://tt02.altinn.no"
    assert settings.upstreams.enhetsregisteret_url == "https://data.brreg.no/enhetsregisteret/api"
    assert (settings.altinn2.auth, settings.altinn2.service) == ("apikey", "5616_3")
    assert settings.consent.migrated_resource == "digdir_5616_2"
    assert "api-key-canary" not in repr(settings)
    assert "api-key-canary-0123456789" in settings.secret_values()  # the redactor strikes it


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"BROKER_ALTINN_GENERATION": "altinn1"}, "BROKER_ALTINN_GENERATION must be one of"),
        ({"BROKER_ALTINN2_AUTH": "certificate"}, "BROKER_ALTINN2_AUTH must be one of"),
        ({"BROKER_ALTINN2_SERVICE": "5616"}, "BROKER_ALTINN2_SERVICE must be a service code"),
        ({"BROKER_ALTINN2_SERVICE": "x_2"}, "BROKER_ALTINN2_SERVICE must be a service code"),
    ],
)
def test_bad_altinn_2_values_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


def test_production_on_altinn_2_needs_its_api_key() -> None:
    environ = {
        "BROKER_ENV": "prod",
        "BROKER_SECRET_KEY": GOOD_SECRET,
        "BROKER_ENCRYPTION_KEYS": GOOD_KEY,
        "BROKER_SIGNING_KEY_FILE": "/etc/broker/signing.jwk.json",
        "BROKER_ALTINN_GENERATION": "altinn2",
    }
    with pytest.raises(SettingsError, match="BROKER_ALTINN2_API_KEY is missing"):
        Settings.from_env(environ)
    assert Settings.from_env({**environ, "BROKER_ALTINN2_API_KEY": "k"}).consent.generation == (
        "altinn2"
    )
