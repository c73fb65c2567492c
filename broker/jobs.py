"""Background jobs that run inside the app's lifespan: periodic ones (each on its own interval)
and supervised long-running ones (the webhook delivery worker)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

__all__ = ["Periodic", "Supervised"]

logger = logging.getLogger("broker.jobs")


class Periodic:
    """Runs ``job`` every ``interval`` seconds until the context exits. A failing run is logged
    and the next one happens on schedule: one bad upstream answer must not stop the job."""

    def __init__(self, name: str, job: Callable[[], Awaitable[object]], interval: float) -> None:
        self._name = name
        self._job = job
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Periodic:
        self._task = asyncio.create_task(self._loop(), name=f"job:{self._name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._job()
            except Exception:
                logger.exception("job %s failed", self._name)


class Supervised:
    """Runs the long-lived ``job`` until the context exits; if it ever fails it is logged and
    started again after ``restart_delay`` seconds, so a fault cannot stop it for good."""

    def __init__(
        self, name: str, job: Callable[[], Awaitable[object]], restart_delay: float = 1.0
    ) -> None:
        self._name = name
        self._job = job
        self._restart_delay = restart_delay
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Supervised:
        self._task = asyncio.create_task(self._loop(), name=f"job:{self._name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self._job()
            except Exception:
                logger.exception("job %s failed; restarting it", self._name)
            await asyncio.sleep(self._restart_delay)
