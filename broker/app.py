"""The composition root: the one place that picks concrete adapters and wires the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware

from broker.altinn.altinn2 import Altinn2Client
from broker.altinn.altinn2_relay import Altinn2RelayTokens
from broker.altinn.altinn2_schemas import ServiceEdition
from broker.altinn.altinn2_verifier import Altinn2TokenVerifier
from broker.altinn.client import AltinnClient
from broker.brreg.client import EnhetsregisteretClient
from broker.clients.service import ClientService, InvalidBearer
from broker.consent import routes as consent_routes
from broker.consent.browser import BrowserFlow
from broker.consent.confirm import Confirmer
from broker.consent.migrated import MigratedGrants
from broker.consent.model import Generation
from broker.consent.openapi import openapi_routes
from broker.consent.ports import ConsentToken, Gateway, UpstreamUnavailable
from broker.consent.reconcile import Reconciler
from broker.consent.service import ConsentPolicy, ConsentService
from broker.consent.tokens import FlowTokens
from broker.consent.withdraw import Withdrawals
from broker.crypto import Cipher, parse_keys
from broker.health import routes as health_routes
from broker.health.service import ReadinessService
from broker.http.middleware import (
    BodyLimitMiddleware,
    BrowserHeadersMiddleware,
    RequestMiddleware,
)
from broker.http.problems import exception_handlers
from broker.jobs import Periodic
from broker.maskinporten import MaskinportenClient, TokenInvalid, TokenVerifier, load_client_key
from broker.maskinporten.client import AccessToken
from broker.maskinporten.errors import ClientKeyInvalid
from broker.maskinporten.keys import load_certificate_key
from broker.observability.metrics import HttpMetrics
from broker.relay import routes as relay_routes
from broker.relay.limiter import limiter_for
from broker.relay.service import RelayService
from broker.relay.signing import BodySigner
from broker.settings import Settings
from broker.skatteetaten.client import SkatteetatenClient
from broker.store import migrate
from broker.store.db import create_engine, create_sessionmaker, schema_revisions
from broker.store.uow import SqlUnitOfWork

__all__ = ["UPSTREAMS", "Resources", "create_app"]

logger = logging.getLogger("broker.app")

UPSTREAMS = ("maskinporten", "altinn", "altinn2", "enhetsregisteret", "skatteetaten", "webhooks")
MAX_BODY_BYTES = 64 * 1024


class Resources:
    """The database engine and one pooled HTTP client per upstream, for one app.

    They are made when the app is built (neither connects until used, so building an app does
    no I/O) and closed by the app's lifespan; nothing is created at import time, so every app —
    each test's, the demo's — has its own.
    """

    def __init__(
        self, settings: Settings, transports: Mapping[str, httpx.AsyncBaseTransport]
    ) -> None:
        db = settings.database
        self.engine: AsyncEngine = create_engine(
            str(db.url), pool_size=db.pool_size, busy_timeout_ms=db.sqlite_busy_timeout_ms
        )
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(self.engine)
        self._http = {name: _client(settings, name, transports.get(name)) for name in UPSTREAMS}
        self.closed = False

    def http(self, upstream: str) -> httpx.AsyncClient:
        return self._http[upstream]

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Resources]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self._close)
            yield self

    async def _close(self) -> None:
        for client in self._http.values():
            await client.aclose()
        await self.engine.dispose()
        self.closed = True


def _client(
    settings: Settings, upstream: str, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    http = settings.http
    base_urls = {
        "maskinporten": settings.upstreams.maskinporten_url,
        "altinn": settings.upstreams.altinn_url,
        "altinn2": settings.upstreams.altinn2_url,
        "enhetsregisteret": settings.upstreams.enhetsregisteret_url,
        "skatteetaten": settings.upstreams.skatteetaten_url,
        "webhooks": "",
    }
    return httpx.AsyncClient(
        base_url=base_urls[upstream],
        transport=transport,
        timeout=httpx.Timeout(
            connect=http.connect_timeout,
            read=http.read_timeout,
            write=http.read_timeout,
            pool=http.connect_timeout,
        ),
        limits=httpx.Limits(
            max_connections=http.max_connections,
            max_keepalive_connections=http.max_connections,
        ),
        # Upstream redirects are never followed blindly (OWASP API10:2023).
        follow_redirects=False,
    )


def _now() -> datetime:
    return datetime.now(UTC)


class _KeyMissing:
    """Stands in for the Maskinporten client when its key could not be loaded (dev only): every
    call that needs a token fails as an unavailable upstream, with a clear log line."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def _fail(self) -> UpstreamUnavailable:
        logger.error("no Maskinporten key: %s", self._reason)
        return UpstreamUnavailable("the broker's Maskinporten key is not configured")

    async def access_token(self, scope: str, *, consumer_org: str | None = None) -> AccessToken:
        raise self._fail()

    def invalidate(
        self, scope: str, *, consumer_org: str | None = None, token: str | None = None
    ) -> bool:
        return False

    async def consent_token(
        self, *, consent_id: Any, subject_org: str, requestor_org: str
    ) -> ConsentToken:
        raise self._fail()

    def invalidate_consent(self, consent_id: Any, *, token: str | None = None) -> bool:
        return False


