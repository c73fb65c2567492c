"""At most ``limit`` concurrent upstream calls per key, in one process or across a cluster.

Skatteetaten allows at most 5 concurrent calls per API per organisation, counted over all our
replicas (security.md §4.1, "bulkhead"). The relay wraps each upstream call in
``async with limiter.slot(key):`` where ``key`` names the API and the consumer organisation of the
Maskinporten token, e.g. ``"oppdrag-utenlandske-virksomheter:974761076"``. A caller that gets no
slot within the timeout receives :class:`SlotTimeout` (503 with ``Retry-After``).

* :class:`LocalLimiter` counts in this process only: right for SQLite, which runs one process.
* :class:`PostgresLimiter` counts across every process connected to one PostgreSQL database,
  using ``limit`` session-level advisory locks per key.

:func:`limiter_for` picks the one that fits an engine. Every process must use the same ``limit``
for a key: the cluster-wide bound is the largest ``limit`` in use.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broker.errors import ServiceUnavailable

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_POLL",
    "DEFAULT_TIMEOUT",
    "ConcurrencyLimiter",
    "LocalLimiter",
    "PostgresLimiter",
    "SlotTimeout",
    "limiter_for",
    "slot_class",
]

DEFAULT_LIMIT = 5
"""Skatteetaten's limit: concurrent calls per API per organisation."""
DEFAULT_TIMEOUT = 5.0
"""Seconds a call may wait for a slot before it fails with :class:`SlotTimeout`."""
DEFAULT_POLL = 0.05
"""Mean seconds between :class:`PostgresLimiter`'s attempts while every slot is taken."""

logger = logging.getLogger("broker.relay")

_TRY_LOCK = text("SELECT pg_try_advisory_lock(:classid, :objid)")
_UNLOCK = text("SELECT pg_advisory_unlock(:classid, :objid)")


class SlotTimeout(ServiceUnavailable):
    """No slot for ``key`` became free within ``timeout`` seconds: the upstream is at its limit."""

    code = "upstream_busy"
    title = "The upstream API is busy"
    retry_after = 2

    def __init__(self, key: str, timeout: float) -> None:
        super().__init__(
            "Too many calls to the upstream API are in progress; try again shortly",
            headers={"Retry-After": str(self.retry_after)},
        )
        self.key = key
        self.timeout = timeout


