"""The fake consent page: login, the session, what the page shows, error pages, and mounting
under a prefix. The answers are in test_altinn3_page_answer.py."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from broker.sandbox.altinn3 import API_PATH
from broker.sandbox.parties import default_parties
from tests.sandbox.altinn3_helpers import (
    KARI,
    PER,
    PUBLIC_BASE,
    UI,
    Fake,
    answer,
    assert_no_framing,
    client_fixture,  # noqa: F401 - pytest fixture
    consent_body,
    csrf_of,
    fake_fixture,  # noqa: F401 - pytest fixture
    keys_fixture,  # noqa: F401 - pytest fixture
    log_in,
    new_request,
    open_page,
)

# --- the page flow: login and display -----------------------------------------------------------


async def test_page_without_session_asks_who_logs_in(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await new_request(fake, client)
    response = await open_page(client, consent_id)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert_no_framing(response)
    assert '<label for="person">Log in as</label>' in response.text
    assert f'action="{UI}/login"' in response.text
    for person in default_parties().persons:
        assert (
            f'<option value="{person.fnr}">{person.name} ({person.fnr})</option>' in response.text
        )


async def test_login_sets_an_http_only_lax_session_cookie(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    consent_id = await new_request(fake, client)
    response = await client.post(f"{UI}/login", data={"id": consent_id, "person": KARI})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("AltinnSandboxSession=")
    for attribute in ("HttpOnly", "Path=/accessmanagement/ui", "SameSite=lax"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain http in tests; https requests get Secure


async def test_logged_in_page_shows_the_request_and_both_answers(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    consent_id = await new_request(
        fake,
        client,
        requestMessage={"en": "Needed for tender 42"},
        validTo="2026-05-31T11:00:00+02:00",
    )
    await log_in(client, consent_id, KARI)
    response = await open_page(client, consent_id)
    assert response.status_code == 200
    assert_no_framing(response)
    text = response.text
    assert "Logged in as: <strong>Kari Nordmann</strong>" in text
    assert "<strong>DIREKTORATET FOR SANDKASSEBYGG (310200018)</strong> ber om samtykke" in text
    assert "from <strong>NORDBYGG POLSKA NUF (310100013)</strong>" in text
    assert "Oppdrag utenlandske virksomheter" in text
    assert "<dd>31.05.2026 09:00 UTC</dd>" in text
    assert "<p>Needed for tender 42</p>" in text
    assert f'action="{UI}/request/{consent_id}/approve"' in text
    assert '<button type="submit" name="answer" value="approve">Approve</button>' in text
    assert '<button type="submit" name="answer" value="reject">Reject</button>' in text


async def test_person_without_rights_gets_a_refusal_page(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    consent_id = await new_request(fake, client)
    await log_in(client, consent_id, PER)
    response = await open_page(client, consent_id)
    assert response.status_code == 403
    assert_no_framing(response)
    assert "Per Utentilgang may not answer consent requests for NORDBYGG POLSKA" in response.text
    assert "Log in as someone else" in response.text
    assert 'name="csrf"' not in response.text


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ({"id": "00000000-0000-0000-0000-000000000001"}, 404, "Consent request not found."),
        ({"id": "nope"}, 400, "Invalid consent request id."),
        ({}, 400, "Invalid consent request id."),
    ],
)
async def test_bad_ids_get_error_pages(
    client: httpx.AsyncClient, query: dict[str, str], status: int, text: str
) -> None:
    response = await client.get(f"{UI}/request", params=query)
    assert (response.status_code, text in response.text) == (status, True)
    assert_no_framing(response)


async def test_logout_hop_for_unknown_request_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{UI}/request/00000000-0000-0000-0000-000000000001/logout")
    assert response.status_code == 404


async def test_login_as_unknown_person_is_400(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await new_request(fake, client)
    response = await client.post(f"{UI}/login", data={"id": consent_id, "person": "12345678901"})
    assert (response.status_code, "Unknown person or request." in response.text) == (400, True)


async def test_log_in_as_someone_else_ends_the_session(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    consent_id = await new_request(fake, client)
    await log_in(client, consent_id, PER)
    back_to = f"{UI}/request?id={consent_id}"
    response = await client.post(f"{UI}/logout-user", data={"return_to": back_to})
    assert (response.status_code, response.headers["location"]) == (303, back_to)
    assert "Log in as" in (await open_page(client, consent_id)).text
    evil = await client.post(f"{UI}/logout-user", data={"return_to": "https://evil.example/"})
    assert evil.headers["location"] == UI


async def test_page_works_when_mounted_under_a_prefix(fake: Fake) -> None:
    outer = Starlette(routes=[Mount("/altinn", app=fake.app)])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE) as client:
        created = await client.post(f"/altinn{API_PATH}", json=consent_body(), headers=fake.auth())
        assert created.headers["location"].startswith(f"{PUBLIC_BASE}/altinn{API_PATH}/")
        consent_id = created.json()["id"]
        login_form = await open_page(client, consent_id, "/altinn")
        assert f'action="/altinn{UI}/login"' in login_form.text
        await log_in(client, consent_id, KARI, "/altinn")
        page = await open_page(client, consent_id, "/altinn")
        response = await answer(client, consent_id, "approve", csrf_of(page), "/altinn")
        assert response.headers["location"] == f"/altinn{UI}/request/{consent_id}/logout"
