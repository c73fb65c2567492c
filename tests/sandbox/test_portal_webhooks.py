"""The demo portal's webhook receiver: it verifies each delivery with the standardwebhooks
library, answers 2xx only for a verified one, treats a repeated webhook-id as a repeat, and
shows every delivery with its verification result. Deliveries here are signed with the library
itself; tests/app/test_webhooks_portal.py has the broker deliver to the portal."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from broker.sandbox.parties import default_parties
from broker.sandbox.portal import PortalConfig, create_portal
from tests.sandbox.portal_helpers import API_KEY, BROKER, PORTAL, assert_page_headers

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD = "whsec_bm90LXRoZS1zYW1lLXNlY3JldC0wMTIzNDU2Nzg5YWI="
REQUEST_ID = "2f44a587-e3a0-44d1-a76e-1da8dab2b42e"


def event(kind: str = "consent_request.granted", **data: Any) -> bytes:
    payload = {
        "type": kind,
        "timestamp": "2026-11-28T12:00:00Z",
        "data": {"id": REQUEST_ID, "status": kind.rsplit(".", 1)[1], "revocation": None, **data},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def signed(
    body: bytes, webhook_id: str, *secrets: str, at: datetime | None = None
) -> dict[str, str]:
    when = at or datetime.now(UTC)
    signatures = " ".join(Webhook(s).sign(webhook_id, when, body.decode()) for s in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }


@asynccontextmanager
async def portal(*secrets: str) -> AsyncIterator[httpx.AsyncClient]:
    config = PortalConfig(
        broker_url=BROKER,
        api_key=API_KEY,
        return_url=f"{PORTAL}/return",
        webhook_secrets=secrets,
    )
    app = create_portal(config, httpx.AsyncClient(), default_parties())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PORTAL) as client:
        yield client


async def post(client: httpx.AsyncClient, body: bytes, headers: Mapping[str, str]) -> int:
    return (await client.post("/webhooks", content=body, headers=dict(headers))).status_code


def rows(page: httpx.Response) -> list[tuple[str, str]]:
    """(class, verification result) of each row of the webhooks table, newest first."""
    return re.findall(r'<tr class="(\w+)">.*?<td class="result">(.*?)</td></tr>', page.text)


async def test_verified_deliveries_are_acknowledged_and_shown_repeats_not_processed_twice() -> None:
    async with portal(SECRET) as client:
        empty = await client.get("/webhooks")
        assert 'id="no-webhooks"' in empty.text
        body = event()
        assert await post(client, body, signed(body, "msg-1", SECRET)) == 204
        assert await post(client, body, signed(body, "msg-1", SECRET)) == 204  # a retry
        revoked = event(
            "consent_request.revoked", revocation={"by": "skatteetaten", "reason": "-007"}
        )
        assert await post(client, revoked, signed(revoked, "msg-2", SECRET)) == 204
        page = await client.get("/webhooks")
        index = await client.get("/")
    assert_page_headers(page)
    assert rows(page) == [
        ("verified", "verified"),
        ("verified", "verified; a repeat: not processed again"),
        ("verified", "verified"),
    ]
    assert "consent_request.revoked" in page.text
    assert "<td>skatteetaten</td>" in page.text
    assert f'href="/requests/{REQUEST_ID}"' in page.text
    assert 'id="webhooks-link" href="/webhooks"' in index.text


async def test_forged_tampered_and_stale_deliveries_are_refused_and_shown_refused() -> None:
    body = event()
    good = signed(body, "msg-1", SECRET)
    stale = signed(body, "msg-2", SECRET, at=datetime.now(UTC) - timedelta(minutes=6))
    cases = [
        (event("consent_request.denied"), good, "refused: No matching signature found"),
        (body, {**good, "webhook-id": "msg-9"}, "refused: No matching signature found"),
        (body, signed(body, "msg-3", "whsec_" + "QUFB" * 8), "refused: No matching signature"),
        (body, stale, "refused: Message timestamp too old"),
        (body, {"content-type": "application/json"}, "refused: Missing required headers"),
    ]
    async with portal(SECRET) as client:
        for sent, headers, _ in cases:
            assert await post(client, sent, headers) == 400
        markup = '<b>msg</b>"'
        assert await post(client, body, {**good, "webhook-id": markup}) == 400
        page = await client.get("/webhooks")
    results = rows(page)
    assert [c for c, _ in results] == ["refused"] * 6
    for (_, result), (_, _, expected) in zip(results[1:], reversed(cases), strict=True):
        assert result.startswith(expected)
    assert markup not in page.text  # shown escaped
    assert "&lt;b&gt;msg&lt;/b&gt;&quot;" in page.text


async def test_during_a_rotation_the_previous_secret_still_verifies() -> None:
    body = event()
    async with portal(SECRET, OLD) as client:
        assert await post(client, body, signed(body, "a", OLD)) == 204
        assert await post(client, body, signed(body, "b", SECRET, OLD)) == 204
        assert await post(client, body, signed(body, "c", SECRET)) == 204
    async with portal() as client:  # no secret: nothing can be verified
        assert await post(client, body, signed(body, "d", SECRET)) == 400
        page = await client.get("/webhooks")
    assert rows(page) == [("refused", "refused: the portal has no signing secret")]
