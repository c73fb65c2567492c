"""Helpers for tests that drive the fake Maskinporten (and for tests that need its tokens)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentRecord, ConsentRegister, ConsentStatus, org_urn
from broker.sandbox.jose import SigningKeys, verify_jwt
from broker.sandbox.maskinporten import (
    MaskinportenConfig,
    MaskinportenState,
    SandboxClient,
    create_app,
)
from broker.sandbox.maskinporten_config import JWT_BEARER

BASE_URL = "http://maskinporten.test"
ISSUER = BASE_URL + "/"
SCOPE = "skatteetaten:oppdragutenlandskevirksomheter"
OTHER_SCOPE = "altinn:consentrequests.write"
BROKER_ORG = "310000019"
CUSTOMER_ORG = "310000027"
OTHER_ORG = "310000035"
SUBJECT_ORG = "312345676"
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CORRELATION_ID = "test-correlation-id"
RESOURCE_ID = "digdir-oppdragutenlandskevirksomheter-skatteetaten"


@dataclass
class Sandbox:
    """One fake Maskinporten with its injected parts and a client talking to it."""

    http: httpx.AsyncClient
    config: MaskinportenConfig
    clock: Clock
    state: MaskinportenState
    keys: SigningKeys
    consents: ConsentRegister
    client: SandboxClient

    def assertion(self, **kwargs: Any) -> str:
        """A grant from the registered client, for ``SCOPE`` unless told otherwise."""
        kwargs.setdefault("scope", SCOPE)
        return self.client.assertion(ISSUER, now=self.clock.timestamp(), **kwargs)

    async def token(self, assertion: str) -> httpx.Response:
        return await post_token(self.http, assertion)


def broker_client() -> SandboxClient:
    return SandboxClient.generate("broker-client", BROKER_ORG, {SCOPE, OTHER_SCOPE})


@asynccontextmanager
async def sandbox(
    client: SandboxClient, keys: SigningKeys, config: MaskinportenConfig | None = None
) -> AsyncIterator[Sandbox]:
    """A fresh fake (new state, clock and register) with ``client`` registered."""
    config = config or MaskinportenConfig(base_url=BASE_URL)
    config = replace(config, clients=(*config.clients, client.registration()))
    clock, state, consents = Clock(START), MaskinportenState(), ConsentRegister()
    app = create_app(
        config,
        clock,
        state=state,
        keys=keys,
        consents=consents,
        correlation_ids=lambda: CORRELATION_ID,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield Sandbox(http, config, clock, state, keys, consents, client)


async def post_token(
    http: httpx.AsyncClient, assertion: str, *, grant_type: str = JWT_BEARER
) -> httpx.Response:
    return await http.post("/token", data={"grant_type": grant_type, "assertion": assertion})


async def fetch_token(
    http: httpx.AsyncClient, client: SandboxClient, *, now: int, **claims: Any
) -> str:
    """A real access token from a fake Maskinporten at ``http`` (issuer ``ISSUER``)."""
    claims.setdefault("scope", SCOPE)
    response = await post_token(http, client.assertion(ISSUER, now=now, **claims))
    response.raise_for_status()
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def error(error: str, text: str) -> dict[str, str]:
    """The OAuth error body the fake sends, with the tests' fixed correlation id."""
    return {"error": error, "error_description": f"{text} (correlation id: {CORRELATION_ID})"}


def token_claims(token: str, jwks: Mapping[str, Any], clock: Clock) -> dict[str, Any]:
    return verify_jwt(token, jwks, now=clock.timestamp())


def add_consent(
    register: ConsentRegister,
    clock: Clock,
    *,
    status: ConsentStatus = ConsentStatus.ACCEPTED,
    to_org: str = BROKER_ORG,
    handled_by: str | None = None,
    from_party: str = org_urn(SUBJECT_ORG),
    valid_for: timedelta = timedelta(days=90),
    metadata: dict[str, str] | None = None,
) -> ConsentRecord:
    """A consent request in the shared register, moved to ``status`` one minute after creation."""
    created = clock.now() - timedelta(minutes=5)
    record = ConsentRecord(
        id=uuid.uuid4(),
        from_party=from_party,
        to_party=org_urn(to_org),
        handled_by=handled_by,
        required_delegator=None,
        valid_to=clock.now() + valid_for,
        consent_rights=[
            {
                "action": ["consent"],
                "resource": [{"type": "urn:altinn:resource", "value": RESOURCE_ID}],
                "metadata": metadata if metadata is not None else {},
            }
        ],
        request_message=None,
        redirect_url="https://broker.test/consent/return",
        portal_view_mode="hide",
        created=created,
    )
    register.add(record, performed_by=org_urn(to_org))
    answered = created + timedelta(minutes=1)
    if status is ConsentStatus.REVOKED:
        # Altinn revokes only accepted consents.
        register.set_status(record, ConsentStatus.ACCEPTED, at=answered, performed_by=None)
        answered += timedelta(minutes=1)
    if status is not ConsentStatus.CREATED:
        register.set_status(record, status, at=answered, performed_by=None)
    return record
