"""Idempotency keys for POSTs (``consent.ports.IdempotencyStore``). Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.consent.ports import DuplicateKey, StoredResponse
from broker.store.models import IdempotencyKey

__all__ = ["SqlIdempotencyStore"]


class SqlIdempotencyStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, client_id: uuid.UUID, key: str) -> StoredResponse | None:
        row = (
            await self._session.execute(
                select(IdempotencyKey).where(
                    IdempotencyKey.client_id == client_id, IdempotencyKey.key == key
                )
            )
        ).scalar_one_or_none()
        if row is None:
            return None
        return StoredResponse(row.fingerprint, row.response_status, row.response_body)

    async def start(
        self,
        client_id: uuid.UUID,
        key: str,
        *,
        fingerprint: str,
        at: datetime,
        expires_at: datetime,
    ) -> None:
        self._session.add(
            IdempotencyKey(
                client_id=client_id,
                key=key,
                fingerprint=fingerprint,
                created_at=at,
                expires_at=expires_at,
            )
        )
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise DuplicateKey("idempotency key") from exc

    async def finish(
        self, client_id: uuid.UUID, key: str, *, status: int, body: Mapping[str, Any]
    ) -> None:
        await self._session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.client_id == client_id, IdempotencyKey.key == key)
            .values(response_status=status, response_body=dict(body))
        )
