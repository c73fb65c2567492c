"""One webhook attempt over HTTP: sign, POST, classify the answer (never follow a redirect).

The request is ``POST <url>`` with the JSON body and the Standard Webhooks headers
(``signing.py``). The receiver has ``timeout`` seconds for the whole exchange; its body is read
(at most 64 KiB, so the connection can be reused) and otherwise ignored: nothing a receiver
sends ends up in our logs or in the error we record, only its status code and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

from broker.webhooks.schedule import Outcome
from broker.webhooks.signing import signed_headers
from broker.webhooks.ssrf import UrlPolicy, UrlRefused

__all__ = ["WebhookClient", "parse_retry_after"]

_DRAIN_LIMIT = 64 * 1024


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP-date (RFC 9110)."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


class WebhookClient:
    def __init__(self, http: httpx.AsyncClient, *, policy: UrlPolicy, timeout: float) -> None:
        self._http = http
        self._policy = policy
        self._timeout = timeout

    async def send(
        self, url: str, webhook_id: str, body: str, secrets: Sequence[str], *, at: datetime
    ) -> Outcome:
        started = time.perf_counter()
        outcome = await self._attempt(url, webhook_id, body, secrets, at)
        elapsed = round((time.perf_counter() - started) * 1000)
        return Outcome(outcome.status_code, outcome.error, outcome.retry_after, elapsed)

    async def _attempt(
        self, url: str, webhook_id: str, body: str, secrets: Sequence[str], at: datetime
    ) -> Outcome:
        try:
            # Again at send time: the rules may have changed since the URL was registered.
            self._policy.check_form(url)
        except UrlRefused as exc:
            return Outcome(None, f"refused: the URL {exc}"[:200])
        headers = signed_headers(webhook_id, at, body, secrets)
        request = self._http.build_request("POST", url, content=body.encode(), headers=headers)
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.send(request, stream=True, follow_redirects=False)
                try:
                    await _drain(response)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(None, f"timeout: no answer within {self._timeout:g} s")
        except httpx.ConnectError as exc:
            message = str(exc)
            # Our own refusal (ssrf.GuardedBackend) says why; other connect errors may quote
            # the receiver's network details, so they are summarised.
            refused = message.startswith("refused:")
            return Outcome(None, message[:200] if refused else "connect failed")
        except httpx.TransportError as exc:
            return Outcome(None, f"transport error ({type(exc).__name__})")
        return _classify(response, at)


async def _drain(response: httpx.Response) -> None:
    read = 0
    # aiter_bytes, not aiter_raw: it also serves a body a transport has read already.
    async for chunk in response.aiter_bytes():
        read += len(chunk)
        if read > _DRAIN_LIMIT:
            return


def _classify(response: httpx.Response, at: datetime) -> Outcome:
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(code, None)
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=at)
    if 300 <= code < 400:
        return Outcome(code, f"HTTP {code}: redirects are not followed", retry_after)
    if code == 410:
        return Outcome(code, "HTTP 410: the endpoint is gone", retry_after)
    return Outcome(code, f"HTTP {code}", retry_after)
