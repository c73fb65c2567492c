"""The composition root: the one place that picks concrete adapters and wires the app."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware

from broker.admin.auth import AdminAuth, LoginPolicy
from broker.admin.clients import ClientAdmin
from broker.admin.passwords import PasswordHasher
from broker.admin.routes import admin_mount
from broker.admin.service import AdminService
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
from broker.consent.ports import ConsentToken, Gateway, Gateways, UpstreamUnavailable
from broker.consent.reconcile import Reconciler
from broker.consent.revocations import RevocationPoller
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
from broker.jobs import Periodic, Supervised
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
from broker.store.audit_writer import GroupCommitAudit
from broker.store.db import (
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
    schema_revisions,
)
from broker.store.uow import SqlUnitOfWork
from broker.webhooks import routes as webhook_routes
from broker.webhooks.client import WebhookClient
from broker.webhooks.schedule import RetryPolicy
from broker.webhooks.service import WebhookService
from broker.webhooks.ssrf import UrlPolicy, guarded_transport
from broker.webhooks.worker import DeliveryWorker, WorkerConfig

__all__ = ["UPSTREAMS", "AdminTools", "Resources", "admin_tools", "create_app"]

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
            str(db.url),
            pool_size=db.pool_size,
            busy_timeout_ms=db.sqlite_busy_timeout_ms,
            pre_ping=db.pre_ping,
        )
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(self.engine)
        self.read_sessions = create_read_sessionmaker(self.engine)
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
    timeout = httpx.Timeout(
        connect=http.connect_timeout,
        read=http.read_timeout,
        write=http.read_timeout,
        pool=http.connect_timeout,
    )
    max_connections = http.max_connections
    if upstream == "webhooks":
        hooks = settings.webhooks
        timeout, max_connections = httpx.Timeout(hooks.timeout), hooks.concurrency
        if transport is None:
            # Every connection to a client's URL passes the SSRF rules (broker/webhooks/ssrf.py).
            policy = UrlPolicy(allow_local=hooks.allow_local)
            transport = guarded_transport(policy, max_connections=hooks.concurrency)
    base_urls = {
        "maskinporten": settings.upstreams.maskinporten_url,
        "altinn": settings.upstreams.altinn_url,
        "altinn2": settings.upstreams.altinn2_url,
        "enhetsregisteret": settings.upstreams.enhetsregisteret_url,
        "skatteetaten": settings.upstreams.skatteetaten_url,
        "webhooks": "",
    }
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    if transport is None and http.transport == "aiohttp":
        # httpx's API on aiohttp's connection pool (performance.md §2.3); the choice between
        # the two is measured in bench/relay_overhead.py.
        transport = AiohttpTransport(limits=limits)
    return httpx.AsyncClient(
        base_url=base_urls[upstream],
        transport=transport,
        timeout=timeout,
        limits=limits,
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


@dataclass(frozen=True)
class AdminTools:
    """The operators' use cases, for the web interface and the CLI."""

    auth: AdminAuth
    service: AdminService
    clients: ClientAdmin


def _admin_tools(
    settings: Settings,
    units: Callable[[], SqlUnitOfWork],
    now: Callable[[], datetime],
    *,
    forget_client: Callable[[uuid.UUID], None],
    wake: Callable[[], None],
    withdrawals: Withdrawals,
) -> AdminTools:
    admin, secret = settings.admin, str(settings.secret_key)
    policy = LoginPolicy(
        attempts=admin.login_attempts,
        window=admin.login_window,
        idle=admin.session_idle,
        absolute=admin.session_max,
    )
    return AdminTools(
        auth=AdminAuth(
            units,
            hasher=PasswordHasher(log2_n=admin.password_cost),
            pepper=secret.encode(),
            policy=policy,
            now=now,
        ),
        service=AdminService(
            units,
            now=now,
            withdraw=lambda request, actor: withdrawals.withdraw(request, actor=actor),
        ),
        clients=ClientAdmin(
            units,
            pepper=secret.encode(),
            url_policy=UrlPolicy(allow_local=settings.webhooks.allow_local),
            secret_overlap=settings.webhooks.secret_overlap,
            now=now,
            forget_client=forget_client,
            wake=wake,
        ),
    )


