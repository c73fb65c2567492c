"""The relay: Skatteetaten's data for a granted consent, passed through and signed."""

from __future__ import annotations

from pathlib import Path

from broker.relay.signing import verify_detached
from tests.flow import SUPPLIER, stack


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
