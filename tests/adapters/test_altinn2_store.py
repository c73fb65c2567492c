"""Altinn 2 in the store, on SQLite and PostgreSQL: the AuthorizationCode is kept encrypted and
bound to its row, one request per code, withdrawals due, and each client's generation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.consent.model import ConsentRequest, Generation, Grant, Language, RevokedBy, State
from broker.consent.ports import DuplicateKey
from broker.crypto import Cipher, DecryptionFailed
from broker.store import migrate
from broker.store.clients import SqlClientStore
from broker.store.consents import SqlConsentStore
from broker.store.db import create_engine, create_sessionmaker
from broker.store.models import ConsentRequest as Row

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
CIPHER = Cipher.for_dev("a test secret that is long enough to pass")


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def _client(sessions: async_sessionmaker[AsyncSession], **kw: Generation) -> uuid.UUID:
    async with sessions() as session:
        client_id = await SqlClientStore(session).create(
            name="Portal",
            org_number="310300012",
            return_urls=("https://p.example/r",),
            at=NOW,
            **kw,
        )
        await session.commit()
    return client_id


def _request(client_id: uuid.UUID, **changes: object) -> ConsentRequest:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "client_id": client_id,
        "requestor_org": "310200018",
        "subject_org": "310100013",
        "resource": "5616_2",
        "reference": "case",
        "external_reference": None,
        "language": Language.NB,
        "return_url": "https://p.example/r",
        "state": State.REDIRECTED,
        "state_reason": None,
        "generation": Generation.ALTINN2,
        "altinn_consent_id": None,
        "valid_to": NOW + timedelta(days=30),
        "idempotency_key": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(changes)
    return ConsentRequest(**fields)  # type: ignore[arg-type]


async def _add(sessions: async_sessionmaker[AsyncSession], request: ConsentRequest) -> None:
    async with sessions() as session:
        await SqlConsentStore(session, CIPHER).add(request)
        await session.commit()


async def test_the_code_is_stored_encrypted_and_read_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client_id = await _client(sessions)
    request, code = _request(client_id), uuid.uuid4()
    await _add(sessions, request)
    async with sessions() as session:
        store = SqlConsentStore(session, CIPHER)
        assert await store.set_altinn_code(request.id, code) is True
        assert await store.set_altinn_code(request.id, uuid.uuid4()) is False  # kept once
        await session.commit()
    async with sessions() as session:
        row = (await session.execute(select(Row).where(Row.id == request.id))).scalar_one()
        assert row.altinn_consent_id is None
        assert row.altinn_code_ciphertext is not None
        assert str(code).encode() not in row.altinn_code_ciphertext
        assert code.hex.encode() not in row.altinn_code_ciphertext
        store = SqlConsentStore(session, CIPHER)
        read = await store.get(request.id, client_id=None)
        assert read is not None
        assert read.altinn_consent_id == code
        assert await store.has_altinn_code(code) is True
        assert await store.has_altinn_code(uuid.uuid4()) is False


async def test_one_request_per_code(sessions: async_sessionmaker[AsyncSession]) -> None:
    client_id = await _client(sessions)
    first, second, code = _request(client_id), _request(client_id), uuid.uuid4()
    await _add(sessions, first)
    await _add(sessions, second)
    async with sessions() as session:
        await SqlConsentStore(session, CIPHER).set_altinn_code(first.id, code)
        await session.commit()
    async with sessions() as session:
        with pytest.raises(DuplicateKey):
            await SqlConsentStore(session, CIPHER).set_altinn_code(second.id, code)


async def test_a_code_copied_into_another_row_does_not_decrypt(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client_id = await _client(sessions)
    victim, other = _request(client_id), _request(client_id)
    await _add(sessions, victim)
    await _add(sessions, other)
    async with sessions() as session:
        await SqlConsentStore(session, CIPHER).set_altinn_code(victim.id, uuid.uuid4())
        await session.commit()
        sealed = (await session.execute(select(Row).where(Row.id == victim.id))).scalar_one()
        copied = {
            "altinn_code_ciphertext": sealed.altinn_code_ciphertext,
            "altinn_code_key_id": sealed.altinn_code_key_id,
        }
        await session.execute(update(Row).where(Row.id == other.id).values(**copied))
        await session.commit()
    async with sessions() as session:
        with pytest.raises(DecryptionFailed):
            await SqlConsentStore(session, CIPHER).get(other.id, client_id=None)


async def test_withdrawals_due_are_the_altinn_2_ones_the_client_or_an_admin_ended(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client_id = await _client(sessions)
    cases = {
        "cancelled": _request(client_id, state=State.CANCELLED, state_reason="client"),
        "admin": _request(client_id, state=State.REVOKED, state_reason=RevokedBy.ADMIN.value),
        "end_user": _request(client_id, state=State.REVOKED, state_reason="end_user"),
        "open": _request(client_id),
        "altinn3": _request(
            client_id, generation=Generation.ALTINN3, state=State.CANCELLED, state_reason="client"
        ),
        "no_code": _request(client_id, state=State.CANCELLED, state_reason="client"),
    }
    for name, request in cases.items():
        await _add(sessions, request)
        if name != "no_code":
            async with sessions() as session:
                await SqlConsentStore(session, CIPHER).set_altinn_code(request.id, uuid.uuid4())
                await session.commit()
    async with sessions() as session:
        store = SqlConsentStore(session, CIPHER)
        due = {r.id for r in await store.withdrawals_due(limit=10)}
        assert due == {cases["cancelled"].id, cases["admin"].id}
        await store.mark_withdrawn(cases["admin"].id, at=NOW)
        await session.commit()
        [left] = await store.withdrawals_due(limit=10)
        assert left.id == cases["cancelled"].id
        admin = await store.get(cases["admin"].id, client_id=None)
        assert admin is not None
        assert admin.altinn_withdrawn_at == NOW


async def test_a_grant_of_an_altinn_2_request_keeps_its_receipt(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client_id = await _client(sessions)
    request = _request(client_id)
    await _add(sessions, request)
    async with sessions() as session:
        store = SqlConsentStore(session, CIPHER)
        await store.add_grant(request, Grant(NOW, NOW + timedelta(days=30)), receipt=b"eyJ.a2")
        await session.commit()
        assert await store.receipt(request.id) == b"eyJ.a2"


async def test_a_clients_generation_is_set_at_registration_and_changed_later(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = await _client(sessions)
    second = await _client(sessions, generation=Generation.ALTINN2)
    async with sessions() as session:
        store = SqlClientStore(session)
        assert [c.generation for c in await store.every()] == [
            Generation.ALTINN3,
            Generation.ALTINN2,
        ]
        assert await store.set_generation(first, Generation.ALTINN2, at=NOW) == 1
        assert await store.set_generation(None, Generation.ALTINN3, at=NOW) == 2
        await session.commit()
        record = await store.get(second)
        assert record is not None
        assert record.generation is Generation.ALTINN3
