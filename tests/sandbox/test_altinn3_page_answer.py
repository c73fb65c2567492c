"""The fake consent page's answers: approve and reject, the logout hop back to the service, and
the refusals (rights, form token, validity, status)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from broker.sandbox.consents import PERSON_URN, ConsentStatus
from broker.sandbox.jose import SigningKeys
from tests.sandbox.altinn3_helpers import (
    KARI,
    LISE,
    PER,
    START,
    UI,
    Fake,
    answer,
    assert_no_framing,
    client_fixture,  # noqa: F401 - pytest fixture
    csrf_of,
    fake_fixture,  # noqa: F401 - pytest fixture
    keys_fixture,  # noqa: F401 - pytest fixture
    log_in,
    make_fake,
    new_request,
    open_page,
    right,
)


async def logged_in_answer(
    client: httpx.AsyncClient, consent_id: str, fnr: str, verb: str
) -> httpx.Response:
    await log_in(client, consent_id, fnr)
    page = await open_page(client, consent_id)
    assert page.status_code == 200
    return await answer(client, consent_id, verb, csrf_of(page))


# --- the page flow: answers ---------------------------------------------------------------------


async def test_approve_goes_through_logout_back_with_status_ok(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    consent_id = await new_request(fake, client)
    fake.clock.advance(60)
    response = await logged_in_answer(client, consent_id, KARI, "approve")
    assert response.status_code == 302
    assert response.headers["location"] == f"{UI}/request/{consent_id}/logout"
    assert_no_framing(response)
    back = await client.get(response.headers["location"])
    assert back.status_code == 302
    assert back.headers["location"] == "https://broker.example/consent/return?ref=abc&Status=OK"
    assert_no_framing(back)
    assert "AltinnSandboxSession" not in client.cookies  # logged out on the way back
    record = fake.state.get(consent_id)
    assert record is not None
    assert (record.status, record.consented) == (
        ConsentStatus.ACCEPTED,
        START + timedelta(seconds=60),
    )
    assert record.events[-1].performed_by == PERSON_URN + KARI


async def test_reject_comes_back_with_status_failed(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await new_request(fake, client, redirectUrl="https://broker.example/r")
    response = await logged_in_answer(client, consent_id, KARI, "reject")
    back = await client.get(response.headers["location"])
    expected = "https://broker.example/r?Status=Failed&ErrorMessage=User+did+not+give+consent"
    assert (back.status_code, back.headers["location"]) == (302, expected)
    record = fake.state.get(consent_id)
    assert record is not None
    assert record.status is ConsentStatus.REJECTED


async def test_without_logout_hop_the_answer_redirects_at_once(keys: SigningKeys) -> None:
    fake = make_fake(keys, logout_hop=False)
    async with fake.client() as client:
        consent_id = await new_request(fake, client, redirectUrl="https://b.example/#/done")
        response = await logged_in_answer(client, consent_id, KARI, "approve")
    assert (response.status_code, response.headers["location"]) == (
        302,
        "https://b.example/#/done?Status=OK",
    )


async def test_refused_person_cannot_post_an_answer(fake: Fake, client: httpx.AsyncClient) -> None:
    # Per may answer a request from himself, which gives him a valid form token to misuse.
    own = await new_request(fake, client, **{"from": PERSON_URN + PER})
    other = await new_request(fake, client)
    await log_in(client, own, PER)
    csrf = csrf_of(await open_page(client, own))
    response = await answer(client, other, "approve", csrf)
    assert response.status_code == 403
    assert "AM-00000: Not authorized for consent" in response.text
    record = fake.state.get(other)
    assert record is not None
    assert record.status is ConsentStatus.CREATED


async def test_required_delegator_alone_may_answer(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await new_request(fake, client, requiredDelegator=PERSON_URN + LISE)
    await log_in(client, consent_id, KARI)  # has rights for the supplier, but is not Lise
    assert (await open_page(client, consent_id)).status_code == 403
    response = await logged_in_answer(client, consent_id, LISE, "approve")
    assert response.status_code == 302


async def test_request_for_an_action_nobody_may_delegate_is_refused(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    consent_id = await new_request(fake, client, consentRights=[right(action=["read"])])
    await log_in(client, consent_id, KARI)
    assert (await open_page(client, consent_id)).status_code == 403


async def test_answer_with_a_wrong_form_token_is_refused(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    consent_id = await new_request(fake, client)
    await log_in(client, consent_id, KARI)
    response = await answer(client, consent_id, "approve", "forged")
    assert response.status_code == 403
    assert "The form has expired; reload it." in response.text
    assert_no_framing(response)


async def test_answer_without_session_goes_to_the_login(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    consent_id = await new_request(fake, client)
    response = await answer(client, consent_id, "approve", "x")
    assert (response.status_code, response.headers["location"]) == (
        303,
        f"{UI}/request?id={consent_id}",
    )


async def test_approve_after_valid_to_is_refused(fake: Fake, client: httpx.AsyncClient) -> None:
    valid_to = (START + timedelta(minutes=5)).isoformat()
    consent_id = await new_request(fake, client, validTo=valid_to)
    await log_in(client, consent_id, KARI)
    csrf = csrf_of(await open_page(client, consent_id))
    fake.clock.advance(301)
    expired = await open_page(client, consent_id)
    assert (expired.status_code, "has expired" in expired.text) == (200, True)
    response = await answer(client, consent_id, "approve", csrf)
    assert response.status_code == 400
    expected = (
        "STD-00000: One or more validation errors occurred. "
        "(AM.VLD-00022: The time need to be in the future)"
    )
    assert expected in response.text


async def test_answers_in_the_wrong_status_are_refused(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    rejected = await new_request(fake, client)
    fake.state.reject(rejected, KARI)
    accepted = await new_request(fake, client)
    fake.state.approve(accepted, KARI)
    await log_in(client, rejected, KARI)
    csrf = csrf_of(await open_page(client, await new_request(fake, client)))
    response = await answer(client, rejected, "approve", csrf)
    assert (response.status_code, "AM-00002" in response.text) == (400, True)
    response = await answer(client, accepted, "reject", csrf)
    assert (response.status_code, "AM-00015" in response.text) == (400, True)


async def test_repeated_approve_is_idempotent(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await new_request(fake, client)
    await log_in(client, consent_id, KARI)
    csrf = csrf_of(await open_page(client, consent_id))
    first = await answer(client, consent_id, "approve", csrf)
    again = await answer(client, consent_id, "approve", csrf)
    assert first.status_code == again.status_code == 302
    record = fake.state.get(consent_id)
    assert record is not None
    assert [e.event_type for e in record.events] == [ConsentStatus.CREATED, ConsentStatus.ACCEPTED]


async def test_answered_request_shows_its_status_and_the_way_back(
    fake: Fake, client: httpx.AsyncClient
) -> None:
    consent_id = await new_request(fake, client)
    fake.state.approve(consent_id, KARI)
    await log_in(client, consent_id, KARI)
    response = await open_page(client, consent_id)
    assert response.status_code == 200
    assert "The consent request is accepted." in response.text
    assert f'href="{UI}/request/{consent_id}/logout">Return to the service' in response.text
    assert "Approve" not in response.text
