"""Altinn 3's enterprise consent API (``shared/reference/altinn-consent.md`` §2.2, §4.2, §5).

Implements ``broker.consent.ports.AltinnConsents`` (create, status) and reads the events feed
for a poller. Every call carries a Maskinporten token from the injected :class:`AccessTokens`:

- ``vendor`` mode (default): scope ``altinn:consentrequests.write`` with ``consumer_org`` = the
  requestor, who delegated the scope to the broker (§2.2 "Vendor"). ``to`` is then the token's
  consumer and Altinn records the broker as ``handledBy``. A requestor that is the broker
  itself asks without ``consumer_org`` (Maskinporten refuses a delegation to oneself).
- ``org`` mode: scope ``altinn:consentrequests.org`` as the broker itself, as data.altinn.no
  does (§1.3). Altinn lets only ``to`` read a request back, so in this mode ``status`` and
  ``events`` see nothing of the requestors' requests (AM-00000, empty feed; §2.2, inferred).

Reads use the mode's scope unless ``read_scope`` says otherwise: the reference's table lets
``.write``/``.org`` read (§2.2), one cached token then serves every call, and a requestor need
not delegate ``.read`` too.

Failures: a 401 drops the cached token and retries once with a fresh one; 5xx (except the
multiple-problems 500 ``STD-00001``), 429, timeouts and connection errors are retried with
capped, jittered exponential back-off that honours ``Retry-After``. A POST may be retried
because the request id is ours (a replay answers 200 with the stored request).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import httpx

from broker.altinn.errors import AltinnBadResponse, AltinnError, AltinnUnavailable, from_response
from broker.altinn.schemas import (
    EventsPage,
    RequestMessages,
    WireError,
    create_body,
    parse_created,
    parse_events,
    parse_state,
)
from broker.consent.ports import AltinnCreated, AltinnRequest, AltinnState

__all__ = [
    "API_PATH",
    "ORG_SCOPE",
    "READ_SCOPE",
    "WRITE_SCOPE",
    "AccessToken",
    "AccessTokens",
    "AltinnClient",
    "AltinnMode",
    "RetryPolicy",
]

logger = logging.getLogger("broker.altinn")
_T = TypeVar("_T")

API_PATH = "/accessmanagement/api/v1/enterprise/consentrequests"
WRITE_SCOPE = "altinn:consentrequests.write"
READ_SCOPE = "altinn:consentrequests.read"
ORG_SCOPE = "altinn:consentrequests.org"


class AccessToken(Protocol):
    @property
    def token(self) -> str: ...


class AccessTokens(Protocol):
    """Maskinporten access tokens, cached by the implementation (the Maskinporten client)."""

    async def access_token(self, scope: str, *, consumer_org: str | None = None) -> AccessToken:
        """A token for ``scope``, on behalf of ``consumer_org`` when given. Raises the port's
        ``UpstreamUnavailable``/``UpstreamRefused`` when Maskinporten fails or refuses."""
        ...

    def invalidate(
        self, scope: str, *, consumer_org: str | None = None, token: str | None = None
    ) -> object:
        """Forget the cached token Altinn refused; with ``token``, only if it is still that
        one (another call may have replaced it already)."""
        ...


class AltinnMode(StrEnum):
    VENDOR = "vendor"
    ORG = "org"


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per call for transient failures, and the waits between them.

    The n-th wait is a random share of ``min(max_delay, base_delay * 2**(n-1))`` ("full
    jitter"), but never less than a ``Retry-After``; a ``Retry-After`` beyond
    ``max_retry_after`` ends the call at once so the caller can come back later. The defaults
    suit ``create``, which runs while a person waits for the redirect to Altinn; a poller may
    afford longer waits.
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


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    scope: str
    consumer_org: str | None
    json: Mapping[str, Any] | None = None
    params: Mapping[str, str] | None = None


class AltinnClient:
    """Typed client for the consent requests API; ``http.base_url`` is Altinn's platform base
    (``https://platform.tt02.altinn.no``, or the sandbox's ``…/altinn``)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: AccessTokens,
        *,
        mode: AltinnMode | str = AltinnMode.VENDOR,
        broker_org: str,
        clock: Callable[[], datetime],
        read_scope: str | None = None,
        messages: RequestMessages | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        self._http = http
        self._tokens = tokens
        self._mode = AltinnMode(mode)
        self._broker_org = broker_org
        self._clock = clock
        self._write_scope = ORG_SCOPE if self._mode is AltinnMode.ORG else WRITE_SCOPE
        self._read_scope = read_scope or self._write_scope
        self._messages = messages or RequestMessages()
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter or secrets.SystemRandom().random

    @property
    def mode(self) -> AltinnMode:
        return self._mode

    async def create(self, request: AltinnRequest) -> AltinnCreated:
        """Create the request (201), or read it back when the id exists with the same parties
        (200). Refusals, including an id taken by other parties (``AM-00016``), raise
        ``AltinnRefused``."""
        consent_id = request.id
        if consent_id is None:
            raise ValueError("Altinn 3 requests carry the id we chose")
        call = _Call(
            "POST",
            API_PATH,
            self._write_scope,
            self._consumer_org(request.requestor_org),
            json=create_body(request, messages=self._messages),
        )
        response = await self._exchange(call)
        return self._parse(lambda body: parse_created(body, consent_id=consent_id), response)

    async def status(self, consent_id: uuid.UUID, *, requestor_org: str) -> AltinnState:
        """The request as Altinn has it now; EXPIRED once ``validTo`` has passed. An unknown
        id raises ``AltinnRefused("not_found")``; one the caller may not read ``AM-00000``."""
        call = _Call(
            "GET", f"{API_PATH}/{consent_id}", self._read_scope, self._consumer_org(requestor_org)
        )
        response = await self._exchange(call)
        state = self._parse(lambda body: parse_state(body, now=self._clock()), response)
        if state.id != consent_id:
            raise AltinnBadResponse("Altinn answered for another consent request")
        return state

    async def withdraw(self, consent_id: uuid.UUID, *, requestor_org: str, granted: bool) -> bool:
        """Altinn 3 has no consumer-side revocation or deletion (§2.2, §4.2): only the end user
        revokes, in the portal. So nothing is sent, and the answer is False."""
        return False

    async def events(
        self,
        continuation: str | None,
        *,
        requestor_org: str,
        created_after: datetime | None = None,
    ) -> EventsPage:
        """One page of the events feed of requests to ``requestor_org``, oldest first, from
        ``continuation`` (a page's ``cursor``) or from the start. Altinn hides events younger
        than its safety lag (300 s). ``created_after`` narrows a start without a token."""
        params: dict[str, str] = {}
        if continuation is not None:
            params["continuationToken"] = continuation
        if created_after is not None:
            if created_after.utcoffset() is None:
                raise ValueError("created_after must carry a UTC offset")
            params["createdAfter"] = created_after.isoformat()
        call = _Call(
            "GET",
            f"{API_PATH}/events",
            self._read_scope,
            self._consumer_org(requestor_org),
            params=params,
        )
        response = await self._exchange(call)
        return self._parse(lambda body: parse_events(body, requested=continuation), response)

    def _consumer_org(self, requestor_org: str) -> str | None:
        if self._mode is AltinnMode.ORG or requestor_org == self._broker_org:
            return None
        return requestor_org

    @staticmethod
    def _parse(parse: Callable[[Any], _T], response: httpx.Response) -> _T:
        try:
            return parse(response.json())
        except (WireError, ValueError) as exc:
            # WireError names the field; a JSON error's text could quote the body, so not it.
            reason = str(exc) if isinstance(exc, WireError) else "the body is not JSON"
            raise AltinnBadResponse(
                f"unusable answer from Altinn: {reason}", status=response.status_code
            ) from exc

    async def _exchange(self, call: _Call) -> httpx.Response:
        """Send ``call`` until it succeeds, is refused, or the retry budget is spent."""
        attempt, reauthorised = 0, False
        while True:
            attempt += 1
            try:
                response, token = await self._send(call)
            except AltinnUnavailable as unavailable:
                await self._back_off(call, unavailable, attempt)
                continue
            if response.status_code == 401 and not reauthorised:
                # A token the cache still held but Altinn no longer takes: one fresh try,
                # which does not count against the retry budget.
                self._tokens.invalidate(call.scope, consumer_org=call.consumer_org, token=token)
                reauthorised, attempt = True, attempt - 1
                continue
            failure = from_response(response, now=self._clock())
            if failure is None:
                return response
            await self._back_off(call, failure, attempt)

    async def _send(self, call: _Call) -> tuple[httpx.Response, str]:
        """The answer to one attempt, and the token it carried."""
        token = (await self._tokens.access_token(call.scope, consumer_org=call.consumer_org)).token
        request = self._http.build_request(
            call.method,
            call.path,
            json=call.json,
            params=call.params,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        try:
            return await self._http.send(request), token
        except httpx.TransportError as exc:
            # The type name only: nothing upstream-made goes into our messages.
            raise AltinnUnavailable(f"no answer from Altinn ({type(exc).__name__})") from exc

    async def _back_off(self, call: _Call, error: AltinnError, attempt: int) -> None:
        """Wait before the next attempt, or raise ``error`` when it is final."""
        if not isinstance(error, AltinnUnavailable) or isinstance(error, AltinnBadResponse):
            raise error
        delay = self._retry.delay(attempt, retry_after=error.retry_after, jitter=self._jitter())
        if delay is None:
            raise error
        # The path is left out: it carries the consent id, which stays out of logs.
        logger.warning(
            "Altinn %s failed (%s); attempt %d in %.2f s", call.method, error, attempt + 1, delay
        )
        await self._sleep(delay)
