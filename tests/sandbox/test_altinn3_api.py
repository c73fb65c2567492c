"""The fake Altinn 3 enterprise consent API: authentication, validation, create, read, events."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from broker.sandbox.altinn3 import API_PATH
from broker.sandbox.altinn3_resources import MIGRATED_RESOURCE, NEW_RESOURCE, ConsentResource
from broker.sandbox.consents import ConsentStatus, org_urn
from broker.sandbox.jose import SigningKeys
from tests.sandbox.altinn3_helpers import (
    AUTHORITY,
    AUTHORITY_2,
    BROKER,
    DIGDIR,
    KARI,
    ORG,
    PUBLIC_BASE,
    READ,
    START,
    SUPPLIER,
    UNKNOWN_ORG,
    UNKNOWN_PERSON,
    WRITE,
    Fake,
    consent_body,
    create,
    make_fake,
    right,
)

PERSON_URN = "urn:altinn:person:identifier-no:"


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(1, prefix="mp")


@pytest.fixture
def fake(keys: SigningKeys) -> Fake:
    return make_fake(keys)


@pytest.fixture
async def client(fake: Fake) -> AsyncIterator[httpx.AsyncClient]:
    async with fake.client() as c:
        yield c


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem body minus its random traceId, after checking status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json; charset=utf-8"
    body = response.json()
    assert isinstance(body, dict)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", body.pop("traceId"))
    for nested in body.get("problems", []):
        nested.pop("traceId")
    return body


def am(code: str, status: int, title: str, **extensions: str) -> dict[str, Any]:
    phrase = {400: "Bad Request", 403: "Forbidden", 404: "Not Found"}[status]
    return {
        "type": f"urn:altinn:error:{code}",
        "title": title,
        "status": status,
        "code": code,
        "statusDescription": phrase,
        **extensions,
    }


def validation(*errors: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "urn:altinn:error:STD-00000",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "code": "STD-00000",
        "statusDescription": "Bad Request",
        "validationErrors": list(errors),
    }


def vld(code: str, title: str, path: str, detail: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "title": title, "paths": [path]}
    if detail is not None:
        error["detail"] = detail
    return error


VALID_TO_PAST = vld("AM.VLD-00022", "The time need to be in the future", "ValidTo")
BAD_REDIRECT = vld("AM.VLD-00027", "Redirect URL is not a valid URL", "RedirectUrl")
JSON_TITLE = (
    "The JSON value failed to deserialize. Check the JSON format and ensure that the property "
    "names match the expected model."
)


async def post(fake: Fake, client: httpx.AsyncClient, body: Any, **auth: Any) -> httpx.Response:
    return await client.post(API_PATH, json=body, headers=fake.auth(**auth))


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


# --- binding ------------------------------------------------------------------------------------


async def test_malformed_json_is_400(fake: Fake, client: httpx.AsyncClient) -> None:
    response = await client.post(
        API_PATH, content=b"{", headers={**fake.auth(), "Content-Type": "application/json"}
    )
    detail = "The request body is not valid JSON."
    assert problem(response, 400) == validation(vld("STD.VLD-00017", JSON_TITLE, "/", detail))


async def test_missing_required_properties_are_listed(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    body = consent_body()
    del body["to"], body["redirectUrl"]
    detail = (
        "JSON deserialization for type 'ConsentRequestDto' was missing required properties "
        "including: 'to', 'redirectUrl'."
    )
    response = await post(fake, client, body)
    assert problem(response, 400) == validation(vld("STD.VLD-00017", JSON_TITLE, "/", detail))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from", "urn:altinn:organization:identifier-no:310100010"),  # bad check digit
        ("from", "urn:altinn:person:identifier-no:01819040181"),  # bad K2
        ("to", "310200018"),  # not a URN
        ("id", "not-a-guid"),
        ("validTo", "next week"),
        ("portalViewMode", "visible"),
    ],
)
async def test_invalid_values_fail_binding_with_their_path(
    fake: Fake, client: httpx.AsyncClient, field: str, value: str
) -> None:
    response = await post(fake, client, consent_body(**{field: value}))
    body = problem(response, 400)
    [error] = body.pop("validationErrors")
    assert body == {k: v for k, v in validation().items() if k != "validationErrors"}
    assert (error["code"], error["paths"]) == ("STD.VLD-00017", [f"/{field}"])


async def test_nested_missing_property_has_nested_path(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    body = consent_body(consentRights=[{"action": ["consent"]}])
    detail = (
        "JSON deserialization for type 'ConsentRightDto' was missing required properties "
        "including: 'resource'."
    )
    response = await post(fake, client, body)
    expected = validation(vld("STD.VLD-00017", JSON_TITLE, "/consentRights/0", detail))
    assert problem(response, 400) == expected


async def test_property_names_bind_case_insensitively(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    body = consent_body(consentRights=[right(MIGRATED_RESOURCE)])
    body["consentRights"][0]["metaData"] = {"requestor": AUTHORITY, "requestorName": "DIR"}
    body["From"] = body.pop("from")
    created = await create(fake, client, body)
    metadata = {"requestor": AUTHORITY, "requestorName": "DIR"}
    assert created["consentRights"][0]["metadata"] == metadata


# --- service validation -------------------------------------------------------------------------


async def test_unknown_organisation_is_am_00003(fake: Fake, client: httpx.AsyncClient) -> None:
    response = await post(fake, client, consent_body(**{"from": org_urn(UNKNOWN_ORG)}))
    title = "Unknown organization. Could not be found"
    assert problem(response, 400) == am("AM-00003", 400, title, orgnr=org_urn(UNKNOWN_ORG))


async def test_unknown_person_is_am_00004(fake: Fake, client: httpx.AsyncClient) -> None:
    urn = PERSON_URN + UNKNOWN_PERSON
    response = await post(fake, client, consent_body(**{"from": urn}))
    title = "Unknown person. Could not be found"
    assert problem(response, 400) == am("AM-00004", 400, title, fnumber=urn)


async def test_unknown_required_delegator_is_am_00004(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    urn = PERSON_URN + UNKNOWN_PERSON
    response = await post(fake, client, consent_body(requiredDelegator=urn))
    assert problem(response, 400)["code"] == "AM-00004"


async def test_unknown_supplier_as_handled_by_is_am_00003(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        API_PATH, json=consent_body(), headers=fake.auth(AUTHORITY, WRITE, supplier=UNKNOWN_ORG)
    )
    title = "Unknown organization. Could not be found"
    assert problem(response, 400) == am("AM-00003", 400, title, orgnr=org_urn(UNKNOWN_ORG))


async def test_unknown_party_stops_before_other_checks(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    body = consent_body(**{"to": org_urn(UNKNOWN_ORG), "redirectUrl": "nope"})
    response = await post(fake, client, body, scope=ORG)
    assert problem(response, 400)["code"] == "AM-00003"


async def test_valid_to_in_the_past_is_am_vld_00022(fake: Fake, client: httpx.AsyncClient) -> None:
    body = consent_body(validTo=(START - timedelta(seconds=1)).isoformat())
    response = await post(fake, client, body)
    assert problem(response, 400) == validation(VALID_TO_PAST)


async def test_empty_consent_rights_is_am_vld_00023(fake: Fake, client: httpx.AsyncClient) -> None:
    response = await post(fake, client, consent_body(consentRights=[]))
    assert problem(response, 400) == validation(
        vld("AM.VLD-00023", "The list cant be empty", "Resource")
    )


@pytest.mark.parametrize("url", ["/consent/return", "broker.example/return", "", "https://"])
async def test_invalid_redirect_url_is_am_vld_00027(
    fake: Fake, client: httpx.AsyncClient, url: str
) -> None:
    response = await post(fake, client, consent_body(redirectUrl=url))
    assert problem(response, 400) == validation(BAD_REDIRECT)


@pytest.mark.parametrize("url", ["http://localhost:8080/x", "no.bank.app://consent?x=1"])
async def test_http_and_custom_scheme_redirects_are_accepted(
    fake: Fake, client: httpx.AsyncClient, url: str
) -> None:
    created = await create(fake, client, consent_body(redirectUrl=url))
    assert created["redirectUrl"] == url


async def test_request_level_errors_share_one_validation_problem(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    body = consent_body(validTo=START.replace(year=2020).isoformat(), redirectUrl="relative")
    response = await post(fake, client, body)
    assert problem(response, 400) == validation(VALID_TO_PAST, BAD_REDIRECT)


async def test_empty_action_list_is_required(fake: Fake, client: httpx.AsyncClient) -> None:
    response = await post(fake, client, consent_body(consentRights=[right(action=[])]))
    expected = vld("STD.VLD-00000", "The field is required.", "/consentRight/0/action")
    assert problem(response, 400) == validation(expected)


async def test_two_resources_in_one_right_is_am_00005(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    both = right()
    both["resource"].append({"type": "urn:altinn:resource", "value": MIGRATED_RESOURCE})
    response = await post(fake, client, consent_body(consentRights=[both]))
    assert problem(response, 400) == am("AM-00005", 400, "Invalid consent resource")


async def test_resource_not_of_type_consent_is_am_00005(keys: SigningKeys) -> None:
    generic = ConsentResource("generic-api", "Generic", DIGDIR, resource_type="GenericAccess")
    fake = make_fake(
        keys,
        resources={"generic-api": generic},
        requestconsent={"generic-api": frozenset({AUTHORITY})},
    )
    async with fake.client() as client:
        response = await post(fake, client, consent_body(consentRights=[right("generic-api")]))
    assert problem(response, 400) == am("AM-00005", 400, "Invalid consent resource")


async def test_unknown_metadata_key_is_am_00006(fake: Fake, client: httpx.AsyncClient) -> None:
    body = consent_body(consentRights=[right(metadata={"Inntektsaar": "2026"})])
    response = await post(fake, client, body)
    expected = am("AM-00006", 400, "Invalid consent metadata", key="inntektsaar")
    assert problem(response, 400) == expected


async def test_empty_metadata_value_is_am_00007(fake: Fake, client: httpx.AsyncClient) -> None:
    metadata = {"requestor": AUTHORITY, "RequestorName": ""}
    body = consent_body(consentRights=[right(MIGRATED_RESOURCE, metadata=metadata)])
    response = await post(fake, client, body)
    extension = {"ConsentRight index: 0, key": "requestorname"}
    assert problem(response, 400) == am("AM-00007", 400, "Missing metadata value", **extension)


async def test_missing_metadata_is_am_00008(fake: Fake, client: httpx.AsyncClient) -> None:
    metadata = {"requestor": AUTHORITY}
    body = consent_body(consentRights=[right(MIGRATED_RESOURCE, metadata=metadata)])
    response = await post(fake, client, body)
    expected = am("AM-00008", 400, "Missing metadata", key="requestorname")
    assert problem(response, 400) == expected


async def test_metadata_keys_match_case_insensitively(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    metadata = {"REQUESTOR": AUTHORITY, "RequestorName": "DIREKTORATET"}
    body = consent_body(consentRights=[right(MIGRATED_RESOURCE, metadata=metadata)])
    created = await create(fake, client, body)
    assert created["consentRights"][0]["metadata"] == metadata


async def test_resources_with_different_templates_is_am_00009(keys: SigningKeys) -> None:
    other = ConsentResource("ske-samtykke-test", "SKE", "974761076", template="default")
    resources = {NEW_RESOURCE: ConsentResource(NEW_RESOURCE, "OUV", DIGDIR), other.id: other}
    allowed = frozenset({AUTHORITY})
    fake = make_fake(
        keys, resources=resources, requestconsent={NEW_RESOURCE: allowed, other.id: allowed}
    )
    async with fake.client() as client:
        body = consent_body(consentRights=[right(), right(other.id)])
        response = await post(fake, client, body)
    assert problem(response, 400) == am("AM-00009", 400, "Invalid resource combination")


async def test_several_problems_are_std_00001_with_http_500(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    body = consent_body(
        validTo=(START - timedelta(days=1)).isoformat(),
        consentRights=[right(MIGRATED_RESOURCE, metadata={"requestor": "x", "extra": "y"})],
    )
    response = await post(fake, client, body)
    assert problem(response, 500) == {
        "type": "urn:altinn:error:STD-00001",
        "title": "Multiple problems occurred.",
        "status": 500,
        "code": "STD-00001",
        "statusDescription": "Internal Server Error",
        "problems": [
            am("AM-00006", 400, "Invalid consent metadata", key="extra"),
            am("AM-00008", 400, "Missing metadata", key="requestorname"),
            validation(VALID_TO_PAST),
        ],
    }


async def test_multiple_problems_as_400_when_the_quirk_is_off(keys: SigningKeys) -> None:
    fake = make_fake(keys, multiple_problems_as_500=False)
    body = consent_body(consentRights=[right(metadata={"a": "", "b": "1"})])
    async with fake.client() as client:
        response = await post(fake, client, body)
    payload = problem(response, 400)
    assert (payload["code"], payload["status"], payload["statusDescription"]) == (
        "STD-00001",
        400,
        "Bad Request",
    )
    assert [p["code"] for p in payload["problems"]] == ["AM-00006", "AM-00007", "AM-00006"]


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


# --- events feed --------------------------------------------------------------------------------

EVENTS = f"{API_PATH}/events"


async def _accepted(fake: Fake, client: httpx.AsyncClient) -> str:
    created = await create(fake, client)
    fake.clock.advance(1)
    fake.state.approve(created["id"], KARI)
    return str(created["id"])


async def test_events_are_hidden_for_the_safety_lag(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await _accepted(fake, client)
    response = await client.get(EVENTS, headers=fake.auth(scope=READ))
    assert response.json() == {"links": {}, "data": []}
    fake.clock.advance(300)
    response = await client.get(EVENTS, headers=fake.auth(scope=READ))
    assert response.json() == {
        "links": {},
        "data": [
            {
                "consentRequestId": consent_id,
                "eventType": "Created",
                "changedDate": "2026-03-02T09:00:00+00:00",
            },
            {
                "consentRequestId": consent_id,
                "eventType": "Accepted",
                "changedDate": "2026-03-02T09:00:01+00:00",
            },
        ],
    }


async def test_events_page_with_next_link_and_opaque_cursor(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_page_size=2, events_safety_lag_seconds=0)
    async with fake.client() as client:
        await _accepted(fake, client)
        await create(fake, client)
        first = (await client.get(EVENTS, headers=fake.auth(scope=READ))).json()
        assert len(first["data"]) == 2
        last = fake.register.events()[1]
        token = base64.b64encode(last.id.bytes_le).decode()
        next_url = httpx.URL(first["links"]["next"])
        assert next_url.params["continuationToken"] == token
        assert str(next_url).startswith(f"{PUBLIC_BASE}{EVENTS}?")
        second = (await client.get(next_url, headers=fake.auth(scope=READ))).json()
        assert [d["eventType"] for d in second["data"]] == ["Created"]
        assert second["links"] == {}


async def test_full_last_page_still_links_to_an_empty_page(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_page_size=2, events_safety_lag_seconds=0)
    async with fake.client() as client:
        await _accepted(fake, client)
        first = (await client.get(EVENTS, headers=fake.auth(scope=READ))).json()
        second = await client.get(first["links"]["next"], headers=fake.auth(scope=READ))
    assert second.json() == {"links": {}, "data": []}


async def test_next_link_keeps_the_filters(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_page_size=1, events_safety_lag_seconds=0)
    async with fake.client() as client:
        consent_id = await _accepted(fake, client)
        params = {"eventType": "accepted", "createdAfter": "2026-03-01T00:00:00Z"}
        page = (await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))).json()
    link = httpx.URL(page["links"]["next"])
    assert link.params.get_list("eventType") == ["accepted"]
    assert link.params["createdAfter"] == "2026-03-01T00:00:00.0000000Z"
    assert page["data"] == [
        {
            "consentRequestId": consent_id,
            "eventType": "Accepted",
            "changedDate": "2026-03-02T09:00:01+00:00",
        }
    ]


@pytest.mark.parametrize(
    ("params", "types"),
    [
        ({"eventType": ["Accepted", "revoked"]}, ["Accepted"]),
        ({"createdAfter": "2026-03-02T09:00:01Z"}, ["Accepted"]),
        ({"createdBefore": "2026-03-02T09:00:01Z"}, ["Created"]),
    ],
)
async def test_events_filters(keys: SigningKeys, params: dict[str, Any], types: list[str]) -> None:
    fake = make_fake(keys, events_safety_lag_seconds=0)
    async with fake.client() as client:
        await _accepted(fake, client)
        page = (await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))).json()
    assert [d["eventType"] for d in page["data"]] == types


async def test_events_filter_by_request_and_only_for_the_to_party(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_safety_lag_seconds=0)
    async with fake.client() as client:
        mine = await create(fake, client)
        await create(fake, client, consent_body(to=org_urn(AUTHORITY_2)), consumer=AUTHORITY_2)
        params = {"consentRequestId": mine["id"]}
        page = (await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))).json()
        everything = (await client.get(EVENTS, headers=fake.auth(scope=READ))).json()
    assert [d["consentRequestId"] for d in page["data"]] == [mine["id"]]
    assert [d["consentRequestId"] for d in everything["data"]] == [mine["id"]]


async def test_events_lowercase_switch(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_safety_lag_seconds=0, pascal_case_event_types=False)
    async with fake.client() as client:
        await _accepted(fake, client)
        page = (await client.get(EVENTS, headers=fake.auth(scope=READ))).json()
    assert [d["eventType"] for d in page["data"]] == ["created", "accepted"]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (
            {"createdAfter": "2026-03-02T10:00:00Z", "createdBefore": "2026-03-02T09:00:00Z"},
            vld("AM.VLD-00051", "createdAfter must be before createdBefore", "$QUERY/createdAfter"),
        ),
        (
            {"eventType": ["accepted", "created"]},
            vld("AM.VLD-00052", "Invalid event type", "$QUERY/eventType"),
        ),
        (
            {"continuationToken": "not base64!"},
            vld("AM.VLD-00053", "Invalid continuation token", "$QUERY/continuationToken"),
        ),
        (
            {"continuationToken": base64.b64encode(b"short").decode()},
            vld("AM.VLD-00053", "Invalid continuation token", "$QUERY/continuationToken"),
        ),
    ],
)
async def test_events_query_validation(
    fake: Fake, client: httpx.AsyncClient, params: dict[str, Any], error: dict[str, Any]
) -> None:
    response = await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))
    assert problem(response, 400) == validation(error)


async def test_events_query_errors_are_collected(fake: Fake, client: httpx.AsyncClient) -> None:
    params = {"eventType": "used2", "continuationToken": "%%%"}
    response = await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))
    codes = [e["code"] for e in problem(response, 400)["validationErrors"]]
    assert codes == ["AM.VLD-00052", "AM.VLD-00053"]


@pytest.mark.parametrize("name", ["createdAfter", "consentRequestId"])
async def test_events_query_binding_errors(
    fake: Fake, client: httpx.AsyncClient, name: str
) -> None:
    response = await client.get(EVENTS, params={name: "nonsense"}, headers=fake.auth(scope=READ))
    detail = "The value 'nonsense' is not valid."
    expected = vld("STD.VLD-00002", "The value provided is invalid.", f"/$QUERY/{name}", detail)
    assert problem(response, 400) == validation(expected)


async def test_events_need_token_scope_and_consumer(fake: Fake, client: httpx.AsyncClient) -> None:
    assert (await client.get(EVENTS)).status_code == 401
    assert (await client.get(EVENTS, headers=fake.auth(scope="openid"))).status_code == 403
    response = await client.get(EVENTS, headers=fake.auth(consumer=None, scope=WRITE))
    assert (response.status_code, response.content) == (401, b"")


async def test_unknown_cursor_falls_back_to_id_order(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_safety_lag_seconds=0)
    async with fake.client() as client:
        await _accepted(fake, client)
        zero = base64.b64encode(uuid.UUID(int=0).bytes_le).decode()
        params = {"continuationToken": zero}
        page = (await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))).json()
    assert len(page["data"]) == 2
