"""The whole consent flow through the broker and the sandbox: grant, denial, receipts, history."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.flow import AUTHORITY, PORTAL_RETURN, SUPPLIER, stack


async def test_a_granted_consent_is_confirmed_recorded_and_reported(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s:
        created, back = await s.run_flow("approve")
        assert created["status"] == "pending"
        assert back.status_code == 303
        location = back.headers["location"]
        assert location.startswith(PORTAL_RETURN + "?")
        assert parse_qs(urlsplit(location).query) == {
            "consent_request": [created["id"]],
            "status": ["granted"],
        }
        body = await s.read(created["id"])
        assert body["status"] == "granted"
        assert body["consent_url"] is None
        assert body["grant"]["revoked_at"] is None
        history = await s.api.get(
            f"/v1/consent-requests/{created['id']}/history", headers=s.tenant.headers
        )
        assert [e["action"] for e in history.json()["items"]] == [
            "created",
            "redirected",
            "granted",
        ]
        receipt = await s.receipt(created["id"])
        assert receipt is not None
        keys = KeySet.import_key_set(s.sandbox.keys.public_jwks())  # type: ignore[arg-type]
        claims = jwt.decode(receipt.decode(), keys).claims
        detail = claims["authorization_details"][0]
        assert detail["from"].endswith(SUPPLIER)
        assert detail["to"]["ID"] == f"0192:{AUTHORITY}"


async def test_a_refusal_is_recorded_as_denied(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        created, back = await s.run_flow("reject")
        assert parse_qs(urlsplit(back.headers["location"]).query)["status"] == ["denied"]
        body = await s.read(created["id"])
        assert body["status"] == "denied"
        assert body["grant"] is None
