"""The relay for an Altinn 2 grant, through the unchanged ``GET …/oppdrag``: a plain Maskinporten
bearer plus a fresh, verified ``AltinnSamtykke`` per call (skatteetaten.md §1.3, §4.3), and how
Altinn 2's and Skatteetaten's refusals end the grant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from broker.sandbox.seed import SKATTEETATEN_SCOPE
from tests.app.relay_support import (
    KODE,
    all_audit_text,
    audit_rows,
    feil,
    fetch,
    grant,
    relay_stack,
    sandbox_calls,
)
from tests.flow import AUTHORITY, SUPPLIER
from tests.support import problem, sqlite_url


def _claims(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    return dict(jwt.decode(token, keys).claims)


async def test_each_call_sends_a_plain_bearer_and_a_fresh_altinn_samtykke(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path, altinn_generation="altinn2") as r:
        s = r.s
        request_id, code = await grant(s)
        first, second = await fetch(s, request_id), await fetch(s, request_id)
        assert (first.status_code, second.status_code) == (200, 200)
        assert first.json()["forespurteOrganisasjon"] == SUPPLIER
        sent = [e.request for e in r.tap.exchanges]
        samtykke = [request.headers["altinnsamtykke"] for request in sent]
        for request, value in zip(sent, samtykke, strict=True):
            claims = _claims(value, s.sandbox.altinn2_keys.public_jwks())
            assert claims["AuthorizationCode"] == code
            assert claims["CoveredBy"] == AUTHORITY
            bearer = request.headers["authorization"].removeprefix("Bearer ")
            mp = _claims(bearer, s.sandbox.keys.public_jwks())
            assert mp["scope"] == SKATTEETATEN_SCOPE
            assert mp["consumer"]["ID"] == f"0192:{AUTHORITY}"
            assert "authorization_details" not in mp
        # One token to confirm the grant (kept as the receipt), then a new one for each call
        # (tokens minted in the same second look alike: Altinn's counter tells them apart).
        assert s.sandbox.altinn2.tokens_issued == 3
        calls = await sandbox_calls(s)
        assert [c["consent_id"] for c in calls] == [code, code]
        assert [c["outcome"] for c in calls] == ["OK", "OK"]
        # The audit trail keeps a hash of the code, never the code or a token.
        text = await all_audit_text(s)
        assert code not in text
        assert samtykke[0] not in text


async def test_a_007_is_checked_with_altinn_2_before_it_is_believed(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path, altinn_generation="altinn2") as r:
        s = r.s
        request_id, _ = await grant(s)
        answers = [feil(403, f"{KODE}007")]
        r.tap.substitute = lambda request: answers.pop(0) if answers else None
        issued = s.sandbox.altinn2.tokens_issued
        response = await fetch(s, request_id)
        assert response.status_code == 200
        assert len(r.tap.exchanges) == 2
        # Altinn 2 was asked again (and the consent still held) before the second try.
        assert s.sandbox.altinn2.tokens_issued == issued + 2
        assert [row.outcome for row in await audit_rows(s)] == ["failure", "success"]
        assert (await s.read(request_id))["status"] == "granted"


async def test_a_007_twice_ends_the_grant_as_revoked_by_skatteetaten(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path, altinn_generation="altinn2") as r:
        s = r.s
        request_id, _ = await grant(s)
        r.tap.substitute = lambda request: feil(403, f"{KODE}007")
        response = await fetch(s, request_id)
        assert problem(response)["code"] == "consent_revoked"
        body = await s.read(request_id)
        assert (body["status"], body["grant"]["revoked_by"]) == ("revoked", "skatteetaten")
        assert len(r.tap.exchanges) == 2


async def test_a_consent_revoked_in_altinn_2_ends_the_grant_without_a_data_call(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path, altinn_generation="altinn2") as r:
        s = r.s
        request_id, code = await grant(s)
        revoked = await s.sandbox_http.post(f"/control/altinn2/{code}/revoke")
        assert revoked.status_code == 200
        response = await fetch(s, request_id)
        assert response.status_code == 409
        assert problem(response)["code"] == "consent_revoked"
        body = await s.read(request_id)
        assert (body["status"], body["grant"]["revoked_by"]) == ("revoked", "end_user")
        assert r.tap.exchanges == []


async def test_a_consent_expired_in_altinn_2_ends_the_grant(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path, altinn_generation="altinn2") as r:
        s = r.s
        request_id, code = await grant(s)
        assert (await s.sandbox_http.post(f"/control/altinn2/{code}/expire")).status_code == 200
        response = await fetch(s, request_id)
        assert problem(response)["code"] == "consent_revoked"
        assert (await s.read(request_id))["grant"]["revoked_by"] == "end_user"


async def test_altinn_2_down_leaves_the_grant_and_asks_to_come_back(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path, altinn_generation="altinn2") as r:
        s = r.s
        request_id, _ = await grant(s)
        failing = await s.sandbox_http.post(
            "/control/altinn2/fail-next", json={"status": 503, "count": 3}
        )
        assert failing.status_code == 200
        response = await fetch(s, request_id)
        assert response.status_code == 503
        assert problem(response)["code"] == "upstream_unavailable"
        assert response.headers["retry-after"]
        assert (await s.read(request_id))["status"] == "granted"
        assert r.tap.exchanges == []
        assert (await fetch(s, request_id)).status_code == 200


async def test_a_relay_of_another_clients_altinn_2_grant_is_404(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path, altinn_generation="altinn2") as r:
        s = r.s
        request_id, _ = await grant(s)
        response = await fetch(s, request_id, tenant=s.other)
        assert response.status_code == 404
        assert s.sandbox.altinn2.tokens_issued == 1  # Altinn 2 was not asked
        assert isinstance(response, httpx.Response)
