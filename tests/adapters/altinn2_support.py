"""Helpers for the Altinn 2 adapter tests: the client on the composed sandbox, or on a scripted
``MockTransport`` with Altinn's keys served from our own key set."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from joserfc import jws
from joserfc.jwk import RSAKey

from broker.altinn.altinn2 import Altinn2Auth, Altinn2Client
from broker.altinn.altinn2_verifier import Altinn2TokenVerifier
from broker.brreg.client import EnhetsregisteretClient
from broker.consent.ports import AltinnRequest
from broker.sandbox import app as sandbox_app
from broker.sandbox.seed import ALTINN2_API_KEY
from tests.adapters.altinn_support import (
    AUTHORITY,
    BROKER,
    START,
    SUPPLIER,
    SandboxTokens,
    StaticTokens,
    World,
    no_sleep,
    sandbox_world,
)
from tests.support import Answer, Script, Sleeps

A2_BASE = "http://sandbox.test/altinn2"
RETURN = "http://127.0.0.1:8000/consent/return?h=abc"
JWKS_PATH = "/api/metadata/jwk"


def a2_request(**overrides: Any) -> AltinnRequest:
    fields: dict[str, Any] = {
        "id": None,
        "subject_org": SUPPLIER,
        "requestor_org": AUTHORITY,
        "resource": "5616_2",
        "valid_to": START + timedelta(days=90, microseconds=123456),
        "redirect_url": RETURN,
        "language": "nb",
    }
    fields.update(overrides)
    return AltinnRequest(**fields)


@dataclass
class A2World:
    world: World
    a2_http: httpx.AsyncClient
    names: EnhetsregisteretClient

    @property
    def sandbox(self) -> Any:
        return self.world.sandbox

    @property
    def tokens(self) -> SandboxTokens:
        return self.world.tokens

    def client(self, **kwargs: Any) -> Altinn2Client:
        kwargs.setdefault("api_key", ALTINN2_API_KEY)
        kwargs.setdefault("auth", Altinn2Auth.MASKINPORTEN)
        verifier = Altinn2TokenVerifier(
            self.a2_http, jwks_uri=f"{A2_BASE}{JWKS_PATH}", clock=self.sandbox.clock.now
        )
        return Altinn2Client(
            self.a2_http,
            self.tokens,
            broker_org=BROKER,
            names=self.names,
            verifier=verifier,
            clock=self.sandbox.clock.now,
            sleep=no_sleep,
            **kwargs,
        )

    async def approve(self, code: object) -> None:
        response = await self.world.http.post(f"/control/altinn2/{code}/approve", json={})
        assert response.status_code == 200, response.text


@asynccontextmanager
async def a2_world() -> AsyncIterator[A2World]:
    async with sandbox_world() as w:
        # Another app over the same sandbox world: the same register, keys and clock.
        transport = httpx.ASGITransport(app=sandbox_app.create_app(w.sandbox))
        async with (
            httpx.AsyncClient(transport=transport, base_url=A2_BASE) as a2_http,
            httpx.AsyncClient(
                transport=transport, base_url="http://sandbox.test/brreg/enhetsregisteret/api"
            ) as names_http,
        ):
            names = EnhetsregisteretClient(names_http, clock=w.sandbox.clock.now)
            yield A2World(w, a2_http, names)


class StaticNames:
    async def name(self, orgnr: str) -> str:
        return {SUPPLIER: "NORDBYGG POLSKA NUF", AUTHORITY: "DIREKTORATET FOR SANDKASSEBYGG"}[orgnr]


def signing_key(kid: str = "altinn-key-1") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def jwks_response(*keys: RSAKey) -> httpx.Response:
    return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in keys]})


def sign(key: RSAKey, claims: dict[str, Any], **header: Any) -> str:
    """RS256 with ``key``; header members given as None are left out."""
    protected = {"alg": "RS256", "kid": key.kid, "typ": "JWT", **header}
    protected = {k: v for k, v in protected.items() if v is not None}
    return jws.serialize_compact(protected, json.dumps(claims).encode(), key)


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A token with any header (e.g. an algorithm joserfc would refuse to sign with)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.c2lnbmF0dXJl"


def mock_client(
    answers: Iterable[Answer],
    *,
    sleep: Sleeps | None = None,
    tokens: StaticTokens | None = None,
    **kwargs: Any,
) -> tuple[Altinn2Client, Script, StaticTokens]:
    """The client on a scripted transport; the verifier fetches its JWKS from the same script."""
    script = Script(list(answers))
    http = httpx.AsyncClient(transport=httpx.MockTransport(script), base_url=A2_BASE)
    tokens = tokens or StaticTokens()
    client = Altinn2Client(
        http,
        tokens,
        api_key="the-api-key",
        broker_org=BROKER,
        names=StaticNames(),
        verifier=Altinn2TokenVerifier(http, jwks_uri=f"{A2_BASE}{JWKS_PATH}", clock=lambda: START),
        clock=lambda: START,
        sleep=sleep or Sleeps(),
        jitter=lambda: 1.0,
        **kwargs,
    )
    return client, script, tokens


def request_body(code: str, status: str = "Accepted", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AuthorizationCode": code,
        "RequestStatus": status,
        "CoveredBy": AUTHORITY,
        "OfferedBy": SUPPLIER,
        "ValidTo": "2027-02-26T11:00:00.000",
        "RequestResources": [{"ServiceCode": "5616", "ServiceEditionCode": 2, "Metadata": {}}],
        "_links": {"gui": {"href": f"https://tt02.altinn.no/ui/AccessConsent/request?id={code}"}},
    }
    body.update(overrides)
    return body


def token_claims(code: str, **overrides: Any) -> dict[str, Any]:
    now = int(START.timestamp())
    claims: dict[str, Any] = {
        "Services": ["5616_2", f"5616_2_requestor={AUTHORITY}"],
        "AuthorizationCode": code,
        "OfferedBy": SUPPLIER,
        "CoveredBy": AUTHORITY,
        "DelegatedDate": now - 60,
        "ValidToDate": now + 86400,
        "nbf": now,
        "iat": now,
        "exp": now + 30,
        "iss": "altinn.no",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}
