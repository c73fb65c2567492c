"""Verified API keys are remembered for a few seconds, so that a relay is not also a database
transaction for the caller's key — without weakening what a key is (BROKER_AUTH_CACHE_SECONDS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, update

from broker.clients.keys import parse_key
from broker.clients.service import ClientService
from broker.crypto import Cipher
from broker.errors import Unauthenticated
from broker.store import migrate
from broker.store.db import create_engine, create_sessionmaker
from broker.store.models import ApiKey
from broker.store.uow import SqlUnitOfWork

AT = datetime(2026, 11, 28, 12, tzinfo=UTC)


@dataclass
class Setup:
    service: ClientService
    statements: list[str]
    clock: list[float]
    key: str
    revoke_elsewhere: Any

    def bearer(self, key: str | None = None) -> str:
        return f"Bearer {key or self.key}"


@asynccontextmanager
async def _setup(database_url: str, *, seconds: float) -> AsyncIterator[Setup]:
    engine = create_engine(database_url)
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    clock = [1000.0]
    try:
        await migrate.upgrade(engine)
        sessions = create_sessionmaker(engine)
        service = ClientService(
            lambda: SqlUnitOfWork(sessions, Cipher.for_dev("k" * 32)),
            pepper=b"p" * 32,
            verify_bearer=None,
            now=lambda: AT,
            key_cache_seconds=seconds,
            monotonic=lambda: clock[0],
        )
        client_id = await service.register(name="Portal", org_number="974760673", return_urls=())
        key = (await service.issue_key(client_id)).value

        async def revoke_elsewhere() -> None:
            # Another broker process revokes the key: only the database knows.
            parsed = parse_key(key)
            assert parsed is not None
            async with sessions() as session:
                await session.execute(
                    update(ApiKey).where(ApiKey.prefix == parsed.prefix).values(revoked_at=AT)
                )
                await session.commit()

        yield Setup(service, statements, clock, key, revoke_elsewhere)
    finally:
        await engine.dispose()


async def test_a_verified_key_is_not_checked_again_until_its_entry_ends(database_url: str) -> None:
    async with _setup(database_url, seconds=10) as s:
        first = await s.service.authenticate(s.bearer())
        s.statements.clear()
        again = await s.service.authenticate(s.bearer())
        assert again == first
        assert s.statements == []
        s.clock[0] += 10
        await s.service.authenticate(s.bearer())
        assert any("api_keys" in statement for statement in s.statements)


async def test_a_key_revoked_in_this_process_is_refused_at_once(database_url: str) -> None:
    async with _setup(database_url, seconds=10) as s:
        caller = await s.service.authenticate(s.bearer())
        assert s.service.remembered_keys == 1
        assert await s.service.revoke_key(caller.client_id, s.key)
        assert s.service.remembered_keys == 0
        with pytest.raises(Unauthenticated):
            await s.service.authenticate(s.bearer())
        # Revoking twice, or a key the client does not have, says so.
        assert not await s.service.revoke_key(caller.client_id, s.key)


async def test_a_key_revoked_by_another_process_is_refused_when_the_entry_ends(
    database_url: str,
) -> None:
    async with _setup(database_url, seconds=10) as s:
        await s.service.authenticate(s.bearer())
        await s.revoke_elsewhere()
        # The documented window: this process may still honour it until its entry ends …
        await s.service.authenticate(s.bearer())
        s.clock[0] += 10.001
        # … and not a moment later.
        with pytest.raises(Unauthenticated):
            await s.service.authenticate(s.bearer())


async def test_a_wrong_secret_with_a_remembered_prefix_is_refused(database_url: str) -> None:
    async with _setup(database_url, seconds=10) as s:
        await s.service.authenticate(s.bearer())
        parsed = parse_key(s.key)
        assert parsed is not None
        forged = f"ebk_{parsed.prefix}_{'A' * 43}"
        assert parse_key(forged) is not None
        with pytest.raises(Unauthenticated):
            await s.service.authenticate(s.bearer(forged))


async def test_refusals_are_never_remembered(database_url: str) -> None:
    async with _setup(database_url, seconds=10) as s:
        parsed = parse_key(s.key)
        assert parsed is not None
        with pytest.raises(Unauthenticated):
            await s.service.authenticate(s.bearer(f"ebk_{parsed.prefix}_{'B' * 43}"))
        assert s.service.remembered_keys == 0


async def test_with_zero_seconds_every_call_checks_the_database(database_url: str) -> None:
    async with _setup(database_url, seconds=0) as s:
        for _ in range(3):
            s.statements.clear()
            await s.service.authenticate(s.bearer())
            assert any("api_keys" in statement for statement in s.statements)
        assert s.service.remembered_keys == 0
