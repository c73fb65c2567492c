"""The fake Altinn 2 consent page (altinn-consent.md §1.1 steps 3-4, §4.1, §6.3): log in, view
(Unopened → Opened), answer, and the redirect back with Altinn 2's own parameters."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from tests.sandbox.altinn2_helpers import A2, RETURN, altinn2, new_code, query
from tests.sandbox.sandbox_helpers import APPROVER, OUTSIDER

PAGE = "/altinn2/ui/AccessConsent/request"


async def _log_in(a2: A2, code: str, person: str = APPROVER) -> httpx.Response:
    login = await a2.http.post(
        "/altinn2/ui/AccessConsent/login", data={"id": code, "person": person}
    )
    assert login.status_code == 303, login.text
    assert login.headers["location"] == f"{PAGE}?id={code}"
    return await a2.http.get(login.headers["location"])


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match[1]


async def test_the_page_asks_for_a_login_then_shows_the_request_and_opens_it() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        first = await a2.http.get(f"{PAGE}?id={code}")
        assert first.status_code == 200
        assert "Log in as" in first.text
        assert first.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in first.headers["content-security-policy"]
        assert first.headers["cache-control"] == "no-store"
        assert a2.status(code) == "Unopened"
        page = await _log_in(a2, code)
        assert page.status_code == 200
        assert "NORDBYGG POLSKA NUF" in page.text
        assert "Approve" in page.text
        assert "5616/2" in page.text
        assert a2.status(code) == "Opened"


async def test_approve_redirects_with_the_authorization_code_and_status_ok() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        page = await _log_in(a2, code)
        answer = await a2.http.post(f"{PAGE}/{code}/approve", data={"csrf": _csrf(page)})
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location == f"{RETURN}&AuthorizationCode={code}&Status=OK"
        assert a2.status(code) == "Accepted"


async def test_reject_redirects_with_the_double_encoded_message_and_the_failed_code() -> None:
    async with altinn2() as a2:
        code = (await a2.create(RedirectUrl="http://127.0.0.1:8000/back"))["AuthorizationCode"]
        page = await _log_in(a2, code)
        answer = await a2.http.post(f"{PAGE}/{code}/reject", data={"csrf": _csrf(page)})
        assert answer.status_code == 302
        assert answer.headers["location"] == (
            "http://127.0.0.1:8000/back?Status=Failed&ErrorMessage="
            f"User%2520did%2520not%2520give%2520consent&FailedAuthorizationCode={code}"
        )
        assert query(answer.headers["location"])["ErrorMessage"] == [
            "User%20did%20not%20give%20consent"
        ]


async def test_single_encoding_is_a_switch() -> None:
    async with altinn2() as a2:
        a2.sandbox.altinn2_overrides["double_encode_error_message"] = False
    async with altinn2(a2.sandbox) as a2:
        code = (await a2.create())["AuthorizationCode"]
        page = await _log_in(a2, code)
        answer = await a2.http.post(f"{PAGE}/{code}/reject", data={"csrf": _csrf(page)})
        assert "ErrorMessage=User%20did%20not%20give%20consent" in answer.headers["location"]


async def test_a_person_without_rights_sees_a_403_and_cannot_answer() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        page = await _log_in(a2, code, OUTSIDER)
        assert page.status_code == 403
        assert "may not answer" in page.text
        assert a2.status(code) == "Unopened"
        # Forging the form without a CSRF token of a permitted session gets nowhere either.
        answer = await a2.http.post(f"{PAGE}/{code}/approve", data={"csrf": "x"})
        assert answer.status_code == 403


async def test_the_required_delegator_alone_may_answer() -> None:
    async with altinn2() as a2:
        code = (await a2.create(RequiredDelegator="05859240048"))["AuthorizationCode"]
        assert (await _log_in(a2, code, APPROVER)).status_code == 403
        page = await _log_in(a2, code, "05859240048")
        assert page.status_code == 200
        assert "Approve" in page.text


async def test_a_wrong_csrf_token_is_403_and_no_session_goes_back_to_the_page() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        anonymous = await a2.http.post(f"{PAGE}/{code}/approve", data={"csrf": "x"})
        assert anonymous.status_code == 303
        await _log_in(a2, code)
        wrong = await a2.http.post(f"{PAGE}/{code}/approve", data={"csrf": "wrong"})
        assert wrong.status_code == 403
        assert a2.status(code) == "Opened"


async def test_an_answered_request_shows_its_status_with_the_way_back() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        page = await _log_in(a2, code)
        await a2.http.post(f"{PAGE}/{code}/approve", data={"csrf": _csrf(page)})
        again = await a2.http.get(f"{PAGE}?id={code}")
        assert "The consent request is accepted." in again.text
        assert "Status=OK" in again.text
        repeat = await a2.http.post(f"{PAGE}/{code}/reject", data={"csrf": _csrf(page)})
        assert repeat.status_code == 409


async def test_an_expired_request_cannot_be_answered() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        page = await _log_in(a2, code)
        a2.sandbox.clock.advance(timedelta(days=31).total_seconds())
        shown = await a2.http.get(f"{PAGE}?id={code}")
        assert "has expired" in shown.text
        answer = await a2.http.post(f"{PAGE}/{code}/approve", data={"csrf": _csrf(page)})
        assert answer.status_code == 409


@pytest.mark.parametrize("code", ["not-a-guid", new_code()])
async def test_an_unknown_request_is_404(code: str) -> None:
    async with altinn2() as a2:
        assert (await a2.http.get(f"{PAGE}?id={code}")).status_code == 404


async def test_login_and_logout_refuse_bad_input_and_open_redirects() -> None:
    async with altinn2() as a2:
        code = (await a2.create())["AuthorizationCode"]
        bad = await a2.http.post(
            "/altinn2/ui/AccessConsent/login", data={"id": code, "person": "00000000000"}
        )
        assert bad.status_code == 400
        await _log_in(a2, code)
        out = await a2.http.post(
            "/altinn2/ui/AccessConsent/logout", data={"return_to": "https://evil.example/"}
        )
        assert out.status_code == 303
        assert out.headers["location"] == PAGE
        assert "Log in as" in (await a2.http.get(f"{PAGE}?id={code}")).text
        assert (await a2.http.post(f"{PAGE}/not-a-guid/approve")).status_code == 400
