"""A whole broker wired to the whole sandbox, in process: the harness of the consent-flow tests.

The broker's Maskinporten, Altinn and Skatteetaten clients reach the sandbox over
``httpx.ASGITransport``; both share the sandbox's clock, so time travel moves both. A "browser"
is an httpx client with its own cookie jar that does not follow redirects, so each hop is seen.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.applications import Starlette

from broker.app import create_app
from broker.clients.service import ClientService
from broker.consent.reconcile import Reconciler
from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.clock import Clock
from broker.sandbox.seed import ALTINN2_API_KEY
from broker.store import migrate
from broker.store.consents import SqlConsentStore
from broker.store.db import create_engine
from tests.support import free_port, make_settings, serving

SANDBOX = "http://sandbox.test"
BROKER = "http://broker.test"
PORTAL_RETURN = "https://portal.example/ebevis/return"
AUTHORITY = "310200018"
OTHER_AUTHORITY = "310200026"
SUPPLIER = "310100013"  # Kari Nordmann (01819040180) may answer for it
APPROVER = "01819040180"
ALTINN3_UI = f"{SANDBOX}/altinn/accessmanagement/ui/consent/request?id="
ALTINN2_UI = f"{SANDBOX}/altinn2/ui/AccessConsent/request?id="


@dataclass
class Tenant:
    client_id: uuid.UUID
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class Stack:
    sandbox: world.Sandbox
    app: Starlette
    api: httpx.AsyncClient
    sandbox_http: httpx.AsyncClient
    tenant: Tenant
    other: Tenant
    _transport: httpx.ASGITransport
    public_url: str = BROKER

    def browser(self) -> httpx.AsyncClient:
        """A new browser (its own cookie jar) that shows every redirect instead of following."""
        return httpx.AsyncClient(transport=self._transport, base_url=self.public_url)

    @property
    def reconciler(self) -> Reconciler:
        reconciler = self.app.state.reconciler
        assert isinstance(reconciler, Reconciler)
        return reconciler

    async def create(self, tenant: Tenant | None = None, **fields: Any) -> dict[str, Any]:
        body = {
            "requestor": AUTHORITY,
            "subject": SUPPLIER,
            "reference": "case-42",
            "return_url": PORTAL_RETURN,
            **fields,
        }
        response = await self.api.post(
            "/v1/consent-requests", json=body, headers=(tenant or self.tenant).headers
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert isinstance(created, dict)
        return created

    async def read(self, request_id: str, tenant: Tenant | None = None) -> dict[str, Any]:
        response = await self.api.get(
            f"/v1/consent-requests/{request_id}", headers=(tenant or self.tenant).headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body, dict)
        return body

    async def receipt(self, request_id: str) -> bytes | None:
        """The stored receipt, decrypted as an operator would (for assertions)."""
        async with self.app.state.resources.sessions() as session:
            store = SqlConsentStore(session, self.app.state.cipher)
            return await store.receipt(uuid.UUID(request_id))

    async def go_to_altinn(self, browser: httpx.AsyncClient, consent_url: str) -> str:
        """Open the consent link; return the Altinn consent id from the viewUri (Altinn 3) or
        the AuthorizationCode from the GUI link (Altinn 2)."""
        response = await browser.get(consent_url)
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        sandbox = str(self.sandbox_http.base_url).rstrip("/")
        # The loopback stack serves the sandbox elsewhere than SANDBOX.
        ui = tuple(u.replace(SANDBOX, sandbox, 1) for u in (ALTINN3_UI, ALTINN2_UI))
        assert location.startswith(ui), location
        return parse_qs(urlsplit(location).query)["id"][0]

    def control_path(self, altinn_id: str, action: str) -> str:
        """The sandbox's control path acting on this Altinn request, in its generation."""
        if self.sandbox.altinn2.get(altinn_id) is not None:
            return f"/control/altinn2/{altinn_id}/{action}"
        return f"/control/consents/{altinn_id}/{action}"

    def redirect_url(self, altinn_id: str) -> str:
        """The way back Altinn holds for the request (before anyone answered)."""
        request = self.sandbox.altinn2.get(altinn_id) or self.sandbox.altinn.get(altinn_id)
        assert request is not None
        return request.redirect_url

    async def answer(self, altinn_id: str, action: str = "approve") -> str:
        """Answer as the person would in Altinn; return where Altinn sends the browser back."""
        response = await self.sandbox_http.post(
            self.control_path(altinn_id, action), json={"person": APPROVER}
        )
        assert response.status_code == 200, response.text
        redirect = response.json()["redirect"]
        assert isinstance(redirect, str)
        return redirect

    async def come_back(self, browser: httpx.AsyncClient, redirect: str) -> httpx.Response:
        assert redirect.startswith(f"{self.public_url}/consent/return?")
        return await browser.get(redirect)

    async def run_flow(self, action: str = "approve") -> tuple[dict[str, Any], httpx.Response]:
        created = await self.create()
        async with self.browser() as browser:
            altinn_id = await self.go_to_altinn(browser, created["consent_url"])
            back = await self.come_back(browser, await self.answer(altinn_id, action))
        return created, back


