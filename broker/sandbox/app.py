"""The whole sandbox as one app: the fakes mounted under path prefixes, sharing one world.

    /maskinporten/...   fake Maskinporten (issuer ``<base>/maskinporten/``)
    /altinn/...         fake Altinn 3 Access Management API and consent page
    /altinn2/...        fake Altinn 2 consent API, consent tokens, keys and consent page
    /brreg/...          fake Enhetsregisteret (organisation names, for Altinn 2)
    /skatteetaten/...   fake Skatteetaten oppdrag API
    /control/...        the control API (``control.py``), which only the sandbox has
    /                   an index page listing the seed data

One ``Clock`` and one ``ConsentRegister`` are shared, so a consent approved on the Altinn page
is what Maskinporten issues tokens for and what Skatteetaten checks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from broker.sandbox import altinn2, altinn3, brreg, maskinporten, skatteetaten
from broker.sandbox.control import control_routes
from broker.sandbox.portal import PortalConfig, create_portal
from broker.sandbox.skatteetaten_config import SkatteetatenConfig
from broker.sandbox.world import Sandbox

__all__ = ["create_app"]


class _CountCalls:
    """Counts calls to a mounted fake by method and path (for the control API's counters)."""

    def __init__(self, app: ASGIApp, counter: Counter[str]) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.counter[f"{scope['method']} {scope['path']}"] += 1
        await self.app(scope, receive, send)


def create_app(sandbox: Sandbox, *, portal: PortalConfig | None = None) -> Starlette:
    """The composed sandbox; with ``portal``, the demo portal is served under ``/portal``."""
    mp_config = sandbox.maskinporten_config
    mp_app = maskinporten.create_app(
        mp_config,
        sandbox.clock,
        state=sandbox.maskinporten,
        keys=sandbox.keys,
        consents=sandbox.register,
    )
    altinn_app = altinn3.create_app(
        altinn3.Altinn3Config(
            public_base_url=f"{sandbox.config.base_url}/altinn",
            maskinporten_issuer=mp_config.issuer,
            events_safety_lag_seconds=sandbox.config.events_safety_lag_seconds,
        ),
        sandbox.clock,
        state=sandbox.altinn,
        maskinporten_jwks=sandbox.keys.public_jwks,
    )
    altinn2_app = altinn2.create_app(
        sandbox.altinn2_config,
        sandbox.clock,
        state=sandbox.altinn2,
        keys=sandbox.altinn2_keys,
        maskinporten_jwks=sandbox.keys.public_jwks,
    )
    skatteetaten_app = skatteetaten.create_app(
        SkatteetatenConfig(issuer=mp_config.issuer, consent_mode=sandbox.config.consent_mode),
        sandbox.clock,
        state=sandbox.skatteetaten,
        register=sandbox.register,
        jwks=sandbox.keys.public_jwks,
        altinn2=sandbox.altinn2_view(),
    )

    async def index(request: Request) -> Response:
        lines = "\n".join(sandbox.describe())
        return HTMLResponse(
            f"<!doctype html><title>ebevis sandbox</title><pre>{escape(lines)}</pre>"
        )

    routes = [
        Route("/", index, methods=["GET"]),
        Mount("/maskinporten", app=mp_app),
        Mount("/altinn", app=_CountCalls(altinn_app, sandbox.altinn_calls)),
        Mount("/altinn2", app=_CountCalls(altinn2_app, sandbox.altinn_calls)),
        Mount("/brreg", app=brreg.create_app(sandbox.parties)),
        Mount("/skatteetaten", app=skatteetaten_app),
        Mount("/control", routes=control_routes(sandbox)),
    ]
    # The portal calls the broker over the network, like any procurement system would.
    broker_http = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
    if portal is not None:
        routes.append(Mount("/portal", app=create_portal(portal, broker_http, sandbox.parties)))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await broker_http.aclose()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    return app
