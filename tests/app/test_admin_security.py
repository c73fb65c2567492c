"""Admin authentication and session security: logins and their throttling, the cookie, session
fixation, timeouts, logout, CSRF, and refusal of logged-out, non-admin and client callers."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.admin.ports import Role
from tests.app.admin_support import (
    ADMIN_PASSWORD,
    CONSOLE,
    AdminBrowser,
    audit_events,
    make_admin,
    tools,
)
from tests.app.api_support import expect_problem
from tests.app.relay_support import advance, grant
from tests.app.security_support import prod_stack
from tests.flow import stack

PAGES = ("/admin/", "/admin/requests", "/admin/clients", "/admin/audit")


def _cookie_flags(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


async def test_a_login_opens_a_session_with_a_strict_http_only_cookie(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s:
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            response = await admin.login()
            assert response.status_code == 303
            assert response.headers["location"] == "/admin/requests"
            header = response.headers["set-cookie"]
            assert header.startswith("ebevis-admin=")  # dev: plain http cannot carry __Host-
            assert {"httponly", "path", "max-age", "samesite"} <= _cookie_flags(header)
            assert "samesite=strict" in header.lower()
            assert "max-age=28800" in header.lower()
            page = await admin.get("/admin/requests")
        assert page.status_code == 200
        assert '<strong id="operator">ola</strong>' in page.text
        [row] = await audit_events(s, action="admin.login")
        assert (row.actor_id, row.outcome) == ("ola", "success")


async def test_in_production_the_cookie_is_host_prefixed_and_secure(
    database_url: str, tmp_path: Path
) -> None:
    async with prod_stack(database_url, tmp_path) as s:
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            response = await admin.login()
        header = response.headers["set-cookie"]
        assert header.startswith("__Host-ebevis-admin=")
        assert {"secure", "httponly", "path", "samesite"} <= _cookie_flags(header)
        assert "; path=/;" in header.lower()
        assert "domain" not in _cookie_flags(header)


async def test_admin_pages_cannot_be_framed_or_cached(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            login = await admin.get("/admin/login")
            await admin.logged_in()
            pages = [login, *[await admin.get(p) for p in PAGES[1:]]]
        for page in pages:
            assert page.status_code == 200
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            assert "script-src" not in page.headers["content-security-policy"]
            assert page.headers["x-frame-options"] == "DENY"
            assert page.headers["cache-control"] == "no-store"
            assert "<script" not in page.text


async def test_wrong_passwords_and_unknown_users_get_the_same_answer_and_are_audited(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s:
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            wrong = await admin.login(password="not the password at all")
            unknown = await admin.login(username="nobody")
            assert admin.cookie() is None or "sid" not in admin.cookie()  # type: ignore[operator]
            assert (await admin.get("/admin/requests")).status_code == 303
        for page in (wrong, unknown):
            assert page.status_code == 401
            assert "The username or password is wrong." in page.text
        rows = await audit_events(s, action="admin.login")
        assert [(r.actor_id, r.outcome, r.reason) for r in rows] == [
            ("ola", "denied", "bad_password"),
            ("unknown", "denied", "unknown_user"),
        ]
        assert all("nobody" not in str(r.details) for r in rows)


async def test_logins_are_throttled_per_account_until_the_window_passes(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path, admin_login_attempts="3") as s:
        await make_admin(s)
        for n in range(3):
            # Each from another address: the account's own count stops the fourth.
            await _failed_login(s, address=f"10.0.0.{n}")
        async with AdminBrowser(s) as admin:
            refused = await admin.login()  # the right password, too late
            assert refused.status_code == 429
            assert "Too many failed attempts" in refused.text
            assert int(refused.headers["retry-after"]) > 0
            assert (await admin.get("/admin/requests")).status_code == 303
            await advance(s, 901)
            assert (await admin.login()).status_code == 303
        reasons = [r.reason for r in await audit_events(s, action="admin.login")]
        assert reasons == ["bad_password"] * 3 + ["throttled", None]


async def test_logins_are_throttled_per_address_across_accounts(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path, admin_login_attempts="2") as s:
        await make_admin(s, "ola")
        await make_admin(s, "kari")
        async with AdminBrowser(s) as attacker:
            await attacker.login("ola", "wrong password 1")
            await attacker.login("nobody", "wrong password 2")
            refused = await attacker.login("kari")
            assert refused.status_code == 429
        # Another address is not held back by it.
        assert await tools(s).auth.login(
            "kari", ADMIN_PASSWORD, address="10.9.9.9", correlation_id=None
        )


async def _failed_login(s: object, *, address: str) -> None:
    from broker.admin.auth import LoginRefused

    with pytest.raises(LoginRefused):
        await tools(s).auth.login(  # type: ignore[arg-type]
            "ola", "wrong password!", address=address, correlation_id=None
        )


async def test_a_login_replaces_the_cookie_so_a_planted_one_is_worthless(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s:
        await make_admin(s)
        async with AdminBrowser(s) as victim:
            await victim.get("/admin/login")
            planted, planted_token = victim.cookie(), victim.token
            assert planted is not None
            await victim.post("/admin/login", {"username": "ola", "password": ADMIN_PASSWORD})
            after = victim.cookie()
            assert after is not None
            assert after != planted
            await victim.get("/admin/requests")
            assert victim.token != planted_token  # a new CSRF token too
            # The pre-login token no longer passes any form.
            stale = await victim.post("/admin/audit/verify", token=planted_token)
            assert stale.status_code == 403
        async with AdminBrowser(s) as attacker:
            attacker.client.cookies.set("ebevis-admin", planted)
            assert (await attacker.get("/admin/requests")).status_code == 303


async def test_logout_ends_the_session_on_the_server(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            stolen = admin.cookie()
            out = await admin.post("/admin/logout")
            assert out.status_code == 303
            assert out.headers["location"] == "/admin/login"
        async with AdminBrowser(s) as thief:
            thief.client.cookies.set("ebevis-admin", stolen or "")
            assert (await thief.get("/admin/requests")).status_code == 303
        assert [r.actor_id for r in await audit_events(s, action="admin.logout")] == ["ola"]


async def test_sessions_end_when_idle_and_at_their_absolute_limit(
    database_url: str, tmp_path: Path
) -> None:
    limits = {"admin_session_idle": "600", "admin_session_max": "1500"}
    async with stack(database_url, tmp_path, **limits) as s:
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            await advance(s, 601)
            idle = await admin.get("/admin/requests")
            assert idle.status_code == 303
            assert idle.headers["location"] == "/admin/login?next=%2Fadmin%2Frequests&expired=1"
            assert "session has ended" in (await admin.get(idle.headers["location"])).text
        async with AdminBrowser(s) as busy:
            await busy.logged_in()
            for _ in range(3):
                await advance(s, 450)  # never idle for long
                assert (await busy.get("/admin/requests")).status_code == 200
            await advance(s, 200)  # 1550 s after the login
            assert (await busy.get("/admin/requests")).status_code == 303


async def test_disabling_an_operator_or_changing_the_password_ends_their_sessions(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s:
        await make_admin(s)
        auth = tools(s).auth
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            await auth.set_password("ola", "another long passphrase", actor=CONSOLE)
            assert (await admin.get("/admin/requests")).status_code == 303
            assert (await admin.login(password="another long passphrase")).status_code == 303
            await auth.set_active("ola", False, actor=CONSOLE)
            assert (await admin.get("/admin/requests")).status_code == 303
            assert (await admin.login(password="another long passphrase")).status_code == 401


async def test_logged_out_visitors_are_sent_to_the_login_and_change_nothing(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s:
        request_id, _ = await grant(s)
        client = s.tenant.client_id
        async with AdminBrowser(s) as visitor:
            for path in (*PAGES[1:], f"/admin/requests/{request_id}", f"/admin/clients/{client}"):
                page = await visitor.get(path)
                assert page.status_code == 303, path
                assert page.headers["location"].startswith("/admin/login")
            await visitor.get("/admin/login")  # a CSRF token, but no session
            for path, form in (
                (f"/admin/requests/{request_id}/revoke", {"reason": "because"}),
                (f"/admin/requests/{request_id}/revoke/confirm", {"reason": "because"}),
                (f"/admin/clients/{client}/keys", {"label": "x"}),
                (f"/admin/clients/{client}/status", {"active": "no", "reason": "because"}),
            ):
                refused = await visitor.post(path, form)
                assert refused.status_code == 303, path
                assert refused.headers["location"] == "/admin/login"
            exported = await visitor.get(f"/admin/requests/{request_id}/audit.json")
            assert exported.status_code == 303
        assert (await s.read(request_id))["status"] == "granted"
        assert await audit_events(s, actor_type="admin") == []


async def test_an_auditor_reads_but_changes_nothing(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        request_id, _ = await grant(s)
        client = s.tenant.client_id
        await make_admin(s, "revisor", role=Role.AUDITOR)
        async with AdminBrowser(s) as auditor:
            await auditor.logged_in("revisor")
            page = await auditor.get(f"/admin/requests/{request_id}")
            assert page.status_code == 200
            assert "may not revoke" in page.text
            assert "Revoke…" not in page.text
            assert (await auditor.get(f"/admin/clients/{client}")).status_code == 200
            assert (
                await auditor.get(f"/admin/requests/{request_id}/audit.json")
            ).status_code == 200
            for path, form in (
                (f"/admin/requests/{request_id}/revoke", {"reason": "because"}),
                (f"/admin/requests/{request_id}/revoke/confirm", {"reason": "because"}),
                ("/admin/clients", {"name": "X", "org_number": "310200018", "return_urls": "x"}),
                (f"/admin/clients/{client}/keys", {"label": "x"}),
                (f"/admin/clients/{client}/status", {"active": "no", "reason": "because"}),
            ):
                refused = await auditor.post(path, form)
                assert refused.status_code == 403, path
                assert 'data-code="forbidden"' in refused.text
        assert (await s.read(request_id))["status"] == "granted"
        token = await tools(s).auth.issue_token("revisor", label=None, days=None, actor=CONSOLE)
        api = await s.api.post(
            f"/admin/api/consent-requests/{request_id}/revoke",
            json={"reason": "because"},
            headers={"Authorization": f"Bearer {token}"},
        )
        expect_problem(api, 403, "forbidden")
        listed = await s.api.get(
            "/admin/api/consent-requests", headers={"Authorization": f"Bearer {token}"}
        )
        assert listed.status_code == 200
        assert (await s.read(request_id))["status"] == "granted"


async def test_forms_without_the_sessions_csrf_token_or_from_elsewhere_are_refused(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s:
        request_id, _ = await grant(s)
        await make_admin(s)
        await make_admin(s, "kari")
        async with AdminBrowser(s) as other:
            await other.logged_in("kari")
            foreign_token = other.token
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            path = f"/admin/requests/{request_id}/revoke"
            for token in ("", "forged", foreign_token):
                refused = await admin.post(path, {"reason": "because"}, token=token)
                assert refused.status_code == 403
                assert 'data-code="csrf"' in refused.text
            cross_site = await admin.client.post(
                path,
                data={"csrf_token": admin.token, "reason": "because"},
                headers={"Origin": "https://evil.example"},
            )
            assert cross_site.status_code == 403
            same_site_elsewhere = await admin.client.post(
                path,
                data={"csrf_token": admin.token, "reason": "because"},
                headers={"Sec-Fetch-Site": "same-site"},
            )
            assert same_site_elsewhere.status_code == 403
            no_form = await admin.client.post(
                path, json={"csrf_token": admin.token, "reason": "because"}
            )
            assert no_form.status_code == 415
            logout = await admin.post("/admin/logout", token="forged")
            assert logout.status_code == 403
            assert (await admin.get("/admin/requests")).status_code == 200  # still logged in
        assert (await s.read(request_id))["status"] == "granted"
        assert await audit_events(s, action="revoked") == []


async def test_the_admin_api_takes_admin_tokens_only(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        await make_admin(s)
        auth = tools(s).auth
        token = await auth.issue_token("ola", label="ci", days=1, actor=CONSOLE)
        path = "/admin/api/consent-requests"
        for headers in (
            {},
            s.tenant.headers,  # a client's API key
            {"Authorization": f"Bearer {token[:-1]}x"},
            {"Authorization": f"Basic {token}"},
        ):
            refused = await s.api.get(path, headers=headers)
            expect_problem(refused, 401, "unauthenticated")
            assert "ebevis-broker-admin" in refused.headers["www-authenticate"]
        good = {"Authorization": f"Bearer {token}"}
        assert (await s.api.get(path, headers=good)).status_code == 200
        async with AdminBrowser(s) as admin:  # a session cookie does not open the API
            await admin.logged_in()
            assert (await admin.get(path)).status_code == 401
        await advance(s, 86401)
        expect_problem(await s.api.get(path, headers=good), 401, "unauthenticated")
        fresh = await auth.issue_token("ola", label=None, days=None, actor=CONSOLE)
        assert (await s.api.get(path, headers={"Authorization": f"Bearer {fresh}"})).is_success
        await auth.revoke_token(fresh.split("_")[1], actor=CONSOLE)
        expect_problem(
            await s.api.get(path, headers={"Authorization": f"Bearer {fresh}"}),
            401,
            "unauthenticated",
        )
