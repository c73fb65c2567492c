"""Helpers for the relay tests (``GET /v1/consent-requests/{id}/oppdrag``).

``relay_stack`` is ``tests.flow.stack`` with two additions on the broker's way to Skatteetaten:

- a :class:`Tap` transport records every exchange with the sandbox (the bytes the sandbox sent,
  and the request the broker made), may answer in the sandbox's place (for refusals the sandbox
  cannot be made to give), and enforces ``BROKER_HTTP_READ_TIMEOUT`` as a socket would
  (``httpx.ASGITransport`` runs the app to the end and knows no timeouts);
- an optional :class:`RelayChecker`, the OpenAPI checker of ``api_support`` that also reads
  ``application/xml`` answers (it validates status, media type and required headers; the body
  is Skatteetaten's, passed through).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from broker.store.models import AuditEvent
from tests.app.api_support import OpenApiChecker
from tests.flow import Stack, Tenant, stack

__all__ = [
    "EBEVIS",
    "KODE",
    "Exchange",
    "RelayChecker",
    "RelayStack",
    "Tap",
    "audit_rows",
    "fetch",
    "grant",
    "oppdrag_path",
    "relay_stack",
    "sandbox_calls",
    "set_fault",
]

EBEVIS = "ebevis"
KODE = "OPPDRAGUTENLANDSKEVIRKSOMHETER-"
FETCH_ACTION = "oppdrag.fetch"


@dataclass(frozen=True)
class Exchange:
    """One call the broker made to Skatteetaten and what came back (None: nothing did)."""

    request: httpx.Request
    status: int | None
    headers: httpx.Headers
    body: bytes


@dataclass
class Tap(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    read_timeout: float | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    # Answers in the sandbox's place when it returns a response (for this call only).
    substitute: Callable[[httpx.Request], httpx.Response | None] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.substitute is not None:
            answer = self.substitute(request)
            if answer is not None:
                body = answer.content
                self.exchanges.append(Exchange(request, answer.status_code, answer.headers, body))
                return httpx.Response(answer.status_code, headers=answer.headers, content=body)
        try:
            async with asyncio.timeout(self.read_timeout):
                response = await self.inner.handle_async_request(request)
                body = await response.aread()
        except TimeoutError:
            self.exchanges.append(Exchange(request, None, httpx.Headers(), b""))
            raise httpx.ReadTimeout("no answer within the read timeout", request=request) from None
        self.exchanges.append(Exchange(request, response.status_code, response.headers, body))
        return httpx.Response(response.status_code, headers=response.headers, content=body)


class RelayChecker(OpenApiChecker):
    """``OpenApiChecker`` that also accepts the relay's XML answers."""

    def check(self, response: httpx.Response) -> None:
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if media != "application/xml":
            super().check(response)
            return
        path = self.template(response.request.url.path)
        method = response.request.method.lower()
        if path is None or method not in self.doc["paths"][path]:
            return
        status = str(response.status_code)
        responses = self.doc["paths"][path][method]["responses"]
        assert status in responses, f"{method.upper()} {path}: undocumented status {status}"
        documented = responses[status]
        assert media in documented["content"], f"{method} {path} {status}: content type {media}"
        for name, header in documented.get("headers", {}).items():
            if self.resolve(header).get("required"):
                assert name.lower() in response.headers, f"{method} {path} {status}: no {name}"
        assert response.content.lstrip().startswith(b"<"), response.content[:80]
        self.seen.add((path, method, status))


@dataclass
class RelayStack:
    s: Stack
    tap: Tap


@asynccontextmanager
async def relay_stack(
    database_url: str,
    tmp_path: Path,
    *,
    checker: OpenApiChecker | None = None,
    webhooks: httpx.AsyncBaseTransport | None = None,
    **settings: str,
) -> AsyncIterator[RelayStack]:
    """``tests.flow.stack`` with a :class:`Tap` before the sandbox's Skatteetaten
    (``webhooks``: the network to the clients' webhook receivers)."""
    read_timeout = settings.get("http_read_timeout")
    taps: list[Tap] = []

    def tap(transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        taps.append(Tap(transport, float(read_timeout) if read_timeout else None))
        return taps[-1]

    async with stack(database_url, tmp_path, tap, webhooks, **settings) as s:
        if checker is not None:
            s.api.event_hooks = {"request": [], "response": [checker.hook]}
        yield RelayStack(s, taps[0])


# --- steps ----------------------------------------------------------------------------------------


def oppdrag_path(request_id: str) -> str:
    return f"/v1/consent-requests/{request_id}/oppdrag"


async def grant(s: Stack, **fields: Any) -> tuple[str, str]:
    """A granted request: (our id, Altinn's consent id)."""
    created = await s.create(**fields)
    async with s.browser() as browser:
        altinn_id = await s.go_to_altinn(browser, created["consent_url"])
        back = await s.come_back(browser, await s.answer(altinn_id, "approve"))
    assert back.status_code == 303, back.text
    assert "status=granted" in back.headers["location"]
    return str(created["id"]), altinn_id


async def fetch(
    s: Stack,
    request_id: str,
    *,
    tenant: Tenant | None = None,
    accept: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    sent = {**(tenant or s.tenant).headers, **(headers or {})}
    if accept is not None:
        sent["Accept"] = accept
    return await s.api.get(oppdrag_path(request_id), headers=sent)


async def sandbox_calls(s: Stack) -> list[dict[str, Any]]:
    """Every call the sandbox's Skatteetaten saw, oldest first."""
    response = await s.sandbox_http.get("/control/skatteetaten/calls")
    assert response.status_code == 200, response.text
    calls = response.json()
    assert isinstance(calls, list)
    return calls


async def set_fault(s: Stack, fault: str | None, times: int | None = None) -> None:
    body: dict[str, Any] = {"fault": fault}
    if times is not None:
        body["times"] = times
    response = await s.sandbox_http.post("/control/skatteetaten/fault", json=body)
    assert response.status_code == 200, response.text


async def set_latency(s: Stack, seconds: float) -> None:
    response = await s.sandbox_http.post("/control/skatteetaten/latency", json={"seconds": seconds})
    assert response.status_code == 200, response.text


async def advance(s: Stack, seconds: float) -> None:
    response = await s.sandbox_http.post("/control/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text


async def revoke_in_altinn(s: Stack, altinn_id: str) -> None:
    response = await s.sandbox_http.post(f"/control/consents/{altinn_id}/revoke", json={})
    assert response.status_code == 200, response.text


def feil(status: int, kode: str, korrelasjonsid: str | None = None) -> httpx.Response:
    """A Skatteetaten error answer (JSON, §3.1)."""
    body = {
        "kode": kode,
        "melding": "Simulert feil.",
        "korrelasjonsid": korrelasjonsid or str(uuid.uuid4()),
    }
    return httpx.Response(status, json=body)


async def audit_rows(s: Stack, action: str = FETCH_ACTION) -> list[AuditEvent]:
    """The audit trail's rows for ``action``, read from the table, oldest first."""
    async with s.app.state.resources.sessions() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return list(rows)


async def all_audit_text(s: Stack) -> str:
    """Every column of every audit row as text (to look for what must never be there)."""
    async with s.app.state.resources.sessions() as session:
        rows = await session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return "\n".join(
            repr([getattr(row, c.key) for c in AuditEvent.__table__.columns]) for row in rows
        )


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