class ConcurrencyLimiter(Protocol):
    def slot(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold one of the key's slots for the ``async with`` block; raise :class:`SlotTimeout`
        when none frees within the limiter's timeout."""
        ...


class _Gate:
    __slots__ = ("semaphore", "users")

    def __init__(self, limit: int) -> None:
        self.semaphore = asyncio.Semaphore(limit)
        self.users = 0  # holders and waiters: the gate is dropped when this returns to 0


class _Gates:
    """One semaphore per key, created on first use and dropped when nobody holds or awaits it."""

    def __init__(self, limit: int, timeout: float) -> None:
        self._limit = limit
        self._timeout = timeout
        self._gates: dict[str, _Gate] = {}

    def __len__(self) -> int:
        return len(self._gates)

    @asynccontextmanager
    async def held(self, key: str, deadline: float) -> AsyncIterator[None]:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(self._limit)
        gate.users += 1
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await gate.semaphore.acquire()
            except TimeoutError:
                raise SlotTimeout(key, self._timeout) from None
            try:
                yield
            finally:
                gate.semaphore.release()
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._gates[key]


def _check(limit: int, timeout: float) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if timeout <= 0:
        raise ValueError("timeout must be positive")


class LocalLimiter:
    """``limit`` slots per key in this process (an :class:`asyncio.Semaphore` per key).

    Enough only when one process makes all the calls, as with SQLite. Gates are created lazily
    and dropped as soon as no task holds or awaits them, so many distinct keys do not add up.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT, timeout: float = DEFAULT_TIMEOUT) -> None:
        _check(limit, timeout)
        self.limit = limit
        self.timeout = timeout
        self._gates = _Gates(limit, timeout)

    @property
    def active_keys(self) -> int:
        """How many keys have a holder or a waiter now (for tests and metrics)."""
        return len(self._gates)

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        deadline = asyncio.get_running_loop().time() + self.timeout
        async with self._gates.held(key, deadline):
            yield


def slot_class(key: str) -> int:
    """The advisory lock ``classid`` of a key: a signed 32-bit hash, the same in every process.

    (Python's ``hash()`` is salted per process, so it would not do.) Two keys that collide share
    their slots, which errs on the safe side. Two-``int4`` advisory locks live in a key space
    apart from the single-``bigint`` ones used elsewhere (e.g. the audit chain), so they cannot
    clash with those.
    """
    digest = hashlib.blake2b(key.encode(), digest_size=4, person=b"ebevis-slot").digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresLimiter:
    """``limit`` slots per key across every process sharing one PostgreSQL database.

    Slot ``i`` of key ``k`` is the session-level advisory lock ``(slot_class(k), i)``. A caller
    takes a connection from ``engine``'s pool, tries the slots in random order (spreading callers
    over them) with ``pg_try_advisory_lock`` and keeps the connection, and with it the lock, until
    its block ends; then ``pg_advisory_unlock`` and the connection goes back to the pool. While
    every slot is taken it returns the connection and retries after a jittered back-off of about
    ``poll`` seconds, until ``timeout``.

    Pool size: **each held slot keeps one pooled connection checked out** for the whole upstream
    call (and each attempt uses one briefly). Within a process at most ``limit`` tasks per key
    hold or poll, the others queue in-process first, so a process needs up to ``limit`` times the
    number of keys in use at once connections on top of its other work. Size ``pool_size +
    max_overflow`` for that, or callers wait for the pool; that wait counts against ``timeout``.

    Advisory locks belong to the database session, so they need direct connections or a pooler
    in session mode (not PgBouncer's transaction mode). A crashed process's sessions end and
    PostgreSQL releases their locks; a process cut off by the network keeps them until the server
    notices the dead connection (TCP keepalive).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        limit: int = DEFAULT_LIMIT,
        timeout: float = DEFAULT_TIMEOUT,
        poll: float = DEFAULT_POLL,
    ) -> None:
        _check(limit, timeout)
        if poll <= 0:
            raise ValueError("poll must be positive")
        self.limit = limit
        self.timeout = timeout
        self.poll = poll
        self._engine = engine
        # Keeps this process's pollers per key (and so their connections) at ``limit``.
        self._gates = _Gates(limit, timeout)

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        deadline = asyncio.get_running_loop().time() + self.timeout
        async with self._gates.held(key, deadline):
            classid = slot_class(key)
            conn, objid = await self._acquire(key, classid, deadline)
            try:
                yield
            finally:
                # Runs on errors and cancellation too. If the process dies instead, its session
                # ends and PostgreSQL releases the lock with it.
                await _release(conn, classid, objid)

    async def _acquire(
        self, key: str, classid: int, deadline: float
    ) -> tuple[AsyncConnection, int]:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    taken = await self._try_slots(classid)
            except TimeoutError:
                raise SlotTimeout(key, self.timeout) from None
            if taken is not None:
                return taken
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SlotTimeout(key, self.timeout)
            await asyncio.sleep(min(remaining, self.poll * random.uniform(0.5, 1.5)))  # noqa: S311

    async def _try_slots(self, classid: int) -> tuple[AsyncConnection, int] | None:
        conn = await self._engine.connect()
        try:
            # No transaction: an idle-in-transaction session would hold back vacuum and could be
            # killed by idle_in_transaction_session_timeout while the upstream call runs.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for objid in random.sample(range(self.limit), self.limit):
                result = await conn.execute(_TRY_LOCK, {"classid": classid, "objid": objid})
                if result.scalar_one():
                    return conn, objid
        except BaseException:
            # Interrupted mid-statement (cancelled, timed out, connection lost), the lock may or
            # may not be ours: end the session, which releases whatever it holds.
            await _discard(conn)
            raise
        await conn.close()
        return None


async def _release(conn: AsyncConnection, classid: int, objid: int) -> None:
    """Unlock and return the connection to the pool; if that fails, end the session instead.

    A connection must never go back to the pool still holding a slot: nothing would free it.
    """
    try:
        result = await conn.execute(_UNLOCK, {"classid": classid, "objid": objid})
        released = bool(result.scalar_one())
    except Exception:
        # The caller's upstream call is done; the dropped session frees the lock, so do not fail.
        logger.warning("could not release a relay slot; dropping its connection", exc_info=True)
        await _discard(conn)
        return
    except BaseException:
        await _discard(conn)
        raise
    if not released:  # pragma: no cover - only if someone else unlocked it on our session
        logger.warning("a relay slot was not held at release; dropping its connection")
        await _discard(conn)
        return
    await conn.close()


async def _discard(conn: AsyncConnection) -> None:
    """Close the connection's session for good (its advisory locks go with it)."""
    try:
        await conn.invalidate()
    finally:
        await conn.close()


def limiter_for(
    engine: AsyncEngine, *, limit: int = DEFAULT_LIMIT, timeout: float = DEFAULT_TIMEOUT
) -> ConcurrencyLimiter:
    """A cluster-wide limiter on PostgreSQL, an in-process one otherwise (SQLite: one process)."""
    if engine.dialect.name == "postgresql":
        return PostgresLimiter(engine, limit=limit, timeout=timeout)
    return LocalLimiter(limit, timeout)
