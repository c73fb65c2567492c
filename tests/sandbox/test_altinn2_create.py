"""The fake Altinn 2 ``POST /api/consentRequests`` (altinn-consent.md §2.1, §5.3, §6.3): who may
call, every field rule, the redirect allow-list, and the 201 with HAL links."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest

from broker.sandbox.altinn2_config import ApiKey, SrrRight, redirect_allowed
from tests.sandbox.altinn2_helpers import (
    API,
    AUTHORITY_NAME,
    BROKER,
    FORBIDDEN,
    HAL,
    RETURN,
    SUPPLIER_NAME,
    TOKENS,
    altinn2,
    body,
    local,
)
from tests.sandbox.sandbox_helpers import AUTHORITY, BASE, START, SUPPLIER, build

OTHER_AUTHORITY = "310200026"


async def test_a_request_is_created_with_an_authorization_code_and_hal_links() -> None:
    async with altinn2() as a2:
        response = await a2.post(body())
        assert response.status_code == 201, response.text
        assert response.headers["content-type"].startswith(HAL)
        created = response.json()
        code = created["AuthorizationCode"]
        assert uuid.UUID(code).version == 4
        assert created["RequestStatus"] == "Unopened"
        assert (created["CoveredBy"], created["OfferedBy"]) == (AUTHORITY, SUPPLIER)
        assert created["HandledBy"] == BROKER  # the token's supplier
        assert created["ValidTo"] == local(START + timedelta(days=30))
        assert created["PortalViewMode"] == "Hide"
        assert created["_links"] == {
            "self": {"href": f"{BASE}/altinn2/api/consentRequests/{code}"},
            "gui": {"href": f"{BASE}/altinn2/ui/AccessConsent/request?id={code}"},
        }
        assert created["RequestResources"][0]["Metadata"]["requestorName"] == AUTHORITY_NAME


async def test_without_hal_accept_there_are_no_links() -> None:
    async with altinn2() as a2:
        response = await a2.post(body(), accept="application/json")
        assert response.status_code == 201
        assert response.headers["content-type"] == "application/json"
        assert "_links" not in response.json()


async def test_property_names_bind_case_insensitively() -> None:
    async with altinn2() as a2:
        payload = {k.lower(): v for k, v in body().items()}
        payload["requestresources"] = [
            {"servicecode": "5616", "serviceeditioncode": 2, "metadata": r["Metadata"]}
            for r in body()["RequestResources"]
        ]
        assert (await a2.post(payload)).status_code == 201


@pytest.mark.parametrize(
    ("auth", "status"),
    [
        ({"key": None}, 403),
        ({"key": "not-a-key"}, 403),
        ({"scope": TOKENS}, 403),  # a token without altinn:consentrequests.write
    ],
)
async def test_the_api_key_and_the_token_scope_are_required(
    auth: dict[str, Any], status: int
) -> None:
    async with altinn2() as a2:
        response = await a2.post(body(), **auth)
        assert response.status_code == status
        assert response.json() == FORBIDDEN
        assert a2.sandbox.altinn2.requests() == []


@pytest.mark.parametrize("bearer", ["Bearer not-a-jwt", "Basic abc", "Bearer "])
async def test_a_bad_bearer_token_is_401(bearer: str) -> None:
    async with altinn2() as a2:
        headers = await a2.headers(None)
        headers["Authorization"] = bearer
        response = await a2.http.post(API, json=body(), headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_tampered_token_is_401() -> None:
    async with altinn2() as a2:
        headers = await a2.headers()
        tampered = headers["Authorization"][:-6] + "AAAAAA"
        response = await a2.http.post(
            API, json=body(), headers={**headers, "Authorization": tampered}
        )
        assert response.status_code == 401
        assert a2.sandbox.altinn2.requests() == []


async def test_the_api_key_must_belong_to_the_tokens_consumer_or_supplier() -> None:
    sandbox = build()
    other_key = {"other-key": ApiKey("310100021", redirect_domains=("127.0.0.1",))}
    sandbox.altinn2_overrides["api_keys"] = {**sandbox.altinn2_config.api_keys, **other_key}
    async with altinn2(sandbox) as a2:
        response = await a2.post(body(), key="other-key")
        assert response.status_code == 403


async def test_with_the_api_key_alone_the_keys_org_must_be_covered_by_or_an_srr_handler() -> None:
    async with altinn2() as a2:
        # The broker's key, acting as the SRR-approved handler of the authority.
        ok = await a2.post(body(), scope=None)
        assert ok.status_code == 201, ok.text
        assert ok.json()["HandledBy"] == BROKER
        # Without HandledBy the broker would ask for itself, but CoveredBy is someone else.
        refused = await a2.post(body(HandledBy=None), scope=None)
        assert refused.status_code == 403
        # An organisation whose SRR entry does not name the broker.
        assert (await a2.post(body(CoveredBy="310100021"), scope=None)).status_code == 403


async def test_the_token_consumer_must_be_covered_by_and_the_supplier_the_handler() -> None:
    async with altinn2() as a2:
        wrong_covered = await a2.post(body(CoveredBy=OTHER_AUTHORITY))
        assert wrong_covered.status_code == 403
        wrong_handler = await a2.post(body(HandledBy="310100021"))
        assert wrong_handler.status_code == 403
        # No HandledBy in the body: the supplier handles it anyway.
        created = await a2.post(body(HandledBy=None))
        assert created.json()["HandledBy"] == BROKER


async def test_another_media_type_is_415() -> None:
    async with altinn2() as a2:
        headers = {**(await a2.headers()), "Content-Type": "text/plain"}
        response = await a2.http.post(API, content=b"{}", headers=headers)
        assert response.status_code == 415


@pytest.mark.parametrize(
    ("content", "description"),
    [
        (b"{not json", "The request body is not valid JSON."),
        (b"[]", "The request body must be a JSON object."),
    ],
)
async def test_a_broken_body_is_19000(content: bytes, description: str) -> None:
    async with altinn2() as a2:
        headers = {**(await a2.headers()), "Content-Type": "application/json"}
        response = await a2.http.post(API, content=content, headers=headers)
        assert response.status_code == 400
        assert response.json() == [{"errorCode": "19000", "errorDescription": description}]


_RESOURCE = {"ServiceCode": "5616", "ServiceEditionCode": 2}
_META = {"requestor": AUTHORITY, "requestorName": AUTHORITY_NAME}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"CoveredBy": None}, "19001"),
        ({"CoveredBy": "123456789"}, "19001"),
        ({"OfferedBy": None}, "19002"),
        ({"OfferedBy": "310100014"}, "19002"),  # bad check digit
        ({"OfferedBy": "310100056"}, "19002"),  # valid, not a known party
        ({"OfferedByName": None}, "19003"),
        ({"OfferedByName": "NORDBYGG"}, "19003"),
        ({"ValidTo": None}, "19004"),
        ({"ValidTo": "30.09.2019"}, "19004"),
        ({"ValidTo": local(START - timedelta(minutes=1))}, "19004"),
        ({"ValidTo": local(START + timedelta(days=3 * 366 + 1))}, "19004"),
        ({"RedirectUrl": None}, "19005"),
        ({"RedirectUrl": "/relative/path"}, "19005"),
        ({"RedirectUrl": "https://"}, "19005"),
        ({"RedirectUrl": "https://evil.example/consent"}, "19005"),  # not allowed
        ({"RequestResources": []}, "19006"),
        ({"RequestResources": None}, "19006"),
        ({"RequestResources": [{"ServiceCode": "5616", "ServiceEditionCode": 9}]}, "19007"),
        ({"RequestResources": ["5616_2"]}, "19007"),
        ({"RequestResources": [{**_RESOURCE, "Metadata": {"requestor": AUTHORITY}}]}, "19008"),
        ({"RequestResources": [{**_RESOURCE, "Metadata": {**_META, "x": "1"}}]}, "19008"),
        ({"RequestResources": [{**_RESOURCE, "Metadata": {**_META, "requestor": " "}}]}, "19008"),
        ({"RequestResources": [{**_RESOURCE, "Metadata": {"requestor": 1}}]}, "19008"),
        ({"RequestMessage": {"no-nb": "Hei"}}, "19009"),  # Skatteetaten forbids it
        ({"RequestMessage": {"de": "Hallo"}}, "19009"),
        ({"HandledBy": "12345"}, "19010"),
        ({"RequiredDelegator": "01819040181"}, "19011"),
        (
            {"RequiredDelegator": "01819040180", "RequiredDelegatorName": "Hansen"},
            "19011",
        ),
        ({"PortalViewMode": "Sometimes"}, "19012"),
    ],
)
async def test_each_field_rule_answers_400_with_its_code(
    overrides: dict[str, Any], code: str
) -> None:
    async with altinn2() as a2:
        response = await a2.post(body(**overrides))
        assert response.status_code == 400, response.text
        errors = response.json()
        assert [e["errorCode"] for e in errors] == [code]
        assert all(set(e) == {"errorCode", "errorDescription"} for e in errors)
        assert a2.sandbox.altinn2.requests() == []


async def test_every_broken_field_is_reported_at_once() -> None:
    async with altinn2() as a2:
        response = await a2.post(
            body(CoveredBy="1", OfferedByName="wrong", ValidTo="never", RequestResources=[])
        )
        assert response.status_code == 400
        assert [e["errorCode"] for e in response.json()] == ["19001", "19003", "19006", "19004"]


async def test_names_compare_case_insensitively_and_defaults_hold() -> None:
    async with altinn2() as a2:
        created = await a2.create(
            OfferedByName=SUPPLIER_NAME.lower(),
            RequiredDelegator="01819040180",
            RequiredDelegatorName="nordmann",
            PortalViewMode="show",
            ValidTo=(START + timedelta(days=30)).isoformat(),  # an offset is fine too
        )
        assert created["RequiredDelegator"] == "01819040180"
        assert created["PortalViewMode"] == "Show"


async def test_a_person_can_be_asked_by_surname() -> None:
    async with altinn2() as a2:
        created = await a2.create(OfferedBy="05859240048", OfferedByName="Berg")
        assert created["OfferedBy"] == "05859240048"


async def test_a_service_that_allows_a_request_message_takes_one() -> None:
    sandbox = build()
    service = sandbox.altinn2_config.services["5616_2"]
    allowing = dataclasses.replace(service, request_message_allowed=True)
    sandbox.altinn2_overrides["services"] = {"5616_2": allowing}
    async with altinn2(sandbox) as a2:
        created = await a2.create(RequestMessage={"en": "Please", "no-nb": "Vær så snill"})
        assert created["RequestMessage"] == {"en": "Please", "no-nb": "Vær så snill"}


async def test_srr_redirect_domains_win_over_the_api_keys() -> None:
    sandbox = build()
    srr = dict(sandbox.altinn2_config.srr)
    srr[AUTHORITY] = SrrRight(
        redirect_domains=("*.portal.example",), handled_by=frozenset({BROKER})
    )
    sandbox.altinn2_overrides["srr"] = srr
    async with altinn2(sandbox) as a2:
        refused = await a2.post(body(RedirectUrl=RETURN))  # the key's domain, not SRR's
        assert [e["errorCode"] for e in refused.json()] == ["19005"]
        ok = await a2.post(body(RedirectUrl="https://a.portal.example:8443/back?x=1"))
        assert ok.status_code == 201


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://broker.example/x", True),
        ("http://broker.example:8000/x", True),
        ("https://BROKER.example/x", True),
        ("https://evil.example/x", False),
        ("https://broker.example.evil.example/x", False),
        ("https://a.b.portal.example/", True),
        ("https://portal.example/", False),  # the wildcard needs a subdomain
        ("myapp://consent/done", True),
        ("otherapp://consent/done", False),
        ("ftp://broker.example/", False),
        ("http://[::1", False),
    ],
)
def test_srr_style_redirect_entries(url: str, allowed: bool) -> None:
    domains = ("broker.example", "*.portal.example", "myapp:")
    assert redirect_allowed(url, domains) is allowed
