"""``verify`` re-computes the audit chain and finds an edited or a deleted row, as someone who
can get past the append-only trigger (the database owner) would leave it; anchors kept outside
the database find a cut-off tail and a chain re-computed after an edit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.admin.ports import ChainReport
from broker.consent.ports import AuditRecord
from broker.store import migrate
from broker.store.audit import SqlAuditLog, row_hash
from broker.store.db import create_engine, create_sessionmaker

AT = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def _record(n: int) -> AuditRecord:
    return AuditRecord(
        actor_type="admin",
        actor_id="ola",
        action="revoked",
        object_type="consent_request",
        object_id=str(uuid.uuid4()),
        client_id=uuid.uuid4(),
        outcome="success",
        reason=f"reason {n}",
        correlation_id=f"req-{n}",
        details={"state": "revoked", "n": n, "ms": 12.5},
    )


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    sessions = create_sessionmaker(engine)
    for n in range(6):
        async with sessions() as session:
            # Times in another zone than UTC too: the stored and the hashed text must agree.
            at = AT + timedelta(seconds=n)
            if n == 3:
                at = at.astimezone(timezone(timedelta(hours=1)))
            await SqlAuditLog(session).append(_record(n), at=at)
            await session.commit()
    yield engine
    await engine.dispose()


async def _verify(engine: AsyncEngine, anchors: list[tuple[int, str]] | None = None) -> ChainReport:
    async with create_sessionmaker(engine)() as session:
        return await SqlAuditLog(session).verify(anchors=anchors or [])


async def _as_owner(engine: AsyncEngine, statement: str, **params: object) -> None:
    """What an owner or superuser can do: switch the append-only guard off, write, switch it on."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            await conn.execute(text(statement), params)
            await conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
        else:
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
            await conn.execute(text(statement), params)


async def _head(engine: AsyncEngine) -> tuple[int, str]:
    report = await _verify(engine)
    assert report.head_id is not None
    assert report.head_hash is not None
    return report.head_id, report.head_hash


async def test_an_untouched_chain_verifies(engine: AsyncEngine) -> None:
    report = await _verify(engine)
    assert report.intact
    assert report.rows == 6
    head = await _head(engine)
    assert (await _verify(engine, [head])).intact


async def test_an_edited_row_is_found(engine: AsyncEngine) -> None:
    await _as_owner(engine, "UPDATE audit_events SET reason = 'nothing to see' WHERE id = 3")
    report = await _verify(engine)
    assert not report.intact
    assert report.broken_at == 3
    assert report.problem is not None
    assert "edited" in report.problem


async def test_an_edited_detail_is_found(engine: AsyncEngine) -> None:
    await _as_owner(
        engine,
        """UPDATE audit_events SET actor_id = 'someone-else' WHERE id = 5""",
    )
    assert (await _verify(engine)).broken_at == 5


async def test_a_deleted_row_is_found(engine: AsyncEngine) -> None:
    await _as_owner(engine, "DELETE FROM audit_events WHERE id = 2")
    report = await _verify(engine)
    assert report.broken_at == 3  # the row after the gap no longer links
    assert report.problem is not None
    assert "deleted" in report.problem


async def test_a_deleted_first_row_is_found(engine: AsyncEngine) -> None:
    await _as_owner(engine, "DELETE FROM audit_events WHERE id = 1")
    assert (await _verify(engine)).broken_at == 2


async def test_a_cut_off_tail_is_found_by_an_anchor(engine: AsyncEngine) -> None:
    head = await _head(engine)
    await _as_owner(engine, "DELETE FROM audit_events WHERE id = :id", id=head[0])
    assert (await _verify(engine)).intact  # the chain alone cannot tell
    report = await _verify(engine, [head])
    assert not report.intact
    assert report.anchors_missing == (f"{head[0]}:{head[1]}",)


async def test_a_chain_re_computed_after_an_edit_is_found_by_an_anchor(
    engine: AsyncEngine,
) -> None:
    head = await _head(engine)
    await _as_owner(engine, "UPDATE audit_events SET reason = 'rewritten' WHERE id = 2")
    # The forger re-computes every hash from the edited row on.
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM audit_events ORDER BY id"))).mappings().all()
    prev = rows[0]["row_hash"]
    fixes = []
    async with create_sessionmaker(engine)() as session:
        stored = await SqlAuditLog(session).recent(before=None, limit=100)
    for entry in sorted(stored, key=lambda e: e.id)[1:]:
        fields = {
            "occurred_at": entry.occurred_at,
            "actor_type": entry.actor_type,
            "actor_id": entry.actor_id,
            "action": entry.action,
            "object_type": entry.object_type,
            "object_id": entry.object_id,
            "client_id": entry.client_id,
            "outcome": entry.outcome,
            "reason": entry.reason,
            "correlation_id": entry.correlation_id,
            "upstream_correlation_id": entry.upstream_correlation_id,
            "details": dict(entry.details),
        }
        digest = row_hash(prev, fields)
        fixes.append((entry.id, prev, digest))
        prev = digest
    for row_id, link, digest in fixes:
        await _as_owner(
            engine,
            "UPDATE audit_events SET prev_hash = :link, row_hash = :digest WHERE id = :id",
            link=link,
            digest=digest,
            id=row_id,
        )
    assert (await _verify(engine)).intact  # a perfect forgery of the chain itself
    assert not (await _verify(engine, [head])).intact  # but the kept head no longer matches
