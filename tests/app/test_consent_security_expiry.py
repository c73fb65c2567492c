"""G4 (security.md §6): the way back and the consent link expire, by time travel.

The broker and the sandbox share one clock; ``ClockedBrowser`` lets the flow cookie die by its
``Max-Age`` on that clock too, as a real browser's cookie would on the wall clock.
"""

from __future__ import annotations

from pathlib import Path

from tests.app.security_support import (
    ClockedBrowser,
    altinn_id_of,
    assert_page,
    grant_rows,
    portal_query,
    set_cookie,
    upstream_calls,
    visible_state,
)
from tests.flow import Stack, stack
from tests.support import sqlite_url

RETURN_TTL = 1800  # BROKER_FLOW_RETURN_TTL's default
START_TTL = 604800  # BROKER_FLOW_START_TTL's default


async def _check_return_ttl(s: Stack, ttl: int) -> None:
    on_time, late = await s.create(reference="on-time"), await s.create(reference="late")
    async with ClockedBrowser(s) as browser:
        altinn_id = altinn_id_of(await browser.get(on_time["consent_url"]))
        s.sandbox.clock.advance(ttl - 1)
        accepted = await browser.get(await s.answer(altinn_id))

    async with ClockedBrowser(s) as browser:
        late_altinn_id = altinn_id_of(await browser.get(late["consent_url"]))
        s.sandbox.clock.advance(ttl + 1)
        back = await s.answer(late_altinn_id)
        state, calls = await visible_state(s, late["id"]), await upstream_calls(s)
        # The cookie would be gone in a real browser by now (Max-Age = TTL); send it anyway,
        # so that the refusal is for the handle's age alone.
        refused = await browser.client.get(back)
        assert browser.cookie() is not None

    assert portal_query(accepted) == {"consent_request": on_time["id"], "status": "granted"}
    assert_page(refused, 400, "return_expired")
    assert await upstream_calls(s) == calls
    assert await visible_state(s, late["id"]) == state
    assert state["status"] == "redirected"
    assert await grant_rows(s, late["id"]) == 0


async def test_g4_the_return_is_accepted_at_ttl_minus_1_and_expired_at_ttl_plus_1(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        await _check_return_ttl(s, RETURN_TTL)


async def test_g4_a_configured_return_ttl_is_honoured(tmp_path: Path, generation: str) -> None:
    async with stack(
        sqlite_url(tmp_path), tmp_path, flow_return_ttl="600", altinn_generation=generation
    ) as s:
        await _check_return_ttl(s, 600)


async def test_g4_the_consent_link_is_accepted_at_ttl_minus_1_and_expired_at_ttl_plus_1(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        on_time = await s.create(reference="on-time")
        s.sandbox.clock.advance(START_TTL - 1)
        async with s.browser() as browser:
            assert altinn_id_of(await browser.get(on_time["consent_url"]))

            late = await s.create(reference="late")
            s.sandbox.clock.advance(START_TTL + 1)
            state, calls = await visible_state(s, late["id"]), await upstream_calls(s)
            refused = await browser.get(late["consent_url"])
            assert_page(refused, 410, "link_expired")
            assert await upstream_calls(s) == calls
            assert await visible_state(s, late["id"]) == state
            assert state["status"] == "pending"
            # The client reads the request again and gets a fresh link, which works.
            fresh = (await s.read(late["id"]))["consent_url"]
            assert fresh != late["consent_url"]
            assert altinn_id_of(await browser.get(fresh))


async def test_g4_a_later_flow_in_the_same_browser_gets_its_full_return_ttl(
    tmp_path: Path, generation: str
) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, altinn_generation=generation) as s:
        first, second = await s.create(reference="first"), await s.create(reference="second")
        async with ClockedBrowser(s) as browser:
            started = await browser.get(first["consent_url"])
            assert set_cookie(started)[2]["max-age"] == str(RETURN_TTL)
            s.sandbox.clock.advance(RETURN_TTL - 100)
            altinn_id = altinn_id_of(await browser.get(second["consent_url"]))
            back = await s.answer(altinn_id)
            s.sandbox.clock.advance(RETURN_TTL - 1)  # the second handle is 1799 s old
            done = await browser.get(back)
        assert portal_query(done) == {"consent_request": second["id"], "status": "granted"}


async def test_g4_reopening_the_link_after_the_return_ttl_gives_a_working_way_back(
    tmp_path: Path, generation: str
) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, altinn_generation=generation) as s:
        created = await s.create()
        async with s.browser() as browser:
            altinn_id_of(await browser.get(created["consent_url"]))
            s.sandbox.clock.advance(RETURN_TTL + 1)
            # The person comes back later and opens the (fresh) consent link again.
            fresh = (await s.read(created["id"]))["consent_url"]
            reopened = altinn_id_of(await browser.get(fresh))
            done = await browser.get(await s.answer(reopened))
        assert portal_query(done) == {"consent_request": created["id"], "status": "granted"}
