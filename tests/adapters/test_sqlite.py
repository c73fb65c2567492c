"""SQLite: WAL mode, waits for locks, enforces foreign keys, takes write locks up front."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from broker.store import migrate
from broker.store.db import create_engine
from tests.support import sqlite_url


async def test_connections_are_configured(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path), busy_timeout_ms=1234)
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
    finally:
        await engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 1234,
        "foreign_keys": 1,
        "synchronous": 1,
    }


async def test_the_database_directory_is_created(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/nested/dir/broker.db")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert (tmp_path / "nested" / "dir" / "broker.db").exists()


async def test_concurrent_read_modify_write_transactions_serialise(tmp_path: Path) -> None:
    # With deferred transactions, two writers that read first fail with "database is locked"
    # (SQLite cannot upgrade a read lock). BEGIN IMMEDIATE makes them queue instead, and no
    # increment is lost.
    engine = create_engine(sqlite_url(tmp_path))
    await migrate.upgrade(engine)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO job_cursors (name, value, updated_at) VALUES ('n', '0', :now)"),
            {"now": now},
        )

    async def increment() -> None:
        async with engine.begin() as conn:
            value = (await conn.execute(text("SELECT value FROM job_cursors"))).scalar_one()
            await asyncio.sleep(0.01)  # let the other writers try to get in
            await conn.execute(
                text("UPDATE job_cursors SET value = :v"), {"v": str(int(value) + 1)}
            )

    try:
        await asyncio.gather(*(increment() for _ in range(8)))
        async with engine.connect() as conn:
            final = (await conn.execute(text("SELECT value FROM job_cursors"))).scalar_one()
    finally:
        await engine.dispose()
    assert final == "8"


async def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path))
    await migrate.upgrade(engine)
    try:
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO api_keys (id, client_id, prefix, key_hash, created_at)"
                        " VALUES ('a', 'no-such-client', 'p', 'h', :now)"
                    ),
                    {"now": datetime.now(UTC)},
                )
    finally:
        await engine.dispose()
