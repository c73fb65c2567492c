"""Helpers for the Altinn client's tests: the composed sandbox, real Maskinporten tokens from it,
a scripted ``MockTransport`` for faults the fake cannot produce, and request builders."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from broker.altinn import AltinnClient, AltinnMode, RetryPolicy
from broker.consent.ports import AltinnRequest
from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.clock import Clock
from broker.sandbox.maskinporten_config import JWT_BEARER
from tests.support import Answer, Script, Sleeps

BASE = "http://sandbox.test"
ALTINN_BASE = f"{BASE}/altinn"
SUPPLIER = "310100013"  # NORDBYGG POLSKA NUF; Kari Nordmann may act for it
SUPPLIER_2 = "310100021"
AUTHORITY = "310200018"  # delegated .write to the broker in the seed
AUTHORITY_2 = "310200026"
BROKER = "310300012"
UNKNOWN_ORG = "310100056"  # valid check digit, not a party
APPROVER = "01819040180"
RESOURCE = "digdir-oppdragutenlandskevirksomheter-skatteetaten"
MIGRATED_RESOURCE = "digdir_5616_2"
START = datetime(2026, 11, 28, 10, tzinfo=UTC)
REDIRECT = "https://broker.example/consent/return?ref=abc&sig=xyz"
SECRET_TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"  # a fake


@dataclass(frozen=True)
class A3Request(AltinnRequest):
    """An Altinn 3 request always carries our id (only Altinn 2 leaves it to Altinn)."""

    id: uuid.UUID


def make_request(**overrides: Any) -> A3Request:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "subject_org": SUPPLIER,
        "requestor_org": AUTHORITY,
        "resource": RESOURCE,
        "valid_to": START + timedelta(days=90),
        "redirect_url": REDIRECT,
        "language": "nb",
    }
    fields.update(overrides)
    return A3Request(**fields)


async def no_sleep(seconds: float) -> None:
    """An injected sleep that only records (see ``Sleeps``)."""


@dataclass(frozen=True)
class Token:
    token: str


@dataclass
class SandboxTokens:
    """``AccessTokens`` backed by the sandbox's fake Maskinporten and the seeded broker client.

    Caches by (scope, consumer_org) as a real client would; ``spoil`` plants a token that Altinn
    will refuse, to see the client invalidate it and fetch a fresh one.
    """

    http: httpx.AsyncClient
    sandbox: world.Sandbox
    fetched: list[tuple[str, str | None]] = field(default_factory=list)
    invalidated: list[tuple[str, str | None]] = field(default_factory=list)
    cache: dict[tuple[str, str | None], str] = field(default_factory=dict)

    async def access_token(self, scope: str, *, consumer_org: str | None = None) -> Token:
        key = (scope, consumer_org)
        if key not in self.cache:
            self.cache[key] = await self._fetch(scope, consumer_org)
            self.fetched.append(key)
        return Token(self.cache[key])

    def invalidate(
        self, scope: str, *, consumer_org: str | None = None, token: str | None = None
    ) -> bool:
        self.invalidated.append((scope, consumer_org))
        if token is not None and self.cache.get((scope, consumer_org)) != token:
            return False
        return self.cache.pop((scope, consumer_org), None) is not None

    def spoil(self, scope: str, consumer_org: str | None) -> None:
        self.cache[(scope, consumer_org)] = SECRET_TOKEN

    async def _fetch(self, scope: str, consumer_org: str | None) -> str:
        assertion = self.sandbox.seed.broker_client.assertion(
            f"{BASE}/maskinporten/",
            now=self.sandbox.clock.timestamp(),
            scope=scope,
            consumer_org=consumer_org,
        )
        response = await self.http.post(
            "/maskinporten/token", data={"grant_type": JWT_BEARER, "assertion": assertion}
        )
        assert response.status_code == 200, response.text
        value = response.json()["access_token"]
        assert isinstance(value, str)
        return value


@dataclass
class StaticTokens:
    """``AccessTokens`` that hands out fixed, numbered tokens (for ``MockTransport`` tests)."""

    issued: int = 0
    requested: list[tuple[str, str | None]] = field(default_factory=list)
    invalidated: list[tuple[str, str | None]] = field(default_factory=list)
    dropped: list[str | None] = field(default_factory=list)

    async def access_token(self, scope: str, *, consumer_org: str | None = None) -> Token:
        self.requested.append((scope, consumer_org))
        return Token(f"{SECRET_TOKEN}{self.issued}")

    def invalidate(
        self, scope: str, *, consumer_org: str | None = None, token: str | None = None
    ) -> bool:
        self.invalidated.append((scope, consumer_org))
        self.dropped.append(token)
        self.issued += 1
        return True


@dataclass
class World:
    """The composed sandbox, an HTTP client on it, and the token source."""

    sandbox: world.Sandbox
    http: httpx.AsyncClient
    altinn_http: httpx.AsyncClient
    tokens: SandboxTokens

    def client(self, mode: AltinnMode = AltinnMode.VENDOR, **kwargs: Any) -> AltinnClient:
        kwargs.setdefault("sleep", no_sleep)
        kwargs.setdefault("clock", self.sandbox.clock.now)
        return AltinnClient(self.altinn_http, self.tokens, mode=mode, broker_org=BROKER, **kwargs)


@asynccontextmanager
async def sandbox_world(lag: int = 0) -> AsyncIterator[World]:
    config = world.SandboxConfig(base_url=BASE, broker_key_file=None, events_safety_lag_seconds=lag)
    sandbox = world.build(config, Clock(START))
    transport = httpx.ASGITransport(app=sandbox_app.create_app(sandbox))
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE) as http,
        httpx.AsyncClient(transport=transport, base_url=ALTINN_BASE) as altinn_http,
    ):
        yield World(sandbox, http, altinn_http, SandboxTokens(http, sandbox))


def mock_client(
    answers: Iterable[Answer],
    *,
    mode: AltinnMode = AltinnMode.VENDOR,
    sleep: Sleeps | None = None,
    retry: RetryPolicy | None = None,
    tokens: StaticTokens | None = None,
    **kwargs: Any,
) -> tuple[AltinnClient, Script, StaticTokens]:
    script = Script(list(answers))
    http = httpx.AsyncClient(transport=httpx.MockTransport(script), base_url=ALTINN_BASE)
    tokens = tokens or StaticTokens()
    client = AltinnClient(
        http,
        tokens,
        mode=mode,
        broker_org=BROKER,
        clock=lambda: START,
        sleep=sleep or Sleeps(),
        retry=retry,
        jitter=kwargs.pop("jitter", lambda: 1.0),
        **kwargs,
    )
    return client, script, tokens


def problem(code: str, status: int, title: str = "A problem", **extra: Any) -> httpx.Response:
    body = {
        "type": f"urn:altinn:error:{code}",
        "title": title,
        "status": status,
        "code": code,
        "traceId": "00-abc-def-00",
        **extra,
    }
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def request_dto(consent_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """A ``ConsentRequestDetailsDto`` as Altinn writes it (§2.2), for canned answers."""
    body: dict[str, Any] = {
        "id": str(consent_id),
        "from": f"urn:altinn:organization:identifier-no:{SUPPLIER}",
        "to": f"urn:altinn:organization:identifier-no:{AUTHORITY}",
        "requiredDelegator": None,
        "handledBy": f"urn:altinn:organization:identifier-no:{BROKER}",
        "validTo": "2027-02-26T10:00:00+00:00",
        "consentRights": [
            {
                "action": ["consent"],
                "resource": [{"type": "urn:altinn:resource", "value": RESOURCE}],
                "metadata": {},
            }
        ],
        "requestMessage": None,
        "status": "Created",
        "consented": None,
        "redirectUrl": REDIRECT,
        "consentRequestEvents": [],
        "viewUri": f"https://am.ui.tt02.altinn.no/accessmanagement/ui/consent/request?id={consent_id}",
        "portalViewMode": "Hide",
    }
    body.update(overrides)
    return body
