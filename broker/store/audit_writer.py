"""Group commit for the relay's audit rows: callers that arrive while a batch is being written
are written together in the next transaction, and each caller returns only once its own row is
committed.

Why: a relay must not answer before its audit row is durable, but one transaction per row (a
lock on the chain's head, a read of it, an insert and a commit) made the audit the largest
database cost of a relay under load. Batching keeps "committed before answered" and shares the
lock, the read and the commit between everyone who is waiting. With a single caller it is
exactly the old path; nothing is held in memory past a commit, so a crash loses only rows whose
callers had not been answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from broker.consent.ports import AuditRecord

__all__ = ["GroupCommitAudit"]


class _AuditBatch(Protocol):
    async def append_many(self, records: list[tuple[AuditRecord, datetime]]) -> None: ...


class _Unit(Protocol):
    @property
    def audit(self) -> _AuditBatch: ...

    async def __aenter__(self) -> _Unit: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...


_Pending = tuple[AuditRecord, datetime, "asyncio.Future[None]"]


class GroupCommitAudit:
    def __init__(self, units: Callable[[], _Unit], *, max_batch: int = 256) -> None:
        self._units = units
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._lock = asyncio.Lock()
        self.batches = 0  # transactions written, for tests and metrics

    async def __call__(self, record: AuditRecord, *, at: datetime) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, at, done))
        while not done.done():
            async with self._lock:
                if not done.done():
                    await self._write_next()
        done.result()

    async def _write_next(self) -> None:
        """Write the oldest waiting rows. Never raises: a failure is each member's to raise, so a
        caller whose own row was not in the batch is not failed by someone else's."""
        batch = self._pending[: self._max_batch]
        del self._pending[: len(batch)]
        try:
            async with self._units() as uow:
                await uow.audit.append_many([(record, at) for record, at, _ in batch])
                await uow.commit()
        except BaseException as exc:
            # Cancelled mid-commit included: nobody in the batch may believe it was written.
            failure = exc if isinstance(exc, Exception) else RuntimeError("audit write cancelled")
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        for _, _, done in batch:
            if not done.done():
                done.set_result(None)
