"""The outbox in SQL on both backends: events only for clients with an endpoint, claims that never
hand one event to two workers at once, leases that run out, records guarded by the lease, job
cursors, and secrets encrypted at rest, bound to their row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from broker.crypto import DecryptionFailed
from broker.store.cursors import SqlJobCursors
from broker.store.models import WebhookSecret
from broker.store.webhooks import SqlWebhookStore, secret_aad
from broker.webhooks.ports import Attempted, Claimed
from broker.webhooks.schedule import Decision, Outcome
from tests.adapters.webhook_store_support import (
    CIPHER,
    NOW,
    SECRET,
    Sessions,
    claim_events,
    make_client,
    outbox_rows,
    queue_events,
)


def _attempt(event: Claimed, status: str, code: int | None = 200) -> Attempted:
    error = None if status == "delivered" else f"HTTP {code}"
    later = NOW + timedelta(seconds=5)
    return Attempted(
        event,
        NOW,
        Outcome(code, error, duration_ms=3),
        Decision(status, later if status == "pending" else None, failing=status != "delivered"),
    )


async def test_events_are_queued_only_for_clients_with_an_endpoint(sessions: Sessions) -> None:
    assert await queue_events(sessions, await make_client(sessions, endpoint=False), 2) == 0
    assert await queue_events(sessions, await make_client(sessions), 2) == 2
    assert await queue_events(sessions, await make_client(sessions, enabled=False), 1) == 1
    rows = await outbox_rows(sessions)
    assert sorted((r.status, r.last_error) for r in rows) == [
        ("failed", "endpoint disabled"),
        ("pending", None),
        ("pending", None),
    ]
    # Only the enabled endpoint's pending events are ever claimed.
    claimed = await claim_events(sessions, "w1")
    assert {c.id for c in claimed} == {r.id for r in rows if r.status == "pending"}


async def test_a_claim_leases_due_events_with_their_secrets_and_the_lease_runs_out(
    sessions: Sessions,
) -> None:
    client_id = await make_client(sessions)
    await queue_events(sessions, client_id, 3)
    first = await claim_events(sessions, "w1", limit=2)
    assert len(first) == 2
    assert all(c.secrets == (SECRET,) and c.attempts == 0 for c in first)
    assert SECRET not in repr(first)  # secrets stay out of logs
    second = await claim_events(sessions, "w2")
    assert len(second) == 1
    assert {c.id for c in first}.isdisjoint(c.id for c in second)
    assert await claim_events(sessions, "w3") == []  # all leased
    retaken = await claim_events(sessions, "w3", now=NOW + timedelta(seconds=61))
    assert len(retaken) == 3  # the leases ran out: the events go to another worker


async def test_records_count_a_delivery_always_and_a_failure_only_under_the_lease(
    sessions: Sessions,
) -> None:
    client_id = await make_client(sessions)
    await queue_events(sessions, client_id, 2)
    claimed = await claim_events(sessions, "w1")
    later = NOW + timedelta(seconds=61)
    retaken = await claim_events(sessions, "w2", now=later)
    assert {c.id for c in retaken} == {c.id for c in claimed}
    async with sessions() as session:
        store = SqlWebhookStore(session, CIPHER)
        # w1 comes back late: its success stands, its failure does not (w2 holds the lease).
        await store.record(
            [_attempt(claimed[0], "delivered"), _attempt(claimed[1], "pending", 500)], owner="w1"
        )
        await session.commit()
    rows = {r.id: r for r in await outbox_rows(sessions)}
    assert (rows[claimed[0].id].status, rows[claimed[0].id].attempts) == ("delivered", 1)
    assert (rows[claimed[1].id].status, rows[claimed[1].id].attempts) == ("pending", 0)
    assert rows[claimed[1].id].lease_owner == "w2"
    async with sessions() as session:
        store = SqlWebhookStore(session, CIPHER)
        await store.record([_attempt(retaken[0], "pending", 503)], owner="w2")
        await session.commit()
        attempts = await store.attempts(claimed[0].id)
    # Both attempts are in the history, whichever decided.
    assert [a.status_code for a in attempts] == [200, 503]


async def test_job_cursors_are_inserted_then_updated(sessions: Sessions) -> None:
    async with sessions() as session:
        cursors = SqlJobCursors(session)
        assert await cursors.get("altinn3_events:310200018") is None
        await cursors.put("altinn3_events:310200018", "t1", at=NOW)
        await cursors.put("altinn3_events:310200018", "t2", at=NOW)
        await cursors.put("altinn3_events:310200026", "u1", at=NOW)
        await session.commit()
    async with sessions() as session:
        cursors = SqlJobCursors(session)
        assert await cursors.get("altinn3_events:310200018") == "t2"
        assert await cursors.get("altinn3_events:310200026") == "u1"


async def test_secrets_are_stored_encrypted_and_bound_to_their_row(sessions: Sessions) -> None:
    await make_client(sessions)
    await make_client(sessions)
    async with sessions() as session:
        rows = list(await session.scalars(select(WebhookSecret)))
        assert len(rows) == 2
        assert all(SECRET.encode() not in r.secret_ciphertext for r in rows)
        first, second = rows
        # A ciphertext copied into another row does not decrypt there.
        with pytest.raises(DecryptionFailed):
            CIPHER.decrypt(
                first.secret_ciphertext,
                key_id=first.secret_key_id,
                aad=secret_aad(second.id, second.endpoint_id),
            )
        await session.execute(
            update(WebhookSecret)
            .where(WebhookSecret.id == second.id)
            .values(secret_ciphertext=first.secret_ciphertext)
        )
        store = SqlWebhookStore(session, CIPHER)
        with pytest.raises(DecryptionFailed):
            await store.signing_secrets([second.endpoint_id], now=NOW)
        assert await store.signing_secrets([first.endpoint_id], now=NOW) == {
            first.endpoint_id: [SECRET]
        }
