"""The append-only, hash-chained audit trail (``consent.ports.AuditLog``). Never commits.

Each row's ``row_hash`` is SHA-256 over the previous row's hash and this row's canonical JSON,
so editing or deleting a row breaks every later link. Appends are serialised (an advisory
transaction lock on PostgreSQL; SQLite's write lock already does it) so that two writers never
chain onto the same predecessor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from broker.consent.model import HistoryEntry, State
from broker.consent.ports import AuditRecord
from broker.store.models import AuditEvent

__all__ = ["GENESIS_HASH", "SqlAuditLog", "row_hash"]

GENESIS_HASH = "0" * 64
_AUDIT_LOCK = 0x6562_6576_6973  # "ebevis": the advisory lock key for the chain's head


def row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


class SqlAuditLog:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, record: AuditRecord, *, at: datetime) -> None:
        await self.append_many([(record, at)])

    async def append_many(self, records: Sequence[tuple[AuditRecord, datetime]]) -> None:
        """Chain ``records`` in order after the current head: one lock and one read for all."""
        if not records:
            return
        if self._session.get_bind().dialect.name == "postgresql":
            await self._session.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK}
            )
        last = (
            await self._session.execute(
                select(AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1)
            )
        ).scalar_one_or_none()
        prev = last or GENESIS_HASH
        rows = []
        for record, at in records:
            fields = _fields(record, at)
            digest = row_hash(prev, fields)
            rows.append(AuditEvent(**fields, prev_hash=prev, row_hash=digest))
            prev = digest
        self._session.add_all(rows)
        await self._session.flush()

    async def history(self, object_type: str, object_id: str) -> list[HistoryEntry]:
        rows = (
            await self._session.execute(
                select(AuditEvent)
                .where(AuditEvent.object_type == object_type, AuditEvent.object_id == object_id)
                .order_by(AuditEvent.id)
            )
        ).scalars()
        return [
            HistoryEntry(
                at=row.occurred_at,
                action=row.action,
                state=State(row.details["state"]) if "state" in row.details else None,
                reason=row.reason,
            )
            for row in rows
        ]


def _fields(record: AuditRecord, at: datetime) -> dict[str, Any]:
    return {
        "occurred_at": at,
        "actor_type": record.actor_type,
        "actor_id": record.actor_id,
        "action": record.action,
        "object_type": record.object_type,
        "object_id": record.object_id,
        "client_id": record.client_id,
        "outcome": record.outcome,
        "reason": record.reason,
        "correlation_id": record.correlation_id,
        "upstream_correlation_id": record.upstream_correlation_id,
        "details": dict(record.details),
    }
