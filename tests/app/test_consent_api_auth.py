"""Client authentication: API keys (several active, revocable) and Maskinporten bearer tokens
from the sandbox's Maskinporten, mapped to one registered client by consumer or supplier org."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from broker.sandbox.maskinporten import Delegation
from tests.app.api_support import (
    CLIENT_SCOPE,
    api_stack,
    expect_problem,
    expect_refused,
    issue_key,
    maskinporten_client,
    maskinporten_token,
    new_body,
    post,
    register_tenant,
    revoke_key,
)
from tests.flow import OTHER_AUTHORITY, SANDBOX, Stack

PORTAL_A_ORG = "310300012"  # the orgs tests.flow registers Portal A and Portal B with
PORTAL_B_ORG = "974760673"
UNKNOWN_ORG = "310100021"


async def _every_endpoint(s: Stack, authorization: str | None) -> list[httpx.Response]:
    headers = {} if authorization is None else {"Authorization": authorization}
    some_id = str(uuid.uuid4())
    return [
        await s.api.post("/v1/consent-requests", json=new_body(), headers=headers),
        await s.api.post("/v1/consent-requests", content=b"x", headers=headers),  # before 415
        await s.api.get("/v1/consent-requests", headers=headers),
        await s.api.get("/v1/consent-requests?limit=0", headers=headers),  # before 422
        await s.api.get(f"/v1/consent-requests/{some_id}", headers=headers),
        await s.api.get(f"/v1/consent-requests/{some_id}/history", headers=headers),
        await s.api.delete(f"/v1/consent-requests/{some_id}", headers=headers),
    ]


def _forged_jwt(s: Stack) -> str:
    """Claims that would map to Portal A, under the issuer's real kid, signed by another key."""
    kid = s.sandbox.keys.primary_kid
    key = RSAKey.generate_key(2048, parameters={"kid": kid})
    now = s.sandbox.clock.timestamp()
    claims = {
        "iss": f"{SANDBOX}/maskinporten/",
        "scope": CLIENT_SCOPE,
        "consumer": {"authority": "iso6523-actorid-upis", "ID": f"0192:{PORTAL_A_ORG}"},
        "iat": now,
        "exp": now + 120,
    }
    return jwt.encode({"alg": "RS256", "kid": kid}, claims, key)


