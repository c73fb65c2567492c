"""The reconciler: answers given without a return (closed tab) are recorded, nothing stays open
past valid_to, requests nobody opened are left alone, and Altinn being away changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.altinn.client import AltinnClient
from broker.consent.confirm import Confirmer
from broker.consent.model import Generation
from broker.consent.ports import ConsentToken, Gateway
from broker.consent.reconcile import Reconciler, Report
from broker.store.uow import SqlUnitOfWork
from tests.app.api_support import api_stack, redirect
from tests.flow import PORTAL_RETURN, Stack


async def _history(s: Stack, request_id: str) -> list[tuple[str, str | None]]:
    response = await s.api.get(
        f"/v1/consent-requests/{request_id}/history", headers=s.tenant.headers
    )
    return [(e["action"], e["reason"]) for e in response.json()["items"]]


async def _status(s: Stack, created: dict[str, Any]) -> str:
    status = (await s.read(created["id"]))["status"]
    assert isinstance(status, str)
    return status


async def test_answers_given_without_coming_back_are_recorded_unanswered_ones_left_open(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        yes, no = await s.create(), await s.create()
        async with s.browser() as browser:
            yes_return = await s.answer(await s.go_to_altinn(browser, yes["consent_url"]))
            no_return = await s.answer(await s.go_to_altinn(browser, no["consent_url"]), "reject")
            # The person closes the tab: nobody comes back to the broker.
            assert await _status(s, yes) == await _status(s, no) == "redirected"
            assert await s.reconciler.run_once() == Report(checked=2, changed=2, unavailable=0)
            assert await _status(s, yes) == "granted"
            assert await _status(s, no) == "denied"
            assert await s.receipt(yes["id"]) is not None
            assert (await _history(s, yes["id"]))[-1] == ("granted", None)
            assert await s.reconciler.run_once() == Report(checked=0, changed=0, unavailable=0)

            # The return arrives after all (a slow network, a reopened tab): the 409 page.
            for late in (yes_return, no_return):
                back = await s.come_back(browser, late)
                assert back.status_code == 409
                assert "text/html" in back.headers["content-type"]
                assert "location" not in back.headers
        assert await _status(s, yes) == "granted"
        assert await _status(s, no) == "denied"

        # Nobody answered yet: the request stays open and its return still works.
        created = await s.create()
        async with s.browser() as browser:
            altinn_id = await s.go_to_altinn(browser, created["consent_url"])
            assert await s.reconciler.run_once() == Report(checked=1, changed=0, unavailable=0)
            assert await s.reconciler.run_once() == Report(checked=1, changed=0, unavailable=0)
            assert await _status(s, created) == "redirected"
            back = await s.come_back(browser, await s.answer(altinn_id))
        assert back.status_code == 303
        assert back.headers["location"].startswith(PORTAL_RETURN)
        assert "status=granted" in back.headers["location"]


async def test_nothing_stays_open_past_valid_to(database_url: str, tmp_path: Path) -> None:
    async with api_stack(database_url, tmp_path) as s:
        soon = (s.sandbox.clock.now() + timedelta(hours=1)).isoformat()
        never_opened = await s.create(valid_to=soon)
        opened = await s.create(valid_to=soon)
        await redirect(s, opened)
        lasting = await s.create()

        # Before valid_to: a request nobody opened has no Altinn request, so Altinn is not asked.
        calls = dict(s.sandbox.altinn_calls)
        assert await s.reconciler.run_once() == Report(checked=3, changed=0, unavailable=0)
        assert dict(s.sandbox.altinn_calls) != calls  # the opened one was looked up
        calls = dict(s.sandbox.altinn_calls)
        await s.create()
        s.sandbox.clock.advance(1800)
        assert (await s.reconciler.run_once()).changed == 0
        assert await _status(s, never_opened) == "pending"

        s.sandbox.clock.advance(3600)
        assert await s.reconciler.run_once() == Report(checked=4, changed=2, unavailable=0)
        for created in (never_opened, opened):
            body = await s.read(created["id"])
            assert (body["status"], body["status_reason"], body["consent_url"]) == (
                "expired",
                "valid_to",
                None,
            )
            assert (await _history(s, created["id"]))[-1] == ("expired", "valid_to")
        assert await _status(s, lasting) == "pending"
        async with s.browser() as browser:
            assert (await browser.get(never_opened["consent_url"])).status_code == 410


@dataclass(frozen=True)
class _Token:
    token: str


class _Tokens:
    """Maskinporten stand-in for a Confirmer whose Altinn is down: never reached for consent."""

    async def access_token(self, scope: str, *, consumer_org: str | None = None) -> _Token:
        return _Token("stand-in")

    def invalidate(
        self, scope: str, *, consumer_org: str | None = None, token: str | None = None
    ) -> bool:
        return False

    async def consent_token(
        self, *, consent_id: uuid.UUID, subject_org: str, requestor_org: str
    ) -> ConsentToken:
        raise AssertionError("Altinn answered nothing, so no consent token is asked for")


def _reconciler_with_altinn(s: Stack, transport: httpx.MockTransport) -> Reconciler:
    """The app's reconciler, but its Altinn client reaches ``transport`` instead."""
    state = s.app.state

    def units() -> SqlUnitOfWork:
        return SqlUnitOfWork(state.resources.sessions, state.cipher)

    async def no_sleep(seconds: float) -> None:
        return None

    altinn = AltinnClient(
        httpx.AsyncClient(transport=transport, base_url="http://altinn.test"),
        _Tokens(),
        broker_org="310300012",
        clock=s.sandbox.clock.now,
        sleep=no_sleep,
    )
    gateways = {Generation.ALTINN3: Gateway(altinn, _Tokens())}
    confirmer = Confirmer(units, gateways=gateways, now=s.sandbox.clock.now)
    return Reconciler(units, confirmer=confirmer, now=s.sandbox.clock.now)


