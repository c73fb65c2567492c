"""GET /v1/consent-requests: status and changed_after filters, and keyset pagination that
neither skips nor repeats a request while requests change between pages."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.app.api_support import api_stack, denied, field_errors, granted, redirect
from tests.flow import Stack


async def _page(s: Stack, **params: Any) -> dict[str, Any]:
    response = await s.api.get("/v1/consent-requests", params=params, headers=s.tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def _ids(s: Stack, **params: Any) -> list[str]:
    return [item["id"] for item in (await _page(s, **params))["items"]]


async def _cancel(s: Stack, request_id: str) -> None:
    response = await s.api.delete(f"/v1/consent-requests/{request_id}", headers=s.tenant.headers)
    assert response.status_code == 200, response.text


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def test_status_and_changed_after_select_the_clients_requests(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        now = s.sandbox.clock.now()
        soon = (now + timedelta(hours=1)).isoformat()
        expiring = await s.create(reference="expiring", valid_to=soon)
        pending = await s.create(reference="pending")
        moved = await s.create(reference="redirected")
        await redirect(s, moved)
        yes = await granted(s, reference="granted")
        no = await denied(s, reference="denied")
        gone = await s.create(reference="cancelled")
        await _cancel(s, gone["id"])
        await s.create(s.other, reference="another client's")
        s.sandbox.clock.advance(2 * 3600)
        assert (await s.reconciler.run_once()).changed == 1

        expected = {
            "pending": [pending["id"]],
            "redirected": [moved["id"]],
            "granted": [yes["id"]],
            "denied": [no["id"]],
            "cancelled": [gone["id"]],
            "expired": [expiring["id"]],
            "revoked": [],
            "failed": [],
        }
        for status, ids in expected.items():
            assert await _ids(s, status=status) == ids, status
        everything = (await _page(s))["items"]
        assert sorted(item["id"] for item in everything) == sorted(
            i for ids in expected.values() for i in ids
        )
        order = [(item["updated_at"], item["id"]) for item in everything]
        assert order == sorted(order)  # oldest change first
        assert everything[-1]["id"] == expiring["id"]  # its expiry is the latest change

        # changed_after is exclusive; any offset works; "+" must be sent as %2B.
        third = datetime.fromisoformat(everything[2]["updated_at"])
        later = [item["id"] for item in everything[3:]]
        for value in (
            third.isoformat(),
            third.isoformat().replace("+00:00", "Z"),
            third.astimezone(timezone(timedelta(hours=2))).isoformat(),
            third.astimezone(timezone(-timedelta(hours=5, minutes=30))).isoformat(),
        ):
            assert await _ids(s, changed_after=value) == later, value
        future = (s.sandbox.clock.now() + timedelta(seconds=1)).isoformat()
        assert await _ids(s, changed_after=future) == []
        assert await _ids(s, status="granted", changed_after=third.isoformat()) == []
        assert (await _page(s, limit=100))["next_cursor"] is None


async def test_pages_neither_skip_nor_repeat_while_requests_change(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        made = [(await s.create(reference=f"r{i}"))["id"] for i in range(7)]
        first = await _page(s, limit=3)
        assert [i["id"] for i in first["items"]] == made[:3]
        cursor = first["next_cursor"]
        assert isinstance(cursor, str)

        # Between pages: one seen request changes, one unseen changes, one is created.
        await _cancel(s, made[1])
        await _cancel(s, made[4])
        newest = (await s.create(reference="r7"))["id"]

        second = await _page(s, limit=3, cursor=cursor)
        assert await _page(s, limit=3, cursor=cursor) == second  # a cursor can be replayed
        third = await _page(s, limit=3, cursor=second["next_cursor"])
        assert third["next_cursor"] is None
        seen = [*first["items"], *second["items"], *third["items"]]
        versions = [(item["id"], item["updated_at"]) for item in seen]
        assert len(versions) == len(set(versions))  # no version listed twice
        ids = [item["id"] for item in seen]
        assert set(ids) == {*made, newest}  # none skipped
        for request_id in (*made[:1], *made[2:4], *made[5:], newest):
            assert ids.count(request_id) == 1
        # The unseen request that changed is listed once, as it is now; the seen one that
        # changed is listed again with its new status (an upsert for the client).
        assert [i["status"] for i in seen if i["id"] == made[4]] == ["cancelled"]
        assert [i["status"] for i in seen if i["id"] == made[1]] == ["pending", "cancelled"]
        order = [(item["updated_at"], item["id"]) for item in seen]
        assert order == sorted(order)

        # A status filter pages the same way; a request leaving the status before its page
        # is simply not listed.
        p1 = await _page(s, status="pending", limit=2)
        await _cancel(s, made[6])
        p2 = await _page(s, status="pending", limit=2, cursor=p1["next_cursor"])
        p3 = await _page(s, status="pending", limit=2, cursor=p2["next_cursor"])
        assert p3["next_cursor"] is None
        pages = [[item["id"] for item in p["items"]] for p in (p1, p2, p3)]
        assert pages == [[made[0], made[2]], [made[3], made[5]], [newest]]


async def test_bad_list_parameters_are_422_naming_the_parameter(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        await s.create()
        await s.create()
        issued = (await _page(s, limit=1))["next_cursor"]
        assert isinstance(issued, str)
        assert (await _page(s, limit=1, cursor=issued))["items"]  # the genuine one works
        naive = _cursor(f"2025-01-01T00:00:00|{uuid.uuid4()}")
        bad: dict[str, list[str]] = {
            "status": ["bogus", "GRANTED", "", "pending,granted"],
            "changed_after": [
                "2025-01-01T00:00:00",
                "2025-01-01",
                "yesterday",
                "",
                "1735689600",
                "0001-01-01T00:00:00+01:00",  # valid, but out of range in UTC
                "9999-12-31T23:59:59-01:00",
            ],
            "limit": ["0", "101", "-1", "abc", "1.5", "", " 5", "1e2", "²", "¹⁰"],
            "cursor": [
                "!!!",
                "abc",
                _cursor("x|y"),
                naive,
                _cursor("2025-01-01T00:00:00+00:00|not-a-uuid"),
                _cursor("2025-01-01T00:00:00+00:00"),
                base64.urlsafe_b64encode(b"\xff\xfe|\x00").decode(),
                _cursor(f"0001-01-01T00:00:00+01:00|{uuid.uuid4()}"),
                # Well-formed, but never given out: the API signs its cursors.
                _cursor(f"2000-01-01T00:00:00+00:00|{uuid.uuid4()}"),
                issued[: issued.index(".")] if "." in issued else issued + "x",
                issued[:-1] + ("A" if issued[-1] != "A" else "B"),
            ],
        }
        for name, values in bad.items():
            for value in values:
                response = await s.api.get(
                    "/v1/consent-requests", params={name: value}, headers=s.tenant.headers
                )
                assert field_errors(response) == {name}, (name, value, response.text)