@dataclass(frozen=True)
class _Adapters:
    tokens: MaskinportenClient | _KeyMissing
    verifier: TokenVerifier
    altinn: AltinnClient
    altinn2: Altinn2Client
    altinn2_relay: Altinn2RelayTokens

    @property
    def gateways(self) -> dict[Generation, Gateway]:
        return {
            Generation.ALTINN3: Gateway(self.altinn, self.tokens),
            Generation.ALTINN2: Gateway(self.altinn2, self.altinn2, altinn_chooses_id=True),
        }


def _adapters(settings: Settings, resources: Resources, now: Callable[[], datetime]) -> _Adapters:
    issuer = settings.upstreams.maskinporten_url + "/"
    http = resources.http("maskinporten")
    verifier = TokenVerifier(http, issuer=issuer, jwks_uri=issuer + "jwk", clock=now)
    mp = settings.maskinporten
    tokens: MaskinportenClient | _KeyMissing
    try:
        key = (
            load_certificate_key(Path(mp.key_file), Path(mp.cert_file))
            if mp.cert_file
            else load_client_key(Path(mp.key_file))
        )
    except (OSError, ClientKeyInvalid) as exc:
        if not settings.is_dev:
            raise RuntimeError(f"BROKER_MASKINPORTEN_KEY_FILE cannot be used: {exc}") from exc
        tokens = _KeyMissing(f"{mp.key_file}: {type(exc).__name__}")
    else:
        tokens = MaskinportenClient(
            http,
            issuer=issuer,
            client_id=mp.client_id,
            key=key,
            clock=now,
            verifier=verifier,
            vendor_mode=settings.consent.altinn_mode == "vendor",
            client_org=mp.org_number,
        )
    altinn = AltinnClient(
        resources.http("altinn"),
        tokens,
        mode=settings.consent.altinn_mode,
        broker_org=mp.org_number,
        clock=now,
    )
    altinn2 = _altinn2(settings, resources, tokens, now)
    relay2 = Altinn2RelayTokens(
        tokens,
        altinn2,
        vendor_mode=settings.consent.altinn_mode == "vendor",
        broker_org=mp.org_number,
    )
    return _Adapters(tokens, verifier, altinn, altinn2, relay2)


def _altinn2(
    settings: Settings,
    resources: Resources,
    tokens: MaskinportenClient | _KeyMissing,
    now: Callable[[], datetime],
) -> Altinn2Client:
    a2 = settings.altinn2
    http = resources.http("altinn2")
    return Altinn2Client(
        http,
        tokens,
        api_key=str(a2.api_key),
        broker_org=settings.maskinporten.org_number,
        names=EnhetsregisteretClient(resources.http("enhetsregisteret"), clock=now),
        verifier=Altinn2TokenVerifier(
            http, jwks_uri=f"{settings.upstreams.altinn2_url}/api/metadata/jwk", clock=now
        ),
        clock=now,
        auth=a2.auth,
        service=ServiceEdition.parse(a2.service),
        tokens_scope=a2.token_scope,
    )


def _signer(settings: Settings) -> BodySigner:
    path = settings.relay.signing_key_file
    if path:
        return BodySigner.from_file(Path(path))
    # Dev and test only (settings refuse an empty path elsewhere): a key for this process.
    return BodySigner.generate()


def _cipher(settings: Settings) -> Cipher:
    keys = parse_keys(str(settings.encryption_keys))
    return Cipher(keys) if keys else Cipher.for_dev(str(settings.secret_key))


