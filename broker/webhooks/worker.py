"""The delivery worker: claim due events, send each once, record what happened.

At-least-once: an event is marked delivered only after a 2xx came back, in a transaction of its
own after the send, so a worker that dies mid-delivery leaves its lease to run out and another
worker (or this one, restarted) sends the event again, with the same ``webhook-id`` (the outbox
row's id). Receivers deduplicate on it.

Every process that runs the broker runs one worker (``BROKER_WEBHOOK_POLL_INTERVAL`` > 0). It
keeps up to ``concurrency`` deliveries in flight: it claims as many due events as it has free
slots, sends them concurrently, and records finished attempts in batches, so one slow receiver
holds one slot, not the whole worker. It looks for due events every ``poll_interval`` seconds,
and at once when a change committed in this process queued an event (``wake``).

``run_once`` (claim, send all, record) is the same work done once, for tests and tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broker.webhooks.client import WebhookClient
from broker.webhooks.ports import Attempted, Claimed, WebhookUnit
from broker.webhooks.schedule import Outcome, RetryPolicy, decide

__all__ = ["DeliveryWorker", "WorkerConfig"]

logger = logging.getLogger("broker.webhooks")


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 16
    lease: float = 60.0
    poll_interval: float = 0.5
    flush_interval: float = 0.05  # how long finished attempts may wait to be recorded together


def worker_name() -> str:
    """Who holds a lease: host, process and a random part (a restarted process is new)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DeliveryWorker:
    def __init__(
        self,
        units: Callable[[], WebhookUnit],
        *,
        client: WebhookClient,
        policy: RetryPolicy,
        now: Callable[[], datetime],
        config: WorkerConfig | None = None,
        owner: str | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._units = units
        self._client = client
        self._policy = policy
        self._now = now
        self._config = config or WorkerConfig()
        self.owner = owner or worker_name()
        self._rand = rand
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Look for due events now (called after a commit that queued one)."""
        self._wakeup.set()

    async def run_once(self, limit: int | None = None) -> int:
        """Claim due events (up to ``limit``, else the concurrency), send them all, record
        the attempts; return how many were attempted."""
        claimed = await self._claim(limit or self._config.concurrency)
        results = await asyncio.gather(*(self._attempt(event) for event in claimed))
        await self._record(list(results))
        return len(results)

    async def run(self) -> None:
        """Deliver until cancelled."""
        in_flight: set[asyncio.Task[Attempted]] = set()
        finished: list[Attempted] = []
        try:
            while True:
                free = self._config.concurrency - len(in_flight)
                claimed = await self._claim_logged(free) if free > 0 else []
                for event in claimed:
                    in_flight.add(asyncio.create_task(self._attempt(event)))
                await self._wait(in_flight, idle=not claimed and not finished)
                done = {task for task in in_flight if task.done()}
                in_flight -= done
                finished.extend(task.result() for task in done)
                if finished:
                    await self._record_logged(finished)
                    finished = []
        finally:
            for task in in_flight:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*in_flight, return_exceptions=True)

    async def _wait(self, in_flight: set[asyncio.Task[Attempted]], *, idle: bool) -> None:
        """Until a delivery finishes (briefly, to batch the records), a wake-up, or the poll."""
        if not in_flight and not idle:
            return
        wake: asyncio.Future[Any] = asyncio.ensure_future(self._wakeup.wait())
        waiters: set[asyncio.Future[Any]] = {wake, *in_flight}
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=self._config.poll_interval, return_when="FIRST_COMPLETED"
            )
        finally:
            wake.cancel()
        if wake in done:
            self._wakeup.clear()
        elif done:
            # Let a few more finish, so their records share a transaction.
            await asyncio.wait(in_flight, timeout=self._config.flush_interval)

    async def _claim(self, limit: int) -> list[Claimed]:
        now = self._now()
        lease_until = now + timedelta(seconds=self._config.lease)
        async with self._units() as uow:
            claimed = await uow.webhooks.claim(
                owner=self.owner, now=now, lease_until=lease_until, limit=limit
            )
            await uow.commit()
        return claimed

    async def _claim_logged(self, limit: int) -> list[Claimed]:
        try:
            return await self._claim(limit)
        except Exception:
            # The database is away: wait for the next poll rather than spin.
            logger.exception("claiming webhook deliveries failed")
            await asyncio.sleep(self._config.poll_interval)
            return []

    async def _attempt(self, event: Claimed) -> Attempted:
        at = self._now()
        try:
            if not event.secrets:
                outcome = Outcome(None, "no signing secret")
            else:
                body = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False)
                outcome = await self._client.send(
                    event.url, str(event.id), body, event.secrets, at=at
                )
        except Exception as exc:  # a fault on our side must not lose the attempt's record
            logger.exception("webhook attempt failed on our side")
            outcome = Outcome(None, f"internal error ({type(exc).__name__})")
        decision = decide(
            outcome,
            attempts=event.attempts + 1,
            failing_since=event.failing_since,
            now=at,
            policy=self._policy,
            rand=self._rand(),
        )
        if decision.disable_reason is not None:
            logger.warning("webhook endpoint disabled: %s", decision.disable_reason)
        return Attempted(event, at, outcome, decision)

    async def _record(self, attempts: list[Attempted]) -> None:
        if not attempts:
            return
        async with self._units() as uow:
            await uow.webhooks.record(attempts, owner=self.owner)
            await uow.commit()

    async def _record_logged(self, attempts: list[Attempted]) -> None:
        try:
            await self._record(attempts)
        except Exception:
            # Unrecorded attempts are not lost: their leases run out and they are sent again.
            logger.exception("recording %d webhook attempts failed", len(attempts))
