"""The fake consent page, the end-user actions behind it (the control API's methods), and the
synthetic parties who may answer."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from broker.sandbox.altinn3 import API_PATH
from broker.sandbox.altinn3_page import with_status
from broker.sandbox.altinn3_state import ConsentActionError
from broker.sandbox.consents import PERSON_URN, ConsentRecord, ConsentStatus, org_urn
from broker.sandbox.jose import SigningKeys
from broker.sandbox.parties import (
    Organisation,
    OrgKind,
    PartyRegistry,
    Person,
    default_parties,
    describe_parties,
    is_valid_fnr,
)
from tests.sandbox.altinn3_helpers import (
    AUTHORITY,
    KARI,
    LISE,
    OLA,
    PER,
    PUBLIC_BASE,
    START,
    SUPPLIER,
    Fake,
    consent_body,
    create,
    make_fake,
    right,
)

UI = "/accessmanagement/ui/consent"
FRAMING = {"content-security-policy": "frame-ancestors 'none'", "x-frame-options": "DENY"}


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(1, prefix="mp")


@pytest.fixture
def fake(keys: SigningKeys) -> Fake:
    return make_fake(keys)


@pytest.fixture
async def client(fake: Fake) -> AsyncIterator[httpx.AsyncClient]:
    async with fake.client() as c:
        yield c


def assert_no_framing(response: httpx.Response) -> None:
    for name, value in FRAMING.items():
        assert response.headers[name] == value
    assert response.headers["cache-control"] == "no-store"


async def new_request(fake: Fake, client: httpx.AsyncClient, **overrides: Any) -> str:
    return str((await create(fake, client, consent_body(**overrides)))["id"])


async def log_in(client: httpx.AsyncClient, consent_id: str, fnr: str, prefix: str = "") -> None:
    form = {"id": consent_id, "person": fnr}
    response = await client.post(f"{prefix}{UI}/login", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == f"{prefix}{UI}/request?id={consent_id}"
    assert_no_framing(response)


async def open_page(client: httpx.AsyncClient, consent_id: str, prefix: str = "") -> httpx.Response:
    return await client.get(f"{prefix}{UI}/request", params={"id": consent_id})


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


async def answer(
    client: httpx.AsyncClient, consent_id: str, verb: str, csrf: str, prefix: str = ""
) -> httpx.Response:
    url = f"{prefix}{UI}/request/{consent_id}/{verb}"
    return await client.post(url, data={"csrf": csrf, "answer": verb})


async def logged_in_answer(
    client: httpx.AsyncClient, consent_id: str, fnr: str, verb: str
) -> httpx.Response:
    await log_in(client, consent_id, fnr)
    page = await open_page(client, consent_id)
    assert page.status_code == 200
    return await answer(client, consent_id, verb, csrf_of(page))


# --- the page flow ------------------------------------------------------------------------------


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


# --- the redirect back (§5.4) -------------------------------------------------------------------


def _answered(status: ConsentStatus | None, fake: Fake) -> ConsentRecord:
    record = ConsentRecord(
        id=uuid.uuid4(),
        from_party=org_urn(SUPPLIER),
        to_party=org_urn(AUTHORITY),
        handled_by=None,
        required_delegator=None,
        valid_to=START + timedelta(days=1),
        consent_rights=[right()],
        request_message=None,
        redirect_url="https://x.example/",
        portal_view_mode="Hide",
        created=START,
    )
    fake.register.add(record, performed_by=None)
    if status is not None:
        fake.register.set_status(record, status, at=START, performed_by=None)
    return record


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x/consent", "https://x/consent?Status=OK"),
        ("https://x/consent?ref=1", "https://x/consent?ref=1&Status=OK"),
        ("https://x/consent?", "https://x/consent?Status=OK"),
        ("https://x/consent#fragment", "https://x/consent?Status=OK#fragment"),
        (
            "https://x/consent/#/path?authcode=123",
            "https://x/consent/#/path?authcode=123&Status=OK",
        ),
        ("https://x/#/path", "https://x/#/path?Status=OK"),
        ("myapp://consent", "myapp://consent?Status=OK"),
    ],
)
def test_status_is_appended_by_the_fragment_rules(fake: Fake, url: str, expected: str) -> None:
    assert with_status(url, _answered(ConsentStatus.ACCEPTED, fake)) == expected


def test_rejected_status_keeps_the_fragment(fake: Fake) -> None:
    record = _answered(ConsentStatus.REJECTED, fake)
    expected = "https://x/c?Status=Failed&ErrorMessage=User+did+not+give+consent#fragment"
    assert with_status("https://x/c#fragment", record) == expected


def test_unanswered_request_adds_nothing(fake: Fake) -> None:
    assert with_status("https://x/c?a=1", _answered(None, fake)) == "https://x/c?a=1"


def test_revoked_after_acceptance_still_reports_ok(fake: Fake) -> None:
    record = _answered(ConsentStatus.ACCEPTED, fake)
    fake.register.set_status(record, ConsentStatus.REVOKED, at=START, performed_by=None)
    assert with_status("https://x/c", record) == "https://x/c?Status=OK"


# --- the control API's methods ------------------------------------------------------------------


def _refused(action: Any, *args: Any) -> str:
    with pytest.raises(ConsentActionError) as caught:
        action(*args)
    return caught.value.problem.code


async def test_state_methods_act_as_the_end_user(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await new_request(fake, client)
    assert _refused(fake.state.approve, consent_id, PER) == "AM-00000"
    assert _refused(fake.state.revoke, consent_id) == "AM-00010"
    record = fake.state.approve(consent_id, KARI)
    assert record.status is ConsentStatus.ACCEPTED
    assert _refused(fake.state.reject, consent_id, KARI) == "AM-00015"
    assert _refused(fake.state.revoke, consent_id, PER) == "AM-00000"
    fake.clock.advance(10)
    fake.state.revoke(consent_id)
    again = fake.state.revoke(consent_id)  # idempotent
    assert again.status is ConsentStatus.REVOKED
    assert record.events[-1].performed_by == PERSON_URN + KARI  # the approver, by default
    assert _refused(fake.state.approve, consent_id, KARI) == "AM-00002"
    assert [e.event_type for e in record.events] == [
        ConsentStatus.CREATED,
        ConsentStatus.ACCEPTED,
        ConsentStatus.REVOKED,
    ]


async def test_revoke_by_a_named_person(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await new_request(fake, client)
    fake.state.approve(consent_id, KARI)
    record = fake.state.revoke(consent_id, LISE)
    assert record.events[-1].performed_by == PERSON_URN + LISE


async def test_delete_expire_and_listing(fake: Fake, client: httpx.AsyncClient) -> None:
    first = await new_request(fake, client)
    fake.clock.advance(1)
    second = await new_request(fake, client)
    assert [str(r.id) for r in fake.state.requests()] == [first, second]
    deleted = fake.state.delete(first)
    fake.state.delete(first)
    assert deleted.status is ConsentStatus.DELETED
    assert [e.event_type for e in deleted.events].count(ConsentStatus.DELETED) == 1
    expired = fake.state.expire(second)
    assert expired.valid_to < fake.clock.now()
    assert expired.status is ConsentStatus.CREATED
    assert _refused(fake.state.approve, second, KARI) == "STD-00000"
    assert _refused(fake.state.delete, "00000000-0000-0000-0000-000000000009") == "AM-00001"


# --- parties ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fnr", "valid"),
    [
        ("01819040180", True),
        ("02013299997", True),  # Altinn's own examples
        ("42013299980", True),  # d-nummer
        ("01819040008", True),  # K1 valid only under the 2032 algorithm
        ("01819040181", False),  # K2 wrong
        ("01819040170", False),  # K1 wrong
        ("0181904018", False),
        ("0181904018x", False),
    ],
)
def test_fnr_check_digits(fnr: str, valid: bool) -> None:
    assert is_valid_fnr(fnr) is valid


def test_default_seed_has_the_parties_the_scenarios_need() -> None:
    parties = default_parties()
    suppliers = parties.of_kind(OrgKind.FOREIGN_SUPPLIER)
    assert len(suppliers) == 3
    assert {o.org_form for o in suppliers} == {"NUF"}
    authorities = parties.of_kind(OrgKind.CONTRACTING_AUTHORITY)
    assert {o.org_form for o in authorities} == {"ORGL", "KOMM"}
    assert len(parties.of_kind(OrgKind.BROKER)) == 1
    assert len(parties.persons) >= 4
    assert parties.organisations_of(PER) == []
    assert parties.may_act_for(KARI, SUPPLIER)
    assert parties.may_act_for(OLA, AUTHORITY)
    assert not parties.may_act_for(KARI, AUTHORITY)


@pytest.mark.parametrize(
    ("organisations", "persons", "rights"),
    [
        ((Organisation("310100010", "X", "AS", OrgKind.BROKER),), (), frozenset()),
        ((), (Person("01819040181", "X"),), frozenset()),
        ((), (Person(KARI, "X"),), frozenset({(KARI, SUPPLIER)})),
    ],
    ids=["bad-orgnr", "bad-fnr", "unknown-party-in-rights"],
)
def test_registry_refuses_invalid_parties(
    organisations: tuple[Organisation, ...],
    persons: tuple[Person, ...],
    rights: frozenset[tuple[str, str]],
) -> None:
    with pytest.raises(ValueError, match=r"invalid|unknown"):
        PartyRegistry(organisations, persons, rights)


def test_describe_parties_lists_everyone() -> None:
    lines = describe_parties(default_parties())
    assert lines[0] == "Organisations:"
    assert any(line.startswith("  310100013  NUF ") and "NORDBYGG" in line for line in lines)
    assert "  11889940079  Per Utentilgang   nobody" in lines
    assert "  01819040180  Kari Nordmann     310100013, 310100021" in lines
