"""Security of the way back from Altinn (security.md §6): G1 binding, G2 replay, G3 injection,
G6 parallel flows. Each test runs on SQLite and on PostgreSQL.

The person's "browser" is an httpx client with its own cookie jar; the person answers in Altinn
through the sandbox's control API; the sandbox's counters show every upstream call.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import string
from pathlib import Path
from urllib.parse import urlencode

from tests.app.security_support import (
    DEV_COOKIE,
    altinn_id_of,
    assert_page,
    grant_rows,
    handle_of,
    history_actions,
    pending_return,
    portal_query,
    receipt_consent_id,
    set_cookie,
    status_path,
    stored_request,
    upstream_calls,
    visible_state,
)
from tests.flow import BROKER, stack

URLSAFE = string.ascii_letters + string.digits + "-_"


def _return_url(handle: str, **extra: str) -> str:
    return f"{BROKER}/consent/return?{urlencode({'h': handle, 'Status': 'OK', **extra})}"


def _other_char(char: str) -> str:
    return "A" if char != "A" else "B"


def _cookie_variants(cookie: str, foreign: str, handle: str) -> list[tuple[str, str | None]]:
    """(label, Cookie header) pairs, none of which carries this browser's binding."""
    rng = random.Random(20250601)
    variants: list[tuple[str, str | None]] = [
        ("missing", None),
        ("foreign browser's cookie", f"{DEV_COOKIE}={foreign}"),
        ("right value under the prod name", f"__Host-{DEV_COOKIE}={cookie}"),
        ("right value under another name", f"ebevis-flow2={cookie}"),
        ("empty", f"{DEV_COOKIE}="),
        ("truncated", f"{DEV_COOKIE}={cookie[:-1]}"),
        ("extended", f"{DEV_COOKIE}={cookie}A"),
        (
            "the binding digest itself",
            f"{DEV_COOKIE}={hashlib.sha256(cookie.encode()).hexdigest()}",
        ),
        ("the handle as cookie", f"{DEV_COOKIE}={handle}"),
        ("upper-cased", f"{DEV_COOKIE}={cookie.upper()}"),
    ]
    for index, char in enumerate(cookie):
        tampered = cookie[:index] + _other_char(char) + cookie[index + 1 :]
        variants.append((f"cookie char {index} changed", f"{DEV_COOKIE}={tampered}"))
    for n in range(50):
        guess = "".join(rng.choice(URLSAFE) for _ in range(43))
        variants.append((f"random cookie {n}", f"{DEV_COOKIE}={guess}"))
    return variants


def _handle_variants(handle: str, foreign_handle: str) -> list[tuple[str, str]]:
    """(label, handle) pairs: this handle altered, or another browser's spliced in."""
    variants = [
        ("empty", ""),
        ("truncated", handle[:-1]),
        ("extended", handle + "A"),
        ("signature dropped", handle.rsplit(".", 1)[0]),
        ("extra segment", handle + ".AAAA"),
        ("compression mark dropped", handle.lstrip(".")),
        ("another browser's handle", foreign_handle),
    ]
    payload, stamp, signature = handle.rsplit(".", 2)
    f_payload, f_stamp, f_signature = foreign_handle.rsplit(".", 2)
    variants += [
        ("foreign signature spliced", f"{payload}.{stamp}.{f_signature}"),
        ("foreign payload spliced", f"{f_payload}.{stamp}.{signature}"),
    ]
    if f_stamp != stamp:  # both may have been signed in the same second
        variants.append(("foreign timestamp spliced", f"{payload}.{f_stamp}.{signature}"))
    segment_ends = {i for i, c in enumerate(handle) if handle[i + 1 : i + 2] in (".", "")}
    for index, char in enumerate(handle):
        # A segment's last base64 character may carry only padding bits; all others matter.
        if char == "." or index in segment_ends:
            continue
        tampered = handle[:index] + _other_char(char) + handle[index + 1 :]
        variants.append((f"handle char {index} changed", tampered))
    return variants


