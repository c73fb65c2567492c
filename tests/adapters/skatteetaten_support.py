"""Helpers for the Skatteetaten client's tests: the composed sandbox with a granted consent and a
real consent token from its Maskinporten, and a scripted ``MockTransport`` for what the fake
cannot do (Retry-After, httpx timeouts, odd bodies)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.seed import SKATTEETATEN_SCOPE
from broker.skatteetaten import CircuitBreaker, RetryPolicy, SkatteetatenClient
from tests.sandbox.sandbox_helpers import (
    APPROVER,
    AUTHORITY,
    BASE,
    START,
    SUPPLIER,
    build,
    create_consent,
    token,
)
from tests.support import Answer, Script, Sleeps

__all__ = [
    "AUTHORITY",
    "BASE",
    "OTHER_SUPPLIER",
    "PREFIX",
    "SECRET_TOKEN",
    "START",
    "SUPPLIER",
    "Answer",
    "Ids",
    "Script",
    "Sleeps",
    "World",
    "assert_no_secret",
    "feil",
    "mock_client",
    "ok_json",
    "ske_world",
]

SKE_BASE = f"{BASE}/skatteetaten"
PREFIX = "OPPDRAGUTENLANDSKEVIRKSOMHETER"
SECRET_TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"  # a fake, JWT-shaped
OTHER_SUPPLIER = "310100021"


@dataclass
class Ids:
    """A Korrelasjonsid factory that records what it handed out."""

    issued: list[str] = field(default_factory=list)

    def __call__(self) -> str:
        value = str(uuid.uuid4())
        self.issued.append(value)
        return value


@dataclass
class World:
    """The composed sandbox, a client on its root and one on the fake Skatteetaten."""

    sandbox: world.Sandbox
    transport: httpx.ASGITransport
    http: httpx.AsyncClient
    ske_http: httpx.AsyncClient
    sleeps: Sleeps = field(default_factory=Sleeps)
    ids: Ids = field(default_factory=Ids)

    def client(self, **kwargs: Any) -> SkatteetatenClient:
        kwargs.setdefault("clock", self.sandbox.clock.now)
        kwargs.setdefault("sleep", self.sleeps)
        kwargs.setdefault("jitter", lambda: 1.0)
        kwargs.setdefault("korrelasjonsid", self.ids)
        return SkatteetatenClient(kwargs.pop("http", self.ske_http), **kwargs)

    def http_at(self, path: str) -> httpx.AsyncClient:
        """Another client on the sandbox, with ``path`` under its base URL."""
        return httpx.AsyncClient(transport=self.transport, base_url=f"{BASE}{path}")

    async def consent(self) -> uuid.UUID:
        """A consent from the supplier to the authority, created at Altinn and approved."""
        consent_id, _ = await create_consent(self.http, self.sandbox)
        approved = await self.http.post(
            f"/control/consents/{consent_id}/approve", json={"person": APPROVER}
        )
        assert approved.status_code == 200, approved.text
        return consent_id

    async def consent_token(self, consent_id: uuid.UUID | None = None) -> str:
        """A Maskinporten consent token for the authority (the broker on its behalf)."""
        consent_id = consent_id or await self.consent()
        return await token(
            self.http, self.sandbox, SKATTEETATEN_SCOPE, consent=(consent_id, SUPPLIER)
        )

    async def plain_token(self, scope: str) -> str:
        return await token(self.http, self.sandbox, scope)

    async def fault(self, name: str | None, times: int | None = None) -> None:
        response = await self.http.post(
            "/control/skatteetaten/fault", json={"fault": name, "times": times}
        )
        assert response.status_code == 200, response.text

    async def quirks(self, **changes: Any) -> None:
        response = await self.http.post("/control/skatteetaten/quirks", json=changes)
        assert response.status_code == 200, response.text

    async def latency(self, seconds: float) -> None:
        response = await self.http.post("/control/skatteetaten/latency", json={"seconds": seconds})
        assert response.status_code == 200, response.text

    async def calls(self) -> list[dict[str, Any]]:
        response = await self.http.get("/control/skatteetaten/calls")
        body = response.json()
        assert isinstance(body, list)
        return body


@asynccontextmanager
async def ske_world(**ske_client: Any) -> AsyncIterator[World]:
    """The sandbox; ``ske_client`` are extra ``httpx.AsyncClient`` arguments (event hooks)."""
    sandbox = build()
    transport = httpx.ASGITransport(app=sandbox_app.create_app(sandbox))
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE) as http,
        httpx.AsyncClient(transport=transport, base_url=SKE_BASE, **ske_client) as ske_http,
    ):
        yield World(sandbox, transport, http, ske_http)


def mock_client(
    answers: Iterable[Answer],
    *,
    sleeps: Sleeps | None = None,
    now: datetime = START,
    **kwargs: Any,
) -> tuple[SkatteetatenClient, Script]:
    script = Script(list(answers))
    http = httpx.AsyncClient(transport=httpx.MockTransport(script), base_url="https://ske.test")
    kwargs.setdefault("jitter", lambda: 1.0)
    kwargs.setdefault("retry", RetryPolicy())
    kwargs.setdefault("breaker", CircuitBreaker())
    client = SkatteetatenClient(http, clock=lambda: now, sleep=sleeps or Sleeps(), **kwargs)
    return client, script


def feil(
    status: int, kode: str | None, korrelasjonsid: str = "", melding: str = "Noe gikk galt."
) -> httpx.Response:
    body = {"kode": kode, "melding": melding, "korrelasjonsid": korrelasjonsid or str(uuid.uuid4())}
    return httpx.Response(status, json=body)


def ok_json(orgnr: str = SUPPLIER, **extra: Any) -> httpx.Response:
    body = {
        "forespurteOrganisasjon": orgnr,
        "oppdrag": {
            "antallAktiveOppdragSomArbeidsgiver": 44,
            "antallAktiveArbeidstakere": 64,
            "antallRegistrerteOppdragSomOppdragsgiver": 14,
        },
        "levert": "2026-11-28T11:00:00.123456",
        **extra,
    }
    return httpx.Response(200, json=body)


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    texts = [str(exc), repr(exc), str(exc.args)]
    texts += [str(getattr(exc, name, "")) for name in ("detail", "melding", "code", "kode")]
    for text in texts:
        for secret in (*secrets, SECRET_TOKEN, "Bearer"):
            assert secret not in text, text
