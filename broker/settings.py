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
    "AdminSettings",
    "Altinn2Settings",
    "ConsentSettings",
    "Environment",
    "HttpSettings",
    "MaskinportenSettings",
    "RelaySettings",
    "Settings",
    "SettingsError",
    "Variable",
    "WebhookSettings",
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
    Variable(
        "BROKER_DATABASE_PRE_PING",
        "false",
        "`true`: test each pooled PostgreSQL connection with a round trip before use. `false`: "
        "after a database restart one request per process fails and the pool reconnects.",
    ),
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
    Variable(
        "BROKER_ALTINN_EVENTS_INTERVAL",
        "60",
        "Seconds between reads of Altinn's consent events feed, which detect revocations "
        "(0 turns the job off).",
    ),
    Variable(
        "BROKER_WEBHOOK_POLL_INTERVAL",
        "0.5",
        "Seconds between a delivery worker's looks for due webhooks (0: this process delivers "
        "none). A change made in the same process wakes it at once.",
    ),
    Variable(
        "BROKER_WEBHOOK_CONCURRENCY",
        "16",
        "Webhook deliveries in flight per process (at most). More is slower with stock httpx "
        "(its pool is scanned per request; see docs/benchmarks.md).",
    ),
    Variable("BROKER_WEBHOOK_TIMEOUT", "15", "Seconds a receiver has to answer a delivery."),
    Variable(
        "BROKER_WEBHOOK_LEASE",
        "60",
        "Seconds a worker holds a claimed delivery; then another process may take it over "
        "(must exceed BROKER_WEBHOOK_TIMEOUT).",
    ),
    Variable(
        "BROKER_WEBHOOK_RETRY_SCHEDULE",
        "5,300,1800,7200,18000,36000,50400,72000,86400",
        "Seconds to wait after the 1st, 2nd, … failed attempt (each ±20 % jitter, at least "
        "`Retry-After`); when the list is used up the delivery fails.",
    ),
    Variable(
        "BROKER_WEBHOOK_DISABLE_AFTER",
        "432000",
        "Seconds of continuous failure after which an endpoint is disabled (5 days).",
    ),
    Variable(
        "BROKER_WEBHOOK_SECRET_OVERLAP",
        "86400",
        "Default seconds the old signing secret keeps signing after a rotation.",
    ),
    Variable(
        "BROKER_WEBHOOK_ALLOW_LOCAL",
        "false",
        "`true` accepts `http://` and loopback or private webhook URLs (dev and the sandbox "
        "only; refused outside dev/test).",
    ),
    Variable(
        "BROKER_ADMIN_SESSION_IDLE",
        "1800",
        "Seconds an admin's web session survives without a request (then: log in again).",
    ),
    Variable(
        "BROKER_ADMIN_SESSION_MAX",
        "28800",
        "Seconds an admin's web session lives at most, however busy.",
    ),
    Variable(
        "BROKER_ADMIN_LOGIN_ATTEMPTS",
        "5",
        "Failed admin logins allowed per account, and per client address, within "
        "BROKER_ADMIN_LOGIN_WINDOW; more are refused until the oldest leaves the window.",
    ),
    Variable(
        "BROKER_ADMIN_LOGIN_WINDOW", "900", "Seconds over which failed admin logins are counted."
    ),
    Variable(
        "BROKER_ADMIN_PASSWORD_COST",
        "15",
        "scrypt cost of new admin password hashes, as log2 of N (15: 32 MiB per hash). At "
        "least 15 outside dev/test.",
    ),
    Variable("BROKER_HTTP_CONNECT_TIMEOUT", "3.0", "Seconds to open an upstream connection."),
    Variable("BROKER_HTTP_READ_TIMEOUT", "10.0", "Seconds between bytes from an upstream."),
    Variable("BROKER_HTTP_MAX_CONNECTIONS", "20", "Pooled connections per upstream."),
    Variable(
        "BROKER_HTTP_TRANSPORT",
        "httpx",
        "Upstream HTTP transport: `httpx` (stock) or `aiohttp` (httpx-aiohttp); see "
        "docs/benchmarks.md for why the default is what it is.",
    ),
    Variable(
        "BROKER_AUTH_CACHE_SECONDS",
        "10",
        "Seconds a verified API key is remembered in-process (0: check the database on every "
        "call). A key revoked elsewhere stops working within this time; in the same process at "
        "once.",
    ),
)

_DEFAULTS = {v.name: v.default for v in VARIABLES}


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float
    read_timeout: float
    max_connections: int
    transport: str


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
    events_interval: int = 60
    generation: str = "altinn3"
    migrated_resource: str = "digdir_5616_2"


@dataclass(frozen=True)
class WebhookSettings:
    poll_interval: float
    concurrency: int
    timeout: float
    lease: float
    retry_schedule: tuple[float, ...]
    disable_after: int
    secret_overlap: int
    allow_local: bool


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
class AdminSettings:
    session_idle: int = 1800
    session_max: int = 28800
    login_attempts: int = 5
    login_window: int = 900
    password_cost: int = 15


