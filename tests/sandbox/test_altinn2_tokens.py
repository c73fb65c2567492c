"""The fake Altinn 2 after creation (altinn-consent.md §2.1 "Other endpoints", §3.1, §4.1, §6.3):
reading and withdrawing a request, the 30-second consent token and every way it is refused,
discarding the rights, logging use, Altinn's two keys, and the migration to Altinn 3."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from broker.sandbox.altinn2_config import ApiKey
from broker.sandbox.jose import InvalidToken, verify_jwt
from tests.sandbox.altinn2_helpers import (
    A2,
    API,
    AUTHORITY_NAME,
    BROKER,
    FORBIDDEN,
    TOKEN,
    TOKENS,
    altinn2,
    new_code,
)
from tests.sandbox.sandbox_helpers import AUTHORITY, START, SUPPLIER, build


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


async def test_a_token_is_a_json_string_holding_a_30_second_rs256_jwt() -> None:
    async with altinn2() as a2:
        code = await a2.accepted()
        response = await a2.fetch_token(code)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        value = response.json()
        assert isinstance(value, str)
        header = _header(value)
        assert header["alg"] == "RS256"
        assert header["typ"] == "JWT"
        assert header["kid"] == header["x5t"] == a2.sandbox.altinn2_keys.keys.primary_kid
        claims = a2.verify(value)
        now = int(START.timestamp())
        assert claims == {
            "Services": [
                "5616_2",
                f"5616_2_requestor={AUTHORITY}",
                f"5616_2_requestorName={AUTHORITY_NAME}",
            ],
            "AuthorizationCode": code,
            "OfferedBy": SUPPLIER,
            "CoveredBy": AUTHORITY,
            "HandledBy": BROKER,  # the handler fetched it
            "DelegatedDate": now,
            "ValidToDate": int((START + timedelta(days=30)).timestamp()),
            "nbf": now,
            "iat": now,
            "exp": now + 30,
            "iss": "altinn.no",
        }


async def test_a_token_fetched_as_covered_by_has_no_handled_by() -> None:
    sandbox = build()
    sandbox.altinn2_overrides["api_keys"] = {
        **sandbox.altinn2_config.api_keys,
        "authority-key": ApiKey(AUTHORITY),
    }
    async with altinn2(sandbox) as a2:
        code = await a2.accepted()
        response = await a2.fetch_token(code, scope=None, key="authority-key")
        assert response.status_code == 200, response.text
        claims = a2.verify(response.json())
        assert "HandledBy" not in claims
        assert claims["CoveredBy"] == AUTHORITY


async def test_the_api_key_alone_fetches_a_token_for_an_srr_approved_handler() -> None:
    async with altinn2() as a2:
        code = await a2.accepted()
        response = await a2.fetch_token(code, scope=None)
        assert response.status_code == 200
        assert a2.verify(response.json())["HandledBy"] == BROKER


async def _refused(a2: A2, code: str, **auth: Any) -> None:
    response = await a2.fetch_token(code, **auth)
    assert response.status_code == 403
    assert response.json() == FORBIDDEN


@pytest.mark.parametrize("answer", [None, "reject"])
async def test_no_token_before_acceptance_or_after_a_refusal(answer: str | None) -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        if answer:
            assert (await a2.control(code, answer)).status_code == 200
        await _refused(a2, code)


async def test_no_token_for_an_unknown_code_another_party_or_a_wrong_key() -> None:
    async with altinn2() as a2:
        code = await a2.accepted()
        await _refused(a2, new_code())
        await _refused(a2, "not-a-guid")
        await _refused(a2, code, consumer_org="310200026")  # another authority's token
        await _refused(a2, code, key="unknown")
        await _refused(a2, code, scope="altinn:consentrequests.write")  # wrong scope


async def test_no_token_after_expiry_revocation_or_discard() -> None:
    async with altinn2() as a2:
        expired, revoked, discarded = [await a2.accepted() for _ in range(3)]
        assert (await a2.control(expired, "expire")).status_code == 200
        assert (await a2.control(revoked, "revoke")).status_code == 200
        delete = await a2.http.delete(f"{TOKEN}/{discarded}", headers=await a2.headers(TOKENS))
        assert delete.status_code == 204
        for code in (expired, revoked, discarded):
            await _refused(a2, code)
        # RequestStatus stays Accepted all the same (§4.1).
        read = await a2.http.get(f"{API}/{revoked}", headers=await a2.headers())
        assert read.json()["RequestStatus"] == "Accepted"
        # Discarding twice finds nothing to discard.
        again = await a2.http.delete(f"{TOKEN}/{discarded}", headers=await a2.headers(TOKENS))
        assert again.status_code == 403


async def test_a_token_lives_30_seconds_and_none_is_issued_after_valid_to() -> None:
    async with altinn2() as a2:
        code = await a2.accepted()
        token = (await a2.fetch_token(code)).json()
        jwks = a2.sandbox.altinn2_keys.public_jwks()
        verify_jwt(token, jwks, now=a2.sandbox.clock.timestamp() + 29)
        with pytest.raises(InvalidToken, match="expired"):
            verify_jwt(token, jwks, now=a2.sandbox.clock.timestamp() + 30)
        a2.sandbox.clock.advance(timedelta(days=30).total_seconds() - 1)
        assert (await a2.fetch_token(code)).status_code == 200
        a2.sandbox.clock.advance(1)
        await _refused(a2, code)


async def test_reading_a_request_needs_it_to_be_yours() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        mine = await a2.http.get(f"{API}/{code}", headers=await a2.headers())
        assert mine.status_code == 200
        assert mine.json()["AuthorizationCode"] == code
        assert "_links" in mine.json()
        theirs = await a2.http.get(
            f"{API}/{code}", headers=await a2.headers(consumer_org="310200026")
        )
        assert theirs.status_code == 403
        unknown = await a2.http.get(f"{API}/{new_code()}", headers=await a2.headers())
        assert unknown.status_code == 403


async def test_an_unanswered_request_can_be_withdrawn_once() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        deleted = await a2.http.delete(f"{API}/{code}", headers=await a2.headers())
        assert deleted.status_code == 204
        assert (await a2.http.get(f"{API}/{code}", headers=await a2.headers())).status_code == 403
        assert (
            await a2.http.delete(f"{API}/{code}", headers=await a2.headers())
        ).status_code == 403
        page = await a2.http.get(f"/altinn2/ui/AccessConsent/request?id={code}")
        assert page.status_code == 404


async def test_an_answered_request_cannot_be_withdrawn() -> None:
    async with altinn2() as a2:
        code = await a2.accepted()
        response = await a2.http.delete(f"{API}/{code}", headers=await a2.headers())
        assert response.status_code == 400
        assert response.json()[0]["errorCode"] == "19000"


async def test_loguse_logs_and_ends_only_a_one_time_consent() -> None:
    sandbox = build()
    async with altinn2(sandbox) as a2:
        code = await a2.accepted()
        use = {
            "ServiceCode": "5616",
            "ServiceEditionCode": 2,
            "UsageDateTime": "2026-11-28T11:00:00",
        }
        logged = await a2.http.post(
            f"{TOKEN}/{code}/loguse", json=use, headers=await a2.headers(TOKENS)
        )
        assert logged.status_code == 204
        assert (await a2.fetch_token(code)).status_code == 200  # not one-time: still valid
        request = a2.sandbox.altinn2.get(code)
        assert request is not None
        assert request.usage[0][0] == "5616_2"
    one_time = dataclasses.replace(sandbox.altinn2_config.services["5616_2"], one_time=True)
    sandbox.altinn2_overrides["services"] = {"5616_2": one_time}
    async with altinn2(sandbox) as a2:
        code = await a2.accepted()
        logged = await a2.http.post(
            f"{TOKEN}/{code}/loguse", json=use, headers=await a2.headers(TOKENS)
        )
        assert logged.status_code == 204
        await _refused(a2, code)
        refused = await a2.control(code, "revoke")
        assert refused.status_code == 409  # one-time consents cannot be withdrawn


@pytest.mark.parametrize(
    ("use", "codes"),
    [
        (
            {
                "ServiceCode": "5616",
                "ServiceEditionCode": 3,
                "UsageDateTime": "2026-11-28T11:00:00",
            },
            ["19000"],
        ),
        ({"ServiceCode": "5616", "ServiceEditionCode": 2, "UsageDateTime": "yesterday"}, ["19000"]),
        ({}, ["19000", "19000"]),
    ],
)
async def test_a_bad_loguse_body_is_400(use: dict[str, Any], codes: list[str]) -> None:
    async with altinn2() as a2:
        code = await a2.accepted()
        response = await a2.http.post(
            f"{TOKEN}/{code}/loguse", json=use, headers=await a2.headers(TOKENS)
        )
        assert response.status_code == 400
        assert [e["errorCode"] for e in response.json()] == codes


async def test_loguse_of_a_refused_consent_is_403() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        response = await a2.http.post(
            f"{TOKEN}/{code}/loguse", json={}, headers=await a2.headers(TOKENS)
        )
        assert response.status_code == 403


async def test_the_jwk_set_has_a_primary_and_a_secondary_key_cached_for_a_day() -> None:
    async with altinn2() as a2:
        response = await a2.http.get("/altinn2/api/metadata/jwk")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=86400"
        keys = response.json()["keys"]
        assert len(keys) == 2
        assert all(k["kty"] == "RSA" and k["kid"] == k["x5t"] and "d" not in k for k in keys)
        code = await a2.accepted()
        before = _header((await a2.fetch_token(code)).json())["kid"]
        rotated = await a2.http.post("/control/altinn2/rotate-keys")
        after_token = (await a2.fetch_token(code)).json()
        assert _header(after_token)["kid"] == rotated.json()["primary_kid"] != before
        assert {before, _header(after_token)["kid"]} == {k["kid"] for k in keys}
        assert a2.verify(after_token)["AuthorizationCode"] == code


@pytest.mark.parametrize(
    "path", ["/altinn2/api/metadata/well-known", "/altinn2/.well-known/oauth-authorization-server"]
)
async def test_the_metadata_names_the_issuer_and_the_key_set(path: str) -> None:
    async with altinn2() as a2:
        response = await a2.http.get(path)
        assert response.json() == {
            "issuer": "altinn.no",
            "jwks_uri": "http://sandbox.test/altinn2/api/metadata/jwk",
        }


async def test_migration_copies_the_consent_to_altinn_3_under_its_old_code() -> None:
    async with altinn2() as a2:
        code = await a2.accepted()
        response = await a2.control(code, "migrate")
        assert response.status_code == 200, response.text
        migrated = response.json()
        assert migrated["id"] == code
        assert migrated["status"] == "Accepted"
        assert migrated["resources"] == ["digdir_5616_2"]
        assert migrated["from"] == f"urn:altinn:organization:identifier-no:{SUPPLIER}"
        assert migrated["to"] == f"urn:altinn:organization:identifier-no:{AUTHORITY}"
        assert migrated["handledBy"] == f"urn:altinn:organization:identifier-no:{BROKER}"
        record = a2.sandbox.register.get(uuid.UUID(code))
        assert record is not None
        # Migrated metadata keys are lower-cased (altinn-consent.md §3.2).
        assert record.consent_rights[0]["metadata"] == {
            "requestor": AUTHORITY,
            "requestorname": AUTHORITY_NAME,
        }
        assert (await a2.control(code, "migrate")).json()["id"] == code  # idempotent
        unanswered = (await a2.create())["AuthorizationCode"]
        assert (await a2.control(unanswered, "migrate")).status_code == 409


async def test_control_actions_refuse_what_altinn_would() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        assert (await a2.control(code, "revoke")).status_code == 409
        assert (await a2.control(code, "dance")).status_code == 404
        assert (await a2.control(new_code(), "approve")).status_code == 404
        assert (await a2.control(code, "approve", person=1)).status_code == 400
        assert (await a2.control(code, "approve", person="11889940079")).status_code == 409
        listing = await a2.http.get("/control/altinn2/requests")
        assert [r["code"] for r in listing.json()] == [code]


async def test_injected_faults_answer_the_next_api_calls_before_any_check() -> None:
    async with altinn2() as a2:
        code = await a2.accepted()
        bad = await a2.http.post("/control/altinn2/fail-next", json={"status": 503, "count": 2})
        assert bad.json() == {"status": 503, "count": 2}
        assert (await a2.fetch_token(code)).status_code == 503
        assert (await a2.http.get(f"{API}/{code}")).status_code == 503  # even without a key
        assert (await a2.fetch_token(code)).status_code == 200
        for payload in ({"status": 200}, {"status": 503, "count": 0}):
            assert (
                await a2.http.post("/control/altinn2/fail-next", json=payload)
            ).status_code == 400
        await a2.http.post("/control/altinn2/fail-next", json={"status": 500})
        await a2.http.post("/control/reset")
        assert (await a2.http.get("/control/altinn2/requests")).json() == []
