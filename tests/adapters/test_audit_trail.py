"""The audit trail: hash-chained, and append-only in the database itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from broker.consent.ports import AuditRecord
from broker.store import migrate
from broker.store.audit import GENESIS_HASH, SqlAuditLog, row_hash
from broker.store.db import create_engine, create_sessionmaker

AT = datetime(2026, 11, 28, 12, tzinfo=UTC)


def _record(n: int) -> AuditRecord:
    return AuditRecord(
        actor_type="client",
        actor_id="c",
        action=f"action-{n}",
        object_type="consent_request",
        object_id=str(uuid.uuid4()),
        client_id=None,
        outcome="success",
        details={"n": n},
    )


async def test_rows_chain_and_cannot_be_changed_or_deleted(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        sessions = create_sessionmaker(engine)
        for n in range(3):
            async with sessions() as session:
                await SqlAuditLog(session).append(_record(n), at=AT)
                await session.commit()
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT prev_hash, row_hash FROM audit_events ORDER BY id"))
            ).all()
        assert rows[0][0] == GENESIS_HASH
        assert [r[0] for r in rows[1:]] == [r[1] for r in rows[:-1]]
        assert len({r[1] for r in rows}) == 3
        for statement in (
            "UPDATE audit_events SET reason = 'edited'",
            "DELETE FROM audit_events",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
        async with engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM audit_events"))).scalar_one()
        assert count == 3
    finally:
        await engine.dispose()


def test_the_hash_covers_every_field() -> None:
    fields = {"action": "a", "details": {"n": 1}}
    assert row_hash(GENESIS_HASH, fields) != row_hash(GENESIS_HASH, {**fields, "action": "b"})
    assert row_hash(GENESIS_HASH, fields) != row_hash("1" * 64, fields)
