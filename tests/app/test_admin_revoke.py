"""An operator revokes a consent request in the admin interface: through the state machine,
with a reason and a confirmation step; the relay refuses at once, the client's webhook says who
and why, and the audit trail shows the operator and the reason."""

from __future__ import annotations

import json
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from tests.app.admin_support import (
    CONSOLE,
    AdminBrowser,
    audit_events,
    confirm_of,
    make_admin,
    tools,
)
from tests.app.api_support import expect_problem
from tests.app.relay_support import fetch, grant, relay_stack
from tests.app.webhook_support import Receiver, deliver_all, doc_schemas, register, schema_errors

REASON = "Complaint from the supplier: the request was sent by mistake"


async def test_revoking_a_grant_stops_the_relay_tells_the_client_and_is_audited(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    async with relay_stack(database_url, tmp_path, webhooks=receiver.transport) as rs:
        s = rs.s
        secret = await register(s)
        request_id, _ = await grant(s)
        assert (await fetch(s, request_id)).status_code == 200
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            done = await admin.revoke(request_id, REASON)
            assert done.status_code == 303
            assert done.headers["location"] == f"/admin/requests/{request_id}"
            page = await admin.get(done.headers["location"])
        assert "Revoked." in page.text
        assert 'status-revoked">revoked</span> (admin)' in page.text

        refused = expect_problem(await fetch(s, request_id), 409, "consent_revoked_by_admin")
        assert refused["request_status"] == "revoked"
        assert refused["revoked_by"] == "admin"
        calls_before = len(rs.tap.exchanges)
        expect_problem(await fetch(s, request_id), 409, "consent_revoked_by_admin")
        assert len(rs.tap.exchanges) == calls_before  # Skatteetaten is not asked again

        read = await s.read(request_id)
        assert read["status"] == "revoked"
        assert read["status_reason"] == "admin"
        assert read["grant"]["revoked_by"] == "admin"
        assert read["grant"]["revoked_at"] is not None

        await deliver_all(s)
        revoked = [d for d in receiver.got if d.payload["type"] == "consent_request.revoked"]
        assert len(revoked) == 1
        payload = Webhook(secret).verify(revoked[0].body, revoked[0].headers)
        assert payload["data"]["revocation"] == {"by": "admin", "reason": REASON}
        assert payload["data"]["status"] == "revoked"
        assert schema_errors(payload, doc_schemas()) == []

        rows = await audit_events(s, object_id=request_id, action="revoked")
        assert len(rows) == 1
        row = rows[0]
        assert (row.actor_type, row.actor_id, row.reason) == ("admin", "ola", REASON)
        assert row.details == {"state": "revoked", "via": "web", "previous_state": "granted"}
        assert row.correlation_id  # the confirming request's X-Request-ID
        history = await s.api.get(
            f"/v1/consent-requests/{request_id}/history", headers=s.tenant.headers
        )
        assert history.json()["items"][-1] == {
            "at": history.json()["items"][-1]["at"],
            "action": "revoked",
            "state": "revoked",
            "reason": REASON,
        }


async def test_the_revocation_needs_a_reason_and_a_confirmation_bound_to_it(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            await admin.get(f"/admin/requests/{request_id}")
            for reason, message in (
                ("", "must be 3-500 characters"),
                ("x" * 501, "must be 3-500 characters"),
                ("Asked by 01819040180 by phone", "must not contain a personal number"),
            ):
                page = await admin.post(f"/admin/requests/{request_id}/revoke", {"reason": reason})
                assert page.status_code == 422
                assert message in page.text
                assert 'aria-invalid="true"' in page.text
            asked = await admin.post(f"/admin/requests/{request_id}/revoke", {"reason": REASON})
            assert "Yes, revoke it" in asked.text
            assert (await s.read(request_id))["status"] == "granted"  # not yet
            confirm = confirm_of(asked.text)
            path = f"/admin/requests/{request_id}/revoke/confirm"
            for form in (
                {"reason": "Another reason than confirmed", "confirm": confirm},
                {"reason": REASON, "confirm": confirm + "x"},
                {"reason": REASON, "confirm": ""},
            ):
                refused = await admin.post(path, form)
                assert refused.status_code == 303
                assert (await s.read(request_id))["status"] == "granted"
            other_id, _ = await grant(s)
            elsewhere = await admin.post(
                f"/admin/requests/{other_id}/revoke/confirm", {"reason": REASON, "confirm": confirm}
            )
            assert elsewhere.status_code == 303
            assert (await s.read(other_id))["status"] == "granted"
            assert await audit_events(s, action="revoked") == []

            done = await admin.post(path, {"reason": REASON, "confirm": confirm})
            assert done.status_code == 303
            assert (await s.read(request_id))["status"] == "revoked"
            again = await admin.post(path, {"reason": REASON, "confirm": confirm})
            assert again.status_code == 409
            assert "cannot be revoked" in again.text


async def test_an_open_request_can_be_revoked_and_its_link_closes(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path) as rs:
        s = rs.s
        created = await s.create()
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            assert (await admin.revoke(created["id"], REASON)).status_code == 303
        read = await s.read(created["id"])
        assert (read["status"], read["grant"]) == ("revoked", None)
        async with s.browser() as browser:
            closed = await browser.get(created["consent_url"])
        assert closed.status_code == 410
        expect_problem(await fetch(s, created["id"]), 409, "consent_revoked_by_admin")


async def test_a_final_request_cannot_be_revoked_and_offers_no_form(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path) as rs:
        s = rs.s
        created, _ = await s.run_flow("reject")
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            page = await admin.get(f"/admin/requests/{created['id']}")
            assert "Revoke…" not in page.text
            refused = await admin.post(
                f"/admin/requests/{created['id']}/revoke", {"reason": REASON}
            )
            # The first step checks only the reason; the request itself is checked on confirm.
            assert refused.status_code == 200
            done = await admin.post(
                f"/admin/requests/{created['id']}/revoke/confirm",
                {"reason": REASON, "confirm": confirm_of(refused.text)},
            )
            assert done.status_code == 409
            assert 'data-code="invalid_state"' in done.text
        assert (await s.read(created["id"]))["status"] == "denied"


async def test_the_audit_trail_of_a_request_exports_as_json_and_the_export_is_audited(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        await fetch(s, request_id)
        await make_admin(s)
        async with AdminBrowser(s) as admin:
            await admin.logged_in()
            await admin.revoke(request_id, REASON)
            exported = await admin.get(f"/admin/requests/{request_id}/audit.json")
        assert exported.status_code == 200
        assert exported.headers["content-type"] == "application/json"
        assert "attachment" in exported.headers["content-disposition"]
        body = json.loads(exported.content)
        assert body["consent_request"]["id"] == request_id
        assert body["consent_request"]["status"] == "revoked"
        assert body["exported_by"] == "ola"
        actions = [e["action"] for e in body["audit_events"]]
        assert actions == ["created", "redirected", "granted", "oppdrag.fetch", "revoked"]
        revoked = body["audit_events"][-1]
        assert revoked["actor"] == {"type": "admin", "id": "ola"}
        assert revoked["reason"] == REASON
        assert revoked["request_id"]
        assert all(len(e["row_hash"]) == 64 for e in body["audit_events"])
        assert [r.actor_id for r in await audit_events(s, action="audit.exported")] == ["ola"]


async def test_the_api_revokes_with_an_admin_token(database_url: str, tmp_path: Path) -> None:
    async with relay_stack(database_url, tmp_path) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        await make_admin(s, "robot")
        token = await tools(s).auth.issue_token("robot", label="ci", days=None, actor=CONSOLE)
        headers = {"Authorization": f"Bearer {token}"}
        revoked = await s.api.post(
            f"/admin/api/consent-requests/{request_id}/revoke",
            json={"reason": REASON},
            headers=headers,
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["status"] == "revoked"
        expect_problem(await fetch(s, request_id), 409, "consent_revoked_by_admin")
        again = await s.api.post(
            f"/admin/api/consent-requests/{request_id}/revoke",
            json={"reason": REASON},
            headers=headers,
        )
        expect_problem(again, 409, "invalid_state")
        row = (await audit_events(s, object_id=request_id, action="revoked"))[0]
        assert row.actor_id == "robot"
        assert row.details["via"].startswith("token:")
