"""Client management in the admin pages and the admin API: register, return URLs, API keys shown
once and revoked at once, disabling, the webhook endpoint, its secret and its deliveries."""

from __future__ import annotations

import re
from pathlib import Path

from tests.app.admin_support import CONSOLE, AdminBrowser, audit_events, make_admin, tools
from tests.app.api_support import expect_problem
from tests.app.relay_support import grant
from tests.app.webhook_support import RECEIVER_URL, Receiver, deliver_all
from tests.flow import PORTAL_RETURN, stack

_SECRET = re.compile(r'id="secret" class="secret" type="text" readonly value="([^"]+)"')


def _shown(html: str) -> str:
    found = _SECRET.search(html)
    assert found is not None, "no secret on the page"
    return found[1]


async def test_register_a_client_and_issue_and_revoke_keys(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s:
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            await admin.get("/admin/clients")
            refused = await admin.post(
                "/admin/clients",
                {"name": "", "org_number": "123456789", "return_urls": "http://evil.example/"},
            )
            assert refused.status_code == 422
            for message in ("must be 1-200", "valid 9-digit", "https"):
                assert message in refused.text
            created = await admin.post(
                "/admin/clients",
                {"name": "Portal C", "org_number": "310300012", "return_urls": PORTAL_RETURN},
            )
            assert created.status_code == 303
            path = created.headers["location"]
            page = await admin.get(path)
            assert "Registered Portal C" in page.text
            client_id = path.rsplit("/", 1)[1]

            issued = await admin.post(f"{path}/keys", {"label": "production"})
            key = _shown(issued.text)
            assert key.startswith("ebk_")
            assert issued.headers["cache-control"] == "no-store"
            headers = {"Authorization": f"Bearer {key}"}
            assert (await s.api.get("/v1/consent-requests", headers=headers)).status_code == 200
            page = await admin.get(path)
            assert key not in page.text  # shown once, never again
            prefix = key.split("_")[1]
            assert f"<code>{prefix}</code>" in page.text
            revoked = await admin.post(f"{path}/keys/{prefix}/revoke")
            assert revoked.status_code == 303
            # At once: also in this process's memory of verified keys, where there is one.
            expect_problem(
                await s.api.get("/v1/consent-requests", headers=headers), 401, "unauthenticated"
            )
            again = await admin.post(f"{path}/keys/{prefix}/revoke")
            assert again.status_code == 404

            first = _shown((await admin.post(f"{path}/keys", {"label": "a"})).text)
            second = _shown(
                (await admin.post(f"{path}/keys", {"label": "b", "revoke_others": "yes"})).text
            )
            for old, status in ((first, 401), (second, 200)):
                answer = await s.api.get(
                    "/v1/consent-requests", headers={"Authorization": f"Bearer {old}"}
                )
                assert answer.status_code == status

            saved = await admin.post(
                f"{path}/return-urls",
                {"return_urls": f"{PORTAL_RETURN}\nhttps://portal.example/other\n"},
            )
            assert saved.status_code == 303
            bad = await admin.post(f"{path}/return-urls", {"return_urls": "https://a.example/#x"})
            assert bad.status_code == 422
            assert "https://portal.example/other" in (await admin.get(path)).text

            no_reason = await admin.post(f"{path}/status", {"active": "no", "reason": ""})
            assert no_reason.status_code == 422
            off = await admin.post(f"{path}/status", {"active": "no", "reason": "leaked key"})
            assert off.status_code == 303
            second_headers = {"Authorization": f"Bearer {second}"}
            expect_problem(
                await s.api.get("/v1/consent-requests", headers=second_headers),
                401,
                "unauthenticated",
            )
            on = await admin.post(f"{path}/status", {"active": "yes", "reason": "rotated"})
            assert on.status_code == 303
            assert (await s.api.get("/v1/consent-requests", headers=second_headers)).is_success
            assert (await admin.get("/admin/clients/not-a-uuid")).status_code == 404

        actions = [r.action for r in await audit_events(s, actor_id="ola")]
        assert actions == [
            "admin.login",
            "client.created",
            "api_key.issued",
            "api_key.revoked",
            "api_key.issued",
            "api_key.rotated",
            "client.return_urls_set",
            "client.disabled",
            "client.enabled",
        ]
        assert client_id


async def test_the_webhook_endpoint_secret_and_deliveries(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    async with stack(database_url, tmp_path, None, receiver.transport) as s:
        await make_admin(s)
        path = f"/admin/clients/{s.tenant.client_id}"
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            await admin.get(path)
            local = await admin.post(f"{path}/webhook", {"url": "https://127.0.0.1/x"})
            assert local.status_code == 422
            assert "loopback" in local.text
            made = await admin.post(f"{path}/webhook", {"url": RECEIVER_URL, "enabled": "yes"})
            secret = _shown(made.text)
            assert secret.startswith("whsec_")
            rotated = _shown(
                (await admin.post(f"{path}/webhook/secrets", {"overlap_seconds": "60"})).text
            )
            assert rotated != secret
            bad = await admin.post(f"{path}/webhook/secrets", {"overlap_seconds": "-5"})
            assert bad.status_code == 422

            request_id, _ = await grant(s)
            await deliver_all(s)
            assert len(receiver.got) == 1
            receiver.got[0].verify(rotated)  # both secrets sign during the overlap
            receiver.got[0].verify(secret)
            page = await admin.get(path)
            assert "consent_request.granted" in page.text
            event_id = receiver.got[0].webhook_id
            assert (await admin.post(f"{path}/deliveries/{event_id}/redeliver")).status_code == 303
            await deliver_all(s)
            assert [d.webhook_id for d in receiver.got] == [event_id, event_id]

            off = await admin.post(f"{path}/webhook", {"url": RECEIVER_URL})  # unchecked: off
            assert off.status_code == 303
            refused = await admin.post(f"{path}/deliveries/{event_id}/redeliver")
            assert refused.status_code == 409
            assert 'data-code="endpoint_disabled"' in refused.text
            failed = await admin.get(f"{path}?status=failed")
            assert failed.status_code == 200
        actions = [r.action for r in await audit_events(s, actor_id="ola")][1:]
        assert actions == [
            "webhook_endpoint.set",
            "webhook_secret.rotated",
            "webhook.redelivered",
            "webhook_endpoint.set",
        ]
        assert request_id


async def test_the_admin_api_manages_clients(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        await make_admin(s)
        token = await tools(s).auth.issue_token("ola", label=None, days=None, actor=CONSOLE)
        h = {"Authorization": f"Bearer {token}"}
        body = {"name": "Portal D", "org_number": "310300012", "return_urls": [PORTAL_RETURN]}
        created = await s.api.post("/admin/api/clients", json=body, headers=h)
        assert created.status_code == 201, created.text
        client_id = created.json()["id"]
        invalid = await s.api.post(
            "/admin/api/clients", json={**body, "org_number": "1"}, headers=h
        )
        expect_problem(invalid, 422, "validation_failed")
        expect_problem(
            await s.api.post(
                "/admin/api/clients",
                content=b"{",
                headers={**h, "content-type": "application/json"},
            ),
            400,
            "invalid_json",
        )
        expect_problem(
            await s.api.post("/admin/api/clients", content=b"x", headers=h),
            415,
            "unsupported_media_type",
        )
        listed = await s.api.get("/admin/api/clients", headers=h)
        assert client_id in [c["id"] for c in listed.json()["items"]]
        key = await s.api.post(f"/admin/api/clients/{client_id}/keys", json={}, headers=h)
        assert key.status_code == 201
        prefix = key.json()["prefix"]
        shown = await s.api.get(f"/admin/api/clients/{client_id}", headers=h)
        assert [k["prefix"] for k in shown.json()["api_keys"]] == [prefix]
        gone = await s.api.post(f"/admin/api/clients/{client_id}/keys/{prefix}/revoke", headers=h)
        assert gone.status_code == 204
        expect_problem(
            await s.api.get(f"/admin/api/clients/{client_id}x", headers=h), 404, "not_found"
        )
        verify = await s.api.get("/admin/api/audit/verify", headers=h)
        assert verify.json()["intact"] is True
