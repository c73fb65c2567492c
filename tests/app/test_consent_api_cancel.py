"""DELETE /v1/consent-requests/{id} and GET …/history: cancelling a request, withdrawing a
grant, refusing to cancel a final request, and the history each change leaves."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.app.api_support import api_stack, denied, expect_problem, granted, redirect
from tests.flow import Stack


async def _delete(s: Stack, request_id: str) -> httpx.Response:
    return await s.api.delete(f"/v1/consent-requests/{request_id}", headers=s.tenant.headers)


async def _history(s: Stack, request_id: str) -> list[dict[str, Any]]:
    response = await s.api.get(
        f"/v1/consent-requests/{request_id}/history", headers=s.tenant.headers
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert isinstance(items, list)
    return items


def _steps(history: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["action"], e["state"]) for e in history]


async def test_cancelling_an_open_request(database_url: str, tmp_path: Path) -> None:
    async with api_stack(database_url, tmp_path) as s:
        created = await s.create()
        response = await _delete(s, created["id"])
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        cancelled = response.json()
        assert cancelled["status"] == "cancelled"
        assert cancelled["status_reason"] == "client"
        assert cancelled["consent_url"] is None
        assert cancelled["grant"] is None
        assert cancelled["updated_at"] > created["updated_at"]
        assert await s.read(created["id"]) == cancelled

        history = await _history(s, created["id"])
        assert _steps(history) == [("created", "pending"), ("cancelled", "cancelled")]
        assert history[1]["reason"] == "client"
        assert [e["at"] for e in history] == sorted(e["at"] for e in history)

        async with s.browser() as browser:  # the link no longer leads anywhere
            opened = await browser.get(created["consent_url"])
        assert opened.status_code == 410
        assert "text/html" in opened.headers["content-type"]

        # A redirected request: an answer given in Altinn afterwards is not used.
        created = await s.create()
        async with s.browser() as browser:
            altinn_id = await s.go_to_altinn(browser, created["consent_url"])
            response = await _delete(s, created["id"])
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "cancelled"
            back = await s.come_back(browser, await s.answer(altinn_id, "approve"))
        assert back.status_code == 409  # the person is told the answer cannot be used
        await s.reconciler.run_once()
        after = await s.read(created["id"])
        assert (after["status"], after["grant"]) == ("cancelled", None)
        assert _steps(await _history(s, created["id"])) == [
            ("created", "pending"),
            ("redirected", "redirected"),
            ("cancelled", "cancelled"),
        ]


async def test_withdrawing_a_granted_request_ends_its_grant_by_the_client(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        created = await granted(s)
        before = await s.read(created["id"])
        assert before["grant"]["revoked_at"] is None
        response = await _delete(s, created["id"])
        assert response.status_code == 200, response.text
        withdrawn = response.json()
        assert withdrawn["status"] == "cancelled"
        grant = withdrawn["grant"]
        assert grant["revoked_by"] == "client"
        assert grant["revoked_at"] == withdrawn["updated_at"]
        assert grant["consented_at"] == before["grant"]["consented_at"]
        assert await s.read(created["id"]) == withdrawn
        assert _steps(await _history(s, created["id"])) == [
            ("created", "pending"),
            ("redirected", "redirected"),
            ("granted", "granted"),
            ("cancelled", "cancelled"),
        ]


async def test_a_final_request_cannot_be_cancelled(database_url: str, tmp_path: Path) -> None:
    async with api_stack(database_url, tmp_path) as s:
        cancelled = await s.create()
        assert (await _delete(s, cancelled["id"])).status_code == 200
        refused = await denied(s)
        expiring = await s.create(valid_to=(s.sandbox.clock.now() + timedelta(hours=1)).isoformat())
        moved = await s.create()
        await redirect(s, moved)
        s.sandbox.clock.advance(7200)
        await s.reconciler.run_once()
        assert (await s.read(expiring["id"]))["status"] == "expired"

        for final in (cancelled, refused, expiring):
            before = await s.read(final["id"])
            history = await _history(s, final["id"])
            body = expect_problem(await _delete(s, final["id"]), 409, "invalid_state")
            assert before["status"] in body["detail"]
            assert await s.read(final["id"]) == before  # nothing changed
            assert await _history(s, final["id"]) == history
        # Still open requests can be cancelled after the clock moved.
        assert (await _delete(s, moved["id"])).json()["status"] == "cancelled"
