"""Skatteetaten's "Oppdrag utenlandske virksomheter" API (``shared/reference/skatteetaten.md``).

One call: ``GET /v1/{rettighetspakke}/utenlandskevirksomheter/{orgnr}/oppdrag/antall`` on the
injected client's ``base_url`` (the API host, e.g.
``https://oppdragutenlandskevirksomheter.api.skatteetaten-test.no``, or the sandbox's
``…/skatteetaten``), with exactly these headers (§1.3):

- ``Authorization: Bearer <token>``: the caller's Maskinporten consent token (Altinn 3). That
  one token carries both access and consent, so no ``AltinnSamtykke`` header is sent. For an
  Altinn 2 consent the bearer is a plain token with the API scope and ``AltinnSamtykke`` carries
  Altinn 2's consent token (§1.3, §4.3);
- ``Accept: application/json`` or ``application/xml``;
- ``Korrelasjonsid``: a new UUID for every attempt. Skatteetaten wants it unique per call and
  never reused (§1.3, [FEIL]), and each retry is a call of its own.

Failures (``errors.py``): an unavailable answer (5xx, 408, 429, a timeout, a dropped
connection) is retried with capped, jittered exponential back-off that honours
``Retry-After``; a refusal (4xx) never is. A 401 raises ``TokenRejected`` at once: the caller
owns the token, drops it and tries once more. Each attempt has a deadline of its own (httpx's
timeouts are per read, §4.1), and passes the host's circuit breaker first.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

import httpx

from broker.skatteetaten.breaker import BreakerState, CircuitBreaker
from broker.skatteetaten.errors import (
    CircuitOpen,
    SkatteetatenBadResponse,
    SkatteetatenError,
    SkatteetatenRefused,
    SkatteetatenUnavailable,
    from_response,
)
from broker.skatteetaten.schemas import (
    MEDIA_TYPES,
    Accept,
    OppdragAnswer,
    WireError,
    body_format,
    parse_oppdrag,
)

__all__ = ["API_SCOPE", "RetryPolicy", "SkatteetatenClient"]

logger = logging.getLogger("broker.skatteetaten")

API_SCOPE = "skatteetaten:oppdragutenlandskevirksomheter"
OSLO = ZoneInfo("Europe/Oslo")

_ORGNR = re.compile(r"[0-9]{9}")
_PACKAGE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII: nothing that could split a header
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


@dataclass(frozen=True)
class _Credentials:
    token: str = field(repr=False)
    altinn_samtykke: str | None = field(repr=False)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per call for unavailable answers, and the waits between them.

    The n-th wait is a random share of ``min(max_delay, base_delay * 2**(n-1))`` ("full
    jitter"), but never less than a ``Retry-After``; a ``Retry-After`` beyond
    ``max_retry_after`` ends the call at once so the caller can come back later.
    """

    attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 4.0
    max_retry_after: float = 5.0

    def delay(self, attempt: int, *, retry_after: float | None, jitter: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        backoff = jitter * min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return max(backoff, retry_after or 0.0)


def _new_korrelasjonsid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Attempt:
    """One request that went to Skatteetaten (for the caller's audit trail)."""

    korrelasjonsid: str | None
    succeeded: bool
    code: str
    seconds: float


AttemptHook = Callable[[Attempt], Awaitable[None]]


class SkatteetatenClient:
    """Typed client for the oppdrag API; implements the relay's ``OppdragSource``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], datetime],
        rettighetspakke: str = "ebevis",
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] | None = None,
        korrelasjonsid: Callable[[], str] = _new_korrelasjonsid,
        attempt_timeout: float | None = 10.0,
        max_body_bytes: int = 1_000_000,
        levert_zone: tzinfo = OSLO,
    ) -> None:
        if not _PACKAGE.fullmatch(rettighetspakke):
            raise ValueError("rettighetspakke must be a lower-case path segment")
        self._http = http
        self._clock = clock
        self._package = rettighetspakke
        self._retry = retry or RetryPolicy()
        self._breaker = breaker or CircuitBreaker()
        self._sleep = sleep
        self._jitter = jitter or secrets.SystemRandom().random
        self._korrelasjonsid = korrelasjonsid
        self._attempt_timeout = attempt_timeout
        self._max_body_bytes = max_body_bytes
        self._zone = levert_zone

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    def path(self, orgnr: str) -> str:
        if not _ORGNR.fullmatch(orgnr):
            raise ValueError("orgnr must be nine digits")
        return f"/v1/{self._package}/utenlandskevirksomheter/{orgnr}/oppdrag/antall"

    async def oppdrag(
        self,
        orgnr: str,
        *,
        token: str,
        accept: Accept = "json",
        on_attempt: AttemptHook | None = None,
        altinn_samtykke: str | None = None,
    ) -> OppdragAnswer:
        """The counts for ``orgnr`` as Skatteetaten sent them, in JSON or XML.

        ``on_attempt`` hears about every request actually sent (retries included, a paused
        breaker's refusals not): its korrelasjonsid, whether it succeeded, its code, its duration.
        Raises ``ValueError`` for an orgnr that is not nine digits or a token that could not
        go in a header (nothing is sent), else only the exceptions in ``errors.py``.
        """
        path = self.path(orgnr)
        if not _TOKEN.fullmatch(token):
            raise ValueError("token must be a bearer token")
        if altinn_samtykke is not None and not _TOKEN.fullmatch(altinn_samtykke):
            raise ValueError("altinn_samtykke must be a token")
        credentials = _Credentials(token, altinn_samtykke)
        if accept not in MEDIA_TYPES:
            raise ValueError("accept must be 'json' or 'xml'")
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                answer = await self._attempt(path, orgnr, credentials, accept=accept)
            except CircuitOpen:
                raise
            except SkatteetatenError as exc:
                if on_attempt is not None:
                    code = getattr(exc, "code", None) or exc.kode or "unavailable"
                    elapsed = time.perf_counter() - started
                    await on_attempt(Attempt(exc.korrelasjonsid, False, code, elapsed))
                if not isinstance(exc, SkatteetatenUnavailable):
                    raise
                await self._back_off(exc, attempt)
                continue
            if on_attempt is not None:
                elapsed = time.perf_counter() - started
                await on_attempt(Attempt(answer.korrelasjonsid, True, "ok", elapsed))
            return answer

    async def _attempt(
        self, path: str, orgnr: str, credentials: _Credentials, *, accept: Accept
    ) -> OppdragAnswer:
        """One request through the breaker, which hears how it went."""
        now = self._clock()
        if not self._breaker.allow(now):
            wait = self._breaker.retry_after(now)
            raise CircuitOpen(
                f"Skatteetaten calls are paused after repeated failures; next try in {wait:.0f} s",
                retry_after=wait,
            )
        try:
            answer = await self._send(path, orgnr, credentials, accept=accept)
        except SkatteetatenUnavailable:
            self._breaker.failed(self._clock())
            raise
        except SkatteetatenRefused:
            self._breaker.succeeded()  # refused, but the host is up and answering
            raise
        except BaseException:
            self._breaker.released()
            raise
        self._breaker.succeeded()
        return answer

    async def _send(
        self, path: str, orgnr: str, credentials: _Credentials, *, accept: Accept
    ) -> OppdragAnswer:
        sent = self._korrelasjonsid()
        request_headers = {
            "Authorization": f"Bearer {credentials.token}",
            "Accept": MEDIA_TYPES[accept],
            "Korrelasjonsid": sent,
        }
        if credentials.altinn_samtykke is not None:
            request_headers["AltinnSamtykke"] = credentials.altinn_samtykke
        request = self._http.build_request("GET", path, headers=request_headers)
        status, headers, body = await self._exchange(request, sent)
        secrets = tuple(t for t in (credentials.token, credentials.altinn_samtykke) if t)
        error = from_response(
            status, headers, body, sent_korrelasjonsid=sent, now=self._clock(), secrets=secrets
        )
        if error is not None:
            raise error
        return self._answer(status, headers, body, orgnr=orgnr, sent=sent)

    async def _exchange(
        self, request: httpx.Request, sent: str
    ) -> tuple[int, httpx.Headers, bytes]:
        """Status, headers and the whole body, within the attempt's deadline."""
        status: int | None = None
        try:
            async with asyncio.timeout(self._attempt_timeout):
                response = await self._http.send(request, stream=True)
                status = response.status_code
                try:
                    body = await self._read(response, sent)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise SkatteetatenUnavailable(
                f"no answer from Skatteetaten in time ({type(exc).__name__}); "
                f"korrelasjonsid {sent}",
                korrelasjonsid=sent,
                timed_out=True,
            ) from exc
        except httpx.TransportError as exc:
            # The type name only: nothing upstream-made goes into our messages.
            raise SkatteetatenUnavailable(
                f"no answer from Skatteetaten ({type(exc).__name__}); korrelasjonsid {sent}",
                korrelasjonsid=sent,
            ) from exc
        except httpx.DecodingError as exc:
            raise SkatteetatenBadResponse(
                f"Skatteetaten's answer could not be decoded; korrelasjonsid {sent}",
                status=status,
                korrelasjonsid=sent,
            ) from exc
        return response.status_code, response.headers, body

    async def _read(self, response: httpx.Response, sent: str) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_body_bytes:
                raise SkatteetatenBadResponse(
                    f"Skatteetaten's answer is larger than {self._max_body_bytes} bytes; "
                    f"korrelasjonsid {sent}",
                    status=response.status_code,
                    korrelasjonsid=sent,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _answer(
        self, status: int, headers: httpx.Headers, body: bytes, *, orgnr: str, sent: str
    ) -> OppdragAnswer:
        echoed = headers.get("korrelasjonsid", "").strip()
        korrelasjonsid = echoed if _ID.fullmatch(echoed) else sent
        content_type = headers.get("content-type")
        fmt = body_format(content_type, body)

        def unusable(reason: str) -> SkatteetatenBadResponse:
            return SkatteetatenBadResponse(
                f"unusable answer from Skatteetaten: {reason}; korrelasjonsid {korrelasjonsid}",
                status=status,
                korrelasjonsid=korrelasjonsid,
            )

        if fmt is None:
            raise unusable("the body is neither JSON nor XML")
        try:
            document = parse_oppdrag(body, fmt, zone=self._zone)
        except WireError as exc:
            raise unusable(str(exc)) from None
        if document.forespurt_organisasjon not in (None, orgnr):
            raise unusable("it is about another organisation")
        return OppdragAnswer(
            body=body,
            content_type=content_type or MEDIA_TYPES[fmt],
            body_format=fmt,
            korrelasjonsid=korrelasjonsid,
            forespurt_organisasjon=document.forespurt_organisasjon,
            counts=document.counts,
            levert=document.levert,
        )

    async def _back_off(self, error: SkatteetatenUnavailable, attempt: int) -> None:
        """Wait before the next attempt, or raise ``error`` when it is final."""
        if isinstance(error, SkatteetatenBadResponse | CircuitOpen):
            raise error
        delay = self._retry.delay(attempt, retry_after=error.retry_after, jitter=self._jitter())
        if delay is None or self._breaker.state(self._clock()) is BreakerState.OPEN:
            # With the breaker open the next attempt could not go: report the real failure.
            raise error
        logger.warning(
            "Skatteetaten call failed (%s); attempt %d in %.2f s", error, attempt + 1, delay
        )
        await self._sleep(delay)