@asynccontextmanager
async def admin_tools(settings: Settings) -> AsyncIterator[AdminTools]:
    """The admin use cases on the configured database, without a server (``broker admin …``).
    Other processes' caches are not reached from here: a key revoked by the CLI stops working
    in a running server when its cache entry ends (at once where nothing is cached)."""
    resources = Resources(settings, {})
    cipher = _cipher(settings)

    def units() -> SqlUnitOfWork:
        return SqlUnitOfWork(resources.sessions, cipher)

    async with resources.open():
        # An administrator's revocation of an Altinn 2 consent is withdrawn there from here too.
        gateways: Gateways = {}
        try:
            gateways = _adapters(settings, resources, _now).gateways
        except RuntimeError as exc:
            # No usable Maskinporten key on this machine: the admin commands still work, and a
            # revocation's withdrawal at Altinn 2 is left to the server's reconciler.
            logger.warning("Altinn 2 withdrawals are left to the server: %s", exc)
        yield _admin_tools(
            settings,
            units,
            _now,
            forget_client=lambda _client_id: None,
            wake=lambda: None,
            withdrawals=Withdrawals(units, gateways=gateways, now=_now),
        )


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
        # A change that queues a webhook wakes this process's delivery worker on commit.
        return SqlUnitOfWork(resources.sessions, cipher, on_outbox=worker.wake)

    consent = settings.consent
    generation = Generation(consent.generation)
    clients = ClientService(
        units,
        pepper=str(settings.secret_key).encode(),
        verify_bearer=_bearer_verifier(adapters.verifier, settings.maskinporten.client_token_scope),
        now=now,
        key_cache_seconds=settings.auth_cache_seconds,
        # Monotonic in production; a test's clock, so that its time travel ends entries too.
        monotonic=time.monotonic if clock is None else lambda: now().timestamp(),
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
    revocations = RevocationPoller(
        units, feed=adapters.altinn, altinn=adapters.altinn, now=now, max_days=consent.max_days
    )
    hooks = settings.webhooks
    url_policy = UrlPolicy(allow_local=hooks.allow_local)
    worker = DeliveryWorker(
        units,
        client=WebhookClient(resources.http("webhooks"), policy=url_policy, timeout=hooks.timeout),
        policy=RetryPolicy(delays=hooks.retry_schedule, disable_after=hooks.disable_after),
        now=now,
        config=WorkerConfig(
            concurrency=hooks.concurrency,
            lease=hooks.lease,
            poll_interval=hooks.poll_interval,
        ),
    )
    webhooks = WebhookService(
        units,
        url_policy=url_policy,
        secret_overlap=hooks.secret_overlap,
        now=now,
        wake=worker.wake,
    )
    signer = _signer(settings)
    relay = RelayService(
        units,
        reads=lambda: SqlUnitOfWork(resources.read_sessions, cipher),
        tokens={Generation.ALTINN3: adapters.tokens, Generation.ALTINN2: adapters.altinn2_relay},
        source=SkatteetatenClient(resources.http("skatteetaten"), clock=now),
        limiter=limiter_for(
            resources.engine,
            limit=settings.relay.concurrency,
            timeout=settings.relay.slot_timeout,
        ),
        signer=signer,
        now=now,
        audit=GroupCommitAudit(units),
    )
    admin = _admin_tools(
        settings,
        units,
        now,
        # Revoking a key or disabling a client forgets what authentication remembers about the
        # client in this process (the API-key cache, where there is one).
        forget_client=getattr(clients, "forget_client", lambda _client_id: None),
        wake=worker.wake,
        withdrawals=withdrawals,
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
            if consent.events_interval > 0:
                await jobs.enter_async_context(
                    Periodic("altinn-events", revocations.run_once, consent.events_interval)
                )
            if hooks.poll_interval > 0:
                await jobs.enter_async_context(Supervised("webhooks", worker.run))
            yield {"resources": resources}

    app = Starlette(
        routes=[
            *health_routes.routes(readiness=readiness, metrics=metrics),
            *openapi_routes(),
            *consent_routes.api_routes(service, clients.authenticate),
            *relay_routes.relay_routes(relay, clients.authenticate, signer),
            *webhook_routes.webhook_routes(webhooks, clients.authenticate),
            *consent_routes.browser_routes(
                browser, secure_cookie=not settings.is_dev, cookie_max_age=consent.return_ttl
            ),
            admin_mount(
                auth=admin.auth,
                service=admin.service,
                clients=admin.clients,
                secret_key=str(settings.secret_key),
                secure_cookie=not settings.is_dev,
                policy=admin.auth.policy,
                public_url=settings.public_url,
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
    app.state.revocations = revocations
    app.state.webhook_worker = worker
    app.state.webhooks = webhooks
    app.state.cipher = cipher
    app.state.signer = signer
    app.state.maskinporten = adapters.tokens
    app.state.admin = admin
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
