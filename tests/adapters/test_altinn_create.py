"""Creating consent requests at the composed sandbox's fake Altinn 3: the happy paths, the
idempotent replay, Altinn's refusals, the request message and the two token modes."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from broker.altinn import (
    LEGACY_MESSAGE_KEYS,
    ORG_SCOPE,
    WRITE_SCOPE,
    AltinnMode,
    AltinnRefused,
    RequestMessages,
)
from broker.altinn.schemas import DEFAULT_MESSAGE_TEXTS
from broker.consent.ports import UpstreamRefused
from tests.adapters.altinn_support import (
    ALTINN_BASE,
    AUTHORITY,
    BROKER,
    MIGRATED_RESOURCE,
    REDIRECT,
    SECRET_TOKEN,
    START,
    SUPPLIER,
    SUPPLIER_2,
    UNKNOWN_ORG,
    make_request,
    mock_client,
    sandbox_world,
)

ORG = "urn:altinn:organization:identifier-no:"


def _echo_created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"id": json.loads(request.content)["id"], "viewUri": "v"})


async def test_create_answers_201_with_the_view_uri() -> None:
    async with sandbox_world() as w:
        request = make_request()
        created = await w.client().create(request)
        record = w.sandbox.altinn.get(request.id)
    assert created.id == request.id
    assert created.view_uri == f"{ALTINN_BASE}/accessmanagement/ui/consent/request?id={request.id}"
    assert record is not None
    assert (record.from_party, record.to_party) == (ORG + SUPPLIER, ORG + AUTHORITY)
    assert record.handled_by == ORG + BROKER  # vendor mode: the token's supplier
    assert record.valid_to == request.valid_to
    assert record.portal_view_mode == "Hide"
    assert record.redirect_url == REDIRECT
    assert record.consent_rights[0]["metadata"] == {}
    assert record.request_message == {"nb": DEFAULT_MESSAGE_TEXTS["nb"]}


async def test_the_body_is_the_documented_consent_request_dto() -> None:
    client, script, tokens = mock_client([_echo_created])
    request = make_request(language="en")
    await client.create(request)
    sent = script.requests[0]
    assert sent.method == "POST"
    assert str(sent.url) == f"{ALTINN_BASE}/accessmanagement/api/v1/enterprise/consentrequests"
    assert sent.headers["authorization"] == f"Bearer {SECRET_TOKEN}0"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {
        "id": str(request.id),
        "from": ORG + SUPPLIER,
        "to": ORG + AUTHORITY,
        "validTo": "2027-02-26T10:00:00+00:00",
        "consentRights": [
            {
                "action": ["consent"],
                "resource": [
                    {
                        "type": "urn:altinn:resource",
                        "value": "digdir-oppdragutenlandskevirksomheter-skatteetaten",
                    }
                ],
                "metadata": {},
            }
        ],
        "requestMessage": {"en": DEFAULT_MESSAGE_TEXTS["en"]},
        "redirectUrl": REDIRECT,
        "portalViewMode": "hide",
    }
    assert tokens.requested == [(WRITE_SCOPE, AUTHORITY)]


@pytest.mark.parametrize(
    ("messages", "language", "expected"),
    [
        (RequestMessages(), "nn", {"nn": DEFAULT_MESSAGE_TEXTS["nn"]}),
        (RequestMessages(), "de", {"nb": DEFAULT_MESSAGE_TEXTS["nb"]}),
        (RequestMessages(keys=LEGACY_MESSAGE_KEYS), "nb", {"no-nb": DEFAULT_MESSAGE_TEXTS["nb"]}),
        (RequestMessages(texts={"en": "Hi"}, default_language="en"), "nb", {"en": "Hi"}),
        (RequestMessages(texts=None), "nb", None),
    ],
)
async def test_request_message_language_and_keys_are_configurable(
    messages: RequestMessages, language: str, expected: dict[str, str] | None
) -> None:
    client, script, _ = mock_client([_echo_created], messages=messages)
    await client.create(make_request(language=language))
    body = json.loads(script.requests[0].content)
    assert body.get("requestMessage") == expected


def test_the_fallback_language_must_have_a_text() -> None:
    with pytest.raises(ValueError, match="default language"):
        RequestMessages(texts={"en": "Hi"})


async def test_valid_to_without_an_offset_is_a_programming_error() -> None:
    client, script, _ = mock_client([])
    with pytest.raises(ValueError, match="offset"):
        await client.create(make_request(valid_to=START.replace(tzinfo=None)))
    assert script.requests == []


@pytest.mark.parametrize("field", ["subject_org", "requestor_org"])
async def test_a_malformed_organisation_number_is_a_programming_error(field: str) -> None:
    client, script, _ = mock_client([])
    with pytest.raises(ValueError, match="9 digits"):
        await client.create(make_request(**{field: "urn:altinn:organization:identifier-no:1"}))
    assert script.requests == []


async def test_posting_the_same_id_again_answers_200_with_the_same_request() -> None:
    async with sandbox_world() as w:
        request = make_request()
        first = await w.client().create(request)
        again = await w.client().create(request)
        assert (
            w.sandbox.altinn_calls[
                "POST /altinn/accessmanagement/api/v1/enterprise/consentrequests"
            ]
            == 2
        )
        assert len(w.sandbox.altinn.requests()) == 1
    assert again == first


async def test_the_same_id_with_other_parties_is_refused_am_00016() -> None:
    async with sandbox_world() as w:
        request = make_request()
        await w.client().create(request)
        with pytest.raises(AltinnRefused) as caught:
            await w.client().create(make_request(id=request.id, subject_org=SUPPLIER_2))
    assert caught.value.code == "AM-00016"
    assert caught.value.status == 400
    assert caught.value.detail == "AM-00016 Consent with id already exist"
    assert isinstance(caught.value, UpstreamRefused)


@pytest.mark.parametrize(
    ("overrides", "code", "codes", "status"),
    [
        ({"valid_to": START - timedelta(days=1)}, "STD-00000", ("AM.VLD-00022",), 400),
        ({"redirect_url": "not a url"}, "STD-00000", ("AM.VLD-00027",), 400),
        ({"subject_org": UNKNOWN_ORG}, "AM-00003", ("AM-00003",), 400),
        # Two missing metadata keys: Altinn's multiple-problems answer, sent as a 500.
        ({"resource": MIGRATED_RESOURCE}, "STD-00001", ("AM-00008", "AM-00008"), 500),
    ],
)
async def test_validation_refusals_carry_altinns_codes(
    overrides: dict[str, Any], code: str, codes: tuple[str, ...], status: int
) -> None:
    async with sandbox_world() as w:
        with pytest.raises(AltinnRefused) as caught:
            await w.client().create(make_request(**overrides))
        posts = w.sandbox.altinn_calls[
            "POST /altinn/accessmanagement/api/v1/enterprise/consentrequests"
        ]
    assert (caught.value.code, caught.value.codes, caught.value.status) == (code, codes, status)
    assert posts == 1  # a refusal is final, even as a 500
    assert all(c in caught.value.detail for c in codes)


async def test_a_resource_we_may_not_request_is_an_empty_403() -> None:
    # Altinn's PDP refuses ``requestconsent`` before validation: no body, so our own code.
    async with sandbox_world() as w:
        with pytest.raises(AltinnRefused) as caught:
            await w.client().create(make_request(resource="no-such-resource"))
    assert (caught.value.code, caught.value.status) == ("forbidden", 403)
    assert caught.value.detail == "Altinn answered 403 Forbidden"


async def test_a_refusal_detail_names_the_failing_field() -> None:
    async with sandbox_world() as w:
        with pytest.raises(AltinnRefused) as caught:
            await w.client().create(make_request(valid_to=START - timedelta(days=1)))
    assert caught.value.detail == "AM.VLD-00022 The time need to be in the future (ValidTo)"


async def test_vendor_mode_asks_on_behalf_of_the_requestor() -> None:
    async with sandbox_world() as w:
        await w.client().create(make_request())
    assert w.tokens.fetched == [(WRITE_SCOPE, AUTHORITY)]


async def test_vendor_mode_for_the_broker_itself_needs_no_delegation() -> None:
    async with sandbox_world() as w:
        request = make_request(requestor_org=BROKER)
        await w.client().create(request)
        record = w.sandbox.altinn.get(request.id)
    assert w.tokens.fetched == [(WRITE_SCOPE, None)]
    assert record is not None
    assert (record.to_party, record.handled_by) == (ORG + BROKER, None)


async def test_org_mode_asks_as_the_broker_with_the_org_scope() -> None:
    async with sandbox_world() as w:
        request = make_request()
        created = await w.client(AltinnMode.ORG).create(request)
        record = w.sandbox.altinn.get(request.id)
    assert created.id == request.id
    assert w.tokens.fetched == [(ORG_SCOPE, None)]
    assert record is not None
    assert (record.to_party, record.handled_by) == (ORG + AUTHORITY, ORG + BROKER)


async def test_mode_is_parsed_from_configuration_text() -> None:
    async with sandbox_world() as w:
        assert w.client("org").mode is AltinnMode.ORG  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'both'"):
            w.client("both")  # type: ignore[arg-type]


async def test_a_created_answer_for_another_id_is_an_upstream_error() -> None:
    other = str(uuid.uuid4())
    client, _, _ = mock_client([httpx.Response(201, json={"id": other, "viewUri": "v"})])
    with pytest.raises(Exception, match="not the id we sent"):
        await client.create(make_request())
