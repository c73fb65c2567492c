"""At-least-once delivery survives crashes (security.md G13): 1,000 state changes, three broker
processes delivering from one PostgreSQL, one of them killed with SIGKILL every few seconds and
started again. Every event arrives, verified; none arrives under two different webhook-ids.

The state changes are real ones: 1,000 consent requests pass ``valid_to`` and the reconciler
expires them (state machine, audit row and outbox row in one transaction each), in batches,
while the workers deliver and die. Each worker holds 4 deliveries at most and the receiver
takes 50 ms per delivery, so the run lasts long enough for the kills to land mid-delivery;
leases are 3 s, so a killed worker's events are sent again quickly, with the same id."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.app import create_app
from broker.consent.model import Caller, ConsentRequest, Generation, Language, State
from broker.consent.reconcile import Reconciler
from broker.sandbox.clock import Clock
from broker.store import migrate
from broker.store.db import create_engine
from broker.store.models import OutboxEvent, WebhookAttempt
from broker.store.uow import SqlUnitOfWork
from tests.e2e.cluster import start_broker, wait_ready
from tests.support import free_port, make_settings, serving

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CHANGES = 1000
WORKERS = 3
SECRET_KEY = "crash-test-secret-key-0123456789abcdefghijkl"


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    value = request.param
    assert isinstance(value, str)
    return value


@dataclass
class Receiver:
    secret: str = ""
    got: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (webhook-id, body)
    refused: int = 0

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                payload = Webhook(self.secret).verify(body, dict(request.headers))
            except Exception:
                self.refused += 1
                return Response(status_code=400)
            await asyncio.sleep(0.05)  # a receiver that takes its time
            self.got.append((request.headers["webhook-id"], payload))
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def _env(database_url: str) -> dict[str, str]:
    return {
        "BROKER_ENV": "test",
        "BROKER_DATABASE_URL": database_url,
        "BROKER_SECRET_KEY": SECRET_KEY,
        "BROKER_LOG_LEVEL": "ERROR",
        "BROKER_RECONCILE_INTERVAL": "0",
        "BROKER_ALTINN_EVENTS_INTERVAL": "0",
        "BROKER_WEBHOOK_ALLOW_LOCAL": "true",
        "BROKER_WEBHOOK_POLL_INTERVAL": "0.2",
        "BROKER_WEBHOOK_CONCURRENCY": "4",
        "BROKER_WEBHOOK_TIMEOUT": "2",
        "BROKER_WEBHOOK_LEASE": "3",
        "BROKER_WEBHOOK_RETRY_SCHEDULE": "1,1,1,1,1,1,1,1,1,1,1,1",
    }


def _request(client_id: uuid.UUID, clock: Clock) -> ConsentRequest:
    now = clock.now()
    return ConsentRequest(
        id=uuid.uuid4(),
        client_id=client_id,
        requestor_org="310200018",
        subject_org="310100013",
        resource="digdir-oppdragutenlandskevirksomheter-skatteetaten",
        reference="crash test",
        external_reference=None,
        language=Language.NB,
        return_url="https://portal.example/return",
        state=State.PENDING,
        state_reason=None,
        generation=Generation.ALTINN3,
        altinn_consent_id=None,
        # Already over: the reconciler expires it. (Not time travel: the workers run on the
        # real clock, and an event is due when its change happened.)
        valid_to=now - timedelta(seconds=1),
        idempotency_key=None,
        created_at=now,
        updated_at=now,
    )


async def _delivered(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        count = await session.scalar(select(func.count()).where(OutboxEvent.status == "delivered"))
    return int(count or 0)


async def test_every_event_is_delivered_once_per_id_while_workers_are_killed(
    database_url: str, tmp_path: Path
) -> None:
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    env = _env(database_url)
    clock = Clock()  # the real clock: workers in other processes share it
    # This process makes the changes and delivers nothing; the three workers deliver.
    here = {k.removeprefix("BROKER_").lower(): v for k, v in env.items()}
    app = create_app(make_settings(**{**here, "webhook_poll_interval": "0"}), clock=clock.now)
    receiver = Receiver()
    rng = random.Random(6)
    kills = 0
    async with app.router.lifespan_context(app), serving(receiver.app()) as receiver_url:
        sessions, cipher = app.state.resources.sessions, app.state.cipher
        client_id = await app.state.clients.register(
            name="Portal", org_number="974760673", return_urls=()
        )
        caller = Caller(client_id=client_id, name="Portal", return_urls=())
        status, endpoint = await app.state.webhooks.put_endpoint(
            caller, {"url": f"{receiver_url}/hook"}
        )
        assert status == 201
        receiver.secret = endpoint["secret"]
        ids = []
        for _ in range(CHANGES // 100):
            async with SqlUnitOfWork(sessions, cipher) as uow:
                for _ in range(100):
                    request = _request(client_id, clock)
                    await uow.consents.add(request)
                    ids.append(str(request.id))
                await uow.commit()

        ports = [free_port() for _ in range(WORKERS)]
        workers = [await start_broker(env, port) for port in ports]
        try:
            for port, process in zip(ports, workers, strict=True):
                await wait_ready(f"http://127.0.0.1:{port}", process)
            reconciler: Reconciler = app.state.reconciler
            produced = 0

            async def produce() -> None:
                nonlocal produced
                while produced < CHANGES:
                    produced += (await reconciler.run_once()).changed
                    await asyncio.sleep(0.5)  # spread the changes over the kills

            producing = asyncio.create_task(produce())
            # Generous: on a loaded 2-core machine restarts and the changes themselves slow down.
            async with asyncio.timeout(420):
                while kills < 3 or await _delivered(sessions) < CHANGES:
                    await asyncio.sleep(rng.uniform(3.0, 5.0))
                    victim = rng.randrange(WORKERS)
                    workers[victim].kill()  # SIGKILL: no cleanup, leases left behind
                    await workers[victim].wait()
                    kills += 1
                    ports[victim] = free_port()
                    workers[victim] = await start_broker(env, ports[victim])
                await producing
            alive = [w.returncode is None for w in workers]
        finally:
            for process in workers:
                if process.returncode is None:
                    process.terminate()
            for process in workers:
                await process.wait()
        async with sessions() as session:
            statuses = Counter((await session.execute(select(OutboxEvent.status))).scalars().all())
            attempts = await session.scalar(select(func.count()).select_from(WebhookAttempt))

    assert produced == CHANGES
    assert statuses == {"delivered": CHANGES}
    assert alive == [True] * WORKERS
    assert kills >= 3
    # Every event arrived, verified, and as the change it reports.
    assert receiver.refused == 0
    events = {(p["data"]["id"], p["type"]) for _, p in receiver.got}
    assert events == {(request_id, "consent_request.expired") for request_id in ids}
    # No event under two webhook-ids: each (request, type) has exactly one.
    webhook_ids: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for webhook_id, payload in receiver.got:
        webhook_ids[(payload["data"]["id"], payload["type"])].add(webhook_id)
    assert {len(found) for found in webhook_ids.values()} == {1}
    # Redeliveries on the wire (a killed worker's leases) reuse the id; report them.
    repeats = sum(n - 1 for n in Counter(w for w, _ in receiver.got).values())
    print(  # noqa: T201 - the run's figures, for the log
        f"\n{CHANGES} events, {len(receiver.got)} deliveries, {repeats} repeats under the "
        f"same id, {attempts} attempts recorded, {kills} workers killed"
    )
    assert len(receiver.got) == CHANGES + repeats
    assert attempts is not None
    assert attempts <= len(receiver.got)  # a killed worker's sends were never recorded
