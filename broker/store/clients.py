"""Clients, their return URLs and API keys in SQL. Never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.admin.ports import ClientDetails, KeyInfo
from broker.consent.model import Generation
from broker.store.models import ApiKey, Client, ClientReturnUrl, ClientStatus

__all__ = ["ClientRecord", "KeyRecord", "SqlClientStore"]


@dataclass(frozen=True)
class ClientRecord:
    id: uuid.UUID
    name: str
    org_number: str
    active: bool
    return_urls: tuple[str, ...]
    generation: Generation = Generation.ALTINN3


@dataclass(frozen=True)
class KeyRecord:
    id: uuid.UUID
    client_id: uuid.UUID
    key_hash: str
    revoked: bool
    last_used_at: datetime | None


class SqlClientStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        *,
        name: str,
        org_number: str,
        return_urls: tuple[str, ...],
        at: datetime,
        generation: Generation = Generation.ALTINN3,
    ) -> uuid.UUID:
        client_id = uuid.uuid4()
        self._session.add(
            Client(
                id=client_id,
                name=name,
                org_number=org_number,
                altinn_generation=generation.value,
                created_at=at,
                updated_at=at,
            )
        )
        await self._session.flush()
        for url in return_urls:
            self._session.add(ClientReturnUrl(client_id=client_id, url=url, created_at=at))
        await self._session.flush()
        return client_id

    async def add_key(
        self, client_id: uuid.UUID, *, prefix: str, key_hash: str, label: str | None, at: datetime
    ) -> uuid.UUID:
        key_id = uuid.uuid4()
        self._session.add(
            ApiKey(
                id=key_id,
                client_id=client_id,
                prefix=prefix,
                key_hash=key_hash,
                label=label,
                created_at=at,
            )
        )
        await self._session.flush()
        return key_id

    async def key_by_prefix(self, prefix: str) -> KeyRecord | None:
        row = (
            await self._session.execute(select(ApiKey).where(ApiKey.prefix == prefix))
        ).scalar_one_or_none()
        if row is None:
            return None
        return KeyRecord(
            row.id, row.client_id, row.key_hash, row.revoked_at is not None, row.last_used_at
        )

    async def touch_key(self, key_id: uuid.UUID, *, at: datetime) -> None:
        await self._session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at)
        )

    async def revoke_key(self, client_id: uuid.UUID, prefix: str, *, at: datetime) -> bool:
        result = await self._session.execute(
            update(ApiKey)
            .where(
                ApiKey.client_id == client_id,
                ApiKey.prefix == prefix,
                ApiKey.revoked_at.is_(None),
            )
            .values(revoked_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    async def keys(self, client_id: uuid.UUID) -> list[KeyInfo]:
        rows = (
            await self._session.execute(
                select(ApiKey)
                .where(ApiKey.client_id == client_id)
                .order_by(ApiKey.created_at.desc(), ApiKey.prefix)
            )
        ).scalars()
        return [
            KeyInfo(row.id, row.prefix, row.label, row.created_at, row.last_used_at, row.revoked_at)
            for row in rows
        ]

    async def details(self, client_id: uuid.UUID) -> ClientDetails | None:
        row = await self._session.get(Client, client_id, populate_existing=True)
        return None if row is None else await self._details(row)

    async def all_details(self) -> list[ClientDetails]:
        rows = (
            await self._session.execute(select(Client).order_by(Client.name, Client.id))
        ).scalars()
        return [await self._details(row) for row in rows]

    async def set_return_urls(
        self, client_id: uuid.UUID, urls: tuple[str, ...], *, at: datetime
    ) -> None:
        await self._session.execute(
            delete(ClientReturnUrl).where(ClientReturnUrl.client_id == client_id)
        )
        for url in urls:
            self._session.add(ClientReturnUrl(client_id=client_id, url=url, created_at=at))
        await self._session.execute(
            update(Client).where(Client.id == client_id).values(updated_at=at)
        )
        await self._session.flush()

    async def set_active(self, client_id: uuid.UUID, active: bool, *, at: datetime) -> None:
        status = ClientStatus.ACTIVE if active else ClientStatus.DISABLED
        await self._session.execute(
            update(Client).where(Client.id == client_id).values(status=status.value, updated_at=at)
        )

    async def _details(self, row: Client) -> ClientDetails:
        record = await self._record(row)
        return ClientDetails(
            row.id,
            row.name,
            row.org_number,
            record.active,
            record.return_urls,
            row.created_at,
            row.updated_at,
            Generation(row.altinn_generation),
        )

    async def set_generation(
        self, client_id: uuid.UUID | None, generation: Generation, *, at: datetime
    ) -> int:
        """Set one client's generation (every client's with ``client_id=None``); how many."""
        query = update(Client).values(altinn_generation=generation.value, updated_at=at)
        if client_id is not None:
            query = query.where(Client.id == client_id)
        result = await self._session.execute(query)
        return int(getattr(result, "rowcount", 0) or 0)

    async def every(self) -> list[ClientRecord]:
        rows = (await self._session.execute(select(Client).order_by(Client.created_at))).scalars()
        return [await self._record(row) for row in rows]

    async def get(self, client_id: uuid.UUID) -> ClientRecord | None:
        row = await self._session.get(Client, client_id)
        return None if row is None else await self._record(row)

    async def by_org(self, org_number: str) -> list[ClientRecord]:
        rows = (
            await self._session.execute(select(Client).where(Client.org_number == org_number))
        ).scalars()
        return [await self._record(row) for row in rows]

    async def _record(self, row: Client) -> ClientRecord:
        urls = (
            await self._session.execute(
                select(ClientReturnUrl.url)
                .where(ClientReturnUrl.client_id == row.id)
                .order_by(ClientReturnUrl.id)
            )
        ).scalars()
        return ClientRecord(
            row.id,
            row.name,
            row.org_number,
            row.status == ClientStatus.ACTIVE,
            tuple(urls),
            Generation(row.altinn_generation),
        )