async def test_g1_a_return_without_this_browsers_cookie_is_refused_without_upstream_calls(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        created = await s.create()
        other = await s.create(reference="case-43")
        async with s.browser() as person, s.browser() as stranger, s.browser() as bare:
            altinn_id = await s.go_to_altinn(person, created["consent_url"])
            await s.go_to_altinn(stranger, other["consent_url"])
            back = await s.answer(altinn_id)  # approved: one confirmation would grant it
            cookie, foreign = person.cookies[DEV_COOKIE], stranger.cookies[DEV_COOKIE]
            assert cookie != foreign
            variants = _cookie_variants(cookie, foreign, handle_of(back))
            state, calls = await visible_state(s, created["id"]), await upstream_calls(s)

            for label, header in variants:
                headers = {} if header is None else {"Cookie": header}
                response = await bare.get(back, headers=headers)
                assert response.status_code == 400, label
                assert_page(response, 400, "return_invalid")

            assert len(variants) >= 100
            assert await upstream_calls(s) == calls
            assert await visible_state(s, created["id"]) == state
            assert state["status"] == "redirected"
            assert await grant_rows(s, created["id"]) == 0
            # Nothing was used up: the person's own browser still comes back once.
            granted = portal_query(await person.get(back))
        assert granted == {"consent_request": created["id"], "status": "granted"}
        assert await grant_rows(s, created["id"]) == 1


async def test_g1_a_tampered_or_swapped_handle_is_refused_without_upstream_calls(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        created = await s.create()
        other = await s.create(reference="case-43")
        async with s.browser() as person, s.browser() as stranger:
            altinn_id = await s.go_to_altinn(person, created["consent_url"])
            other_altinn_id = await s.go_to_altinn(stranger, other["consent_url"])
            back = await s.answer(altinn_id)
            await s.answer(other_altinn_id)
            handle = handle_of(back)
            variants = _handle_variants(handle, handle_of(pending_return(s, other_altinn_id)))
            states = [await visible_state(s, r["id"]) for r in (created, other)]
            calls = await upstream_calls(s)

            for label, tampered in variants:
                assert tampered != handle, label
                response = await person.get(_return_url(tampered))
                assert response.status_code == 400, label
                assert_page(response, 400, "return_invalid")
            # No handle at all, as an Altinn 2 style return would come.
            assert_page(
                await person.get(f"{BROKER}/consent/return?Status=OK"), 400, "return_invalid"
            )

            assert len(variants) >= 100
            assert await upstream_calls(s) == calls
            assert [await visible_state(s, r["id"]) for r in (created, other)] == states
            granted = portal_query(await person.get(back))
        assert granted == {"consent_request": created["id"], "status": "granted"}


async def test_g2_the_same_return_sent_again_succeeds_once_then_409(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        created = await s.create()
        async with s.browser() as person:
            altinn_id = await s.go_to_altinn(person, created["consent_url"])
            back = await s.answer(altinn_id)
            responses = [await person.get(back) for _ in range(6)]
        assert portal_query(responses[0]) == {"consent_request": created["id"], "status": "granted"}
        for response in responses[1:]:
            assert_page(response, 409, "return_used")
        assert await grant_rows(s, created["id"]) == 1
        assert await history_actions(s, created["id"]) == ["created", "redirected", "granted"]
        altinn = (await upstream_calls(s))["altinn"]["calls"]
        assert altinn[status_path(s, altinn_id)] == 1  # the replays never reached Altinn


async def test_g2_fifty_concurrent_returns_give_exactly_one_success(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        created = await s.create()
        async with s.browser() as person:
            altinn_id = await s.go_to_altinn(person, created["consent_url"])
            back = await s.answer(altinn_id)
            responses = await asyncio.gather(*(person.get(back) for _ in range(50)))
        winners = [r for r in responses if r.status_code == 303]
        assert len(winners) == 1, sorted(r.status_code for r in responses)
        assert portal_query(winners[0]) == {"consent_request": created["id"], "status": "granted"}
        losers = [r for r in responses if r.status_code != 303]
        assert len(losers) == 49
        for response in losers:
            assert_page(response, 409, "return_used")
        assert await grant_rows(s, created["id"]) == 1
        assert (await history_actions(s, created["id"])).count("granted") == 1
        assert (await s.read(created["id"]))["status"] == "granted"
        altinn = (await upstream_calls(s))["altinn"]["calls"]
        assert altinn[status_path(s, altinn_id)] == 1


async def test_g3_the_attackers_approved_return_in_the_victims_browser_is_refused(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        victim_request = await s.create()
        attacker_request = await s.create(tenant=s.other, reference="attacker")
        async with s.browser() as victim, s.browser() as attacker:
            victim_altinn = await s.go_to_altinn(victim, victim_request["consent_url"])
            attacker_altinn = await s.go_to_altinn(attacker, attacker_request["consent_url"])
            attacker_back = await s.answer(attacker_altinn)  # the attacker's own approved flow
            before = (
                await visible_state(s, victim_request["id"]),
                await visible_state(s, attacker_request["id"], s.other),
                await upstream_calls(s),
            )

            assert_page(await victim.get(attacker_back), 400, "return_invalid")

            assert before == (
                await visible_state(s, victim_request["id"]),
                await visible_state(s, attacker_request["id"], s.other),
                await upstream_calls(s),
            )
            # The victim's flow ends with the victim's own consent ...
            victim_done = portal_query(await victim.get(await s.answer(victim_altinn)))
            # ... and the attacker's return still belongs to the attacker's browser only.
            attacker_done = portal_query(await attacker.get(attacker_back))
        assert victim_done == {"consent_request": victim_request["id"], "status": "granted"}
        assert attacker_done == {"consent_request": attacker_request["id"], "status": "granted"}
        victim_stored = await stored_request(s, victim_request["id"])
        assert str(victim_stored.altinn_consent_id) == victim_altinn != attacker_altinn
        assert await receipt_consent_id(s, victim_request["id"]) == victim_altinn


async def test_g3_consent_ids_added_to_the_victims_return_are_ignored(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        victim_request = await s.create()
        attacker_request = await s.create(reference="attacker")
        async with s.browser() as victim, s.browser() as attacker:
            victim_altinn = await s.go_to_altinn(victim, victim_request["consent_url"])
            attacker_altinn = await s.go_to_altinn(attacker, attacker_request["consent_url"])
            await s.answer(attacker_altinn)
            injected = {
                "id": attacker_altinn,
                "consentId": attacker_altinn,
                "AuthorizationCode": attacker_altinn,
            }
            victim_handle = handle_of(pending_return(s, victim_altinn))
            reads_before = (await upstream_calls(s))["altinn"]["calls"]

            # The victim has not answered: Altinn is asked about the victim's request only.
            first = portal_query(await victim.get(_return_url(victim_handle, **injected)))
            reads = (await upstream_calls(s))["altinn"]["calls"]
            assert (await s.read(victim_request["id"]))["status"] == "redirected"
            await s.answer(victim_altinn)
            second = portal_query(await victim.get(_return_url(victim_handle, **injected)))
        assert first == {"consent_request": victim_request["id"], "status": "pending"}
        assert second == {"consent_request": victim_request["id"], "status": "granted"}
        attacker_reads, victim_reads = (
            status_path(s, attacker_altinn),
            status_path(s, victim_altinn),
        )
        assert reads.get(attacker_reads) == reads_before.get(attacker_reads)
        assert reads[victim_reads] == reads_before.get(victim_reads, 0) + 1
        assert str((await stored_request(s, victim_request["id"])).altinn_consent_id) == (
            victim_altinn
        )
        assert await receipt_consent_id(s, victim_request["id"]) == victim_altinn
        assert (await s.read(attacker_request["id"]))["status"] == "redirected"
        assert await grant_rows(s, attacker_request["id"]) == 0


async def test_g6_three_interleaved_flows_in_one_browser_all_complete(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        a, b, c = [await s.create(reference=f"case-{n}") for n in range(3)]
        async with s.browser() as browser:
            start_a = await browser.get(a["consent_url"])
            name, _, _ = set_cookie(start_a)
            assert name == DEV_COOKIE
            start_b = await browser.get(b["consent_url"])
            back_a = await s.answer(altinn_id_of(start_a))
            start_c = await browser.get(c["consent_url"])
            # One cookie value serves every flow; each start renews its lifetime.
            assert set_cookie(start_b)[:2] == set_cookie(start_a)[:2]
            assert set_cookie(start_c)[:2] == set_cookie(start_a)[:2]
            back_c = await s.answer(altinn_id_of(start_c))
            done_c = portal_query(await browser.get(back_c))
            back_b = await s.answer(altinn_id_of(start_b))
            done_a = portal_query(await browser.get(back_a))
            done_b = portal_query(await browser.get(back_b))
        for request, done in ((a, done_a), (b, done_b), (c, done_c)):
            assert done == {"consent_request": request["id"], "status": "granted"}
            assert (await s.read(request["id"]))["status"] == "granted"
            assert await grant_rows(s, request["id"]) == 1


async def test_g6_flows_of_two_clients_in_one_browser_complete_independently(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        mine = await s.create()
        theirs = await s.create(tenant=s.other, reference="other-portal")
        async with s.browser() as browser:
            mine_altinn = await s.go_to_altinn(browser, mine["consent_url"])
            theirs_altinn = await s.go_to_altinn(browser, theirs["consent_url"])
            back_theirs = await s.answer(theirs_altinn, "reject")
            back_mine = await s.answer(mine_altinn)
            done_theirs = portal_query(await browser.get(back_theirs))
            done_mine = portal_query(await browser.get(back_mine))
        assert done_mine == {"consent_request": mine["id"], "status": "granted"}
        assert done_theirs == {"consent_request": theirs["id"], "status": "denied"}