def create_app(
    settings: Settings,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """Build an app for ``settings``. ``transports`` replaces an upstream's network and
    ``clock`` the wall clock, in tests (the sandbox's clock makes time travel consistent)."""
    now = clock or _now
    unknown = set(transports or {}) - set(UPSTREAMS)
    if unknown:
        raise ValueError(f"unknown upstream(s): {sorted(unknown)}")
    resources = Resources(settings, transports or {})
    cipher = _cipher(settings)
    adapters = _adapters(settings, resources, now)

    def units() -> SqlUnitOfWork:
        return SqlUnitOfWork(resources.sessions, cipher)

    consent = settings.consent
    generation = Generation(consent.generation)
    clients = ClientService(
        units,
        pepper=str(settings.secret_key).encode(),
        verify_bearer=_bearer_verifier(adapters.verifier, settings.maskinporten.client_token_scope),
        now=now,
        default_generation=generation,
    )
    flow_tokens = FlowTokens(
        [str(settings.secret_key)],
        now=lambda: now().timestamp(),
        start_max_age=consent.start_ttl,
        # A handle lives as long as a request can; the return window itself (return_ttl) is
        # checked against the latest opening of the consent link, see BrowserFlow.finish.
        return_max_age=consent.max_days * 86400 + consent.start_ttl,
    )
    gateways = adapters.gateways
    confirmer = Confirmer(units, gateways=gateways, now=now)
    withdrawals = Withdrawals(units, gateways=gateways, now=now)
    browser = BrowserFlow(
        units,
        gateways=gateways,
        confirmer=confirmer,
        flow_tokens=flow_tokens,
        return_endpoint=f"{settings.public_url}/consent/return",
        return_ttl=consent.return_ttl,
        now=now,
    )
    service = ConsentService(
        units,
        policy=ConsentPolicy(
            resource=consent.resource,
            max_days=consent.max_days,
            altinn2_service=settings.altinn2.service,
            generation=generation,
        ),
        consent_url=lambda request_id: browser.consent_url(settings.public_url, request_id),
        cursor_key=str(settings.secret_key).encode(),
        now=now,
        withdrawals=withdrawals,
    )
    reconciler = Reconciler(units, confirmer=confirmer, now=now, withdrawals=withdrawals)
    signer = _signer(settings)
    relay = RelayService(
        units,
        tokens={Generation.ALTINN3: adapters.tokens, Generation.ALTINN2: adapters.altinn2_relay},
        source=SkatteetatenClient(resources.http("skatteetaten"), clock=now),
        limiter=limiter_for(
            resources.engine,
            limit=settings.relay.concurrency,
            timeout=settings.relay.slot_timeout,
        ),
        signer=signer,
        now=now,
    )
    metrics = HttpMetrics()
    readiness = ReadinessService(
        current_revisions=lambda: schema_revisions(resources.engine),
        expected_revisions=migrate.head_revisions(),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with resources.open(), AsyncExitStack() as jobs:
            if consent.reconcile_interval > 0:
                await jobs.enter_async_context(
                    Periodic("reconcile", reconciler.run_once, consent.reconcile_interval)
                )
            yield {"resources": resources}

    app = Starlette(
        routes=[
            *health_routes.routes(readiness=readiness, metrics=metrics),
            *openapi_routes(),
            *consent_routes.api_routes(service, clients.authenticate),
            *relay_routes.relay_routes(relay, clients.authenticate, signer),
            *consent_routes.browser_routes(
                browser, secure_cookie=not settings.is_dev, cookie_max_age=consent.return_ttl
            ),
        ],
        middleware=[
            Middleware(RequestMiddleware, metrics=metrics),
            Middleware(BrowserHeadersMiddleware),
            # Our bodies are small JSON objects; anything larger is refused as it is read.
            Middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES),
        ],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.resources = resources
    app.state.clients = clients
    app.state.reconciler = reconciler
    app.state.cipher = cipher
    app.state.signer = signer
    app.state.maskinporten = adapters.tokens
    app.state.now = now
    app.state.withdrawals = withdrawals
    app.state.migrated = MigratedGrants(
        units, tokens=adapters.tokens, resource=consent.migrated_resource, now=now
    )
    return app


def _bearer_verifier(verifier: TokenVerifier, scope: str) -> Any:
    async def verify(token: str) -> Mapping[str, Any]:
        try:
            return await verifier.verify(token, scope=scope)
        except TokenInvalid as exc:
            raise InvalidBearer(str(exc)) from None

    return verify
