"""Webhook delivery: sustained deliveries per second, and enqueue-to-delivery latency at a fixed
rate (performance.md §3.5, §7 item 12: >= 500 deliveries/s for 60 s; p99 <= 1 s at 100/s).

Topology: a receiver (uvicorn, one worker, answers 204 at once) pinned to CPU 0; this process,
pinned to CPU 1, is the broker: a ``DeliveryWorker`` exactly as ``create_app`` builds it
(SSRF-guarded httpx transport, Standard Webhooks signing, leases, one transaction per batch of
records), on SQLite and, when reachable, PostgreSQL. The database server (PostgreSQL) floats.

Arms, all in one run:

- ``baseline``: the same signed POSTs of the same bodies straight from httpx with the same
  concurrency, no database: what this machine's client and receiver can do at all;
- ``worker-<db>`` throughput: the outbox pre-filled with events, the worker running; deliveries
  counted by the receiver over a fixed window after a warm-up (sustained rate), and checked
  for duplicates (distinct webhook-ids);
- ``worker-<db>`` latency: events enqueued open-loop at 100/s, each in its own transaction as a
  state change writes it (``SqlOutbox``), with the in-process wake-up (``same process``) and
  without it (``other process``: found by the 0.5 s poll only, as a change made by another
  broker process is); latency from the event's timestamp to its arrival, p50/p99.

    .venv/bin/python -m bench.webhook_delivery [--smoke] [--no-postgres] [--concurrency N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import machine, percentile, pin, process_cpu_seconds, table, write_results

NAME = "webhook_delivery"
SUT_CPU = 1
RECEIVER_CPU = 0
CONCURRENCY = 16  # BROKER_WEBHOOK_CONCURRENCY's default


@dataclass(frozen=True)
class Plan:
    prefill: int
    warmup_seconds: float
    window_seconds: float
    rate: float
    latency_seconds: float


FULL = Plan(prefill=45_000, warmup_seconds=3, window_seconds=60, rate=100, latency_seconds=30)
SMOKE = Plan(prefill=400, warmup_seconds=0.5, window_seconds=2, rate=100, latency_seconds=2)


def _free_port() -> int:
    from tests.support import free_port

    return free_port()


@contextlib.contextmanager
def _receiver(port: int) -> Iterator[subprocess.Popen[bytes]]:
    config = {"port": port, "cpu": RECEIVER_CPU}
    process = subprocess.Popen(  # noqa: S603 - our own module, arguments built here
        [sys.executable, "-m", "bench._serve", "receiver", json.dumps(config)],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"receiver exited with {process.returncode}")
            try:
                await http.get(url + "/")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the receiver did not start")


def _payload(at: datetime) -> dict[str, Any]:
    """A consent_request.granted body as the broker writes it (its size and shape)."""
    return {
        "type": "consent_request.granted",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "data": {
            "id": str(uuid.uuid4()),
            "status": "granted",
            "status_reason": None,
            "requestor": "310200018",
            "subject": "310100013",
            "external_reference": "case-4711",
            "valid_to": "2026-02-28T23:00:00Z",
            "revocation": None,
        },
    }


# ---- the baseline ----------------------------------------------------------------------------


async def _baseline(url: str, seconds: float) -> dict[str, Any]:
    """Signed POSTs with the same concurrency and headers, no database, no worker."""
    from broker.webhooks.signing import new_secret, signed_headers

    secret = new_secret()
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    sent = errors = 0
    cpu0 = process_cpu_seconds(os.getpid())
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(limits=limits) as http:

        async def one_loop() -> None:
            nonlocal sent, errors
            while time.perf_counter() < deadline:
                at = datetime.now(UTC)
                body = json.dumps(_payload(at), separators=(",", ":"))
                headers = signed_headers(str(uuid.uuid4()), at, body, [secret])
                response = await http.post(url, content=body.encode(), headers=headers)
                sent += 1
                errors += response.status_code != 204

        started = time.perf_counter()
        await asyncio.gather(*(one_loop() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    cpu = process_cpu_seconds(os.getpid()) - cpu0
    return {
        "deliveries_per_s": sent / elapsed,
        "cpu_us_per_delivery": cpu / max(sent, 1) * 1e6,
        "errors": errors,
    }


# ---- the broker's worker ---------------------------------------------------------------------


@dataclass
class Broker:
    """The pieces of one broker process around its delivery worker, on one database."""

    sessions: Any
    cipher: Any
    client_id: uuid.UUID
    request_id: uuid.UUID
    worker: Any
    http: httpx.AsyncClient


@asynccontextmanager
async def _broker(database_url: str, receiver_url: str) -> AsyncIterator[Broker]:
    from broker.consent.model import ConsentRequest, Generation, Language, State
    from broker.crypto import Cipher
    from broker.store import migrate
    from broker.store.db import create_engine, create_sessionmaker
    from broker.store.uow import SqlUnitOfWork
    from broker.webhooks.client import WebhookClient
    from broker.webhooks.schedule import RetryPolicy
    from broker.webhooks.signing import new_secret
    from broker.webhooks.ssrf import UrlPolicy, guarded_transport
    from broker.webhooks.worker import DeliveryWorker, WorkerConfig

    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    sessions = create_sessionmaker(engine)
    cipher = Cipher.for_dev("webhook benchmark")
    now = datetime.now(UTC)
    async with SqlUnitOfWork(sessions, cipher) as uow:
        client_id = await uow.clients.create(
            name="Portal", org_number="310300012", return_urls=(), at=now
        )
        endpoint = await uow.webhooks.create_endpoint(
            client_id, url=receiver_url, enabled=True, at=now
        )
        await uow.webhooks.add_secret(endpoint.id, new_secret(), at=now)
        request_id = uuid.uuid4()
        await uow.consents.add(
            ConsentRequest(
                id=request_id,
                client_id=client_id,
                requestor_org="310200018",
                subject_org="310100013",
                resource="r",
                reference="bench",
                external_reference=None,
                language=Language.NB,
                return_url="https://portal.example/return",
                state=State.GRANTED,
                state_reason=None,
                generation=Generation.ALTINN3,
                altinn_consent_id=None,
                valid_to=now,
                idempotency_key=None,
                created_at=now,
                updated_at=now,
            )
        )
        await uow.commit()
    policy = UrlPolicy(allow_local=True)
    http = httpx.AsyncClient(
        transport=guarded_transport(policy, max_connections=CONCURRENCY),
        timeout=httpx.Timeout(15),
        follow_redirects=False,
    )
    holder: dict[str, Any] = {}
    worker = DeliveryWorker(
        lambda: SqlUnitOfWork(sessions, cipher, on_outbox=holder["wake"]),
        client=WebhookClient(http, policy=policy, timeout=15),
        policy=RetryPolicy(),
        now=lambda: datetime.now(UTC),
        config=WorkerConfig(concurrency=CONCURRENCY, lease=60, poll_interval=0.5),
    )
    holder["wake"] = worker.wake
    try:
        yield Broker(sessions, cipher, client_id, request_id, worker, http)
    finally:
        await http.aclose()
        await engine.dispose()


async def _prefill(broker: Broker, count: int) -> None:
    from sqlalchemy import insert

    from broker.store.models import OutboxEvent

    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "client_id": broker.client_id,
            "consent_request_id": broker.request_id,
            "event_type": "consent_request.granted",
            "payload": _payload(now),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for _ in range(count)
    ]
    async with broker.sessions() as session:
        for start in range(0, count, 2000):
            await session.execute(insert(OutboxEvent), rows[start : start + 2000])
        await session.commit()


async def _stats(http: httpx.AsyncClient, url: str, *, detail: bool = False) -> dict[str, Any]:
    response = await http.get(f"{url}/stats", params={"detail": "1"} if detail else {})
    stats = response.json()
    assert isinstance(stats, dict)
    return stats


@asynccontextmanager
async def _running(broker: Broker) -> AsyncIterator[None]:
    task = asyncio.create_task(broker.worker.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _throughput(broker: Broker, base: str, plan: Plan) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        await http.delete(f"{base}/stats")
        await _prefill(broker, plan.prefill)
        async with _running(broker):
            await asyncio.sleep(plan.warmup_seconds)
            first = await _stats(http, base)
            cpu0 = process_cpu_seconds(os.getpid())
            started = time.perf_counter()
            await asyncio.sleep(plan.window_seconds)
            last = await _stats(http, base)
            elapsed = time.perf_counter() - started
            cpu = process_cpu_seconds(os.getpid()) - cpu0
    delivered = last["count"] - first["count"]
    return {
        "deliveries_per_s": delivered / elapsed,
        "window_s": round(elapsed, 1),
        "cpu_us_per_delivery": cpu / max(delivered, 1) * 1e6,
        "sut_cpu_util": cpu / elapsed,
        "duplicates": last["count"] - last["distinct"],
        "prefill_exhausted": last["count"] >= plan.prefill,
    }


async def _latency(broker: Broker, base: str, plan: Plan, *, wake: bool) -> dict[str, Any]:
    from broker.consent.ports import Notice
    from broker.store.uow import SqlUnitOfWork

    total = int(plan.rate * plan.latency_seconds)
    failed: list[str] = []

    async def enqueue() -> None:
        at = datetime.now(UTC)
        on_outbox = broker.worker.wake if wake else None
        try:
            async with SqlUnitOfWork(broker.sessions, broker.cipher, on_outbox=on_outbox) as uow:
                await uow.outbox.add(
                    Notice(
                        id=uuid.uuid4(),
                        client_id=broker.client_id,
                        consent_request_id=broker.request_id,
                        event_type="consent_request.granted",
                        occurred_at=at,
                        payload=_payload(at),
                    )
                )
                await uow.commit()
        except Exception as exc:  # e.g. SQLite's "database is locked" past the busy timeout
            failed.append(type(exc).__name__)

    async with httpx.AsyncClient() as http:
        await http.delete(f"{base}/stats")
        async with _running(broker):
            started = time.perf_counter()
            tasks = []
            for i in range(total):
                delay = started + i / plan.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(enqueue()))  # open loop: never wait for one
            await asyncio.gather(*tasks)
            for _ in range(400):
                stats = await _stats(http, base)
                if stats["count"] >= total - len(failed):
                    break
                await asyncio.sleep(0.05)
            stats = await _stats(http, base, detail=True)
    latencies = [x * 1000 for x in stats["latencies"]]
    return {
        "events": total,
        "enqueue_failures": len(failed),
        "delivered": stats["count"],
        "duplicates": stats["count"] - stats["distinct"],
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies, default=float("nan")),
    }


# ---- the run ---------------------------------------------------------------------------------


@asynccontextmanager
async def _database(kind: str, directory: Path, name: str) -> AsyncIterator[str]:
    from tests.support import fresh_postgres_database, sqlite_url

    async with AsyncExitStack() as exits:
        if kind == "sqlite":
            (directory / name).mkdir()
            yield sqlite_url(directory / name)
        else:
            yield await exits.enter_async_context(fresh_postgres_database())


async def run(
    smoke: bool = False, *, postgres: bool | None = None, concurrency: int | None = None
) -> dict[str, Any]:
    from tests.support import postgres_reachable

    global CONCURRENCY  # one run, one setting, read by every arm
    CONCURRENCY = concurrency or CONCURRENCY
    plan = SMOKE if smoke else FULL
    if postgres is None:
        postgres = await postgres_reachable()
    pin(SUT_CPU)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {
        "machine": machine(),
        "plan": {**plan.__dict__, "concurrency": CONCURRENCY},
        "arms": {},
    }
    backends = ["sqlite", *(["postgres"] if postgres else [])]
    with _receiver(port) as receiver, tempfile.TemporaryDirectory() as scratch:
        await _ready(base, receiver)
        figures["arms"]["baseline"] = await _baseline(f"{base}/hook", plan.window_seconds)
        for kind in backends:
            arm: dict[str, Any] = {}
            async with (
                _database(kind, Path(scratch), f"{kind}-t") as url,
                _broker(url, f"{base}/hook") as broker,
            ):
                arm["throughput"] = await _throughput(broker, base, plan)
            for wake, label in ((True, "same_process"), (False, "other_process")):
                async with (
                    _database(kind, Path(scratch), f"{kind}-{label}") as url,
                    _broker(url, f"{base}/hook") as broker,
                ):
                    arm[f"latency_{label}"] = await _latency(broker, base, plan, wake=wake)
            figures["arms"][f"worker-{kind}"] = arm
    baseline = figures["arms"]["baseline"]["deliveries_per_s"]
    figures["ratios"] = {
        name: arm["throughput"]["deliveries_per_s"] / baseline
        for name, arm in figures["arms"].items()
        if name != "baseline"
    }
    figures["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def report(figures: dict[str, Any]) -> str:
    base = figures["arms"]["baseline"]
    rows: list[list[object]] = [
        ["baseline (httpx, no DB)", base["deliveries_per_s"], base["cpu_us_per_delivery"], 1.0]
    ]
    for name, arm in figures["arms"].items():
        if name == "baseline":
            continue
        t = arm["throughput"]
        ratio = figures["ratios"][name]
        rows.append([name, t["deliveries_per_s"], t["cpu_us_per_delivery"], ratio])
    out = [
        table(
            f"sustained deliveries, {figures['plan']['concurrency']} in flight (target >= 500/s)",
            ["arm", "deliveries/s", "cpu us/delivery", "ratio"],
            rows,
        )
    ]
    rows = []
    for name, arm in figures["arms"].items():
        for label in ("same_process", "other_process"):
            key = f"latency_{label}"
            if key in arm:
                lat = arm[key]
                shown = [
                    lat["delivered"],
                    lat["enqueue_failures"],
                    lat["p50_ms"],
                    lat["p99_ms"],
                    lat["max_ms"],
                ]
                rows.append([f"{name} {label}", *shown])
    rate = figures["plan"]["rate"]
    out.append(
        table(
            f"enqueue-to-delivery at {rate:.0f} events/s (target p99 <= 1000 ms)",
            ["arm", "delivered", "enqueue failed", "p50 ms", "p99 ms", "max ms"],
            rows,
        )
    )
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_delivery")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny sizes")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL arms")
    parser.add_argument(
        "--concurrency", type=int, help=f"deliveries in flight (default {CONCURRENCY})"
    )
    args = parser.parse_args(argv)
    postgres = False if args.no_postgres else None
    figures = asyncio.run(run(args.smoke, postgres=postgres, concurrency=args.concurrency))
    print(report(figures))
    name = f"{NAME}.c{figures['plan']['concurrency']}"
    print(f"\nwritten: {write_results(name, args.smoke, figures)}")


if __name__ == "__main__":
    main()
