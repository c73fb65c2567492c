"""Helpers for the webhook store tests: clients with endpoints, queued events, claims."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.consent.model import ConsentRequest, Generation, Language, State
from broker.consent.ports import Notice
from broker.crypto import Cipher
from broker.store.clients import SqlClientStore
from broker.store.consents import SqlConsentStore
from broker.store.models import OutboxEvent
from broker.store.outbox import SqlOutbox
from broker.store.webhooks import SqlWebhookStore
from broker.webhooks.ports import Claimed

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
CIPHER = Cipher.for_dev("webhook store tests")
SECRET = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM="
Sessions = async_sessionmaker[AsyncSession]


async def make_client(
    sessions: Sessions, *, endpoint: bool = True, enabled: bool = True
) -> uuid.UUID:
    async with sessions() as session:
        client_id = await SqlClientStore(session).create(
            name="Portal", org_number="310300012", return_urls=(), at=NOW
        )
        if endpoint:
            store = SqlWebhookStore(session, CIPHER)
            created = await store.create_endpoint(
                client_id, url="https://93.184.216.34/hook", enabled=enabled, at=NOW
            )
            await store.add_secret(created.id, SECRET, at=NOW)
        await session.commit()
    return client_id


def request_for(client_id: uuid.UUID) -> ConsentRequest:
    return ConsentRequest(
        id=uuid.uuid4(),
        client_id=client_id,
        requestor_org="310200018",
        subject_org="310100013",
        resource="r",
        reference="case",
        external_reference=None,
        language=Language.NB,
        return_url="https://portal.example/return",
        state=State.GRANTED,
        state_reason=None,
        generation=Generation.ALTINN3,
        altinn_consent_id=None,
        valid_to=NOW + timedelta(days=1),
        idempotency_key=None,
        created_at=NOW,
        updated_at=NOW,
    )


async def queue_events(sessions: Sessions, client_id: uuid.UUID, n: int) -> int:
    """Queue ``n`` events for ``client_id`` as changes would; return how many rows were written."""
    async with sessions() as session:
        consents, outbox = SqlConsentStore(session, CIPHER), SqlOutbox(session)
        for _ in range(n):
            request = request_for(client_id)
            await consents.add(request)
            await outbox.add(
                Notice(
                    id=uuid.uuid4(),
                    client_id=client_id,
                    consent_request_id=request.id,
                    event_type="consent_request.granted",
                    occurred_at=NOW,
                    payload={"type": "consent_request.granted"},
                )
            )
        await session.commit()
        return outbox.added


async def outbox_rows(sessions: Sessions) -> list[OutboxEvent]:
    async with sessions() as session:
        return list(await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


async def claim_events(
    sessions: Sessions, owner: str, now: datetime = NOW, limit: int = 100
) -> list[Claimed]:
    async with sessions() as session:
        claimed = await SqlWebhookStore(session, CIPHER).claim(
            owner=owner, now=now, lease_until=now + timedelta(seconds=60), limit=limit
        )
        await session.commit()
        return claimed
