"""One attempt's outcome, as docs/webhooks.md §5 describes it: what each answer or failure is
recorded as, without anything the receiver sent in the error."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from broker.webhooks.client import WebhookClient, parse_retry_after
from broker.webhooks.schedule import Outcome
from broker.webhooks.signing import new_secret
from broker.webhooks.ssrf import UrlPolicy

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
URL = "https://93.184.216.34/hook"


async def _send(handler: httpx.MockTransport, url: str = URL, limit: float = 1) -> Outcome:
    async with httpx.AsyncClient(transport=handler) as http:
        client = WebhookClient(http, policy=UrlPolicy(), timeout=limit)
        return await client.send(url, "id-1", "{}", [new_secret()], at=NOW)


def _raising(error: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("error", "recorded"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused to 10.9.8.7"), "connect failed"),
        (
            httpx.ConnectError("refused: must not point to a loopback address (127.0.0.1)"),
            "refused: must not point to a loopback address (127.0.0.1)",
        ),
        (httpx.ReadTimeout("timed out"), "timeout: no answer within 1 s"),
        (
            httpx.RemoteProtocolError("peer closed connection"),
            "transport error (RemoteProtocolError)",
        ),
    ],
)
async def test_failures_are_recorded_without_the_receivers_details(
    error: Exception, recorded: str
) -> None:
    outcome = await _send(_raising(error))
    assert (outcome.status_code, outcome.error) == (None, recorded)
    assert "10.9.8.7" not in str(outcome.error)


async def test_a_receiver_slower_than_the_timeout_is_a_timeout() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(204)

    outcome = await _send(httpx.MockTransport(slow), limit=0.05)
    assert outcome.error == "timeout: no answer within 0.05 s"


async def test_a_url_that_breaks_the_rules_now_is_refused_before_sending() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    outcome = await _send(httpx.MockTransport(handler), url="http://93.184.216.34/hook")
    assert outcome.error == "refused: the URL must be an https:// URL"
    assert sent == []


async def test_statuses_become_outcomes_and_large_bodies_are_not_read_whole() -> None:
    answers = [
        httpx.Response(200, content=b"x" * 200_000),
        httpx.Response(308, headers={"Location": "https://elsewhere.example/"}),
        httpx.Response(503, headers={"Retry-After": "Sat, 28 Nov 2026 12:00:30 GMT"}),
        httpx.Response(429, headers={"Retry-After": "next week"}),
        httpx.Response(410),
    ]
    outcomes = [await _send(httpx.MockTransport(lambda r, a=a: a)) for a in answers]
    assert [(o.status_code, o.error, o.retry_after) for o in outcomes] == [
        (200, None, None),
        (308, "HTTP 308: redirects are not followed", None),
        (503, "HTTP 503", 30.0),
        (429, "HTTP 429", None),
        (410, "HTTP 410: the endpoint is gone", None),
    ]
    assert outcomes[0].delivered
    assert outcomes[-1].gone


def test_a_retry_after_date_without_a_zone_is_ignored() -> None:
    assert parse_retry_after("Sat, 28 Nov 2026 12:00:30", now=NOW) is None
