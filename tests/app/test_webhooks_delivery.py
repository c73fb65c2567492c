"""Delivery as docs/webhooks.md §5-§7 promise it, with time travel instead of sleeps: the retry
schedule, Retry-After, redirects not followed, 410 Gone, disabling after continuous failure,
a worker that dies after sending, and a secret rotation while the worker runs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from broker.store.webhooks import SqlWebhookStore
from broker.webhooks.client import WebhookClient
from broker.webhooks.ssrf import UrlPolicy
from tests.app.api_support import api_stack, granted
from tests.app.webhook_support import (
    Receiver,
    deliver_all,
    register,
    worker,
)
from tests.flow import Stack

SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


async def _delivery(s: Stack, event_id: str | None = None) -> dict[str, Any]:
    h = s.tenant.headers
    if event_id is None:
        items = (await s.api.get("/v1/webhook-deliveries", headers=h)).json()["items"]
        event_id = items[0]["id"]
    response = await s.api.get(f"/v1/webhook-deliveries/{event_id}", headers=h)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def _endpoint(s: Stack) -> dict[str, Any]:
    body = (await s.api.get("/v1/webhook-endpoint", headers=s.tenant.headers)).json()
    assert isinstance(body, dict)
    return body


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _travel_to(s: Stack, when: datetime) -> None:
    s.sandbox.clock.advance((when - s.sandbox.clock.now()).total_seconds())


async def test_failures_are_retried_on_the_documented_schedule_then_the_event_fails(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver(answers=[lambda _r: Response(status_code=500)] * 20)
    async with api_stack(database_url, tmp_path, webhooks=receiver.transport) as s:
        await register(s)
        await granted(s)
        assert await deliver_all(s) == 1
        waits = []
        for attempt, scheduled in enumerate(SCHEDULE, start=1):
            delivery = await _delivery(s)
            assert (delivery["status"], delivery["attempts"]) == ("pending", attempt)
            assert delivery["last_error"] == "HTTP 500"
            due = _at(delivery["next_attempt_at"])
            wait = (due - _at(delivery["last_attempt_at"])).total_seconds()
            assert 0.8 * scheduled <= wait <= 1.2 * scheduled, (attempt, wait)
            waits.append(wait / scheduled)
            _travel_to(s, due - timedelta(seconds=1))
            assert await deliver_all(s) == 0  # not a second early
            s.sandbox.clock.advance(1)
            assert await deliver_all(s) == 1
        final = await _delivery(s)
        assert (final["status"], final["attempts"], final["next_attempt_at"]) == (
            "failed",
            10,
            None,
        )
        assert [a["status_code"] for a in final["history"]] == [500] * 10
        s.sandbox.clock.advance(10 * 86400)
        assert await deliver_all(s) == 0  # failed stays failed
        endpoint = await _endpoint(s)
    # One event, ten attempts, one webhook-id; each attempt signed at its own time.
    assert len(receiver.got) == 10
    assert {d.webhook_id for d in receiver.got} == {final["id"]}
    stamps = [int(d.headers["webhook-timestamp"]) for d in receiver.got]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 10
    assert len({round(w, 6) for w in waits}) > 1  # jittered, not fixed
    # ~3 days of failure is not yet the 5 days that disable the endpoint.
    assert endpoint["enabled"] is True
    assert endpoint["failing_since"] is not None


async def test_retry_after_is_honoured_in_seconds_and_as_a_date(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    async with api_stack(database_url, tmp_path, webhooks=receiver.transport) as s:
        await register(s)
        await granted(s)
        receiver.reply(429, {"Retry-After": "120"})
        await deliver_all(s)
        first = await _delivery(s)
        wait = _at(first["next_attempt_at"]) - _at(first["last_attempt_at"])
        assert timedelta(seconds=120) <= wait < timedelta(seconds=121)  # not the 5 s step
        s.sandbox.clock.advance(119)
        assert await deliver_all(s) == 0
        s.sandbox.clock.advance(2)
        later = s.sandbox.clock.now() + timedelta(minutes=45)
        receiver.reply(503, {"Retry-After": format_datetime(later, usegmt=True)})
        assert await deliver_all(s) == 1
        second = await _delivery(s)
        due = _at(second["next_attempt_at"])
        assert abs(due - later) < timedelta(seconds=2)  # 45 min, not the 5 min step
        _travel_to(s, due)
        assert await deliver_all(s) == 1
        assert (await _delivery(s))["status"] == "delivered"
        assert (await _endpoint(s))["failing_since"] is None  # a success stops the clock


async def test_redirects_are_never_followed(database_url: str, tmp_path: Path) -> None:
    receiver = Receiver()
    followed: list[Request] = []

    async def elsewhere(request: Request) -> Response:
        followed.append(request)
        return Response(status_code=200)

    receiver.app.router.add_route("/elsewhere", elsewhere, methods=["POST", "GET"])
    async with api_stack(database_url, tmp_path, webhooks=receiver.transport) as s:
        await register(s)
        await granted(s)
        for status in (301, 302, 307, 308):
            receiver.reply(status, {"Location": "https://93.184.216.34/elsewhere"})
        for _ in range(4):
            assert await deliver_all(s) == 1
            delivery = await _delivery(s)
            s.sandbox.clock.advance(86400 * 1.3)
        history = [(a["status_code"], a["error"]) for a in delivery["history"]]
    assert followed == []
    assert len(receiver.got) == 4
    assert history == [
        (status, f"HTTP {status}: redirects are not followed") for status in (301, 302, 307, 308)
    ]


async def test_410_gone_disables_the_endpoint_and_fails_its_waiting_events(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    async with api_stack(database_url, tmp_path, webhooks=receiver.transport) as s:
        await register(s)
        for _ in range(3):
            await granted(s)
        receiver.reply(410)
        assert await worker(s).run_once(limit=1) == 1
        endpoint = await _endpoint(s)
        assert (endpoint["enabled"], endpoint["disabled_reason"]) == (
            False,
            "the endpoint answered 410 Gone",
        )
        items = (await s.api.get("/v1/webhook-deliveries", headers=s.tenant.headers)).json()
        errors = sorted((i["status"], i["last_error"]) for i in items["items"])
        assert errors == [
            ("failed", "HTTP 410: the endpoint is gone"),
            ("failed", "endpoint disabled"),
            ("failed", "endpoint disabled"),
        ]
        await granted(s)  # while disabled: recorded as failed, never sent
        s.sandbox.clock.advance(86400)
        assert await deliver_all(s) == 0
    assert len(receiver.got) == 1


async def test_an_endpoint_failing_for_the_whole_period_is_disabled_with_the_reason(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver(answers=[lambda _r: Response(status_code=503)] * 50)
    async with api_stack(
        database_url,
        tmp_path,
        webhooks=receiver.transport,
        webhook_disable_after="3600",
        webhook_retry_schedule="600",
    ) as s:
        await register(s)
        await granted(s)
        await deliver_all(s)  # the first failure starts the clock
        started = _at((await _endpoint(s))["failing_since"])
        for _ in range(6):  # each new event fails once more; the last is 1 h after the first
            s.sandbox.clock.advance(600)
            await granted(s)
            await deliver_all(s)
            if not (await _endpoint(s))["enabled"]:
                break
        endpoint = await _endpoint(s)
        now = s.sandbox.clock.now()
    assert now - started >= timedelta(hours=1)
    assert endpoint["enabled"] is False
    since = started.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert endpoint["disabled_reason"] == f"every attempt failed since {since}; the last: HTTP 503"


async def test_a_worker_that_dies_after_sending_leaves_the_event_to_be_sent_again(
    database_url: str, tmp_path: Path
) -> None:
    """The crash between a receiver's 2xx and the record of it: the lease runs out and the
    event is sent again with the same webhook-id (at least once; receivers deduplicate)."""
    receiver = Receiver()
    async with api_stack(database_url, tmp_path, webhooks=receiver.transport) as s:
        await register(s)
        await granted(s)
        now = s.sandbox.clock.now()
        # What the dead worker did: it claimed the event and sent it, then died.
        async with s.app.state.resources.sessions() as session:
            store = SqlWebhookStore(session, s.app.state.cipher)
            [claimed] = await store.claim(
                owner="dead-worker", now=now, lease_until=now + timedelta(seconds=60), limit=10
            )
            await session.commit()
        client = WebhookClient(
            httpx.AsyncClient(transport=receiver.transport), policy=UrlPolicy(), timeout=5
        )
        sent = await client.send(
            claimed.url, str(claimed.id), "{}", claimed.secrets, at=s.sandbox.clock.now()
        )
        assert sent.delivered
        assert await deliver_all(s) == 0  # the lease still holds
        s.sandbox.clock.advance(61)
        assert await deliver_all(s) == 1  # retaken and sent again
        delivery = await _delivery(s, str(claimed.id))
    assert delivery["status"] == "delivered"
    assert [d.webhook_id for d in receiver.got] == [str(claimed.id)] * 2


async def test_rotating_the_secret_mid_run_fails_no_verification(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    # The real background worker runs (polling every 50 ms), as in a deployment.
    async with api_stack(
        database_url, tmp_path, webhooks=receiver.transport, webhook_poll_interval="0.05"
    ) as s:
        old = await register(s)

        async def produce(n: int) -> None:
            for _ in range(n):
                await granted(s)

        await produce(3)
        await receiver.wait_for(3)
        producing = asyncio.create_task(produce(6))  # events keep coming during the rotation
        await asyncio.sleep(0.05)
        # Received before the rotation was asked for: claimed, and signed, before it too.
        before_rotation = len(receiver.got)
        rotated = await s.api.post(
            "/v1/webhook-endpoint/secrets", json={"overlap_seconds": 60}, headers=s.tenant.headers
        )
        assert rotated.status_code == 201
        new = rotated.json()["secret"]
        await producing
        await receiver.wait_for(9)
        await produce(3)  # made after the rotation: signed by both
        await receiver.wait_for(12)
        s.sandbox.clock.advance(61)  # the overlap is over (still within ±5 min)
        await produce(2)
        await receiver.wait_for(14)
    during_overlap, after = receiver.got[:12], receiver.got[12:]
    assert receiver.refused_by(old) == after  # only what was signed after the overlap
    assert [len(d.signatures) for d in receiver.got[:before_rotation]] == [1] * before_rotation
    for delivered in receiver.got[9:12]:
        assert len(delivered.signatures) == 2
        delivered.verify(new)
        delivered.verify(old)
    for delivered in after:
        assert len(delivered.signatures) == 1
        delivered.verify(new)
    # A receiver on the old secret verified everything until the overlap ended, and one that
    # switched to the new secret right after the rotation verified everything made since.
    for delivered in during_overlap:
        delivered.verify(old)
    assert len({d.webhook_id for d in receiver.got}) == 14
    assert uuid.UUID(receiver.got[0].webhook_id).version == 7
