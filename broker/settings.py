"""The broker's configuration: one frozen object, read once from ``BROKER_*`` variables.

Every variable is listed in ``VARIABLES`` (name, default, meaning); the README's configuration
table is generated from it and a test keeps the two in step. Secrets are held as
``starlette.datastructures.Secret`` so they never appear in a repr, a log line or a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from starlette.datastructures import Secret

__all__ = [
    "VARIABLES",
    "Altinn2Settings",
    "ConsentSettings",
    "Environment",
    "HttpSettings",
    "MaskinportenSettings",
    "RelaySettings",
    "Settings",
    "SettingsError",
    "Variable",
]


class SettingsError(ValueError):
    """The environment does not describe a service that may start."""


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str
    secret: bool = False


# Values that look like secrets but are only fit for a laptop. Outside dev/test they stop start-up.
_DEV_SECRET = "dev-only-insecure-secret-change-me"  # noqa: S105 - refused outside dev
_PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder", "example", "insecure")
_MIN_SECRET_LENGTH = 32

VARIABLES: tuple[Variable, ...] = (
    Variable(
        "BROKER_ENV", "dev", "`dev`, `test` or `prod`. Outside dev/test, secrets are checked."
    ),
    Variable("BROKER_HOST", "127.0.0.1", "Interface the server binds to."),
    Variable("BROKER_PORT", "8000", "Port the server listens on."),
    Variable(
        "BROKER_PUBLIC_URL",
        "http://127.0.0.1:8000",
        "External base URL of the broker, used in links and redirects.",
    ),
    Variable(
        "BROKER_DATABASE_URL",
        "sqlite+aiosqlite:///var/broker.db",
        "SQLAlchemy URL: `sqlite+aiosqlite:///…` or `postgresql+asyncpg://…`.",
    ),
    Variable("BROKER_DATABASE_POOL_SIZE", "10", "Connections per process (PostgreSQL)."),
    Variable("BROKER_SQLITE_BUSY_TIMEOUT_MS", "5000", "How long SQLite waits for a lock."),
    Variable(
        "BROKER_SECRET_KEY",
        _DEV_SECRET,
        "Signs flow handles, cookies and links. At least 32 characters outside dev/test.",
        secret=True,
    ),
    Variable(
        "BROKER_ENCRYPTION_KEYS",
        "",
        "Comma-separated `id:base64key` list for data at rest; the first encrypts. "
        "Required outside dev/test.",
        secret=True,
    ),
    Variable("BROKER_LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING, ERROR."),
    Variable(
        "BROKER_MASKINPORTEN_URL",
        "http://127.0.0.1:8001/maskinporten",
        "Maskinporten issuer (the sandbox's by default).",
    ),
    Variable(
        "BROKER_ALTINN_URL",
        "http://127.0.0.1:8001/altinn",
        "Altinn base URL (the sandbox's by default).",
    ),
    Variable(
        "BROKER_SKATTEETATEN_URL",
        "http://127.0.0.1:8001/skatteetaten",
        "Skatteetaten API base URL (the sandbox's by default).",
    ),
    Variable(
        "BROKER_MASKINPORTEN_CLIENT_ID",
        "ebevis-broker-sandbox",
        "The broker's Maskinporten client id.",
    ),
    Variable(
        "BROKER_MASKINPORTEN_KEY_FILE",
        "var/sandbox/broker-client.jwk.json",
        "File with the broker's Maskinporten private key (a JWK; the sandbox writes one).",
    ),
    Variable(
        "BROKER_MASKINPORTEN_CERT_FILE",
        "",
        "PEM chain of a business certificate (leaf first). When set, grants are signed with "
        "`x5c` and BROKER_MASKINPORTEN_KEY_FILE is the certificate's PEM private key.",
    ),
    Variable(
        "BROKER_ORG_NUMBER",
        "310300012",
        "The broker operator's organisation number (the sandbox's broker by default).",
    ),
    Variable(
        "BROKER_ALTINN_MODE",
        "vendor",
        "`vendor`: Altinn calls act for the contracting authority (`consumer_org`); "
        "`org`: the broker calls with `altinn:consentrequests.org`. (inferred, see docs/api.md)",
    ),
    Variable(
        "BROKER_CONSENT_RESOURCE",
        "digdir-oppdragutenlandskevirksomheter-skatteetaten",
        "The Altinn 3 resource consent is asked for.",
    ),
    Variable(
        "BROKER_ALTINN_GENERATION",
        "altinn3",
        "`altinn3` or `altinn2`: the Altinn generation of clients registered from now on; "
        "`broker clients generation` changes a client's (see docs/operations.md).",
    ),
    Variable(
        "BROKER_ALTINN2_URL",
        "http://127.0.0.1:8001/altinn2",
        "Altinn 2 base URL, e.g. `https://www.altinn.no` (the sandbox's by default).",
    ),
    Variable(
        "BROKER_ALTINN2_API_KEY",
        "",
        "The broker's Altinn 2 API key (`ApiKey` header). Required outside dev/test when "
        "BROKER_ALTINN_GENERATION is `altinn2`.",
        secret=True,
    ),
    Variable(
        "BROKER_ALTINN2_AUTH",
        "maskinporten",
        "`maskinporten`: the API key plus a Maskinporten token for the contracting authority "
        "(`consumer_org`); `apikey`: the API key alone, the broker being the SRR-approved "
        "handler.",
    ),
    Variable(
        "BROKER_ALTINN2_SERVICE",
        "5616_2",
        "The Altinn 2 service edition (tjenestekode) consent is asked for.",
    ),
    Variable(
        "BROKER_ALTINN2_TOKEN_SCOPE",
        "altinn:consenttokens",
        "Maskinporten scope for Altinn 2 consent tokens (some docs write "
        "`altinn:consenttokens.read`).",
    ),
    Variable(
        "BROKER_MIGRATED_RESOURCE",
        "digdir_5616_2",
        "The Altinn 3 resource that Altinn 2 grants were migrated to; imported grants use it.",
    ),
    Variable(
        "BROKER_ENHETSREGISTERET_URL",
        "http://127.0.0.1:8001/brreg/enhetsregisteret/api",
        "Enhetsregisteret's API (`https://data.brreg.no/enhetsregisteret/api`), for the "
        "organisation names Altinn 2 requires (the sandbox's by default).",
    ),
    Variable("BROKER_CONSENT_MAX_DAYS", "90", "Longest consent validity a client may ask for."),
    Variable("BROKER_FLOW_START_TTL", "604800", "Seconds a `consent_url` stays usable."),
    Variable(
        "BROKER_FLOW_RETURN_TTL",
        "1800",
        "Seconds the person has to answer in Altinn and come back.",
    ),
    Variable(
        "BROKER_CLIENT_TOKEN_SCOPE",
        "ebevisbroker:consentrequests",
        "Scope a procurement system's Maskinporten token must carry to call the API.",
    ),
    Variable(
        "BROKER_RECONCILE_INTERVAL",
        "60",
        "Seconds between checks of unanswered requests with Altinn (0 turns the job off).",
    ),
    Variable(
        "BROKER_SIGNING_KEY_FILE",
        "",
        "Private RSA JWK that signs relayed data (published at /.well-known/jwks.json). "
        "Empty in dev/test: a key is made at start. Required outside dev/test.",
    ),
    Variable(
        "BROKER_SKATTEETATEN_CONCURRENCY",
        "5",
        "Most Skatteetaten calls in flight per consumer organisation, across all processes.",
    ),
    Variable(
        "BROKER_SKATTEETATEN_SLOT_TIMEOUT",
        "10",
        "Seconds a relay waits for a free call slot before answering 503.",
    ),
    Variable("BROKER_HTTP_CONNECT_TIMEOUT", "3.0", "Seconds to open an upstream connection."),
    Variable("BROKER_HTTP_READ_TIMEOUT", "10.0", "Seconds between bytes from an upstream."),
    Variable("BROKER_HTTP_MAX_CONNECTIONS", "20", "Pooled connections per upstream."),
)

_DEFAULTS = {v.name: v.default for v in VARIABLES}


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float
    read_timeout: float
    max_connections: int


@dataclass(frozen=True)
class UpstreamSettings:
    maskinporten_url: str
    altinn_url: str
    skatteetaten_url: str
    altinn2_url: str = "http://127.0.0.1:8001/altinn2"
    enhetsregisteret_url: str = "http://127.0.0.1:8001/brreg/enhetsregisteret/api"


@dataclass(frozen=True)
class ConsentSettings:
    resource: str
    max_days: int
    start_ttl: int
    return_ttl: int
    reconcile_interval: int
    altinn_mode: str
    generation: str = "altinn3"
    migrated_resource: str = "digdir_5616_2"


@dataclass(frozen=True)
class Altinn2Settings:
    api_key: Secret
    auth: str
    service: str
    token_scope: str


@dataclass(frozen=True)
class MaskinportenSettings:
    client_id: str
    key_file: str
    cert_file: str
    org_number: str
    client_token_scope: str


@dataclass(frozen=True)
class RelaySettings:
    signing_key_file: str
    concurrency: int
    slot_timeout: float


@dataclass(frozen=True)
class DatabaseSettings:
    url: Secret
    pool_size: int
    sqlite_busy_timeout_ms: int


@dataclass(frozen=True)
class Settings:
    env: Environment
    host: str
    port: int
    public_url: str
    database: DatabaseSettings
    secret_key: Secret
    encryption_keys: Secret
    log_level: str
    upstreams: UpstreamSettings
    http: HttpSettings
    consent: ConsentSettings
    maskinporten: MaskinportenSettings
    relay: RelaySettings
    altinn2: Altinn2Settings

    def secret_values(self) -> tuple[str, ...]:
        """The plaintext secrets, for the log redactor to strike out wherever they appear."""
        keys = _key_values(str(self.encryption_keys))
        api_key = str(self.altinn2.api_key)
        return tuple(s for s in (str(self.secret_key), *keys, api_key) if s)

    @property
    def is_dev(self) -> bool:
        return self.env in (Environment.DEV, Environment.TEST)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        unknown = sorted(k for k in source if k.startswith("BROKER_") and k not in _DEFAULTS)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        settings = _build({name: source.get(name, default) for name, default in _DEFAULTS.items()})
        _check_secrets(settings)
        return settings

    def sqlite_path(self) -> Path | None:
        """The database file when the URL points at a SQLite file, else None."""
        url = str(self.database.url)
        prefix = "sqlite+aiosqlite:///"
        if not url.startswith(prefix) or url.endswith(":memory:"):
            return None
        return Path(url.removeprefix(prefix))


def _build(raw: Mapping[str, str]) -> Settings:
    try:
        env = Environment(raw["BROKER_ENV"])
    except ValueError:
        raise SettingsError("BROKER_ENV must be one of dev, test, prod") from None
    return Settings(
        env=env,
        host=raw["BROKER_HOST"],
        port=_int(raw, "BROKER_PORT"),
        public_url=raw["BROKER_PUBLIC_URL"].rstrip("/"),
        database=DatabaseSettings(
            url=Secret(raw["BROKER_DATABASE_URL"]),
            pool_size=_int(raw, "BROKER_DATABASE_POOL_SIZE"),
            sqlite_busy_timeout_ms=_int(raw, "BROKER_SQLITE_BUSY_TIMEOUT_MS"),
        ),
        secret_key=Secret(raw["BROKER_SECRET_KEY"]),
        encryption_keys=Secret(raw["BROKER_ENCRYPTION_KEYS"]),
        log_level=_log_level(raw["BROKER_LOG_LEVEL"]),
        upstreams=UpstreamSettings(
            maskinporten_url=raw["BROKER_MASKINPORTEN_URL"].rstrip("/"),
            altinn_url=raw["BROKER_ALTINN_URL"].rstrip("/"),
            skatteetaten_url=raw["BROKER_SKATTEETATEN_URL"].rstrip("/"),
            altinn2_url=raw["BROKER_ALTINN2_URL"].rstrip("/"),
            enhetsregisteret_url=raw["BROKER_ENHETSREGISTERET_URL"].rstrip("/"),
        ),
        http=HttpSettings(
            connect_timeout=_float(raw, "BROKER_HTTP_CONNECT_TIMEOUT"),
            read_timeout=_float(raw, "BROKER_HTTP_READ_TIMEOUT"),
            max_connections=_int(raw, "BROKER_HTTP_MAX_CONNECTIONS"),
        ),
        consent=ConsentSettings(
            resource=raw["BROKER_CONSENT_RESOURCE"],
            max_days=_int(raw, "BROKER_CONSENT_MAX_DAYS"),
            start_ttl=_int(raw, "BROKER_FLOW_START_TTL"),
            return_ttl=_int(raw, "BROKER_FLOW_RETURN_TTL"),
            reconcile_interval=_int(raw, "BROKER_RECONCILE_INTERVAL"),
            altinn_mode=_choice(raw, "BROKER_ALTINN_MODE", ("vendor", "org")),
            generation=_choice(raw, "BROKER_ALTINN_GENERATION", ("altinn3", "altinn2")),
            migrated_resource=raw["BROKER_MIGRATED_RESOURCE"],
        ),
        altinn2=Altinn2Settings(
            api_key=Secret(raw["BROKER_ALTINN2_API_KEY"]),
            auth=_choice(raw, "BROKER_ALTINN2_AUTH", ("maskinporten", "apikey")),
            service=_service(raw, "BROKER_ALTINN2_SERVICE"),
            token_scope=raw["BROKER_ALTINN2_TOKEN_SCOPE"],
        ),
        relay=RelaySettings(
            signing_key_file=raw["BROKER_SIGNING_KEY_FILE"],
            concurrency=_int(raw, "BROKER_SKATTEETATEN_CONCURRENCY"),
            slot_timeout=_float(raw, "BROKER_SKATTEETATEN_SLOT_TIMEOUT"),
        ),
        maskinporten=MaskinportenSettings(
            client_id=raw["BROKER_MASKINPORTEN_CLIENT_ID"],
            key_file=raw["BROKER_MASKINPORTEN_KEY_FILE"],
            cert_file=raw["BROKER_MASKINPORTEN_CERT_FILE"],
            org_number=raw["BROKER_ORG_NUMBER"],
            client_token_scope=raw["BROKER_CLIENT_TOKEN_SCOPE"],
        ),
    )


def _key_values(keys: str) -> list[str]:
    return [part.split(":", 1)[-1] for part in keys.split(",") if part.strip()]


def _int(raw: Mapping[str, str], name: str) -> int:
    try:
        value = int(raw[name])
    except ValueError:
        raise SettingsError(f"{name} must be an integer") from None
    if value < 0:
        raise SettingsError(f"{name} must not be negative")
    return value


def _choice(raw: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    if raw[name] not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}")
    return raw[name]


def _service(raw: Mapping[str, str], name: str) -> str:
    code, _, edition = raw[name].partition("_")
    if not (code.isascii() and code.isdigit() and edition.isascii() and edition.isdigit()):
        raise SettingsError(f"{name} must be a service code and edition, like 5616_2")
    return raw[name]


def _float(raw: Mapping[str, str], name: str) -> float:
    try:
        value = float(raw[name])
    except ValueError:
        raise SettingsError(f"{name} must be a number") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive")
    return value


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError("BROKER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    return level


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return len(value) < _MIN_SECRET_LENGTH or any(m in lowered for m in _PLACEHOLDER_MARKERS)


def _check_secrets(settings: Settings) -> None:
    if settings.is_dev:
        return
    problems = []
    if _looks_like_placeholder(str(settings.secret_key)):
        problems.append("BROKER_SECRET_KEY is missing, too short or a placeholder")
    keys = _key_values(str(settings.encryption_keys))
    if not keys or any(_looks_like_placeholder(k) for k in keys):
        problems.append("BROKER_ENCRYPTION_KEYS is missing or holds a placeholder key")
    if not settings.relay.signing_key_file:
        problems.append("BROKER_SIGNING_KEY_FILE is missing")
    if settings.consent.generation == "altinn2" and not str(settings.altinn2.api_key):
        problems.append("BROKER_ALTINN2_API_KEY is missing (BROKER_ALTINN_GENERATION=altinn2)")
    if problems:
        raise SettingsError(
            f"refusing to start with BROKER_ENV={settings.env}: " + "; ".join(problems)
        )