async def test_altinn_unavailable_leaves_requests_unchanged_and_counts_them(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        answered = [await s.create(), await s.create()]
        for created in answered:
            async with s.browser() as browser:
                await s.answer(await s.go_to_altinn(browser, created["consent_url"]))
        unanswered = await s.create()

        attempts: list[str] = []

        def down(request: httpx.Request) -> httpx.Response:
            attempts.append(request.url.path)
            if len(attempts) % 2:
                raise httpx.ConnectTimeout("no route to Altinn", request=request)
            return httpx.Response(503, headers={"Retry-After": "1"})

        outage = _reconciler_with_altinn(s, httpx.MockTransport(down))
        assert await outage.run_once() == Report(checked=3, changed=0, unavailable=2)
        assert attempts  # Altinn was really tried (and retried)
        # Maskinporten, which the broker needs to call Altinn, fails too (sandbox control API).
        s.sandbox.clock.advance(300)  # past the cached Altinn token's lifetime
        fault = {"status": 503, "error": "temporarily_unavailable", "retry_after": 60, "count": 2}
        assert (await s.sandbox_http.post("/control/maskinporten/fail-next", json=fault)).is_success
        assert await s.reconciler.run_once() == Report(checked=3, changed=0, unavailable=2)
        assert [await _status(s, created) for created in answered] == ["redirected"] * 2
        assert await _status(s, unanswered) == "pending"

        # Once they are back, the same pass records both answers.
        assert await s.reconciler.run_once() == Report(checked=3, changed=2, unavailable=0)
        assert [await _status(s, created) for created in answered] == ["granted", "granted"]


@pytest.mark.parametrize("backend", ["sqlite"])  # the same query and loop on both backends
async def test_requests_nobody_opened_do_not_hide_newer_ones(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        for n in range(100):
            await s.create(reference=f"not opened yet {n}")
        created = await s.create()
        async with s.browser() as browser:
            await s.answer(await s.go_to_altinn(browser, created["consent_url"]))
        for _ in range(3):
            await s.reconciler.run_once()
        assert await _status(s, created) == "granted"


# --- Bugs found ----------------------------------------------------------------------------------

# The logic at fault is the same on both backends; one shows it.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


@sqlite_only
async def test_a_request_whose_altinn_create_failed_stays_pending(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        created = await s.create()
        fault = {"status": 503, "error": "temporarily_unavailable", "retry_after": 60}
        assert (await s.sandbox_http.post("/control/maskinporten/fail-next", json=fault)).is_success
        async with s.browser() as browser:
            assert (await browser.get(created["consent_url"])).status_code == 503  # try again
        assert await _status(s, created) == "pending"
        await s.reconciler.run_once()
        assert await _status(s, created) == "pending"
        # The person tries again later, answers, and comes back: the answer is recorded.
        async with s.browser() as browser:
            altinn_id = await s.go_to_altinn(browser, created["consent_url"])
            back = await s.come_back(browser, await s.answer(altinn_id))
        assert back.status_code == 303, back.text
        assert "status=granted" in back.headers["location"]
