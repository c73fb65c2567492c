"""Engine and session factories. Nothing is created at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

__all__ = ["create_engine", "create_read_sessionmaker", "create_sessionmaker", "schema_revisions"]

_READ_ONLY = "ebevis_read_only"


def create_engine(
    url: str, *, pool_size: int = 10, busy_timeout_ms: int = 5000, pre_ping: bool = False
) -> AsyncEngine:
    """One code path for both backends; SQLite gets the settings that make it safe to share.

    Without ``pre_ping`` a connection that died with the database fails the one statement that
    finds out; SQLAlchemy then invalidates the whole pool and the next use reconnects. The ping
    is a round trip on every checkout, a relay checks out three or four times, and the benchmark
    showed it as 12 % of a relay's CPU on PostgreSQL, so it is the operator's choice."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, busy_timeout_ms)
    return _create_async_engine(
        url,
        pool_size=pool_size,
        pool_pre_ping=pre_ping,
        connect_args={"server_settings": {"application_name": "ebevis-broker"}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads that need no transaction of their own (one statement, e.g. the
    relay's consent lookup). On PostgreSQL they run in autocommit: no BEGIN and ROLLBACK round
    trips around the statement. On SQLite they begin a deferred transaction, which takes no
    write lock, so readers never queue behind writers (WAL). Never write through them."""
    if engine.dialect.name == "sqlite":
        # Not AUTOCOMMIT: resetting it on check-in would hand BEGIN back to the driver.
        bound = engine.execution_options(**{_READ_ONLY: True})
    else:
        bound = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(bound, expire_on_commit=False)


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
        # Read-only sessions (create_read_sessionmaker) never write, so they need no lock.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
