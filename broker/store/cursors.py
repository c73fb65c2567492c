"""Where background jobs left off (``consent.ports.JobCursors``), one row per job. Never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.store.models import JobCursor

__all__ = ["SqlJobCursors"]


class SqlJobCursors:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, name: str) -> str | None:
        query = select(JobCursor.value).where(JobCursor.name == name)
        return (await self._session.execute(query)).scalar_one_or_none()

    async def put(self, name: str, value: str, *, at: datetime) -> None:
        result = await self._session.execute(
            update(JobCursor).where(JobCursor.name == name).values(value=value, updated_at=at)
        )
        if getattr(result, "rowcount", 0) == 0:
            self._session.add(JobCursor(name=name, value=value, updated_at=at))
            await self._session.flush()
