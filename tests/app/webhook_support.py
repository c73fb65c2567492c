"""Helpers for the webhook tests: a receiver that records and verifies, and the steps around it.

The :class:`Receiver` is an ASGI app reached through ``httpx.ASGITransport`` (the broker's
``webhooks`` upstream), so a test sees every request the broker sends exactly as sent. It
answers with scripted responses (200 by default) and verifies deliveries with the
``standardwebhooks`` reference library, as an integrator's receiver would. ``RECEIVER_URL``
is a public address literal: it passes the SSRF rules without DNS, and the transport ignores it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.store.models import OutboxEvent
from broker.webhooks.worker import DeliveryWorker
from tests.app.api_support import FORMATS
from tests.flow import Stack, Tenant

__all__ = [
    "RECEIVER_URL",
    "Delivered",
    "Receiver",
    "deliver_all",
    "doc_schemas",
    "outbox_rows",
    "register",
    "worker",
]

RECEIVER_URL = "https://93.184.216.34/ebevis/webhooks"
Answer = Callable[[Request], Response]


@dataclass(frozen=True)
class Delivered:
    """One request the receiver got, exactly as it came."""

    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        parsed = json.loads(self.body)
        assert isinstance(parsed, dict)
        return parsed

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split(" ")

    def verify(self, secret: str) -> Any:
        """The reference library's verification (raises WebhookVerificationError)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    answers: list[Answer] = field(default_factory=list)  # played in order, then 200s
    got: list[Delivered] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.arrived = asyncio.Event()

        async def receive(request: Request) -> Response:
            self.got.append(Delivered(dict(request.headers), await request.body()))
            self.arrived.set()
            if self.answers:
                return self.answers.pop(0)(request)
            return Response(status_code=200)

        self.app = Starlette(routes=[Route("/ebevis/webhooks", receive, methods=["POST"])])
        self.transport = httpx.ASGITransport(app=self.app)

    def reply(self, status: int, headers: Mapping[str, str] | None = None, times: int = 1) -> None:
        sent = dict(headers or {})
        for _ in range(times):
            self.answers.append(lambda _r: Response(status_code=status, headers=sent))

    async def wait_for(self, count: int) -> None:
        """Until ``count`` deliveries have arrived (from a worker running on its own); 30 s at
        most."""
        async with asyncio.timeout(30):
            while True:
                self.arrived.clear()
                if len(self.got) >= count:
                    return
                await self.arrived.wait()

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """Every delivery's payload, each verified with ``secret`` (fails on the first that
        does not verify)."""
        return [d.verify(secret) for d in self.got]

    def refused_by(self, secret: str) -> list[Delivered]:
        refused = []
        for delivered in self.got:
            try:
                delivered.verify(secret)
            except WebhookVerificationError:
                refused.append(delivered)
        return refused


async def register(s: Stack, tenant: Tenant | None = None, url: str = RECEIVER_URL) -> str:
    """Register the tenant's endpoint; return its signing secret."""
    response = await s.api.put(
        "/v1/webhook-endpoint", json={"url": url}, headers=(tenant or s.tenant).headers
    )
    assert response.status_code == 201, response.text
    secret = response.json()["secret"]
    assert isinstance(secret, str)
    return secret


def worker(s: Stack) -> DeliveryWorker:
    found = s.app.state.webhook_worker
    assert isinstance(found, DeliveryWorker)
    return found


async def deliver_all(s: Stack, *, rounds: int = 20) -> int:
    """Run the worker until nothing is due now; return how many attempts were made."""
    total = 0
    for _ in range(rounds):
        made = await worker(s).run_once(limit=100)
        total += made
        if made == 0:
            return total
    raise AssertionError("deliveries kept coming")


async def outbox_rows(s: Stack) -> list[OutboxEvent]:
    async with s.app.state.resources.sessions() as session:
        rows = await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
        return list(rows)


def doc_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each event type, read from docs/webhooks.md itself: the blocks
    that follow a ``#### Schema: `<type>` `` heading."""
    text = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    found: dict[str, dict[str, Any]] = {}
    for part in text.split("#### Schema: `")[1:]:
        kind, rest = part.split("`", 1)
        block = rest.split("```json", 1)[1].split("```", 1)[0]
        found[kind] = json.loads(block)
    return found


def schema_errors(payload: Mapping[str, Any], schemas: Mapping[str, Any]) -> list[str]:
    schema = schemas[payload["type"]]
    validator = Draft202012Validator(schema, format_checker=FORMATS)
    return [e.message for e in validator.iter_errors(payload)]


def new_uuid() -> str:
    return str(uuid.uuid4())
