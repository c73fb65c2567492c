"""Withdrawal and revocation for both generations: the client's ``DELETE`` (unchanged API) and an
administrator's revocation stop the broker using the consent at once; for Altinn 2 the broker
also gives it up at Altinn (``DELETE /api/authorization/token/{code}``, or the unanswered
request), and retries that until Altinn has been told."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from broker.admin.auth import Actor
from broker.admin.service import AdminService
from broker.consent.withdraw import Withdrawals
from broker.errors import Conflict, NotFound
from tests.app.relay_support import audit_rows, fetch, grant
from tests.app.webhook_support import outbox_rows, register
from tests.flow import Stack, stack
from tests.support import problem, sqlite_url

A2 = {"altinn_generation": "altinn2"}
WITHDRAW = "altinn.withdraw"


async def _cancel(s: Stack, request_id: str) -> dict[str, object]:
    response = await s.api.delete(f"/v1/consent-requests/{request_id}", headers=s.tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def _withdrawals(s: Stack) -> Withdrawals:
    withdrawals = s.app.state.withdrawals
    assert isinstance(withdrawals, Withdrawals)
    return withdrawals


async def _events(s: Stack, request_id: str) -> list[str]:
    """The webhook events queued for the request, oldest first."""
    rows = await outbox_rows(s)
    return [r.event_type for r in rows if str(r.consent_request_id) == request_id]


async def test_the_clients_withdrawal_of_an_altinn_2_grant_discards_it_at_altinn(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path, **A2) as s:
        request_id, code = await grant(s)
        body = await _cancel(s, request_id)
        assert body["status"] == "cancelled"
        assert body["grant"]["revoked_by"] == "client"  # type: ignore[index]
        a2 = s.sandbox.altinn2.get(code)
        assert a2 is not None
        assert a2.discarded
        [row] = await audit_rows(s, WITHDRAW)
        assert (row.outcome, row.actor_type) == ("success", "client")
        assert row.details == {"generation": "altinn2", "granted": True}
        relay = await fetch(s, request_id)
        assert problem(relay)["code"] == "consent_not_granted"
        listed = await s.sandbox_http.get("/control/altinn2/requests")
        assert listed.json()[0]["discarded"] is True


async def test_cancelling_an_unanswered_altinn_2_request_withdraws_it_there(
    tmp_path: Path,
) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, **A2) as s:
        created = await s.create()
        async with s.browser() as browser:
            code = await s.go_to_altinn(browser, created["consent_url"])
        await _cancel(s, created["id"])
        assert s.sandbox.altinn2.get(code) is None  # the person can no longer answer it
        [row] = await audit_rows(s, WITHDRAW)
        assert row.details == {"generation": "altinn2", "granted": False}


async def test_a_request_never_sent_to_altinn_has_nothing_to_withdraw(tmp_path: Path) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, **A2) as s:
        created = await s.create()
        await _cancel(s, created["id"])
        assert await audit_rows(s, WITHDRAW) == []


async def test_a_withdrawal_altinn_2_missed_is_done_by_the_next_reconciler_pass(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path, **A2) as s:
        request_id, code = await grant(s)
        await s.sandbox_http.post("/control/altinn2/fail-next", json={"status": 503, "count": 3})
        body = await _cancel(s, request_id)  # the client's answer does not wait for Altinn
        assert body["status"] == "cancelled"
        a2 = s.sandbox.altinn2.get(code)
        assert a2 is not None
        assert not a2.discarded
        assert [r.outcome for r in await audit_rows(s, WITHDRAW)] == ["failure"]
        report = await s.reconciler.run_once()
        assert report.withdrawn == 1
        assert a2.discarded
        assert [r.outcome for r in await audit_rows(s, WITHDRAW)] == ["failure", "success"]
        assert (await s.reconciler.run_once()).withdrawn == 0


async def test_an_administrator_revokes_an_altinn_2_grant_and_altinn_is_told(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path, **A2) as s:
        await register(s)
        request_id, code = await grant(s)
        revoked = await _withdrawals(s).revoke(
            uuid.UUID(request_id), reason="the supplier asked us", actor=("admin", "ops")
        )
        assert revoked.state.value == "revoked"
        body = await s.read(request_id)
        assert (body["status"], body["status_reason"]) == ("revoked", "admin")
        assert body["grant"]["revoked_by"] == "admin"
        a2 = s.sandbox.altinn2.get(code)
        assert a2 is not None
        assert a2.discarded
        assert problem(await fetch(s, request_id))["code"] == "consent_revoked_by_admin"
        # The client is told, as for every other revocation (queued with the change).
        assert await _events(s, request_id) == [
            "consent_request.granted",
            "consent_request.revoked",
        ]
        with pytest.raises(Conflict):
            await _withdrawals(s).revoke(uuid.UUID(request_id), reason="again", actor=("a", "b"))
        with pytest.raises(NotFound):
            await _withdrawals(s).revoke(uuid.uuid4(), reason="none", actor=("a", "b"))


async def test_a_revocation_in_the_admin_tools_is_withdrawn_at_altinn_2_too(
    database_url: str, tmp_path: Path
) -> None:
    """The admin web interface, API and ``broker admin revoke`` share ``AdminService.revoke``."""
    async with stack(database_url, tmp_path, **A2) as s:
        await register(s)
        request_id, code = await grant(s)
        await s.sandbox_http.post("/control/altinn2/fail-next", json={"status": 503, "count": 3})
        service = s.app.state.admin.service
        assert isinstance(service, AdminService)
        revoked = await service.revoke(
            Actor.cli("ops"), request_id, "the supplier asked us", correlation_id=None
        )
        assert revoked.state.value == "revoked"
        assert (await s.read(request_id))["grant"]["revoked_by"] == "admin"
        assert await _events(s, request_id) == [
            "consent_request.granted",
            "consent_request.revoked",
        ]
        # Altinn 2 did not answer: the revocation stands, and the reconciler tells Altinn later.
        a2 = s.sandbox.altinn2.get(code)
        assert a2 is not None
        assert not a2.discarded
        [failed] = await audit_rows(s, WITHDRAW)
        assert (failed.outcome, failed.actor_type, failed.actor_id) == (
            "failure",
            "admin",
            "cli:ops",
        )
        assert (await s.reconciler.run_once()).withdrawn == 1
        assert a2.discarded
        assert [r.outcome for r in await audit_rows(s, WITHDRAW)] == ["failure", "success"]


async def test_an_administrator_revokes_an_altinn_3_grant_locally(tmp_path: Path) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path) as s:
        request_id, altinn_id = await grant(s)
        await _withdrawals(s).revoke(uuid.UUID(request_id), reason="fraud", actor=("admin", "x"))
        body = await s.read(request_id)
        assert (body["status"], body["grant"]["revoked_by"]) == ("revoked", "admin")
        # Altinn 3 has no consumer-side revocation: the consent stays as the person left it.
        record = s.sandbox.altinn.get(altinn_id)
        assert record is not None
        assert record.status.value == "Accepted"
        assert await audit_rows(s, WITHDRAW) == []
        assert problem(await fetch(s, request_id))["code"] == "consent_revoked_by_admin"


async def test_the_clients_withdrawal_of_an_altinn_3_grant_is_local(tmp_path: Path) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path) as s:
        request_id, altinn_id = await grant(s)
        body = await _cancel(s, request_id)
        assert body["grant"]["revoked_by"] == "client"  # type: ignore[index]
        record = s.sandbox.altinn.get(altinn_id)
        assert record is not None
        assert record.status.value == "Accepted"
        assert await audit_rows(s, WITHDRAW) == []
        assert problem(await fetch(s, request_id))["code"] == "consent_not_granted"


async def test_an_administrator_may_also_end_an_open_request(tmp_path: Path) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, **A2) as s:
        created = await s.create()
        async with s.browser() as browser:
            code = await s.go_to_altinn(browser, created["consent_url"])
        await _withdrawals(s).revoke(uuid.UUID(created["id"]), reason="x", actor=("admin", "y"))
        assert (await s.read(created["id"]))["status"] == "revoked"
        assert s.sandbox.altinn2.get(code) is None
