"""Webhook endpoints, their secrets and the outbox's delivery side in SQL
(``webhooks.ports.WebhookStore``). Never commits.

Claiming: one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`` leases due
events to a worker, so several processes on PostgreSQL take disjoint rows without waiting for
each other; a lease that runs out (the worker died) makes the event claimable again. SQLite has
no ``SKIP LOCKED`` (SQLAlchemy leaves the clause out there): its writers queue on
``BEGIN IMMEDIATE`` and one worker runs per process.

Recording takes row locks in one order, endpoints (sorted) before events, so that two workers
recording at once cannot deadlock when one of them disables an endpoint.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.consent.ports import DuplicateKey
from broker.crypto import Cipher
from broker.store.models import (
    OutboxEvent,
    OutboxStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookSecret,
)
from broker.store.outbox import DISABLED_ERROR
from broker.webhooks.ports import (
    Attempted,
    AttemptRow,
    Claimed,
    Delivery,
    Endpoint,
    SecretInfo,
)

__all__ = ["SqlWebhookStore", "secret_aad"]

_OUTBOX = cast(Table, OutboxEvent.__table__)
_ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
_PENDING = OutboxStatus.PENDING.value


def secret_aad(secret_id: uuid.UUID, endpoint_id: uuid.UUID) -> str:
    return f"webhook_secrets.secret:{secret_id}:{endpoint_id}"


def _endpoint(row: WebhookEndpoint) -> Endpoint:
    return Endpoint(
        row.id,
        row.client_id,
        row.url,
        row.enabled,
        row.disabled_reason,
        row.failing_since,
        row.created_at,
        row.updated_at,
    )


def _active(now: datetime) -> Any:
    return or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > now)


class SqlWebhookStore:
    def __init__(self, session: AsyncSession, cipher: Cipher) -> None:
        self._session = session
        self._cipher = cipher

    # --- endpoints and secrets ------------------------------------------------------------

    async def endpoint(self, client_id: uuid.UUID) -> Endpoint | None:
        query = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.client_id == client_id)
            .execution_options(populate_existing=True)
        )
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else _endpoint(row)

    async def create_endpoint(
        self, client_id: uuid.UUID, *, url: str, enabled: bool, at: datetime
    ) -> Endpoint:
        row = WebhookEndpoint(
            id=uuid.uuid4(),
            client_id=client_id,
            url=url,
            enabled=enabled,
            disabled_reason=None if enabled else "disabled by the client",
            created_at=at,
            updated_at=at,
        )
        self._session.add(row)
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise DuplicateKey("webhook endpoint") from exc  # a concurrent PUT won
        return _endpoint(row)

    async def update_endpoint(
        self, endpoint_id: uuid.UUID, *, url: str, enabled: bool, at: datetime
    ) -> None:
        values: dict[str, Any] = {"url": url, "updated_at": at}
        current = await self._session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
        assert current is not None
        if enabled and not current.enabled:
            values.update(enabled=True, disabled_reason=None, failing_since=None)
        elif not enabled and current.enabled:
            values.update(enabled=False, disabled_reason="disabled by the client")
        await self._session.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(**values)
        )

    async def add_secret(self, endpoint_id: uuid.UUID, secret: str, *, at: datetime) -> None:
        secret_id = uuid.uuid4()
        sealed, key_id = self._cipher.encrypt(
            secret.encode(), aad=secret_aad(secret_id, endpoint_id)
        )
        self._session.add(
            WebhookSecret(
                id=secret_id,
                endpoint_id=endpoint_id,
                secret_ciphertext=sealed,
                secret_key_id=key_id,
                created_at=at,
                expires_at=None,
            )
        )
        await self._session.flush()

    async def retire_secrets(
        self, endpoint_id: uuid.UUID, *, at: datetime, until: datetime
    ) -> None:
        mine = WebhookSecret.endpoint_id == endpoint_id
        await self._session.execute(
            delete(WebhookSecret).where(mine, WebhookSecret.expires_at <= at)
        )
        await self._session.execute(
            update(WebhookSecret)
            .where(
                mine,
                or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > until),
            )
            .values(expires_at=until)
        )

    async def secrets(self, endpoint_id: uuid.UUID, *, now: datetime) -> list[SecretInfo]:
        query = (
            select(WebhookSecret)
            .where(WebhookSecret.endpoint_id == endpoint_id, _active(now))
            .order_by(WebhookSecret.created_at.desc(), WebhookSecret.id)
            .execution_options(populate_existing=True)
        )
        rows = (await self._session.execute(query)).scalars()
        return [SecretInfo(r.id, r.created_at, r.expires_at) for r in rows]

    async def signing_secrets(
        self, endpoint_ids: Sequence[uuid.UUID], *, now: datetime
    ) -> dict[uuid.UUID, list[str]]:
        found: dict[uuid.UUID, list[str]] = {endpoint_id: [] for endpoint_id in endpoint_ids}
        if not endpoint_ids:
            return found
        query = (
            select(WebhookSecret)
            .where(WebhookSecret.endpoint_id.in_(list(endpoint_ids)), _active(now))
            .order_by(WebhookSecret.created_at.desc(), WebhookSecret.id)
        )
        for row in (await self._session.execute(query)).scalars():
            plain = self._cipher.decrypt(
                row.secret_ciphertext,
                key_id=row.secret_key_id,
                aad=secret_aad(row.id, row.endpoint_id),
            )
            found[row.endpoint_id].append(plain.decode())
        return found

    # --- delivery ---------------------------------------------------------------------------

    async def claim(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[Claimed]:
        due = (
            select(OutboxEvent.id)
            .join(WebhookEndpoint, WebhookEndpoint.client_id == OutboxEvent.client_id)
            .where(
                OutboxEvent.status == _PENDING,
                OutboxEvent.next_attempt_at <= now,
                or_(OutboxEvent.lease_expires_at.is_(None), OutboxEvent.lease_expires_at <= now),
                WebhookEndpoint.enabled.is_(True),
            )
            .order_by(OutboxEvent.next_attempt_at)
            .limit(limit)
            .with_for_update(of=OutboxEvent, skip_locked=True)
        )
        claimed = (
            await self._session.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id.in_(due.scalar_subquery()))
                .values(lease_owner=owner, lease_expires_at=lease_until)
                .returning(_OUTBOX.c.id, _OUTBOX.c.client_id, _OUTBOX.c.payload, _OUTBOX.c.attempts)
            )
        ).all()
        if not claimed:
            return []
        endpoints = {
            row.client_id: row
            for row in (
                await self._session.execute(
                    select(WebhookEndpoint).where(
                        WebhookEndpoint.client_id.in_({c.client_id for c in claimed})
                    )
                )
            ).scalars()
        }
        secrets = await self.signing_secrets([e.id for e in endpoints.values()], now=now)
        return [
            Claimed(
                id=c.id,
                client_id=c.client_id,
                endpoint_id=endpoints[c.client_id].id,
                url=endpoints[c.client_id].url,
                payload=c.payload,
                attempts=c.attempts,
                failing_since=endpoints[c.client_id].failing_since,
                secrets=tuple(secrets[endpoints[c.client_id].id]),
            )
            for c in claimed
        ]

    async def record(self, attempts: Sequence[Attempted], *, owner: str) -> None:
        if not attempts:
            return
        await self._update_endpoints(attempts)
        await self._session.execute(
            insert(WebhookAttempt),
            [
                {
                    "event_id": a.event.id,
                    "endpoint_id": a.event.endpoint_id,
                    "attempted_at": a.at,
                    "status_code": a.outcome.status_code,
                    "error": a.outcome.error,
                    "duration_ms": a.outcome.duration_ms,
                }
                for a in attempts
            ],
        )
        delivered = [a for a in attempts if a.decision.status == OutboxStatus.DELIVERED.value]
        others = [a for a in attempts if a.decision.status != OutboxStatus.DELIVERED.value]
        if delivered:
            # A delivery counts even if the lease ran out meanwhile: it did arrive.
            await self._session.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == bindparam("b_id"), _OUTBOX.c.status == _PENDING)
                .values(
                    status=OutboxStatus.DELIVERED.value,
                    attempts=_OUTBOX.c.attempts + 1,
                    delivered_at=bindparam("b_at"),
                    last_attempt_at=bindparam("b_at"),
                    last_error=None,
                    lease_owner=None,
                    lease_expires_at=None,
                ),
                [{"b_id": a.event.id, "b_at": a.at} for a in delivered],
            )
        if others:
            # A failure only while the lease is still ours: another worker may have retaken it.
            await self._session.execute(
                update(_OUTBOX)
                .where(
                    _OUTBOX.c.id == bindparam("b_id"),
                    _OUTBOX.c.status == _PENDING,
                    _OUTBOX.c.lease_owner == owner,
                )
                .values(
                    status=bindparam("b_status"),
                    attempts=_OUTBOX.c.attempts + 1,
                    next_attempt_at=bindparam("b_next"),
                    last_attempt_at=bindparam("b_at"),
                    last_error=bindparam("b_error"),
                    lease_owner=None,
                    lease_expires_at=None,
                ),
                [
                    {
                        "b_id": a.event.id,
                        "b_status": a.decision.status,
                        "b_next": a.decision.next_attempt_at or a.at,
                        "b_at": a.at,
                        "b_error": a.outcome.error,
                    }
                    for a in others
                ],
            )
        await self._disable(attempts)

    async def _update_endpoints(self, attempts: Sequence[Attempted]) -> None:
        """Start or stop each endpoint's failure clock, endpoints in id order."""
        working: dict[uuid.UUID, bool] = {}
        first_failure: dict[uuid.UUID, datetime] = {}
        clock: dict[uuid.UUID, datetime | None] = {}
        for a in attempts:
            endpoint_id = a.event.endpoint_id
            clock[endpoint_id] = a.event.failing_since
            working[endpoint_id] = working.get(endpoint_id, False) or not a.decision.failing
            if a.decision.failing:
                first_failure[endpoint_id] = min(first_failure.get(endpoint_id, a.at), a.at)
        table = _ENDPOINTS
        for endpoint_id in sorted(working):
            if working[endpoint_id] and clock[endpoint_id] is not None:
                values: dict[str, Any] = {"failing_since": None}
            elif not working[endpoint_id] and clock[endpoint_id] is None:
                since = first_failure[endpoint_id]
                values = {"failing_since": func.coalesce(table.c.failing_since, since)}
            else:
                continue  # nothing changes: no write, no lock
            await self._session.execute(
                update(table).where(table.c.id == endpoint_id).values(**values)
            )

    async def _disable(self, attempts: Sequence[Attempted]) -> None:
        reasons = {
            a.event.endpoint_id: (a.event.client_id, a.decision.disable_reason, a.at)
            for a in attempts
            if a.decision.disable_reason is not None
        }
        for endpoint_id in sorted(reasons):
            client_id, reason, at = reasons[endpoint_id]
            await self._session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
                .values(enabled=False, disabled_reason=reason, updated_at=at)
            )
            await self._session.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.client_id == client_id, _OUTBOX.c.status == _PENDING)
                .values(
                    status=OutboxStatus.FAILED.value,
                    last_error=DISABLED_ERROR,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )

    # --- the client's view ------------------------------------------------------------------

    async def deliveries(
        self,
        client_id: uuid.UUID,
        *,
        status: str | None,
        consent_request_id: uuid.UUID | None,
        before: uuid.UUID | None,
        limit: int,
    ) -> list[Delivery]:
        query = select(OutboxEvent).where(OutboxEvent.client_id == client_id)
        if status is not None:
            query = query.where(OutboxEvent.status == status)
        if consent_request_id is not None:
            query = query.where(OutboxEvent.consent_request_id == consent_request_id)
        if before is not None:
            query = query.where(OutboxEvent.id < before)
        query = (
            query.order_by(OutboxEvent.id.desc())
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return [_delivery(row) for row in (await self._session.execute(query)).scalars()]

    async def delivery(self, client_id: uuid.UUID, event_id: uuid.UUID) -> Delivery | None:
        query = (
            select(OutboxEvent)
            .where(and_(OutboxEvent.id == event_id, OutboxEvent.client_id == client_id))
            .execution_options(populate_existing=True)
        )
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else _delivery(row)

    async def attempts(self, event_id: uuid.UUID) -> list[AttemptRow]:
        query = (
            select(WebhookAttempt)
            .where(WebhookAttempt.event_id == event_id)
            .order_by(WebhookAttempt.id)
        )
        return [
            AttemptRow(r.attempted_at, r.status_code, r.error, r.duration_ms)
            for r in (await self._session.execute(query)).scalars()
        ]

    async def redeliver(self, client_id: uuid.UUID, event_id: uuid.UUID, *, at: datetime) -> None:
        await self._session.execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id == event_id, _OUTBOX.c.client_id == client_id)
            .values(
                status=_PENDING,
                attempts=0,
                next_attempt_at=at,
                lease_owner=None,
                lease_expires_at=None,
            )
        )


def _delivery(row: OutboxEvent) -> Delivery:
    return Delivery(
        id=row.id,
        event_type=row.event_type,
        consent_request_id=row.consent_request_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == _PENDING else None,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
        last_attempt_at=row.last_attempt_at,
        last_error=row.last_error,
    )
