"""G8 (security.md §6): mix-up. Values minted elsewhere never open or close a flow here.

"Elsewhere" is another deployment (TT02 against production: another BROKER_SECRET_KEY),
Altinn 2's way back (``AuthorizationCode=…&Status=OK``, no handle), another request's link,
or a value minted for the other step of the flow (start token versus return handle).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from broker.consent.tokens import FlowTokens
from tests.app.security_support import (
    DEV_COOKIE,
    OTHER_DEPLOYMENT_KEY,
    assert_page,
    handle_of,
    pending_return,
    portal_query,
    start_token_of,
    upstream_calls,
    visible_state,
)
from tests.flow import BROKER, Stack, stack
from tests.support import sqlite_url


def _other_deployment(s: Stack) -> FlowTokens:
    """The same code and salts, another deployment's key, the same clock."""
    return FlowTokens(
        [OTHER_DEPLOYMENT_KEY],
        now=lambda: s.sandbox.clock.now().timestamp(),
        start_max_age=604800,
        return_max_age=1800,
    )


def _return(**params: str) -> str:
    return f"{BROKER}/consent/return?{urlencode(params)}"


async def test_g8_handles_and_links_signed_by_another_deployment_are_refused(
    tmp_path: Path, generation: str
) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, altinn_generation=generation) as s:
        created, fresh = await s.create(), await s.create(reference="not-started")
        other = _other_deployment(s)
        async with s.browser() as person:
            altinn_id = await s.go_to_altinn(person, created["consent_url"])
            back = await s.answer(altinn_id)
            cookie = person.cookies[DEV_COOKIE]
            # Exactly what this broker would sign, for this request and this browser.
            foreign_handle = other.return_handle(created["id"], FlowTokens.binding_for(cookie))
            foreign_link = f"{BROKER}/consent/{fresh['id']}/start?" + urlencode(
                {"t": other.start_token(fresh["id"])}
            )
            own_start_token = start_token_of(fresh["consent_url"])
            own_handle = handle_of(pending_return(s, altinn_id))
            states = [await visible_state(s, r["id"]) for r in (created, fresh)]
            calls = await upstream_calls(s)

            assert_page(
                await person.get(_return(h=foreign_handle, Status="OK")), 400, "return_invalid"
            )
            assert_page(await person.get(foreign_link), 400, "link_invalid")
            # A value minted for one step is refused at the other (one salt per purpose).
            assert_page(
                await person.get(_return(h=own_start_token, Status="OK")), 400, "return_invalid"
            )
            as_start = f"{BROKER}/consent/{created['id']}/start?" + urlencode({"t": own_handle})
            assert_page(await person.get(as_start), 400, "link_invalid")

            assert await upstream_calls(s) == calls
            assert [await visible_state(s, r["id"]) for r in (created, fresh)] == states
            done = portal_query(await person.get(back))
        assert done == {"consent_request": created["id"], "status": "granted"}


async def test_g8_an_altinn_2_style_return_is_refused(tmp_path: Path, generation: str) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, altinn_generation=generation) as s:
        created = await s.create()
        async with s.browser() as person:
            altinn_id = await s.go_to_altinn(person, created["consent_url"])
            back = await s.answer(altinn_id)
            state, calls = await visible_state(s, created["id"]), await upstream_calls(s)
            altinn2_returns = [
                _return(AuthorizationCode=altinn_id, Status="OK"),
                _return(
                    Status="Failed",
                    ErrorMessage="User did not give consent",
                    FailedAuthorizationCode=altinn_id,
                ),
                _return(AuthorizationCode=altinn_id, Status="OK", h=""),
                f"{BROKER}/consent/return",
            ]
            for url in altinn2_returns:
                assert_page(await person.get(url), 400, "return_invalid")
            assert await upstream_calls(s) == calls
            assert await visible_state(s, created["id"]) == state
            done = portal_query(await person.get(back))
        assert done == {"consent_request": created["id"], "status": "granted"}


async def test_g8_a_link_for_one_request_does_not_open_another(
    tmp_path: Path, generation: str
) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, altinn_generation=generation) as s:
        a, b = await s.create(reference="a"), await s.create(reference="b")
        b_other_client = await s.create(tenant=s.other, reference="b-other")
        token_a = start_token_of(a["consent_url"])
        states = [await visible_state(s, r["id"]) for r in (a, b)]
        states.append(await visible_state(s, b_other_client["id"], s.other))
        calls = await upstream_calls(s)
        async with s.browser() as person:
            for path in (b["id"], b_other_client["id"], "not-a-uuid", a["id"].upper()):
                url = f"{BROKER}/consent/{path}/start?{urlencode({'t': token_a})}"
                assert_page(await person.get(url), 400, "link_invalid")
            assert not person.cookies
            assert await upstream_calls(s) == calls
            now = [await visible_state(s, r["id"]) for r in (a, b)]
            now.append(await visible_state(s, b_other_client["id"], s.other))
            assert now == states
            assert await s.go_to_altinn(person, a["consent_url"])
