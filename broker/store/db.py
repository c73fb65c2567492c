"""Engine and session factories. Nothing is created at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

__all__ = ["create_engine", "create_sessionmaker", "schema_revisions"]


def create_engine(url: str, *, pool_size: int = 10, busy_timeout_ms: int = 5000) -> AsyncEngine:
    """One code path for both backends; SQLite gets the settings that make it safe to share."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, busy_timeout_ms)
    return _create_async_engine(
        url,
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": "ebevis-broker"}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def schema_revisions(engine: AsyncEngine) -> set[str]:
    """The Alembic revisions the database is at (empty when it was never migrated)."""
    async with engine.connect() as conn:
        has_table = await conn.run_sync(
            lambda sync_conn: sync_conn.dialect.has_table(sync_conn, "alembic_version")
        )
        if not has_table:
            return set()
        rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
        return {row[0] for row in rows}


def _sqlite_engine(url: str, database: str | None, busy_timeout_ms: int) -> AsyncEngine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = _create_async_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver so that we can issue BEGIN IMMEDIATE ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY instead of
        # waiting (the lock cannot be upgraded). Taking the write lock up front makes writers
        # queue on busy_timeout, which is what a use case owning its transaction expects.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
