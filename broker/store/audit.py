"""The append-only, hash-chained audit trail (``consent.ports.AuditLog``). Never commits.

Each row's ``row_hash`` is SHA-256 over the previous row's hash and this row's canonical JSON,
so editing or deleting a row breaks every later link. Appends are serialised (an advisory
transaction lock on PostgreSQL; SQLite's write lock already does it) so that two writers never
chain onto the same predecessor.

``verify`` re-computes the chain from the first row (``broker audit verify``). The chain alone
cannot show that the newest rows were cut off, or that someone with write access re-computed
every hash after an edit: for that, keep the head it reports (id and hash) outside the database
and pass it back as an anchor, which must still be in the chain with the same hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from broker.admin.ports import AuditEntry, ChainReport
from broker.consent.model import HistoryEntry, State
from broker.consent.ports import AuditRecord
from broker.store.models import AuditEvent

__all__ = ["GENESIS_HASH", "SqlAuditLog", "check_rows", "row_hash"]

_VERIFY_BATCH = 1000

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

    async def events(self, object_type: str, object_id: str) -> list[AuditEntry]:
        rows = (
            await self._session.execute(
                select(AuditEvent)
                .where(AuditEvent.object_type == object_type, AuditEvent.object_id == object_id)
                .order_by(AuditEvent.id)
            )
        ).scalars()
        return [_entry(row) for row in rows]

    async def recent(self, *, before: int | None, limit: int) -> list[AuditEntry]:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if before is not None:
            query = query.where(AuditEvent.id < before)
        return [_entry(row) for row in (await self._session.execute(query)).scalars()]

    async def count_since(
        self, *, action: str, object_type: str, object_id: str, outcome: str, since: datetime
    ) -> int:
        # ix_audit_events_object narrows this to one object's rows.
        query = select(func.count()).where(
            AuditEvent.object_type == object_type,
            AuditEvent.object_id == object_id,
            AuditEvent.action == action,
            AuditEvent.outcome == outcome,
            AuditEvent.occurred_at > since,
        )
        return int((await self._session.execute(query)).scalar_one())

    async def verify(self, *, anchors: Sequence[tuple[int, str]] = ()) -> ChainReport:
        """Walk the whole chain in id order, a batch at a time."""
        prev, after, rows = GENESIS_HASH, 0, 0
        head: AuditEvent | None = None
        wanted = dict(anchors)
        seen: dict[int, str] = {}
        while True:
            batch = list(
                (
                    await self._session.execute(
                        select(AuditEvent)
                        .where(AuditEvent.id > after)
                        .order_by(AuditEvent.id)
                        .limit(_VERIFY_BATCH)
                    )
                ).scalars()
            )
            if not batch:
                break
            broken = check_rows(batch, prev)
            if broken is not None:
                return ChainReport(rows + broken[0], None, None, broken[1], broken[2])
            rows += len(batch)
            seen.update((row.id, row.row_hash) for row in batch if row.id in wanted)
            head, prev, after = batch[-1], batch[-1].row_hash, batch[-1].id
        missing = tuple(f"{i}:{h}" for i, h in anchors if seen.get(i) != h)
        return ChainReport(
            rows,
            head.id if head else None,
            head.row_hash if head else None,
            anchors_missing=missing,
        )


def check_rows(rows: Sequence[AuditEvent], prev: str) -> tuple[int, int, str] | None:
    """The first row of ``rows`` (coming after a row whose hash is ``prev``) that does not
    check out: (its index, its id, what is wrong); None when all do."""
    for index, row in enumerate(rows):
        if row.prev_hash != prev:
            return index, row.id, "its link to the previous row is broken (a row was deleted)"
        if row.row_hash != row_hash(prev, _stored_fields(row)):
            return index, row.id, "its content does not match its hash (the row was edited)"
        prev = row.row_hash
    return None


def _stored_fields(row: AuditEvent) -> dict[str, Any]:
    return {
        "occurred_at": row.occurred_at,
        "actor_type": row.actor_type,
        "actor_id": row.actor_id,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "client_id": row.client_id,
        "outcome": row.outcome,
        "reason": row.reason,
        "correlation_id": row.correlation_id,
        "upstream_correlation_id": row.upstream_correlation_id,
        "details": row.details,
    }


def _entry(row: AuditEvent) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        occurred_at=row.occurred_at,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        client_id=row.client_id,
        outcome=row.outcome,
        reason=row.reason,
        correlation_id=row.correlation_id,
        upstream_correlation_id=row.upstream_correlation_id,
        details=dict(row.details),
        prev_hash=row.prev_hash,
        row_hash=row.row_hash,
    )


def _fields(record: AuditRecord, at: datetime) -> dict[str, Any]:
    return {
        # In UTC, as the column gives it back, so that verify() re-computes the same text.
        "occurred_at": at.astimezone(UTC),
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
