"""Every outcome of a consent request reaches the client as its webhook event: through the real
flow against the sandbox, delivered by the worker, verified by the receiver with the reference
``standardwebhooks`` library, and valid against the JSON Schema published in docs/webhooks.md.

Also: each event is written in the transaction of its change (no change without its event),
revocations found in Altinn's events feed wait for Altinn's safety lag and are re-read first,
and grants expire at ``valid_to`` by the scheduled job."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from standardwebhooks.webhooks import WebhookVerificationError

from broker.consent.revocations import RevocationPoller
from broker.store.models import AuditEvent
from tests.app.api_support import api_stack, denied, granted
from tests.app.relay_support import KODE, feil, fetch, grant, relay_stack, revoke_in_altinn
from tests.app.webhook_support import (
    Delivered,
    Receiver,
    deliver_all,
    doc_schemas,
    outbox_rows,
    register,
    schema_errors,
)
from tests.flow import Stack, stack


def _in(seconds: int, s: Stack) -> str:
    return (s.sandbox.clock.now() + timedelta(seconds=seconds)).isoformat()


def _revocations(s: Stack) -> RevocationPoller:
    poller = s.app.state.revocations
    assert isinstance(poller, RevocationPoller)
    return poller


async def _failed(s: Stack) -> dict[str, Any]:
    """Approved, then revoked in Altinn before the person came back: the flow fails."""
    created = await s.create()
    async with s.browser() as browser:
        altinn_id = await s.go_to_altinn(browser, created["consent_url"])
        back = await s.answer(altinn_id, "approve")
        await revoke_in_altinn(s, altinn_id)
        await s.come_back(browser, back)
    assert (await s.read(created["id"]))["status"] == "failed"
    return created


def _summary(delivered: Delivered) -> tuple[str, str, str | None]:
    data = delivered.payload["data"]
    revocation = data["revocation"]
    return (delivered.payload["type"], data["status"], revocation and revocation["by"])


async def test_every_outcome_is_delivered_signed_and_valid_against_the_guide(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    async with relay_stack(database_url, tmp_path, webhooks=receiver.transport) as rs:
        s = rs.s
        secret = await register(s)
        expected: dict[str, tuple[str, str, str | None]] = {}

        expected[(await granted(s))["id"]] = ("consent_request.granted", "granted", None)
        expected[(await denied(s))["id"]] = ("consent_request.denied", "denied", None)
        expected[(await _failed(s))["id"]] = ("consent_request.failed", "failed", None)

        by_client = await granted(s)
        await s.api.delete(f"/v1/consent-requests/{by_client['id']}", headers=s.tenant.headers)
        revoked = ("consent_request.revoked", "cancelled", "client")
        expected[by_client["id"]] = revoked

        in_altinn, altinn_id = await grant(s)
        await revoke_in_altinn(s, altinn_id)
        assert (await _revocations(s).run_once()).revoked == 1
        expected[in_altinn] = ("consent_request.revoked", "revoked", "end_user")

        by_skatteetaten, _ = await grant(s)
        rs.tap.substitute = lambda request: feil(403, KODE + "007")
        assert (await fetch(s, by_skatteetaten)).status_code == 409
        rs.tap.substitute = None
        expected[by_skatteetaten] = ("consent_request.revoked", "revoked", "skatteetaten")

        # Expiry, kept within the receiver's ±5 minute tolerance of the real clock.
        grant_ends = (await granted(s, valid_to=_in(90, s)))["id"]
        never_answered = (await s.create(valid_to=_in(120, s)))["id"]
        s.sandbox.clock.advance(121)
        report = await s.reconciler.run_once()
        assert (report.changed, report.grants_expired) == (1, 1)
        expected[grant_ends] = ("consent_request.expired", "expired", None)
        expected[never_answered] = ("consent_request.expired", "expired", None)

        assert await deliver_all(s) == len(expected) + 4  # four grants that ended later
        rows = await outbox_rows(s)
    assert {row.status for row in rows} == {"delivered"}

    schemas = doc_schemas()
    got: dict[str, list[tuple[str, str, str | None]]] = {}
    for delivered in receiver.got:
        payload = delivered.verify(secret)  # the reference library, as a receiver would
        assert schema_errors(payload, schemas) == [], payload
        got.setdefault(payload["data"]["id"], []).append(_summary(delivered))
    # Deliveries run in parallel, so a grant's two events may arrive in either order.
    granted_first = {by_client["id"], in_altinn, by_skatteetaten, grant_ends}
    granted_event = ("consent_request.granted", "granted", None)
    assert {request: set(events) for request, events in got.items()} == {
        request: {last, granted_event} if request in granted_first else {last}
        for request, last in expected.items()
    }
    assert sum(len(events) for events in got.values()) == len(expected) + len(granted_first)
    # One stable id per event, and nothing secret in any body.
    assert len({d.webhook_id for d in receiver.got}) == len(receiver.got)
    bodies = b"".join(d.body for d in receiver.got)
    assert secret.encode() not in bodies
    assert b"eyJ" not in bodies  # no JWT (a consent token) anywhere
    revocations = {
        d.payload["data"]["revocation"]["reason"]
        for d in receiver.got
        if d.payload["data"]["revocation"]
    }
    assert revocations == {
        "withdrawn_by_client",
        "withdrawn_in_altinn",
        "OPPDRAGUTENLANDSKEVIRKSOMHETER-007",
    }


async def test_the_receiver_refuses_tampered_and_stale_deliveries(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    async with api_stack(database_url, tmp_path, webhooks=receiver.transport) as s:
        secret = await register(s)
        await granted(s)
        await deliver_all(s)
        # A delivery signed at a time the receiver finds stale (the broker's clock is 6
        # minutes behind the receiver's here).
        s.sandbox.clock.advance(-360)
        await denied(s)
        await deliver_all(s)
    real, stale = receiver.got
    real.verify(secret)
    body = json.loads(real.body)
    body["data"]["status"] = "denied"
    forged = [
        Delivered(real.headers, json.dumps(body, separators=(",", ":")).encode()),
        Delivered(real.headers, real.body + b" "),
        Delivered({**real.headers, "webhook-id": stale.webhook_id}, real.body),
        Delivered(
            {**real.headers, "webhook-timestamp": str(int(real.headers["webhook-timestamp"]) + 1)},
            real.body,
        ),
    ]
    for delivery in forged:
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            delivery.verify(secret)
    with pytest.raises(WebhookVerificationError, match="too old"):
        stale.verify(secret)


_REFUSE_OUTBOX = {
    "sqlite": [
        "CREATE TRIGGER refuse_outbox BEFORE INSERT ON webhook_outbox "
        "BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_outbox() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'outbox refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_outbox BEFORE INSERT ON webhook_outbox "
        "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()",
    ],
}


async def _outbox_refused(s: Stack, refused: bool) -> None:
    engine = s.app.state.resources.engine
    async with engine.begin() as conn:
        if refused:
            for statement in _REFUSE_OUTBOX[conn.dialect.name]:
                await conn.execute(text(statement))
        else:
            await conn.execute(
                text(
                    "DROP TRIGGER refuse_outbox"
                    + (" ON webhook_outbox" if conn.dialect.name == "postgresql" else "")
                )
            )


async def test_no_change_is_committed_without_its_event(database_url: str, tmp_path: Path) -> None:
    receiver = Receiver()
    async with api_stack(database_url, tmp_path, webhooks=receiver.transport) as s:
        await register(s)
        h = s.tenant.headers
        created = await granted(s)
        await _outbox_refused(s, True)
        # The outbox insert fails inside the cancel's transaction: the cancel fails with it.
        cancel = await s.api.delete(f"/v1/consent-requests/{created['id']}", headers=h)
        assert cancel.status_code == 500
        assert (await s.read(created["id"]))["status"] == "granted"
        # Same for an answer recorded by the reconciler (person never came back).
        pending = await s.create()
        async with s.browser() as browser:
            await s.answer(await s.go_to_altinn(browser, pending["consent_url"]), "approve")
        with pytest.raises(DBAPIError):
            await s.reconciler.run_once()
        assert (await s.read(pending["id"]))["status"] == "redirected"
        history = await s.api.get(f"/v1/consent-requests/{pending['id']}/history", headers=h)
        assert [e["action"] for e in history.json()["items"]] == ["created", "redirected"]

        await _outbox_refused(s, False)
        assert (await s.reconciler.run_once()).changed == 1
        cancelled = await s.api.delete(f"/v1/consent-requests/{created['id']}", headers=h)
        assert cancelled.status_code == 200
        await deliver_all(s)
        async with s.app.state.resources.sessions() as session:
            audited = await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action.in_(["granted", "cancelled"]))
            )
    # Every recorded change has its event, and no event lacks its change.
    kinds = sorted(d.payload["type"] for d in receiver.got)
    assert kinds == [
        "consent_request.granted",
        "consent_request.granted",
        "consent_request.revoked",
    ]
    assert audited == 3


async def test_revocations_in_altinn_wait_for_the_feeds_safety_lag(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    async with stack(database_url, tmp_path, None, receiver.transport, 300) as s:
        await register(s)
        request_id, altinn_id = await grant(s)
        await revoke_in_altinn(s, altinn_id)
        poller = _revocations(s)
        assert (await poller.run_once()).revoked == 0  # Altinn does not show it yet
        assert (await s.read(request_id))["status"] == "granted"
        s.sandbox.clock.advance(301)
        assert (await poller.run_once()).revoked == 1
        body = await s.read(request_id)
        assert (body["status"], body["grant"]["revoked_by"]) == ("revoked", "end_user")
        assert (await poller.run_once()).revoked == 0  # read again: nothing more happens
        await deliver_all(s)
    kinds = sorted(d.payload["type"] for d in receiver.got)  # one batch: either order
    assert kinds == ["consent_request.granted", "consent_request.revoked"]
