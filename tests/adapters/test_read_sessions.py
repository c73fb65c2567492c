"""Read sessions (the relay's consent lookup): no transaction round trips on PostgreSQL, and on
SQLite no write lock, so a lookup never queues behind a writer."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.store import migrate
from broker.store.db import create_engine, create_read_sessionmaker, create_sessionmaker


async def test_a_read_is_not_blocked_by_a_writer_holding_the_lock(database_url: str) -> None:
    engine = create_engine(database_url, busy_timeout_ms=200)
    try:
        await migrate.upgrade(engine)
        writes, reads = create_sessionmaker(engine), create_read_sessionmaker(engine)
        async with writes() as writer:
            # The writer holds its transaction (on SQLite: the database's write lock) open.
            await writer.execute(text("UPDATE alembic_version SET version_num = version_num"))
            async with reads() as reader:
                found = await asyncio.wait_for(
                    reader.execute(text("SELECT count(*) FROM alembic_version")), timeout=5
                )
                assert found.scalar_one() == 1
            await writer.rollback()
    finally:
        await engine.dispose()


async def test_an_open_read_session_does_not_hold_up_a_writer(database_url: str) -> None:
    engine = create_engine(database_url, busy_timeout_ms=200)
    try:
        await migrate.upgrade(engine)
        reads, writes = create_read_sessionmaker(engine), create_sessionmaker(engine)
        async with reads() as reader:
            await reader.execute(text("SELECT count(*) FROM alembic_version"))
            # The reader is still open; a writer commits without waiting for it.
            async with writes() as writer:
                await asyncio.wait_for(
                    writer.execute(text("UPDATE alembic_version SET version_num = version_num")),
                    timeout=5,
                )
                await writer.commit()
    finally:
        await engine.dispose()


async def test_reads_run_each_statement_in_its_own_transaction_on_postgresql(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        reads, writes = create_read_sessionmaker(engine), create_sessionmaker(engine)

        async def start_times(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, str]:
            async with sessions() as session:
                first = await session.scalar(text("SELECT now()::text"))
                await asyncio.sleep(0.02)
                second = await session.scalar(text("SELECT now()::text"))
            assert isinstance(first, str)
            assert isinstance(second, str)
            return first, second

        if engine.dialect.name == "postgresql":
            first, second = await start_times(reads)
            assert first != second  # autocommit: no BEGIN, each statement its own transaction
            first, second = await start_times(writes)
            assert first == second  # a unit of work: one transaction, one start time
        else:
            # SQLite has no now(); its read sessions are deferred transactions (tests above).
            assert engine.dialect.name == "sqlite"
    finally:
        await engine.dispose()