@dataclass(frozen=True)
class DatabaseSettings:
    url: Secret
    pool_size: int
    sqlite_busy_timeout_ms: int
    pre_ping: bool


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
    auth_cache_seconds: int
    webhooks: WebhookSettings
    altinn2: Altinn2Settings
    admin: AdminSettings = AdminSettings()

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
            pre_ping=_choice(raw, "BROKER_DATABASE_PRE_PING", ("true", "false")) == "true",
        ),
        secret_key=Secret(raw["BROKER_SECRET_KEY"]),
        encryption_keys=Secret(raw["BROKER_ENCRYPTION_KEYS"]),
        log_level=_log_level(raw["BROKER_LOG_LEVEL"]),
        auth_cache_seconds=_int(raw, "BROKER_AUTH_CACHE_SECONDS"),
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
            transport=_choice(raw, "BROKER_HTTP_TRANSPORT", ("httpx", "aiohttp")),
        ),
        consent=ConsentSettings(
            resource=raw["BROKER_CONSENT_RESOURCE"],
            max_days=_int(raw, "BROKER_CONSENT_MAX_DAYS"),
            start_ttl=_int(raw, "BROKER_FLOW_START_TTL"),
            return_ttl=_int(raw, "BROKER_FLOW_RETURN_TTL"),
            reconcile_interval=_int(raw, "BROKER_RECONCILE_INTERVAL"),
            altinn_mode=_choice(raw, "BROKER_ALTINN_MODE", ("vendor", "org")),
            events_interval=_int(raw, "BROKER_ALTINN_EVENTS_INTERVAL"),
            generation=_choice(raw, "BROKER_ALTINN_GENERATION", ("altinn3", "altinn2")),
            migrated_resource=raw["BROKER_MIGRATED_RESOURCE"],
        ),
        altinn2=Altinn2Settings(
            api_key=Secret(raw["BROKER_ALTINN2_API_KEY"]),
            auth=_choice(raw, "BROKER_ALTINN2_AUTH", ("maskinporten", "apikey")),
            service=_service(raw, "BROKER_ALTINN2_SERVICE"),
            token_scope=raw["BROKER_ALTINN2_TOKEN_SCOPE"],
        ),
        webhooks=_webhooks(raw),
        admin=_admin(raw),
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


def _webhooks(raw: Mapping[str, str]) -> WebhookSettings:
    settings = WebhookSettings(
        poll_interval=_seconds(raw, "BROKER_WEBHOOK_POLL_INTERVAL"),
        concurrency=_int(raw, "BROKER_WEBHOOK_CONCURRENCY"),
        timeout=_float(raw, "BROKER_WEBHOOK_TIMEOUT"),
        lease=_float(raw, "BROKER_WEBHOOK_LEASE"),
        retry_schedule=_schedule(raw, "BROKER_WEBHOOK_RETRY_SCHEDULE"),
        disable_after=_int(raw, "BROKER_WEBHOOK_DISABLE_AFTER"),
        secret_overlap=_int(raw, "BROKER_WEBHOOK_SECRET_OVERLAP"),
        allow_local=_choice(raw, "BROKER_WEBHOOK_ALLOW_LOCAL", ("true", "false")) == "true",
    )
    if settings.concurrency < 1:
        raise SettingsError("BROKER_WEBHOOK_CONCURRENCY must be at least 1")
    if settings.lease <= settings.timeout:
        # A lease shorter than a delivery would let a second worker send it while the first
        # still waits for the answer.
        raise SettingsError("BROKER_WEBHOOK_LEASE must exceed BROKER_WEBHOOK_TIMEOUT")
    return settings


def _admin(raw: Mapping[str, str]) -> AdminSettings:
    settings = AdminSettings(
        session_idle=_int(raw, "BROKER_ADMIN_SESSION_IDLE"),
        session_max=_int(raw, "BROKER_ADMIN_SESSION_MAX"),
        login_attempts=_int(raw, "BROKER_ADMIN_LOGIN_ATTEMPTS"),
        login_window=_int(raw, "BROKER_ADMIN_LOGIN_WINDOW"),
        password_cost=_int(raw, "BROKER_ADMIN_PASSWORD_COST"),
    )
    if not 0 < settings.session_idle <= settings.session_max:
        raise SettingsError(
            "BROKER_ADMIN_SESSION_IDLE must be positive and at most BROKER_ADMIN_SESSION_MAX"
        )
    if settings.login_attempts < 1 or settings.login_window < 1:
        raise SettingsError("BROKER_ADMIN_LOGIN_ATTEMPTS and _WINDOW must be at least 1")
    if not 10 <= settings.password_cost <= 20:
        raise SettingsError("BROKER_ADMIN_PASSWORD_COST must be from 10 to 20")
    return settings


def _seconds(raw: Mapping[str, str], name: str) -> float:
    """A number of seconds where 0 means "off"."""
    try:
        value = float(raw[name])
    except ValueError:
        raise SettingsError(f"{name} must be a number") from None
    if not value >= 0:  # also refuses NaN
        raise SettingsError(f"{name} must not be negative")
    return value


def _schedule(raw: Mapping[str, str], name: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in raw[name].split(","))
    except ValueError:
        raise SettingsError(f"{name} must be a comma-separated list of seconds") from None
    if not all(delay > 0 for delay in delays):
        raise SettingsError(f"{name} must list positive numbers of seconds")
    return delays


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
    if settings.webhooks.allow_local:
        problems.append("BROKER_WEBHOOK_ALLOW_LOCAL=true is for dev and the sandbox only")
    if settings.admin.password_cost < 15:
        problems.append("BROKER_ADMIN_PASSWORD_COST below 15 is for dev and tests only")
    if settings.consent.generation == "altinn2" and not str(settings.altinn2.api_key):
        problems.append("BROKER_ALTINN2_API_KEY is missing (BROKER_ALTINN_GENERATION=altinn2)")
    if problems:
        raise SettingsError(
            f"refusing to start with BROKER_ENV={settings.env}: " + "; ".join(problems)
        )
