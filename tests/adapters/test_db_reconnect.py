"""When PostgreSQL drops the broker's connections (a restart, a failover), the pool recovers:
with BROKER_DATABASE_PRE_PING=false exactly the one statement that finds a dead connection
fails, and the next one reconnects; with it on, not even that one."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from broker.store.db import create_engine

pytestmark = pytest.mark.postgres


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    value = request.param
    assert isinstance(value, str)
    return value


async def _kill_other_sessions(database_url: str) -> int:
    admin = create_engine(database_url)
    try:
        async with admin.connect() as conn:
            killed = await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            count = killed.scalar_one()
            assert isinstance(count, int)
            return count
    finally:
        await admin.dispose()


async def _select_one(engine_url: str, *, pre_ping: bool) -> list[str]:
    engine = create_engine(engine_url, pool_size=2, pre_ping=pre_ping)
    outcomes: list[str] = []
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        assert await _kill_other_sessions(engine_url) >= 1
        for _ in range(3):
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                outcomes.append("ok")
            except DBAPIError as exc:
                outcomes.append("failed" if exc.connection_invalidated else f"error: {exc}")
    finally:
        await engine.dispose()
    return outcomes


async def test_without_pre_ping_one_statement_fails_then_the_pool_reconnects(
    database_url: str,
) -> None:
    assert await _select_one(database_url, pre_ping=False) == ["failed", "ok", "ok"]


async def test_with_pre_ping_no_statement_fails(database_url: str) -> None:
    assert await _select_one(database_url, pre_ping=True) == ["ok", "ok", "ok"]
