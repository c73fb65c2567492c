"""A unit of work: one session, one transaction, the stores that share it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.crypto import Cipher
from broker.store.admins import SqlAdminStore
from broker.store.audit import SqlAuditLog
from broker.store.clients import SqlClientStore
from broker.store.consents import SqlConsentStore
from broker.store.cursors import SqlJobCursors
from broker.store.idempotency import SqlIdempotencyStore
from broker.store.outbox import SqlOutbox
from broker.store.webhooks import SqlWebhookStore

__all__ = ["SqlUnitOfWork", "unit_of_work_factory"]


class SqlUnitOfWork:
    consents: SqlConsentStore
    audit: SqlAuditLog
    idempotency: SqlIdempotencyStore
    clients: SqlClientStore
    outbox: SqlOutbox
    cursors: SqlJobCursors
    webhooks: SqlWebhookStore
    admins: SqlAdminStore

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: Cipher,
        *,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._on_outbox = on_outbox
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        self._session = self._sessions()
        self.consents = SqlConsentStore(self._session, self._cipher)
        self.audit = SqlAuditLog(self._session)
        self.idempotency = SqlIdempotencyStore(self._session)
        self.clients = SqlClientStore(self._session)
        self.outbox = SqlOutbox(self._session)
        self.cursors = SqlJobCursors(self._session)
        self.webhooks = SqlWebhookStore(self._session, self._cipher)
        self.admins = SqlAdminStore(self._session)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        # Anything not committed is rolled back: a use case that raises writes nothing.
        await self._session.rollback()
        await self._session.close()
        self._session = None

    async def commit(self) -> None:
        assert self._session is not None
        await self._session.commit()
        if self.outbox.added and self._on_outbox is not None:
            # Events are committed: wake this process's delivery worker instead of waiting
            # for its next poll (other processes find them by polling).
            self.outbox.added = 0
            self._on_outbox()


def unit_of_work_factory(
    sessions: Callable[[], async_sessionmaker[AsyncSession]], cipher: Cipher
) -> Callable[[], SqlUnitOfWork]:
    """``sessions`` is read at call time: the engine exists only inside the app's lifespan."""
    return lambda: SqlUnitOfWork(sessions(), cipher)
