"""The fake Altinn 3 consent API's POST /consentrequests: authentication and authorization,
create, idempotency and conflict. Body validation is in test_altinn3_validation.py."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from broker.sandbox.altinn3 import API_PATH
from broker.sandbox.altinn3_resources import NEW_RESOURCE
from broker.sandbox.consents import ConsentStatus, org_urn
from broker.sandbox.jose import SigningKeys
from tests.sandbox.altinn3_helpers import (
    AUTHORITY,
    AUTHORITY_2,
    BROKER,
    DIGDIR,
    ORG,
    PUBLIC_BASE,
    READ,
    SUPPLIER,
    WRITE,
    Fake,
    am,
    client_fixture,  # noqa: F401 - pytest fixture
    consent_body,
    create,
    fake_fixture,  # noqa: F401 - pytest fixture
    keys_fixture,  # noqa: F401 - pytest fixture
    make_fake,
    post,
    problem,
    right,
)

# --- authentication and authorization: empty bodies --------------------------------------------


async def test_create_without_token_is_401_with_empty_body(client: httpx.AsyncClient) -> None:
    response = await client.post(API_PATH, json=consent_body())
    assert (response.status_code, response.content) == (401, b"")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "claims",
    [{"iss": "https://test.maskinporten.no/"}, {"exp": 1}],
    ids=["wrong-issuer", "expired"],
)
async def test_create_with_invalid_token_is_401(
    fake: Fake, client: httpx.AsyncClient, claims: dict[str, Any]
) -> None:
    token = fake.token(**claims)
    response = await client.post(
        API_PATH, json=consent_body(), headers={"Authorization": f"Bearer {token}"}
    )
    assert (response.status_code, response.content) == (401, b"")
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_token_signed_by_another_key_is_401(client: httpx.AsyncClient) -> None:
    other = make_fake(SigningKeys.generate(1, prefix="other"))
    headers = other.auth()
    response = await client.post(API_PATH, json=consent_body(), headers=headers)
    assert (response.status_code, response.content) == (401, b"")


@pytest.mark.parametrize("scope", [READ, "skatteetaten:oppdragutenlandskevirksomheter", ""])
async def test_create_needs_write_or_org_scope(
    fake: Fake, client: httpx.AsyncClient, scope: str
) -> None:
    response = await post(fake, client, consent_body(), scope=scope)
    assert (response.status_code, response.content) == (403, b"")


async def test_create_without_consumer_claim_is_401(fake: Fake, client: httpx.AsyncClient) -> None:
    response = await post(fake, client, consent_body(), consumer=None)
    assert (response.status_code, response.content) == (401, b"")


async def test_to_other_than_consumer_needs_org_scope(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    response = await post(fake, client, consent_body(), consumer=BROKER, scope=WRITE)
    assert (response.status_code, response.content) == (403, b"")


async def test_org_scope_may_ask_for_another_org_and_handles_it(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    created = await create(fake, client, consumer=DIGDIR, scope=ORG, body=consent_body())
    assert created["to"] == org_urn(AUTHORITY)
    assert created["handledBy"] == org_urn(DIGDIR)
    assert created["consentRequestEvents"][0]["performedBy"] == org_urn(DIGDIR)


async def test_supplier_claim_becomes_handled_by(fake: Fake, client: httpx.AsyncClient) -> None:
    response = await client.post(
        API_PATH, json=consent_body(), headers=fake.auth(AUTHORITY, WRITE, supplier=BROKER)
    )
    assert response.status_code == 201
    assert response.json()["handledBy"] == org_urn(BROKER)


async def test_org_caller_overrides_supplier_as_handled_by(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        API_PATH, json=consent_body(), headers=fake.auth(BROKER, ORG, supplier=DIGDIR)
    )
    assert response.status_code == 201
    assert response.json()["handledBy"] == org_urn(BROKER)


async def test_consumer_without_requestconsent_right_is_403(
    keys: SigningKeys,
) -> None:
    fake = make_fake(keys, requestconsent={NEW_RESOURCE: frozenset({AUTHORITY_2})})
    async with fake.client() as client:
        response = await post(fake, client, consent_body())
    assert (response.status_code, response.content) == (403, b"")


async def test_unknown_resource_is_refused_by_the_requestconsent_check(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    body = consent_body(consentRights=[right("no-such-resource")])
    response = await post(fake, client, body)
    assert (response.status_code, response.content) == (403, b"")


async def test_non_json_content_type_is_415(fake: Fake, client: httpx.AsyncClient) -> None:
    response = await client.post(
        API_PATH, content=b"id=1", headers={**fake.auth(), "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json() == {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.16",
        "title": "Unsupported Media Type",
        "status": 415,
    }


# --- create, idempotency, conflict ---------------------------------------------------------------


async def test_create_returns_201_location_and_the_dto(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    body = consent_body(
        validTo="2026-06-01T00:00:00.2597100+02:00", requestMessage={"en": "Please approve"}
    )
    response = await post(fake, client, body)
    assert response.status_code == 201
    consent_id = body["id"]
    assert response.headers["location"] == f"{PUBLIC_BASE}{API_PATH}/{consent_id}"
    dto = response.json()
    [event] = dto.pop("consentRequestEvents")
    uuid.UUID(event.pop("consentEventID"))
    assert event == {
        "created": "2026-03-02T09:00:00+00:00",
        "performedBy": org_urn(AUTHORITY),
        "eventType": "Created",
        "consentRequestID": consent_id,
    }
    assert dto == {
        "id": consent_id,
        "from": org_urn(SUPPLIER),
        "to": org_urn(AUTHORITY),
        "requiredDelegator": None,
        "handledBy": None,
        "validTo": "2026-05-31T22:00:00.25971+00:00",
        "consentRights": [{**right(), "metadata": None}],
        "requestMessage": {"en": "Please approve"},
        "status": "Created",
        "consented": None,
        "redirectUrl": body["redirectUrl"],
        "viewUri": f"{PUBLIC_BASE}/accessmanagement/ui/consent/request?id={consent_id}",
        "portalViewMode": "Hide",
    }
    record = fake.state.get(consent_id)
    assert record is not None
    assert record.status is ConsentStatus.CREATED


async def test_create_accepts_the_trailing_slash(fake: Fake, client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API_PATH}/", json=consent_body(), headers=fake.auth())
    assert response.status_code == 201


async def test_replay_with_same_parties_returns_the_stored_request(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    body = consent_body()
    first = await create(fake, client, body)
    replay = {**body, "redirectUrl": "https://other.example/", "portalViewMode": "show"}
    response = await post(fake, client, replay)
    assert response.status_code == 200
    assert response.json() == first
    assert len(fake.register.events()) == 1


async def test_replay_is_not_validated_again(fake: Fake, client: httpx.AsyncClient) -> None:
    # altinn-consent.md §2.2: the stored request is returned, "nothing is re-validated".
    body = consent_body()
    first = await create(fake, client, body)
    replay = {**body, "validTo": "2020-01-01T00:00:00+00:00", "redirectUrl": "not a url"}
    response = await post(fake, client, replay)
    assert response.status_code == 200
    assert response.json() == first


async def test_same_id_with_other_parties_is_am_00016(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    body = consent_body()
    await create(fake, client, body)
    response = await post(fake, client, {**body, "from": org_urn("310100021")})
    title = "Consent with id already exist"
    assert problem(response, 400) == am("AM-00016", 400, title, requestId=body["id"])


async def test_enum_casing_switch_lowercases_the_dto(keys: SigningKeys) -> None:
    fake = make_fake(keys, pascal_case_enums=False)
    async with fake.client() as client:
        created = await create(fake, client, consent_body(portalViewMode="Show"))
    assert (created["status"], created["portalViewMode"]) == ("created", "show")
    assert created["consentRequestEvents"][0]["eventType"] == "created"
