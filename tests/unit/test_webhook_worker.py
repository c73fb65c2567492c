"""The delivery worker keeps going when things around it fail, with in-memory fakes: a database
that refuses claims or records, a fault inside an attempt, a job that crashes (restarted by
``Supervised``); and the demo's settings open local URLs only in dev."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from broker.cli import demo_settings
from broker.jobs import Supervised
from broker.settings import Settings
from broker.webhooks.client import WebhookClient
from broker.webhooks.ports import Attempted, Claimed
from broker.webhooks.schedule import RetryPolicy
from broker.webhooks.ssrf import UrlPolicy
from broker.webhooks.worker import DeliveryWorker, WorkerConfig, worker_name

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


SECRET = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="


def _event(secrets: tuple[str, ...] = (SECRET,)) -> Claimed:
    return Claimed(
        id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        endpoint_id=uuid.uuid4(),
        url="https://93.184.216.34/hook",
        payload={"type": "consent_request.granted"},
        attempts=0,
        failing_since=None,
        secrets=secrets,
    )


@dataclass
class Store:
    due: list[Claimed] = field(default_factory=list)
    recorded: list[Attempted] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "claim"/"record": fail once each

    async def claim(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[Claimed]:
        if "claim" in self.failures:
            self.failures.remove("claim")
            raise ConnectionError("database away")
        taken, self.due = self.due[:limit], self.due[limit:]
        return taken

    async def record(self, attempts: Sequence[Attempted], *, owner: str) -> None:
        if "record" in self.failures:
            self.failures.remove("record")
            # Unrecorded attempts are not lost: their leases run out and they are due again.
            self.due.extend(a.event for a in attempts)
            raise ConnectionError("database away")
        self.recorded.extend(attempts)


@dataclass
class Units:
    webhooks: Store = field(default_factory=Store)

    def __call__(self) -> Units:
        return self

    async def __aenter__(self) -> Units:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        return None


def _worker(units: Units, handler: httpx.MockTransport) -> DeliveryWorker:
    http = httpx.AsyncClient(transport=handler)
    return DeliveryWorker(
        units,  # type: ignore[arg-type]
        client=WebhookClient(http, policy=UrlPolicy(), timeout=1),
        policy=RetryPolicy(),
        now=lambda: NOW,
        config=WorkerConfig(concurrency=4, poll_interval=0.01, flush_interval=0.001),
        owner="w1",
        rand=lambda: 0.5,
    )


async def test_the_running_worker_survives_a_database_that_fails_now_and_then() -> None:
    units = Units()
    events = [_event() for _ in range(6)]
    units.webhooks.due = list(events)
    units.webhooks.failures = ["claim", "record"]
    worker = _worker(units, httpx.MockTransport(lambda request: httpx.Response(204)))
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(5):
            while {a.event.id for a in units.webhooks.recorded} != {e.id for e in events}:
                worker.wake()
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert units.webhooks.failures == []
    assert {a.outcome.error for a in units.webhooks.recorded} == {None}
    assert {a.decision.status for a in units.webhooks.recorded} == {"delivered"}


async def test_a_fault_inside_an_attempt_is_recorded_as_a_failed_attempt() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug")

    units = Units()
    units.webhooks.due = [_event(), _event(secrets=())]
    assert await _worker(units, httpx.MockTransport(broken)).run_once() == 2
    errors = sorted(str(a.outcome.error) for a in units.webhooks.recorded)
    assert errors == ["internal error (RuntimeError)", "no signing secret"]
    assert {a.decision.status for a in units.webhooks.recorded} == {"pending"}


async def test_a_supervised_job_that_fails_is_started_again() -> None:
    runs: list[int] = []
    third = asyncio.Event()

    async def job() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        third.set()
        await asyncio.Event().wait()  # then runs until stopped

    async with Supervised("test", job, restart_delay=0.001):
        async with asyncio.timeout(5):
            await third.wait()
    assert len(runs) == 3


def test_workers_have_distinct_names() -> None:
    assert len({worker_name() for _ in range(10)}) == 10


def test_the_demo_accepts_local_webhook_urls_only_in_dev() -> None:
    assert demo_settings(Settings.from_env({})).webhooks.allow_local is True
    prod = dataclasses.replace(Settings.from_env({}), env=Settings.from_env({}).env.PROD)
    assert demo_settings(prod).webhooks.allow_local is False
