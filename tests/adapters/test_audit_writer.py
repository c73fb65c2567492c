"""Group commit of audit rows: one transaction for everyone waiting, each caller answered only
once its own row is committed, the hash chain intact, a failure failing only its own batch."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from broker.consent.ports import AuditRecord
from broker.crypto import Cipher
from broker.store import migrate
from broker.store.audit import GENESIS_HASH, _fields, row_hash
from broker.store.audit_writer import GroupCommitAudit
from broker.store.db import create_engine, create_sessionmaker
from broker.store.uow import SqlUnitOfWork

AT = datetime(2026, 11, 28, 12, tzinfo=UTC)


def _record(n: int) -> AuditRecord:
    return AuditRecord(
        actor_type="client",
        actor_id="c",
        action="oppdrag.fetch",
        object_type="consent_request",
        object_id=str(uuid.uuid4()),
        client_id=None,
        outcome="success",
        details={"n": n},
    )


async def test_concurrent_rows_share_transactions_and_keep_the_chain(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        sessions = create_sessionmaker(engine)
        writer = GroupCommitAudit(lambda: SqlUnitOfWork(sessions, Cipher.for_dev("k" * 32)))
        committed_when_answered: list[bool] = []

        async def one(n: int) -> None:
            record = _record(n)
            await writer(record, at=AT)
            # Answered only after commit: another connection sees the row at once.
            async with engine.connect() as conn:
                found = await conn.execute(
                    text("SELECT count(*) FROM audit_events WHERE object_id = :id"),
                    {"id": record.object_id},
                )
                committed_when_answered.append(found.scalar_one() == 1)

        await asyncio.gather(*(one(n) for n in range(60)))
        assert committed_when_answered == [True] * 60
        assert 1 <= writer.batches < 60  # shared transactions, not one per row
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT prev_hash, row_hash FROM audit_events ORDER BY id"))
            ).all()
        assert len(rows) == 60
        assert rows[0][0] == GENESIS_HASH
        assert [r[0] for r in rows[1:]] == [r[1] for r in rows[:-1]]
    finally:
        await engine.dispose()


async def test_a_single_row_is_hashed_exactly_as_a_lone_append(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        sessions = create_sessionmaker(engine)
        writer = GroupCommitAudit(lambda: SqlUnitOfWork(sessions, Cipher.for_dev("k" * 32)))
        record = _record(1)
        await writer(record, at=AT)
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT row_hash FROM audit_events"))).scalar_one()
        assert stored == row_hash(GENESIS_HASH, _fields(record, AT))
    finally:
        await engine.dispose()


class _FlakyAudit:
    def __init__(self, fail: set[int], written: list[list[int]]) -> None:
        self._fail = fail
        self._written = written
        self.failed: list[list[int]] = []
        self.calls = 0

    async def append_many(self, records: list[tuple[AuditRecord, datetime]]) -> None:
        self.calls += 1
        await asyncio.sleep(0)  # as a database would: others queue up meanwhile
        batch = [r.details["n"] for r, _ in records]
        if self.calls in self._fail:
            self.failed.append(batch)
            raise OSError("database went away")
        self._written.append(batch)


class _FlakyUnit:
    def __init__(self, audit: _FlakyAudit) -> None:
        self.audit = audit

    async def __aenter__(self) -> _FlakyUnit:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        return None


async def test_a_failed_batch_fails_its_members_and_no_one_else() -> None:
    written: list[list[int]] = []
    audit = _FlakyAudit({2}, written)
    writer = GroupCommitAudit(lambda: _FlakyUnit(audit), max_batch=2)
    results = await asyncio.gather(
        *(writer(_record(n), at=AT) for n in range(7)), return_exceptions=True
    )
    failed = [n for n, r in enumerate(results) if isinstance(r, OSError)]
    assert len(audit.failed) == 1
    assert failed == audit.failed[0] != []  # exactly the failed batch's members
    assert sorted(n for batch in written for n in batch) == sorted(set(range(7)) - set(failed))
    assert all(results[n] is None for n in range(7) if n not in failed)
    # The writer is not stuck after a failure.
    await writer(_record(9), at=AT)
    assert written[-1] == [9]


@pytest.mark.parametrize("max_batch", [1, 7])
async def test_batches_never_exceed_the_limit(max_batch: int) -> None:
    written: list[list[int]] = []
    writer = GroupCommitAudit(lambda: _FlakyUnit(_FlakyAudit(set(), written)), max_batch=max_batch)
    await asyncio.gather(*(writer(_record(n), at=AT) for n in range(20)))
    assert sorted(n for batch in written for n in batch) == list(range(20))
    assert max(len(batch) for batch in written) <= max_batch