async def _register(clients: ClientService, name: str, org: str) -> Tenant:
    client_id = await clients.register(name=name, org_number=org, return_urls=(PORTAL_RETURN,))
    key = await clients.issue_key(client_id)
    return Tenant(client_id, key.value)


Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]
_QUIET = {"reconcile_interval": "0", "altinn_events_interval": "0", "webhook_poll_interval": "0"}


@asynccontextmanager
async def stack(
    database_url: str,
    tmp_path: Path,
    wrap_skatteetaten: Wrap | None = None,
    webhooks: httpx.AsyncBaseTransport | None = None,
    events_lag: int = 0,
    /,
    **settings: str,
) -> AsyncIterator[Stack]:
    """The whole stack; ``settings`` are BROKER_* overrides without the prefix (e.g.
    ``env="prod"``, ``public_url="https://broker.test"``, ``altinn_generation="altinn2"`` for
    tenants on Altinn 2). ``wrap_skatteetaten`` may put something between the broker and the
    sandbox's Skatteetaten (to watch or answer instead);
    ``webhooks`` replaces the network to the clients' webhook receivers; ``events_lag`` is
    the sandbox Altinn events feed's safety lag (300 s in Altinn). Background jobs are
    off unless ``settings`` turn them on: tests run them by hand (``run_once``)."""
    async with _stack(
        database_url, tmp_path, wrap_skatteetaten, webhooks, events_lag, False, settings
    ) as s:
        yield s


@asynccontextmanager
async def loopback_stack(
    database_url: str, tmp_path: Path, /, **settings: str
) -> AsyncIterator[Stack]:
    """The whole stack with the sandbox served by uvicorn on a loopback port: the broker reaches
    it over real sockets with its configured transport (BROKER_HTTP_TRANSPORT)."""
    async with _stack(database_url, tmp_path, None, None, 0, True, settings) as s:
        yield s


@asynccontextmanager
async def _stack(
    database_url: str,
    tmp_path: Path,
    wrap_skatteetaten: Wrap | None,
    webhooks: httpx.AsyncBaseTransport | None,
    events_lag: int,
    loopback: bool,
    settings: dict[str, str],
) -> AsyncIterator[Stack]:
    public_url = settings.pop("public_url", BROKER)
    sandbox_url = f"http://127.0.0.1:{free_port()}" if loopback else SANDBOX
    clock = Clock()
    key_file = tmp_path / "broker-client.jwk.json"
    sandbox = world.build(
        world.SandboxConfig(
            base_url=sandbox_url,
            broker_key_file=key_file,
            events_safety_lag_seconds=events_lag,
            altinn2_redirect_domains=(urlsplit(public_url).hostname or "",),
        ),
        clock,
    )
    sandbox_asgi = sandbox_app.create_app(sandbox)
    sandbox_transport = httpx.ASGITransport(app=sandbox_asgi)
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    app = create_app(
        make_settings(
            database_url=database_url,
            public_url=public_url,
            maskinporten_url=f"{sandbox_url}/maskinporten",
            altinn_url=f"{sandbox_url}/altinn",
            altinn2_url=f"{sandbox_url}/altinn2",
            altinn2_api_key=ALTINN2_API_KEY,
            enhetsregisteret_url=f"{sandbox_url}/brreg/enhetsregisteret/api",
            skatteetaten_url=f"{sandbox_url}/skatteetaten",
            maskinporten_key_file=str(key_file),
            **{**_QUIET, **settings},
        ),
        transports=None
        if loopback
        else {
            "maskinporten": sandbox_transport,
            "altinn": sandbox_transport,
            "altinn2": sandbox_transport,
            "enhetsregisteret": sandbox_transport,
            "skatteetaten": wrap_skatteetaten(sandbox_transport)
            if wrap_skatteetaten
            else sandbox_transport,
            **({"webhooks": webhooks} if webhooks is not None else {}),
        },
        clock=clock.now,
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncExitStack() as exits:
        if loopback:
            port = int(sandbox_url.rsplit(":", 1)[1])
            await exits.enter_async_context(serving(sandbox_asgi, port))
        await exits.enter_async_context(app.router.lifespan_context(app))
        api = await exits.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=BROKER)
        )
        sandbox_http = await exits.enter_async_context(
            httpx.AsyncClient(
                transport=None if loopback else sandbox_transport, base_url=sandbox_url
            )
        )
        clients = app.state.clients
        tenant = await _register(clients, "Portal A", "310300012")
        other = await _register(clients, "Portal B", "974760673")
        yield Stack(sandbox, app, api, sandbox_http, tenant, other, transport, public_url)
