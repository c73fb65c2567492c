"""Operator accounts, their web sessions and API tokens in SQL (``admin.ports.AdminStore``).
Never commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.admin.ports import Role, SessionRecord, TokenRecord, UserRecord
from broker.consent.ports import DuplicateKey
from broker.store.models import AdminSession, AdminStatus, AdminToken, AdminUser

__all__ = ["SqlAdminStore"]


def _user(row: AdminUser) -> UserRecord:
    return UserRecord(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        role=Role(row.role),
        active=row.status == AdminStatus.ACTIVE.value,
        created_at=row.created_at,
    )


class SqlAdminStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create_user(
        self, *, username: str, password_hash: str, role: Role, at: datetime
    ) -> uuid.UUID:
        user_id = uuid.uuid4()
        self._session.add(
            AdminUser(
                id=user_id,
                username=username,
                password_hash=password_hash,
                role=role.value,
                status=AdminStatus.ACTIVE.value,
                created_at=at,
                updated_at=at,
            )
        )
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise DuplicateKey("admin user") from exc
        return user_id

    async def user_by_name(self, username: str) -> UserRecord | None:
        row = (
            await self._session.execute(select(AdminUser).where(AdminUser.username == username))
        ).scalar_one_or_none()
        return None if row is None else _user(row)

    async def users(self) -> list[UserRecord]:
        rows = (
            await self._session.execute(select(AdminUser).order_by(AdminUser.username))
        ).scalars()
        return [_user(row) for row in rows]

    async def set_password(self, user_id: uuid.UUID, password_hash: str, *, at: datetime) -> None:
        await self._session.execute(
            update(AdminUser)
            .where(AdminUser.id == user_id)
            .values(password_hash=password_hash, updated_at=at)
        )

    async def set_active(self, user_id: uuid.UUID, active: bool, *, at: datetime) -> None:
        status = AdminStatus.ACTIVE if active else AdminStatus.DISABLED
        await self._session.execute(
            update(AdminUser)
            .where(AdminUser.id == user_id)
            .values(status=status.value, updated_at=at)
        )

    async def open_session(self, session_hash: str, user_id: uuid.UUID, *, at: datetime) -> None:
        self._session.add(
            AdminSession(id=session_hash, user_id=user_id, created_at=at, last_seen_at=at)
        )
        await self._session.flush()

    async def session(self, session_hash: str) -> SessionRecord | None:
        found = (
            await self._session.execute(
                select(AdminSession, AdminUser)
                .join(AdminUser, AdminUser.id == AdminSession.user_id)
                .where(AdminSession.id == session_hash)
            )
        ).one_or_none()
        if found is None:
            return None
        row, user = found
        return SessionRecord(_user(user), row.created_at, row.last_seen_at, row.ended_at)

    async def touch_session(self, session_hash: str, *, at: datetime) -> None:
        await self._session.execute(
            update(AdminSession).where(AdminSession.id == session_hash).values(last_seen_at=at)
        )

    async def end_session(self, session_hash: str, *, at: datetime) -> bool:
        result = await self._session.execute(
            update(AdminSession)
            .where(AdminSession.id == session_hash, AdminSession.ended_at.is_(None))
            .values(ended_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    async def end_sessions(self, user_id: uuid.UUID, *, at: datetime) -> int:
        result = await self._session.execute(
            update(AdminSession)
            .where(AdminSession.user_id == user_id, AdminSession.ended_at.is_(None))
            .values(ended_at=at)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def add_token(
        self,
        user_id: uuid.UUID,
        *,
        prefix: str,
        token_hash: str,
        label: str | None,
        at: datetime,
        expires_at: datetime | None,
    ) -> uuid.UUID:
        token_id = uuid.uuid4()
        self._session.add(
            AdminToken(
                id=token_id,
                user_id=user_id,
                prefix=prefix,
                token_hash=token_hash,
                label=label,
                created_at=at,
                expires_at=expires_at,
            )
        )
        await self._session.flush()
        return token_id

    async def token_by_prefix(self, prefix: str) -> TokenRecord | None:
        found = (
            await self._session.execute(
                select(AdminToken, AdminUser)
                .join(AdminUser, AdminUser.id == AdminToken.user_id)
                .where(AdminToken.prefix == prefix)
            )
        ).one_or_none()
        if found is None:
            return None
        row, user = found
        return TokenRecord(
            id=row.id,
            user=_user(user),
            prefix=row.prefix,
            token_hash=row.token_hash,
            label=row.label,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )

    async def touch_token(self, token_id: uuid.UUID, *, at: datetime) -> None:
        await self._session.execute(
            update(AdminToken).where(AdminToken.id == token_id).values(last_used_at=at)
        )

    async def revoke_token(self, prefix: str, *, at: datetime) -> bool:
        result = await self._session.execute(
            update(AdminToken)
            .where(AdminToken.prefix == prefix, AdminToken.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(getattr(result, "rowcount", 0))
