"""The Altinn 2 adapter on a scripted transport: how each failure becomes the ports' errors, what
is retried (never a POST: Altinn chooses the code), and how a consent token is verified against
Altinn's primary and secondary keys (altinn-consent.md §3.1 "Verification")."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from broker.altinn.altinn2 import Altinn2Auth
from broker.altinn.errors import AltinnBadResponse, AltinnRefused, AltinnUnavailable
from broker.consent.ports import ConsentToken, UpstreamUnavailable
from tests.adapters.altinn2_support import (
    a2_request,
    jwks_response,
    mock_client,
    request_body,
    sign,
    signing_key,
    token_claims,
    unsigned,
)
from tests.adapters.altinn_support import AUTHORITY, START, SUPPLIER
from tests.support import Sleeps

CODE = str(uuid.uuid4())
PRIMARY = signing_key("primary")
SECONDARY = signing_key("secondary")


def _json(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


async def _token(*answers: Any) -> ConsentToken:
    client, _, _ = mock_client(list(answers))
    return await client.consent_token(
        consent_id=uuid.UUID(CODE), subject_org=SUPPLIER, requestor_org=AUTHORITY
    )


async def test_a_post_is_never_retried() -> None:
    client, script, _ = mock_client([httpx.Response(503)])
    with pytest.raises(AltinnUnavailable):
        await client.create(a2_request())
    assert len(script.requests) == 1


async def test_a_read_is_retried_with_back_off_and_retry_after() -> None:
    sleeps = Sleeps()
    client, script, _ = mock_client(
        [
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "2"}),
            _json(request_body(CODE, "Opened")),
        ],
        sleep=sleeps,
    )
    state = await client.status(uuid.UUID(CODE), requestor_org=AUTHORITY)
    assert state.id == uuid.UUID(CODE)
    assert len(script.requests) == 3
    assert sleeps.waits == [0.25, 2.0]


async def test_connection_errors_end_as_unavailable_after_the_attempts() -> None:
    client, script, _ = mock_client([httpx.ConnectError("down")] * 3)
    with pytest.raises(AltinnUnavailable, match="ConnectError"):
        await client.status(uuid.UUID(CODE), requestor_org=AUTHORITY)
    assert len(script.requests) == 3


async def test_every_call_carries_the_api_key_and_asks_for_hal() -> None:
    client, script, tokens = mock_client([_json(request_body(CODE, "Unopened"))])
    await client.status(uuid.UUID(CODE), requestor_org=AUTHORITY)
    request = script.requests[0]
    assert request.headers["apikey"] == "the-api-key"
    assert request.headers["accept"] == "application/hal+json"
    assert request.headers["authorization"].startswith("Bearer ")
    assert tokens.requested == [("altinn:consentrequests.write", AUTHORITY)]


async def test_the_api_key_mode_sends_no_bearer() -> None:
    client, script, tokens = mock_client(
        [_json(request_body(CODE, "Unopened"))], auth=Altinn2Auth.APIKEY
    )
    await client.status(uuid.UUID(CODE), requestor_org=AUTHORITY)
    assert "authorization" not in script.requests[0].headers
    assert tokens.requested == []


async def test_a_401_drops_the_token_and_tries_once_more() -> None:
    client, script, tokens = mock_client([httpx.Response(401), httpx.Response(401)])
    with pytest.raises(AltinnRefused) as refused:
        await client.status(uuid.UUID(CODE), requestor_org=AUTHORITY)
    assert refused.value.code == "unauthorized"
    assert len(script.requests) == 2
    assert tokens.invalidated == [("altinn:consentrequests.write", AUTHORITY)]


@pytest.mark.parametrize(
    ("body", "code", "codes"),
    [
        ([{"errorCode": "19023", "errorDescription": "RedirectUrl"}], "19023", ("19023",)),
        ([{"ErrorCode": 4, "ErrorMessage": "x"}, {"errorCode": "5"}], "4", ("4", "5")),
        ({"errorCode": "7", "errorDescription": "one object"}, "7", ("7",)),
        ({"Message": "no codes"}, "http_400", ()),
        ("not a list", "http_400", ()),
    ],
)
async def test_a_400_keeps_altinns_codes(body: Any, code: str, codes: tuple[str, ...]) -> None:
    client, _, _ = mock_client([_json(body, 400)])
    with pytest.raises(AltinnRefused) as refused:
        await client.create(a2_request())
    assert refused.value.code == code
    assert refused.value.codes == codes


async def test_a_400_that_is_not_json_is_a_plain_refusal() -> None:
    client, _, _ = mock_client([httpx.Response(400, text="<html>")])
    with pytest.raises(AltinnRefused) as refused:
        await client.create(a2_request())
    assert refused.value.code == "http_400"


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (httpx.Response(200, text="not json"), "not JSON"),
        (_json(request_body(CODE, "Unopened", _links={})), "GUI link"),
        (_json(request_body(CODE, "Sleeping")), "RequestStatus"),
        (_json(request_body(CODE, "Unopened", OfferedBy="310100021")), "another request"),
        (_json(request_body("not-a-guid", "Unopened")), "AuthorizationCode"),
        (_json(request_body(CODE, "Unopened", ValidTo="soon")), "ValidTo"),
        (_json(request_body(CODE, "Unopened", RequestResources="5616_2")), "RequestResources"),
        (httpx.Response(302, headers={"Location": "/elsewhere"}), "302"),
    ],
)
async def test_an_unusable_create_answer_is_a_bad_response(
    answer: httpx.Response, match: str
) -> None:
    client, _, _ = mock_client([answer])
    with pytest.raises(AltinnBadResponse, match=match):
        await client.create(a2_request())


async def test_a_read_for_another_code_is_a_bad_response() -> None:
    client, _, _ = mock_client([_json(request_body(str(uuid.uuid4()), "Opened"))])
    with pytest.raises(AltinnBadResponse, match="another consent request"):
        await client.status(uuid.UUID(CODE), requestor_org=AUTHORITY)


async def test_camel_case_and_offsets_are_read_too() -> None:
    body = {k[0].lower() + k[1:]: v for k, v in request_body(CODE, "accepted").items()}
    body["validTo"] = "2027-02-26T10:00:00+00:00"
    client, _, _ = mock_client([_json(body)])
    state = await client.status(uuid.UUID(CODE), requestor_org=AUTHORITY)
    assert state.valid_to.isoformat() == "2027-02-26T10:00:00+00:00"


async def test_a_token_signed_by_the_primary_or_the_secondary_key_verifies() -> None:
    jwks = jwks_response(PRIMARY, SECONDARY)
    for key in (PRIMARY, SECONDARY):
        token = await _token(_json(sign(key, token_claims(CODE))), jwks)
        assert token.consent_id == uuid.UUID(CODE)
        assert token.resources == ("5616_2",)


async def test_a_header_with_only_x5t_names_the_key() -> None:
    value = sign(PRIMARY, token_claims(CODE), kid=None, x5t="primary")
    token = await _token(_json(value), jwks_response(PRIMARY))
    assert token.consent_id == uuid.UUID(CODE)


async def test_the_older_claim_spellings_are_read() -> None:
    claims = token_claims(
        CODE,
        Services=None,
        ServiceCodes="5616,2",
        ValidToDate="26.02.2027 11:00:00",
        DelegatedDate="28.11.2026 11:00:00",
    )
    token = await _token(_json(sign(PRIMARY, claims)), jwks_response(PRIMARY))
    assert token.valid_to.isoformat() == "2027-02-26T10:00:00+00:00"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (lambda: sign(signing_key("other"), token_claims(CODE)), "unknown kid"),
        (lambda: sign(SECONDARY, token_claims(CODE), kid="primary"), "bad signature"),
        (lambda: sign(PRIMARY, token_claims(CODE, iss="www.altinn.no")), "wrong issuer"),
        (lambda: sign(PRIMARY, token_claims(CODE, exp=1, nbf=0, iat=0)), "expired"),
        (lambda: sign(PRIMARY, token_claims(CODE, exp=None)), "missing exp"),
        (lambda: sign(PRIMARY, token_claims(CODE, nbf=None, iat=None)), "missing nbf"),
        (lambda: sign(PRIMARY, token_claims(CODE, exp="soon")), "malformed exp"),
        (lambda: sign(PRIMARY, token_claims(CODE, exp=_now() + 3600)), "lifetime too long"),
        (
            lambda: sign(PRIMARY, token_claims(CODE, nbf=_now() + 60, exp=_now() + 90)),
            "not yet valid",
        ),
        (lambda: sign(PRIMARY, token_claims(CODE, CoveredBy="310200026")), "CoveredBy"),
        (lambda: sign(PRIMARY, token_claims(CODE, OfferedBy="310100021")), "OfferedBy"),
        (lambda: sign(PRIMARY, token_claims(str(uuid.uuid4()))), "AuthorizationCode"),
        (lambda: sign(PRIMARY, token_claims(CODE, Services="5616_3")), "Services"),
        (lambda: sign(PRIMARY, token_claims(CODE, ValidToDate="never")), "ValidToDate"),
        (lambda: unsigned({"alg": "HS256", "kid": "primary"}, token_claims(CODE)), "unsupported"),
        (lambda: "not.a.token", "malformed token"),
        (lambda: sign(PRIMARY, token_claims(CODE), kid=None), "missing kid"),
    ],
)
async def test_a_token_that_fails_a_check_is_refused(value: Any, reason: str) -> None:
    jwks = jwks_response(PRIMARY, SECONDARY)
    # An unknown kid makes the verifier fetch the keys once more, in case they rotated.
    client, _, _ = mock_client([_json(value()), jwks, jwks])
    with pytest.raises(AltinnRefused) as refused:
        await client.consent_token(
            consent_id=uuid.UUID(CODE), subject_org=SUPPLIER, requestor_org=AUTHORITY
        )
    assert refused.value.code == "invalid_token"
    assert reason in refused.value.detail


def _now() -> int:
    return int(START.timestamp())


@pytest.mark.parametrize(
    "answer", [httpx.Response(200, text="nope"), _json({"token": "x"}), _json(["x"])]
)
async def test_a_token_answer_that_is_no_json_string_is_a_bad_response(
    answer: httpx.Response,
) -> None:
    client, _, _ = mock_client([answer])
    with pytest.raises(AltinnBadResponse):
        await client.consent_token(
            consent_id=uuid.UUID(CODE), subject_org=SUPPLIER, requestor_org=AUTHORITY
        )


async def test_keys_that_cannot_be_fetched_make_the_token_unavailable() -> None:
    client, _, _ = mock_client([_json(sign(PRIMARY, token_claims(CODE))), httpx.Response(503)])
    with pytest.raises(UpstreamUnavailable):
        await client.consent_token(
            consent_id=uuid.UUID(CODE), subject_org=SUPPLIER, requestor_org=AUTHORITY
        )


async def test_a_withdrawal_altinn_cannot_take_is_raised_for_a_later_try() -> None:
    client, script, _ = mock_client([httpx.Response(500)] * 3)
    with pytest.raises(AltinnUnavailable):
        await client.withdraw(uuid.UUID(CODE), requestor_org=AUTHORITY, granted=True)
    assert all(r.method == "DELETE" for r in script.requests)
    assert script.requests[0].url.path.endswith(f"/api/authorization/token/{CODE}")


async def test_a_discard_refused_otherwise_than_403_is_raised() -> None:
    client, _, _ = mock_client([_json([{"errorCode": "1", "errorDescription": "no"}], 400)])
    with pytest.raises(AltinnRefused):
        await client.withdraw(uuid.UUID(CODE), requestor_org=AUTHORITY, granted=True)


async def test_a_stored_code_read_back_for_other_parties_is_a_bad_response() -> None:
    client, _, _ = mock_client([_json(request_body(CODE, "Opened", CoveredBy="310200026"))])
    with pytest.raises(AltinnBadResponse, match="another request"):
        await client.create(a2_request(id=uuid.UUID(CODE)))
