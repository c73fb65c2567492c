"""An API key's last use is recorded to the minute, without a write on every call."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update

from broker.store.models import ApiKey
from tests.flow import Stack, stack


async def _last_used(s: Stack) -> datetime | None:
    async with s.app.state.resources.sessions() as session:
        query = select(ApiKey.last_used_at).where(ApiKey.client_id == s.tenant.client_id)
        value = (await session.execute(query)).scalar_one()
    assert value is None or isinstance(value, datetime)
    return value


async def test_last_use_is_written_at_most_once_a_minute(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        assert await _last_used(s) is None
        await s.api.get("/v1/consent-requests", headers=s.tenant.headers)
        first = await _last_used(s)
        assert first is not None
        s.sandbox.clock.advance(30)
        await s.api.get("/v1/consent-requests", headers=s.tenant.headers)
        assert await _last_used(s) == first
        s.sandbox.clock.advance(31)
        await s.api.get("/v1/consent-requests", headers=s.tenant.headers)
        later = await _last_used(s)
        assert later is not None
        assert later > first


async def test_a_key_revoked_by_another_replica_stops_working_within_the_cache_window(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path, auth_cache_seconds="10") as s:
        assert (await s.api.get("/v1/consent-requests", headers=s.tenant.headers)).is_success
        async with s.app.state.resources.sessions() as session:
            # Another replica revokes the key: only the database knows.
            await session.execute(
                update(ApiKey)
                .where(ApiKey.client_id == s.tenant.client_id)
                .values(revoked_at=s.sandbox.clock.now())
            )
            await session.commit()
        s.sandbox.clock.advance(9)
        assert (await s.api.get("/v1/consent-requests", headers=s.tenant.headers)).is_success
        s.sandbox.clock.advance(1.01)
        refused = await s.api.get("/v1/consent-requests", headers=s.tenant.headers)
        assert refused.status_code == 401
