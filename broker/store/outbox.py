"""The webhook outbox's write side (``consent.ports.Outbox``): one row per event, in the
transaction of the change it reports. Never commits.

One statement per event: ``INSERT … SELECT`` from the client's endpoint, so a client without an
endpoint gets no row, and an event for a disabled endpoint is stored ``failed`` with the reason
(the client may redeliver it by hand once the endpoint is enabled again).
"""

from __future__ import annotations

from sqlalchemy import JSON, String, bindparam, case, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.consent.ports import Notice
from broker.store.models import OutboxEvent, OutboxStatus, WebhookEndpoint

__all__ = ["DISABLED_ERROR", "SqlOutbox"]

DISABLED_ERROR = "endpoint disabled"


class SqlOutbox:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.added = 0  # rows written in this unit of work (the worker is woken on commit)

    async def add(self, notice: Notice) -> None:
        enabled = WebhookEndpoint.enabled.is_(True)
        source = select(
            literal(notice.id),
            literal(notice.client_id),
            literal(notice.consent_request_id),
            literal(notice.event_type, String),
            bindparam("payload", dict(notice.payload), type_=JSON),
            case((enabled, OutboxStatus.PENDING.value), else_=OutboxStatus.FAILED.value),
            literal(0),
            literal(notice.occurred_at, OutboxEvent.next_attempt_at.type),
            literal(notice.occurred_at, OutboxEvent.created_at.type),
            case((enabled, None), else_=DISABLED_ERROR),
        ).where(WebhookEndpoint.client_id == notice.client_id)
        columns = [
            "id",
            "client_id",
            "consent_request_id",
            "event_type",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
            "last_error",
        ]
        result = await self._session.execute(insert(OutboxEvent).from_select(columns, source))
        self.added += max(getattr(result, "rowcount", 0) or 0, 0)
