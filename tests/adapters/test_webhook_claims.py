"""Several workers claiming on one PostgreSQL: ``FOR UPDATE SKIP LOCKED`` hands each event to
one of them and none waits for another's locks (SQLite has no such clause; one worker runs)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from broker.store.models import OutboxEvent
from tests.adapters.webhook_store_support import Sessions, claim_events, make_client, queue_events

pytestmark = pytest.mark.postgres


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    value = request.param
    assert isinstance(value, str)
    return value


async def test_concurrent_claims_on_postgresql_skip_locked_rows_instead_of_waiting(
    sessions: Sessions,
) -> None:
    client_id = await make_client(sessions)
    await queue_events(sessions, client_id, 40)
    async with sessions() as holder:
        # One transaction holds row locks on 10 events (as a claim in progress would) ...
        locked = list(
            await holder.scalars(
                select(OutboxEvent.id)
                .order_by(OutboxEvent.next_attempt_at)
                .limit(10)
                .with_for_update()
            )
        )
        # ... while 3 workers claim at once: none waits for it, none gets a locked row, and
        # no event goes to two of them.
        claims = await asyncio.wait_for(
            asyncio.gather(*(claim_events(sessions, f"w{i}", limit=20) for i in range(3))),
            timeout=10,
        )
        await holder.rollback()
    ids = [c.id for claim in claims for c in claim]
    assert len(ids) == len(set(ids)) == 30
    assert set(ids).isdisjoint(locked)
