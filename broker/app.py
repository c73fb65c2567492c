"""The composition root: the one place that picks concrete adapters and wires the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware

from broker.health import routes as health_routes
from broker.health.service import ReadinessService
from broker.http.middleware import RequestMiddleware
from broker.http.problems import exception_handlers
from broker.observability.metrics import HttpMetrics
from broker.settings import Settings
from broker.store import migrate
from broker.store.db import create_engine, create_sessionmaker, schema_revisions

__all__ = ["UPSTREAMS", "Resources", "create_app"]

UPSTREAMS = ("maskinporten", "altinn", "skatteetaten", "webhooks")


class Resources:
    """What the lifespan opens and closes: the database engine and one HTTP client per upstream.

    Services are built once in ``create_app`` and reach these through the holder, so nothing
    is created at import time and every app (each test's, the sandbox's) has its own.
    """

    def __init__(
        self, settings: Settings, transports: Mapping[str, httpx.AsyncBaseTransport]
    ) -> None:
        self._settings = settings
        self._transports = dict(transports)
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._http: dict[str, httpx.AsyncClient] = {}

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("resources are used outside the app's lifespan")
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("resources are used outside the app's lifespan")
        return self._sessions

    def http(self, upstream: str) -> httpx.AsyncClient:
        return self._http[upstream]

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Resources]:
        db = self._settings.database
        self._engine = create_engine(
            str(db.url), pool_size=db.pool_size, busy_timeout_ms=db.sqlite_busy_timeout_ms
        )
        self._sessions = create_sessionmaker(self._engine)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self._close_engine)
            for name in UPSTREAMS:
                self._http[name] = await stack.enter_async_context(self._client(name))
            yield self
        self._http.clear()

    async def _close_engine(self) -> None:
        await self.engine.dispose()
        self._engine = self._sessions = None

    def _client(self, upstream: str) -> httpx.AsyncClient:
        http = self._settings.http
        base_urls = {
            "maskinporten": self._settings.upstreams.maskinporten_url,
            "altinn": self._settings.upstreams.altinn_url,
            "skatteetaten": self._settings.upstreams.skatteetaten_url,
            "webhooks": "",
        }
        return httpx.AsyncClient(
            base_url=base_urls[upstream],
            transport=self._transports.get(upstream),
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


def create_app(
    settings: Settings, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> Starlette:
    """Build an app for ``settings``. ``transports`` replaces an upstream's network in tests."""
    unknown = set(transports or {}) - set(UPSTREAMS)
    if unknown:
        raise ValueError(f"unknown upstream(s): {sorted(unknown)}")
    resources = Resources(settings, transports or {})
    metrics = HttpMetrics()
    readiness = ReadinessService(
        current_revisions=lambda: schema_revisions(resources.engine),
        expected_revisions=migrate.head_revisions(),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with resources.open():
            yield {"resources": resources}

    app = Starlette(
        routes=[*health_routes.routes(readiness=readiness, metrics=metrics)],
        middleware=[Middleware(RequestMiddleware, metrics=metrics)],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.resources = resources
    return app
