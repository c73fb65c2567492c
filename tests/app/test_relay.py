"""The relay: Skatteetaten's data for a granted consent, passed through and signed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from broker.relay.signing import InvalidSignature, verify_detached
from broker.sandbox.parties import default_parties
from broker.sandbox.portal import PortalConfig, create_portal
from tests.app.api_support import expect_problem
from tests.app.relay_support import (
    RelayChecker,
    advance,
    audit_rows,
    fetch,
    grant,
    relay_stack,
    revoke_in_altinn,
    sandbox_calls,
)
from tests.flow import BROKER, PORTAL_RETURN, SUPPLIER, stack
from tests.support import sqlite_url

OSLO = ZoneInfo("Europe/Oslo")


async def test_a_granted_consent_fetches_the_data_byte_for_byte_and_signed(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s:
        created, _ = await s.run_flow("approve")
        path = f"/v1/consent-requests/{created['id']}/oppdrag"
        answer = await s.api.get(path, headers=s.tenant.headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()["forespurteOrganisasjon"] == SUPPLIER
        jwks = (await s.api.get("/.well-known/jwks.json")).json()
        header = verify_detached(answer.headers["broker-signature"], answer.content, jwks)
        assert header["cty"] == answer.headers["content-type"]
        assert answer.headers["skatteetaten-korrelasjonsid"]
        calls = (await s.sandbox_http.get("/control/skatteetaten/calls")).json()
        assert [c["outcome"] for c in calls] == ["OK"]
        xml = await s.api.get(path, headers={**s.tenant.headers, "Accept": "application/xml"})
        assert xml.status_code == 200
        assert xml.headers["content-type"].startswith("application/xml")
        assert xml.content.lstrip().startswith(b"<")


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/json"),
        ("application/json", "application/json"),
        ("application/xml", "application/xml"),
        ("text/xml", "application/xml"),
        ("*/*", "application/json"),
    ],
)
async def test_the_body_is_the_sandboxs_bytes_with_its_korrelasjonsid_levert_and_our_request_id(
    tmp_path: Path, accept: str | None, media: str
) -> None:

    async with relay_stack(sqlite_url(tmp_path), tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        answer = await fetch(s, request_id, accept=accept, headers={"X-Request-ID": "trace-42"})
        assert answer.status_code == 200, answer.text

        [sent] = rs.tap.exchanges
        assert sent.status == 200
        assert sent.request.headers["accept"] == media
        assert answer.content == sent.body  # byte for byte, nothing re-serialised
        assert answer.headers["content-type"] == sent.headers["content-type"]
        assert answer.headers["x-request-id"] == "trace-42"
        assert answer.headers["cache-control"] == "no-store"

        [call] = await sandbox_calls(s)
        assert call["outcome"] == "OK"
        assert answer.headers["skatteetaten-korrelasjonsid"] == call["korrelasjonsid"]
        levert = datetime.fromisoformat(answer.headers["skatteetaten-levert"])
        assert levert.tzinfo is not None
        if media == "application/json":
            raw = json.loads(answer.content)["levert"]
        else:
            raw = answer.text.split("<levert>")[1].split("</levert>")[0]
        assert levert == datetime.fromisoformat(raw).replace(tzinfo=OSLO)

        jwks_answer = await s.api.get("/.well-known/jwks.json")
        assert jwks_answer.status_code == 200
        jwks = jwks_answer.json()
        assert all("d" not in key for key in jwks["keys"])  # the public half only
        header = verify_detached(answer.headers["broker-signature"], answer.content, jwks)
        assert header["alg"] == "RS256"
        assert header["cty"] == answer.headers["content-type"]
        assert header["kid"] in {key["kid"] for key in jwks["keys"]}
        tampered = answer.content.replace(b"4", b"5", 1)
        assert tampered != answer.content
        with pytest.raises(InvalidSignature):
            verify_detached(answer.headers["broker-signature"], tampered, jwks)
        with pytest.raises(InvalidSignature):
            verify_detached(answer.headers["broker-signature"], answer.content + b" ", jwks)


async def test_each_fetch_is_a_new_call_with_a_new_korrelasjonsid(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path) as rs:
        request_id, _ = await grant(rs.s)
        first = await fetch(rs.s, request_id)
        second = await fetch(rs.s, request_id)
        assert first.status_code == second.status_code == 200
        ids = [
            first.headers["skatteetaten-korrelasjonsid"],
            second.headers["skatteetaten-korrelasjonsid"],
        ]
        assert ids[0] != ids[1]
        assert [e.request.headers["korrelasjonsid"] for e in rs.tap.exchanges] == ids


async def test_html_is_not_acceptable_and_nothing_is_sent(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path, checker=RelayChecker()) as rs:
        request_id, _ = await grant(rs.s)
        answer = await fetch(rs.s, request_id, accept="text/html")
        expect_problem(answer, 406, "not_acceptable")
        assert rs.tap.exchanges == []
        assert await audit_rows(rs.s) == []


async def test_only_the_owning_client_with_credentials_reaches_the_data(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        expect_problem(await fetch(s, request_id, tenant=s.other), 404, "not_found")
        unknown = "0198f0d2-6c1e-7a4b-9d3e-5a1f2b3c4d5e"
        expect_problem(await fetch(s, unknown), 404, "not_found")
        expect_problem(await fetch(s, "not-a-uuid"), 404, "not_found")
        anonymous = await s.api.get(f"/v1/consent-requests/{request_id}/oppdrag")
        expect_problem(anonymous, 401, "unauthenticated")
        assert rs.tap.exchanges == []


async def test_requests_that_are_not_granted_are_refused_with_their_status(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        pending = (await s.create())["id"]
        denied, _ = await s.run_flow("reject")
        cancelled, _ = await grant(s)
        assert (
            await s.api.delete(f"/v1/consent-requests/{cancelled}", headers=s.tenant.headers)
        ).status_code == 200
        for request_id, status in (
            (pending, "pending"),
            (denied["id"], "denied"),
            (cancelled, "cancelled"),
        ):
            body = expect_problem(await fetch(s, request_id), 409, "consent_not_granted")
            assert status in body["detail"]
            assert (await s.read(request_id))["status"] == status
        assert rs.tap.exchanges == []
        assert await audit_rows(s) == []


async def test_consent_not_granted_carries_the_requests_status_in_the_body(tmp_path: Path) -> None:

    async with relay_stack(sqlite_url(tmp_path), tmp_path) as rs:
        pending = (await rs.s.create())["id"]
        body = expect_problem(await fetch(rs.s, pending), 409, "consent_not_granted")
        assert body["request_status"] == "pending"


async def test_a_grant_past_valid_to_is_refused_and_becomes_expired(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        valid_to = datetime.now(UTC) + timedelta(days=1)
        request_id, _ = await grant(s, valid_to=valid_to.isoformat())
        await advance(s, 2 * 86400)
        expect_problem(await fetch(s, request_id), 409, "consent_expired")
        read = await s.read(request_id)
        assert read["status"] == "expired"
        assert read["grant"]["revoked_at"] is None or read["grant"]["revoked_by"] is None
        expect_problem(await fetch(s, request_id), 409, "consent_not_granted")
        assert rs.tap.exchanges == []


async def test_a_consent_revoked_in_altinn_ends_the_grant_as_the_end_users(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        request_id, altinn_id = await grant(s)
        await revoke_in_altinn(s, altinn_id)
        await advance(s, 2 * 3600)  # the consent token from the grant has expired meanwhile
        expect_problem(await fetch(s, request_id), 409, "consent_revoked")
        read = await s.read(request_id)
        assert read["status"] == "revoked"
        assert read["grant"]["revoked_by"] == "end_user"
        assert read["grant"]["revoked_at"] is not None
        assert rs.tap.exchanges == []  # Maskinporten refused: Skatteetaten was never asked
        expect_problem(await fetch(s, request_id), 409, "consent_not_granted")


async def test_the_demo_portal_fetches_and_verifies_against_the_real_broker(tmp_path: Path) -> None:

    async with relay_stack(sqlite_url(tmp_path), tmp_path) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        config = PortalConfig(broker_url=BROKER, api_key=s.tenant.api_key, return_url=PORTAL_RETURN)
        async with s.browser() as broker_http:
            portal = create_portal(config, broker_http, default_parties())
            transport = httpx.ASGITransport(app=portal)
            async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as c:
                detail = await c.get(f"/requests/{request_id}")
                assert f'href="/requests/{request_id}/data"' in detail.text
                page = await c.get(f"/requests/{request_id}/data")
        assert page.status_code == 200, page.text
        assert '<p id="signature" class="verified">Signature verified' in page.text
        [call] = await sandbox_calls(s)
        assert call["korrelasjonsid"] in page.text
        assert '<dd id="count-antallAktiveArbeidstakere">' in page.text
