"""Helpers for tests of the composed sandbox: a built world and a client for its app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.clock import Clock
from broker.sandbox.maskinporten_client import consent_details

BASE = "http://sandbox.test"
SUPPLIER = "310100013"  # NORDBYGG POLSKA NUF; Kari Nordmann may act for it
AUTHORITY = "310200018"
APPROVER = "01819040180"
OUTSIDER = "11889940079"
RESOURCE = "digdir-oppdragutenlandskevirksomheter-skatteetaten"
START = datetime(2026, 11, 28, 10, tzinfo=UTC)


def build(lag: int = 0) -> world.Sandbox:
    config = world.SandboxConfig(base_url=BASE, broker_key_file=None, events_safety_lag_seconds=lag)
    return world.build(config, Clock(START))


@asynccontextmanager
async def client_for(sandbox: world.Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sandbox_app.create_app(sandbox))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def token(
    http: httpx.AsyncClient,
    sandbox: world.Sandbox,
    scope: str,
    *,
    consumer_org: str | None = AUTHORITY,
    consent: tuple[uuid.UUID, str] | None = None,
) -> str:
    assertion = sandbox.seed.broker_client.assertion(
        f"{BASE}/maskinporten/",
        now=sandbox.clock.timestamp(),
        scope=scope,
        consumer_org=consumer_org,
        authorization_details=consent_details(*consent) if consent else None,
    )
    response = await http.post(
        "/maskinporten/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
    )
    assert response.status_code == 200, response.text
    value = response.json()["access_token"]
    assert isinstance(value, str)
    return value


def consent_request(
    consent_id: uuid.UUID, *, redirect_url: str = "https://broker.example/consent/return?h=abc"
) -> dict[str, Any]:
    return {
        "id": str(consent_id),
        "from": f"urn:altinn:organization:identifier-no:{SUPPLIER}",
        "to": f"urn:altinn:organization:identifier-no:{AUTHORITY}",
        "validTo": (START + timedelta(days=30)).isoformat(),
        "consentRights": [
            {
                "action": ["consent"],
                "resource": [{"type": "urn:altinn:resource", "value": RESOURCE}],
                "metadata": {},
            }
        ],
        "redirectUrl": redirect_url,
    }


async def create_consent(
    http: httpx.AsyncClient, sandbox: world.Sandbox, **kwargs: Any
) -> tuple[uuid.UUID, dict[str, Any]]:
    consent_id = uuid.uuid4()
    bearer = await token(http, sandbox, "altinn:consentrequests.write")
    response = await http.post(
        "/altinn/accessmanagement/api/v1/enterprise/consentrequests",
        json=consent_request(consent_id, **kwargs),
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body, dict)
    return consent_id, body
