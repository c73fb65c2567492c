"""Altinn 2 grants migrated to Altinn 3, imported for a client: each is used through the Altinn 3
path (a Maskinporten consent token whose ``authorization_details.id`` is the old
AuthorizationCode, resource ``digdir_5616_2``, lower-cased metadata keys), so a migrated grant
relays data through the unchanged client API (altinn-consent.md §3.2, §6.5)."""

from __future__ import annotations

import uuid
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from broker.consent.migrated import MigratedGrants, parse_grants
from broker.consent.model import Caller, Generation
from broker.store.models import ConsentRequest as Row
from tests.app.migrated_support import AUTHORITY, SUPPLIER, altinn2_grant, export
from tests.app.relay_support import fetch, relay_stack, sandbox_calls
from tests.app.security_support import history_actions, stored_request
from tests.app.webhook_support import outbox_rows, register
from tests.flow import Stack
from tests.support import problem, sqlite_url


async def _caller(s: Stack) -> Caller:
    caller = await s.app.state.clients.caller(s.tenant.client_id)
    assert isinstance(caller, Caller)
    return caller


async def _import(s: Stack, text: str, **options: bool) -> tuple[int, int, tuple[str, ...]]:
    migrated: MigratedGrants = s.app.state.migrated
    grants, problems = parse_grants(text, now=s.sandbox.clock.now())
    assert problems == []
    report = await migrated.run(await _caller(s), grants, **options)
    return report.imported, report.skipped, report.problems


async def _only_request(s: Stack) -> dict[str, object]:
    response = await s.api.get("/v1/consent-requests", headers=s.tenant.headers)
    [item] = response.json()["items"]
    assert isinstance(item, dict)
    return item


async def test_a_migrated_grant_relays_data_through_the_altinn_3_path(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path) as r:
        s = r.s
        await register(s)
        old = altinn2_grant(s.sandbox)
        assert await _import(s, export(old)) == (1, 0, ())
        body = await _only_request(s)
        assert body["status"] == "granted"
        assert (body["requestor"], body["subject"]) == (AUTHORITY, SUPPLIER)
        assert body["reference"] == "Migrated from Altinn 2"
        assert body["valid_to"] == old.valid_to.isoformat().replace("+00:00", "Z")
        request_id = str(body["id"])
        stored = await stored_request(s, request_id)
        assert stored.generation is Generation.ALTINN3
        assert stored.resource == "digdir_5616_2"
        assert stored.altinn_consent_id == old.code
        assert await history_actions(s, request_id) == ["imported"]
        # Not a change the client asked for: an import queues no webhook event.
        assert await outbox_rows(s) == []
        # The receipt: the first Altinn 3 consent token, for the old code and the resource,
        # with the lower-cased metadata keys of a migrated consent.
        receipt = await s.receipt(request_id)
        assert receipt is not None
        keys = KeySet.import_key_set(s.sandbox.keys.public_jwks())  # type: ignore[arg-type]
        [entry] = jwt.decode(receipt.decode(), keys).claims["authorization_details"]
        assert entry["id"] == str(old.code)
        right = entry["consentRights"][0]
        assert right["resource"][0]["value"] == "digdir_5616_2"
        assert set(right["metadata"]) == {"requestor", "requestorname"}
        # The code stays encrypted, as an Altinn 2 request's does.
        async with s.app.state.resources.sessions() as session:
            row = (
                await session.execute(select(Row).where(Row.id == uuid.UUID(request_id)))
            ).scalar_one()
        assert row.altinn_consent_id is None
        assert row.altinn_code_ciphertext is not None

        response = await fetch(s, request_id)
        assert response.status_code == 200
        assert response.json()["forespurteOrganisasjon"] == SUPPLIER
        [sent] = [e.request for e in r.tap.exchanges]
        assert "altinnsamtykke" not in sent.headers
        [call] = await sandbox_calls(s)
        assert (call["consent_id"], call["outcome"]) == (str(old.code), "OK")


async def test_importing_again_skips_what_is_there(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as r:
        s = r.s
        old, new = altinn2_grant(r.s.sandbox), altinn2_grant(r.s.sandbox)
        assert await _import(s, export(old)) == (1, 0, ())
        assert await _import(s, export(old, new)) == (1, 1, ())


async def test_a_grant_altinn_3_does_not_know_stops_the_import(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as r:
        s = r.s
        good = altinn2_grant(s.sandbox)
        lost = altinn2_grant(s.sandbox, migrate=False)
        imported, skipped, problems = await _import(s, export(good, lost))
        assert (imported, skipped) == (0, 0)
        assert problems == ("line 2: Maskinporten no consent token (AM-00001)",)
        assert (await s.api.get("/v1/consent-requests", headers=s.tenant.headers)).json()[
            "items"
        ] == []
        assert await _import(s, export(good, lost), skip_invalid=True) == (1, 0, problems)


async def test_a_dry_run_checks_and_stores_nothing(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as r:
        s = r.s
        assert await _import(s, export(altinn2_grant(s.sandbox)), dry_run=True) == (1, 0, ())
        items = (await s.api.get("/v1/consent-requests", headers=s.tenant.headers)).json()
        assert items["items"] == []


async def test_without_verification_the_grant_is_taken_as_the_file_says(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as r:
        s = r.s
        old = altinn2_grant(s.sandbox)
        tokens_before = (await s.sandbox_http.get("/control/counters")).json()["maskinporten"]
        assert await _import(s, export(old), verify=False) == (1, 0, ())
        tokens_after = (await s.sandbox_http.get("/control/counters")).json()["maskinporten"]
        assert tokens_after == tokens_before  # nobody was asked
        request_id = str((await _only_request(s))["id"])
        assert await s.receipt(request_id) == b""  # no token was seen, so no receipt
        assert (await fetch(s, request_id)).status_code == 200


async def test_a_migrated_grant_revoked_in_altinn_3_ends_at_the_next_relay(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as r:
        s = r.s
        old = altinn2_grant(s.sandbox)
        await _import(s, export(old))
        request_id = str((await _only_request(s))["id"])
        revoked = await s.sandbox_http.post(f"/control/consents/{old.code}/revoke", json={})
        assert revoked.status_code == 200
        response = await fetch(s, request_id)
        assert problem(response)["code"] == "consent_revoked"
        # The consent token of the import's check was still cached: Skatteetaten refused it
        # (-007), as it does an Altinn 3 grant's after a revocation.
        body = await s.read(request_id)
        assert (body["status"], body["grant"]["revoked_by"]) == ("revoked", "skatteetaten")


async def test_a_migrated_grant_is_withdrawn_locally_like_altinn_3(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as r:
        s = r.s
        old = altinn2_grant(s.sandbox)
        await _import(s, export(old))
        request_id = str((await _only_request(s))["id"])
        deleted = await s.api.delete(f"/v1/consent-requests/{request_id}", headers=s.tenant.headers)
        assert deleted.json()["status"] == "cancelled"
        a2 = s.sandbox.altinn2.get(old.code)
        assert a2 is not None
        assert not a2.discarded  # the Altinn 3 path has no consumer-side revocation
