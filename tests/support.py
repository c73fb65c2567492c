"""Helpers shared by the tests: settings, databases on both backends, a running app."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import uvicorn
from joserfc.jwk import RSAKey
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from broker.settings import Settings

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def make_settings(**overrides: str) -> Settings:
    """Settings for a test: dev defaults plus ``BROKER_*`` overrides given without the prefix."""
    environ = {"BROKER_ENV": "test"}
    if overrides.get("env", "test") in ("dev", "test"):
        # Cheap admin password hashes: the tests log in often (production refuses this cost).
        environ["BROKER_ADMIN_PASSWORD_COST"] = "10"
    environ.update({f"BROKER_{key.upper()}": value for key, value in overrides.items()})
    return Settings.from_env(environ)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_admin_url() -> str:
    return os.environ.get("EBEVIS_TEST_DATABASE_URL", DEFAULT_POSTGRES_URL)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def postgres_reachable() -> bool:
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(postgres_admin_url()), timeout=5)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    admin = postgres_admin_url()
    name = f"ebevis_test_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(_asyncpg_dsn(admin))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'broker.db'}"


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as client:
            yield client


def problem(response: httpx.Response) -> Mapping[str, object]:
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert isinstance(body, dict)
    for member in ("type", "title", "status", "detail", "instance", "code"):
        assert member in body, member
    assert body["status"] == response.status_code
    return body


def free_port() -> int:
    """A loopback port that was free a moment ago (for apps that must know their URL first)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert isinstance(port, int)
    return port


@asynccontextmanager
async def serving(app: Starlette, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a loopback port (a free one by default); yield its URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the start-up error
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def write_signing_key(directory: Path) -> Path:
    """A private RSA JWK for BROKER_SIGNING_KEY_FILE (needed outside dev/test)."""
    key = RSAKey.generate_key(2048, parameters={"kid": "test-signing", "alg": "RS256"})
    path = directory / "signing.jwk.json"
    path.write_text(json.dumps(key.as_dict(private=True)))
    return path


Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class Script:
    """A ``MockTransport`` handler that plays ``answers`` in order and records each request."""

    answers: list[Answer]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)


@dataclass
class Sleeps:
    """An injected sleep that records each wait and does not wait."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
