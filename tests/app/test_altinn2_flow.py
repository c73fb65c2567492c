"""A client on Altinn 2, through the unchanged client API: the flow to Altinn 2's consent page
and back, the grant with Altinn 2's token as its receipt, and the way Altinn 2's answers (and
its absence) are recorded. The whole broker runs against the whole sandbox (``tests.flow``)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from broker.consent.model import Generation
from broker.store.models import ConsentRequest as Row
from tests.app.security_support import (
    altinn_id_of,
    assert_page,
    history_actions,
    portal_query,
    stored_request,
)
from tests.flow import ALTINN2_UI, ALTINN3_UI, AUTHORITY, SUPPLIER, Stack, stack
from tests.support import sqlite_url

A2 = {"altinn_generation": "altinn2"}


async def _a2_claims(s: Stack, request_id: str) -> dict[str, object]:
    receipt = await s.receipt(request_id)
    assert receipt is not None
    keys = KeySet.import_key_set(s.sandbox.altinn2_keys.public_jwks())  # type: ignore[arg-type]
    return dict(jwt.decode(receipt.decode(), keys).claims)


async def test_an_approval_in_altinn_2_is_granted_with_its_token_as_receipt(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path, **A2) as s:
        created, back = await s.run_flow()
        assert portal_query(back) == {"consent_request": created["id"], "status": "granted"}
        body = await s.read(created["id"])
        assert body["status"] == "granted"
        assert body["grant"]["revoked_at"] is None
        [a2_request] = s.sandbox.altinn2.requests()
        stored = await stored_request(s, created["id"])
        assert stored.generation is Generation.ALTINN2
        assert stored.resource == "5616_2"
        assert stored.altinn_consent_id == a2_request.code
        claims = await _a2_claims(s, created["id"])
        assert claims["AuthorizationCode"] == str(a2_request.code)
        assert (claims["OfferedBy"], claims["CoveredBy"]) == (SUPPLIER, AUTHORITY)
        assert body["grant"]["valid_to"] == body["valid_to"]
        # The AuthorizationCode is the durable secret: never in a plain column.
        async with s.app.state.resources.sessions() as session:
            row = (
                await session.execute(select(Row).where(Row.id == uuid.UUID(created["id"])))
            ).scalar_one()
        assert row.altinn_consent_id is None
        assert row.altinn_code_ciphertext is not None
        assert str(a2_request.code).encode() not in row.altinn_code_ciphertext
        assert await history_actions(s, created["id"]) == ["created", "redirected", "granted"]


async def test_a_refusal_in_altinn_2_is_denied(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path, **A2) as s:
        created, back = await s.run_flow("reject")
        assert portal_query(back) == {"consent_request": created["id"], "status": "denied"}
        body = await s.read(created["id"])
        assert (body["status"], body["grant"]) == ("denied", None)
        assert await s.receipt(created["id"]) is None


async def test_the_person_goes_to_altinn_2_in_the_requests_language(tmp_path: Path) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, **A2) as s:
        created = await s.create(language="en")
        async with s.browser() as browser:
            start = await browser.get(created["consent_url"])
        location = start.headers["location"]
        assert location.startswith(ALTINN2_UI)
        assert location.endswith("&languageCode=en")
        # Opening the link again goes to the same Altinn 2 request: no second POST.
        async with s.browser() as browser:
            assert altinn_id_of(await browser.get(created["consent_url"])) == altinn_id_of(start)
        assert len(s.sandbox.altinn2.requests()) == 1
        counted = s.sandbox.altinn_calls["POST /altinn2/api/consentRequests"]
        assert counted == 1


async def test_two_browsers_opening_the_link_at_once_end_at_one_request(tmp_path: Path) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, **A2) as s:
        created = await s.create()
        async with s.browser() as one, s.browser() as two:
            first, second = await asyncio.gather(
                one.get(created["consent_url"]), two.get(created["consent_url"])
            )
        assert altinn_id_of(first) == altinn_id_of(second)
        stored = await stored_request(s, created["id"])
        assert str(stored.altinn_consent_id) == altinn_id_of(first)


async def test_a_return_before_any_answer_is_pending_and_the_reconciler_records_it(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path, **A2) as s:
        created = await s.create()
        async with s.browser() as browser:
            code = await s.go_to_altinn(browser, created["consent_url"])
            pending = await browser.get(s.redirect_url(code))
            assert portal_query(pending)["status"] == "pending"
            await s.answer(code)  # answered in the Altinn portal: no way back comes
        report = await s.reconciler.run_once()
        assert (report.checked, report.changed) == (1, 1)
        assert (await s.read(created["id"]))["status"] == "granted"


async def test_a_subject_altinn_2_cannot_name_fails_the_request(tmp_path: Path) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, **A2) as s:
        created = await s.create(subject="310100056")  # valid, but in no register
        async with s.browser() as browser:
            response = await browser.get(created["consent_url"])
        assert_page(response, 502, "altinn_refused")
        body = await s.read(created["id"])
        assert (body["status"], body["status_reason"]) == ("failed", "altinn_unknown_organisation")
        assert s.sandbox.altinn2.requests() == []


async def test_altinn_2_down_at_the_start_asks_the_person_to_try_again(tmp_path: Path) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, **A2) as s:
        created = await s.create()
        await s.sandbox_http.post("/control/altinn2/fail-next", json={"status": 503})
        async with s.browser() as browser:
            assert_page(await browser.get(created["consent_url"]), 503, "try_again")
            # No second POST was made behind the person's back; a reload tries again.
            assert s.sandbox.altinn2.requests() == []
            assert altinn_id_of(await browser.get(created["consent_url"]))
        assert (await s.read(created["id"]))["status"] == "redirected"


async def test_each_client_goes_through_its_own_generation(tmp_path: Path) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path) as s:  # the deployment: Altinn 3
        await s.app.state.clients.set_generation(s.other.client_id, Generation.ALTINN2)
        mine = await s.create()
        theirs = await s.create(tenant=s.other)
        async with s.browser() as browser:
            to_mine = await browser.get(mine["consent_url"])
            to_theirs = await browser.get(theirs["consent_url"])
        assert to_mine.headers["location"].startswith(ALTINN3_UI)
        assert to_theirs.headers["location"].startswith(ALTINN2_UI)
        # A request keeps the generation it was made with.
        await s.app.state.clients.set_generation(s.other.client_id, Generation.ALTINN3)
        done = await s.read(theirs["id"], s.other)
        assert done["status"] == "redirected"
        assert (await stored_request(s, theirs["id"])).generation is Generation.ALTINN2
