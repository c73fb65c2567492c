"""The fake Altinn 3 consent API's validation of POST /consentrequests: binding (STD.VLD-00017)
and the service's checks (AM-000xx, AM.VLD-000xx, STD-00001)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from broker.sandbox.altinn3 import API_PATH
from broker.sandbox.altinn3_resources import MIGRATED_RESOURCE, NEW_RESOURCE, ConsentResource
from broker.sandbox.consents import org_urn
from broker.sandbox.jose import SigningKeys
from tests.sandbox.altinn3_helpers import (
    AUTHORITY,
    DIGDIR,
    ORG,
    START,
    UNKNOWN_ORG,
    UNKNOWN_PERSON,
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
    validation,
    vld,
)

PERSON_URN = "urn:altinn:person:identifier-no:"

VALID_TO_PAST = vld("AM.VLD-00022", "The time need to be in the future", "ValidTo")
BAD_REDIRECT = vld("AM.VLD-00027", "Redirect URL is not a valid URL", "RedirectUrl")
JSON_TITLE = (
    "The JSON value failed to deserialize. Check the JSON format and ensure that the property "
    "names match the expected model."
)


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
