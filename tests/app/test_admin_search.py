"""The operators' search: by id (ours or Altinn's), subject, requestor, client, status and
creation date, newest first, paged; the audit trail page and its verification button."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from tests.app.admin_support import CONSOLE, AdminBrowser, make_admin, tools
from tests.app.relay_support import advance, grant
from tests.flow import AUTHORITY, OTHER_AUTHORITY, SUPPLIER, stack


def _ids(html: str) -> list[str]:
    return [part.split('"')[0] for part in html.split('<a href="/admin/requests/')[1:]]


async def test_each_filter_narrows_the_search(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        granted, altinn_id = await grant(s)
        other = (await s.create(requestor=OTHER_AUTHORITY))["id"]
        foreign = (await s.create(s.other))["id"]
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()

            async def search(**query: str) -> list[str]:
                page = await admin.get(f"/admin/requests?{urlencode(query)}")
                assert page.status_code == 200, page.text
                return _ids(page.text)

            assert set(await search()) == {granted, other, foreign}
            assert await search(id=granted) == [granted]
            assert await search(id=altinn_id) == [granted]
            assert await search(status="granted") == [granted]
            assert await search(requestor=OTHER_AUTHORITY) == [other]
            assert set(await search(requestor=AUTHORITY)) == {granted, foreign}
            assert set(await search(subject=SUPPLIER)) == {granted, other, foreign}
            assert await search(client=str(s.other.client_id)) == [foreign]
            today = s.sandbox.clock.now().date().isoformat()
            assert len(await search(created_from=today, created_to=today)) == 3
            assert await search(created_to="2020-01-01") == []
            empty = await admin.get("/admin/requests?status=cancelled")
            assert 'id="no-results"' in empty.text
            wrong = await admin.get(
                "/admin/requests?"
                + urlencode({"id": "x", "subject": "123", "status": "nope", "created_from": "x"})
            )
            assert wrong.status_code == 422
            for message in ("must be a UUID", "valid 9-digit", "must be one of", "YYYY-MM-DD"):
                assert message in wrong.text
            page = await admin.get(f"/admin/requests/{granted}")
            assert "Revoke…" in page.text
            assert (await admin.get("/admin/requests/not-an-id")).status_code == 404


async def test_the_search_pages_newest_first(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        made = []
        for _ in range(5):
            made.append((await s.create())["id"])
            await advance(s, 1)
        service = tools(s).service
        seen: list[str] = []
        cursor = None
        while True:
            page = await service.search({}, cursor=cursor, limit=2)
            seen += [str(r.id) for r in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == made[::-1]
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            bad = await admin.get("/admin/requests?cursor=%%%")
            assert bad.status_code == 422


async def test_the_audit_page_lists_and_verifies(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        await grant(s)
        await make_admin(s)
        await tools(s).auth.issue_token("ola", label=None, days=None, actor=CONSOLE)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            page = await admin.get("/admin/audit")
            assert "admin_token.issued" in page.text
            assert "admin.login" in page.text
            verified = await admin.post("/admin/audit/verify")
            assert verified.status_code == 200
            assert 'id="verify-result"' in verified.text
            assert "Intact:" in verified.text
            older = await admin.get("/admin/audit?before=3")
            assert older.status_code == 200
            assert "/admin/audit?before" not in older.text
            css = await admin.get("/admin/static/admin.css")
            assert css.headers["content-type"].startswith("text/css")
            assert (await admin.get("/admin/")).status_code == 303
            assert (await admin.get("/admin/login")).status_code == 303  # already logged in
            assert (await admin.get("/admin/nowhere")).status_code == 404
