"""The fake Altinn 3 consent API's GET /consentrequests/{id}."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from broker.sandbox.altinn3 import API_PATH
from broker.sandbox.consents import org_urn
from tests.sandbox.altinn3_helpers import (
    AUTHORITY,
    DIGDIR,
    ORG,
    READ,
    START,
    Fake,
    am,
    client_fixture,  # noqa: F401 - pytest fixture
    consent_body,
    create,
    fake_fixture,  # noqa: F401 - pytest fixture
    keys_fixture,  # noqa: F401 - pytest fixture
    problem,
)

# --- read ---------------------------------------------------------------------------------------


async def test_read_returns_the_dto_to_the_to_party(fake: Fake, client: httpx.AsyncClient) -> None:
    created = await create(fake, client)
    response = await client.get(f"{API_PATH}/{created['id']}", headers=fake.auth(scope=READ))
    assert (response.status_code, response.json()) == (200, created)


async def test_read_by_another_org_is_am_00000(fake: Fake, client: httpx.AsyncClient) -> None:
    created = await create(fake, client, consumer=DIGDIR, scope=ORG)
    # The creator only handles it: handledBy does not open the read (reference §2.2).
    response = await client.get(f"{API_PATH}/{created['id']}", headers=fake.auth(DIGDIR, ORG))
    assert problem(response, 403) == am("AM-00000", 403, "Not authorized for consent")


async def test_read_unknown_id_is_am_00001(fake: Fake, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API_PATH}/{uuid.uuid4()}", headers=fake.auth(scope=READ))
    assert problem(response, 404) == am("AM-00001", 404, "Consent not found")


async def test_read_non_guid_matches_no_route(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API_PATH}/not-a-guid")
    assert (response.status_code, response.content) == (404, b"")


async def test_read_needs_token_scope_and_consumer(fake: Fake, client: httpx.AsyncClient) -> None:
    url = f"{API_PATH}/{uuid.uuid4()}"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=fake.auth(scope="openid"))).status_code == 403
    response = await client.get(url, headers=fake.auth(consumer=None, scope=READ))
    assert (response.status_code, response.content) == (401, b"")


async def test_read_after_valid_to_adds_a_synthetic_expired_event(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    valid_to = START + timedelta(hours=1)
    created = await create(fake, client, consent_body(validTo=valid_to.isoformat()))
    fake.clock.advance(3601)
    response = await client.get(f"{API_PATH}/{created['id']}", headers=fake.auth(scope=READ))
    dto = response.json()
    assert dto["status"] == "Created"
    assert dto["consentRequestEvents"][-1] == {
        "consentEventID": "00000000-0000-0000-0000-000000000000",
        "created": "2026-03-02T10:00:00+00:00",
        "performedBy": org_urn(AUTHORITY),
        "eventType": "Expired",
        "consentRequestID": created["id"],
    }