async def test_every_endpoint_refuses_missing_or_bad_credentials_alike(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        key = s.tenant.api_key
        prefix, secret = key[4:16], key[17:]
        other_secret = ("A" if secret[0] != "A" else "B") + secret[1:]
        refused = [
            None,
            "",
            "Bearer",
            "Bearer ",
            f"Basic {key}",
            f"Token {key}",
            key,  # no scheme
            f"Bearer ebk_{prefix}_{other_secret}",  # known prefix, wrong secret
            f"Bearer ebk_zzzzzzzzzzzz_{secret}",  # unknown prefix
            f"Bearer {key}x",
            "Bearer not-a-key-nor-a-token",
            "Bearer a.b.c",
            f"Bearer {_forged_jwt(s)}",  # fails the check against the issuer's JWKS
        ]
        details = set()
        for authorization in refused:
            for response in await _every_endpoint(s, authorization):
                expect_refused(response)
                details.add(response.json()["detail"])
        assert len(details) == 1  # the answer does not say which part was wrong

        for scheme in ("Bearer", "bearer", "BEARER"):
            accepted = await s.api.get(
                "/v1/consent-requests", headers={"Authorization": f"{scheme} {key}"}
            )
            assert accepted.status_code == 200, scheme


async def test_several_keys_work_at_once_and_a_revoked_key_stops_working(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        first = s.tenant.api_key
        second = await issue_key(s, s.tenant)
        assert second != first
        created = await post(s, new_body(), headers={"Authorization": f"Bearer {first}"})
        assert created.status_code == 201
        request_id = created.json()["id"]
        for key in (first, second):
            read = await s.api.get(
                f"/v1/consent-requests/{request_id}", headers={"Authorization": f"Bearer {key}"}
            )
            assert read.status_code == 200

        await revoke_key(s, s.tenant, first)
        for response in await _every_endpoint(s, f"Bearer {first}"):
            expect_refused(response)
        still = await s.api.get(
            f"/v1/consent-requests/{request_id}", headers={"Authorization": f"Bearer {second}"}
        )
        assert still.status_code == 200
        assert still.json()["id"] == request_id


async def test_a_maskinporten_token_acts_for_the_client_of_its_consumer_or_supplier_org(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        system = maskinporten_client(s, "portal-a-system", PORTAL_A_ORG, {CLIENT_SCOPE, "x:y"})
        token = await maskinporten_token(s, system, CLIENT_SCOPE)
        bearer = {"Authorization": f"Bearer {token}"}
        created = await post(s, new_body(), headers=bearer)
        assert created.status_code == 201, created.text
        request_id = created.json()["id"]
        assert (await s.read(request_id, s.tenant))["id"] == request_id  # Portal A owns it
        foreign = await s.api.get(f"/v1/consent-requests/{request_id}", headers=s.other.headers)
        expect_problem(foreign, 404, "not_found")
        listed = await s.api.get("/v1/consent-requests", headers=bearer)
        assert [item["id"] for item in listed.json()["items"]] == [request_id]

        # More scopes than the one needed are fine.
        wider = await maskinporten_token(s, system, f"x:y {CLIENT_SCOPE}")
        assert (
            await s.api.get("/v1/consent-requests", headers={"Authorization": f"Bearer {wider}"})
        ).status_code == 200

        # The vendor (Portal B's org) calls for a contracting authority that delegated the scope
        # to it. The authority is a registered client too: mapping by consumer would pick it.
        authority = await register_tenant(s, "Authority's own portal", OTHER_AUTHORITY)
        s.sandbox.maskinporten.add_delegation(
            Delegation(consumer=OTHER_AUTHORITY, supplier=PORTAL_B_ORG, scope=CLIENT_SCOPE)
        )
        vendor = maskinporten_client(s, "portal-b-vendor", PORTAL_B_ORG, {CLIENT_SCOPE})
        token = await maskinporten_token(s, vendor, CLIENT_SCOPE, consumer_org=OTHER_AUTHORITY)
        created = await post(s, new_body(), headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.text
        request_id = created.json()["id"]
        assert (await s.read(request_id, s.other))["id"] == request_id  # Portal B owns it
        for tenant in (s.tenant, authority):
            response = await s.api.get(f"/v1/consent-requests/{request_id}", headers=tenant.headers)
            expect_problem(response, 404, "not_found")


async def test_tokens_that_map_to_no_single_client_are_refused(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        system = maskinporten_client(s, "portal-a-system", PORTAL_A_ORG, {CLIENT_SCOPE, "x:y"})
        stranger = maskinporten_client(s, "stranger", UNKNOWN_ORG, {CLIENT_SCOPE})
        wrong_scope = await maskinporten_token(s, system, "x:y")
        unknown_org = await maskinporten_token(s, stranger, CLIENT_SCOPE)
        for token in (wrong_scope, unknown_org):
            for response in await _every_endpoint(s, f"Bearer {token}"):
                expect_refused(response)

        good = await maskinporten_token(s, system, CLIENT_SCOPE)
        ok = await s.api.get("/v1/consent-requests", headers={"Authorization": f"Bearer {good}"})
        assert ok.status_code == 200
        # A second active client with the same org: the token no longer says which one.
        await register_tenant(s, "Portal A, second system", PORTAL_A_ORG)
        for response in await _every_endpoint(s, f"Bearer {good}"):
            expect_refused(response)

        # A token that worked stops working when it expires (Maskinporten's default: 120 s).
        portal_b = maskinporten_client(s, "portal-b-system", PORTAL_B_ORG, {CLIENT_SCOPE})
        bearer = {"Authorization": f"Bearer {await maskinporten_token(s, portal_b, CLIENT_SCOPE)}"}
        assert (await s.api.get("/v1/consent-requests", headers=bearer)).status_code == 200
        s.sandbox.clock.advance(600)
        expired = await s.api.get("/v1/consent-requests", headers=bearer)
        expect_refused(expired)
