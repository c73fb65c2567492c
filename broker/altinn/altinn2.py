"""Altinn 2's consent API for tjenestekode 5616_2 (``shared/reference/altinn-consent.md`` §1.1,
§2.1, §3.1, §4.1, §5.3), behind the same consent ports as Altinn 3.

Implements ``AltinnConsents`` (create, status, withdraw) and ``ConsentTokens`` (a verified
consent token for a request), so the consent flow runs unchanged on either generation:

- ``create`` posts a pre-registered consent request ("forhåndsregistrert", the only kind
  Skatteetaten supports) and returns Altinn's AuthorizationCode and the GUI link. Altinn
  chooses the code, so a POST is not repeatable: it is never retried (a person reloading the
  page tries again). Called with a stored code, it reads that request back instead.
- ``status`` reads ``GET /api/consentRequests/{code}``; ``consent_token`` fetches the 30-second
  JWT (``GET /api/authorization/token/{code}``) and verifies it against Altinn's keys. Altinn
  answers 403 both when the consent is gone and when our access is wrong, so a 403 is told apart
  by reading the request: only a readable, accepted request means "the consent is gone".
- ``withdraw`` deletes an unanswered request, or discards the rights of a granted one
  (``DELETE /api/authorization/token/{code}``, the only consumer-side revocation, §4.1).

Every call carries the ``ApiKey``; in ``maskinporten`` mode also a Maskinporten token
(``altinn:consentrequests.write`` for requests, ``altinn:consenttokens`` for tokens), with
``consumer_org`` = the contracting authority, which makes the broker the request's
``HandledBy`` (the vendor flow, ``maskinporten.md`` §3.1). In ``apikey`` mode the key alone
authenticates, the broker being the SRR-approved handler. The AuthorizationCode is a secret:
it is never logged (paths with it are left out of log lines).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from broker.altinn.altinn2_schemas import (
    A2Request,
    ServiceEdition,
    create_body,
    parse_errors,
    parse_request,
    token_from_claims,
)
from broker.altinn.altinn2_verifier import Altinn2TokenVerifier
from broker.altinn.client import AccessTokens, RetryPolicy
from broker.altinn.errors import (
    AltinnBadResponse,
    AltinnError,
    AltinnRefused,
    AltinnUnavailable,
    retry_after,
)
from broker.altinn.schemas import WireError
from broker.consent.ports import (
    AltinnCreated,
    AltinnRequest,
    AltinnState,
    AltinnStatus,
    ConsentToken,
    ConsentUnavailable,
)
from broker.maskinporten.errors import TokenInvalid

__all__ = [
    "REQUESTS_SCOPE",
    "TOKENS_SCOPE",
    "Altinn2Auth",
    "Altinn2Client",
    "OrganisationNames",
]

logger = logging.getLogger("broker.altinn2")

API_PATH = "/api/consentRequests"
TOKEN_PATH = "/api/authorization/token"  # noqa: S105 - a path, not a password
REQUESTS_SCOPE = "altinn:consentrequests.write"
TOKENS_SCOPE = "altinn:consenttokens"
HAL = "application/hal+json"
_LANGUAGES = {"nb": "nb-NO", "nn": "nn-NO", "en": "en"}


class Altinn2Auth(StrEnum):
    MASKINPORTEN = "maskinporten"  # ApiKey plus a Maskinporten token (vendor: consumer_org)
    APIKEY = "apikey"  # the ApiKey alone (the broker is the SRR-approved handler)


class OrganisationNames(Protocol):
    """Registered names of organisations: Altinn 2 refuses an ``OfferedByName`` that is not
    the organisation's name (§2.1)."""

    async def name(self, orgnr: str) -> str:
        """The name, or ``UpstreamRefused`` for an unknown organisation; UpstreamUnavailable."""
        ...


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    scope: str
    requestor_org: str
    json: dict[str, Any] | None = None
    retry: bool = True


class Altinn2Client:
    """``http.base_url`` is Altinn 2's host (``https://www.altinn.no``, ``https://tt02.altinn.no``
    or the sandbox's ``…/altinn2``)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: AccessTokens,
        *,
        api_key: str,
        broker_org: str,
        names: OrganisationNames,
        verifier: Altinn2TokenVerifier,
        clock: Callable[[], datetime],
        auth: Altinn2Auth | str = Altinn2Auth.MASKINPORTEN,
        service: ServiceEdition | None = None,
        tokens_scope: str = TOKENS_SCOPE,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        self._http = http
        self._tokens = tokens
        self._api_key = api_key
        self._broker_org = broker_org
        self._names = names
        self._verifier = verifier
        self._clock = clock
        self._auth = Altinn2Auth(auth)
        self.service = service or ServiceEdition("5616", 2)
        self._tokens_scope = tokens_scope
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter or secrets.SystemRandom().random

    def __repr__(self) -> str:  # the API key stays out of every repr
        return f"Altinn2Client(service={self.service.key!r}, auth={self._auth.value!r})"

    # --- AltinnConsents ------------------------------------------------------------------------

    async def create(self, request: AltinnRequest) -> AltinnCreated:
        if request.id is not None:
            existing = await self._read(request.id, request.requestor_org)
            self._check_parties(existing, request)
            return AltinnCreated(existing.state.id, self._view_uri(existing, request.language))
        subject_name = await self._names.name(request.subject_org)
        requestor_name = await self._names.name(request.requestor_org)
        handled_by = None if request.requestor_org == self._broker_org else self._broker_org
        body = create_body(
            request,
            service=self.service,
            subject_name=subject_name,
            requestor_name=requestor_name,
            handled_by=handled_by,
        )
        call = _Call("POST", API_PATH, REQUESTS_SCOPE, request.requestor_org, body, retry=False)
        created = self._parse(await self._exchange(call))
        self._check_parties(created, request)
        return AltinnCreated(created.state.id, self._view_uri(created, request.language))

    @staticmethod
    def _check_parties(answer: A2Request, request: AltinnRequest) -> None:
        state = answer.state
        if (state.subject_org, state.requestor_org) != (request.subject_org, request.requestor_org):
            raise AltinnBadResponse("Altinn 2 answered with another request's parties")

    async def status(self, consent_id: uuid.UUID, *, requestor_org: str) -> AltinnState:
        return (await self._read(consent_id, requestor_org)).state

    async def withdraw(self, consent_id: uuid.UUID, *, requestor_org: str, granted: bool) -> bool:
        """Delete the unanswered request, or discard a grant's rights. Altinn answers 403 when
        there is nothing (left) to act on, which counts as done."""
        if not granted:
            call = _Call("DELETE", f"{API_PATH}/{consent_id}", REQUESTS_SCOPE, requestor_org)
            try:
                await self._exchange(call)
                return True
            except AltinnRefused as exc:
                if exc.status == 403:
                    return True
                # 400: answered meanwhile; what may have been granted is discarded below.
        call = _Call("DELETE", f"{TOKEN_PATH}/{consent_id}", self._tokens_scope, requestor_org)
        try:
            await self._exchange(call)
        except AltinnRefused as exc:
            if exc.status != 403:
                raise
            logger.warning("Altinn 2 had nothing to discard (403)")
        return True

    # --- ConsentTokens -------------------------------------------------------------------------

    async def consent_token(
        self, *, consent_id: uuid.UUID, subject_org: str, requestor_org: str
    ) -> ConsentToken:
        """A fresh, verified 30-second consent token. ``ConsentUnavailable`` when Altinn keeps
        no valid consent under the code (refused, revoked, discarded, expired)."""
        call = _Call("GET", f"{TOKEN_PATH}/{consent_id}", self._tokens_scope, requestor_org)
        try:
            response = await self._exchange(call)
        except AltinnRefused as exc:
            if exc.status != 403:
                raise
            raise await self._why_no_token(consent_id, requestor_org) from None
        try:
            value = response.json()
        except ValueError as exc:
            raise AltinnBadResponse("the consent token is not JSON", status=200) from exc
        if not isinstance(value, str):
            raise AltinnBadResponse("the consent token is not a JSON string", status=200)
        try:
            claims = await self._verifier.verify(value)
            return token_from_claims(
                value,
                claims,
                consent_id=consent_id,
                subject_org=subject_org,
                requestor_org=requestor_org,
                service=self.service,
            )
        except (TokenInvalid, WireError) as exc:
            reason = exc.reason if isinstance(exc, TokenInvalid) else str(exc)
            raise AltinnRefused("invalid_token", reason, status=200) from exc

    async def _why_no_token(self, consent_id: uuid.UUID, requestor_org: str) -> AltinnError:
        """After a 403 on the token: ``ConsentUnavailable`` if the request is ours and was
        accepted or refused (the consent is gone), else the refusal of our access."""
        try:
            state = await self.status(consent_id, requestor_org=requestor_org)
        except AltinnRefused as exc:
            logger.error("Altinn 2 refused the broker's access to a request (%s)", exc.code)
            return AltinnRefused("forbidden", "Altinn 2 refused the broker's access", status=403)
        reason = "expired" if state.status is AltinnStatus.EXPIRED else state.status.value.lower()
        return _Gone("altinn2_" + ("revoked" if reason == "accepted" else reason))

    # --- HTTP ----------------------------------------------------------------------------------

    def _view_uri(self, request: A2Request, language: str) -> str:
        if request.gui is None:
            raise AltinnBadResponse("Altinn 2 sent no GUI link (_links.gui)")
        separator = "&" if "?" in request.gui else "?"
        code = _LANGUAGES.get(language, "nb-NO")
        return f"{request.gui}{separator}{urlencode({'languageCode': code})}"

    async def _read(self, consent_id: uuid.UUID, requestor_org: str) -> A2Request:
        call = _Call("GET", f"{API_PATH}/{consent_id}", REQUESTS_SCOPE, requestor_org)
        read = self._parse(await self._exchange(call))
        if read.state.id != consent_id:
            raise AltinnBadResponse("Altinn 2 answered for another consent request")
        return read

    def _parse(self, response: httpx.Response) -> A2Request:
        try:
            return parse_request(response.json(), now=self._clock())
        except (WireError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, WireError) else "the body is not JSON"
            raise AltinnBadResponse(
                f"unusable answer from Altinn 2: {reason}", status=response.status_code
            ) from exc

    def _consumer_org(self, requestor_org: str) -> str | None:
        return None if requestor_org == self._broker_org else requestor_org

    async def _headers(self, call: _Call) -> tuple[dict[str, str], str | None]:
        headers = {"ApiKey": self._api_key, "Accept": HAL}
        if self._auth is Altinn2Auth.APIKEY:
            return headers, None
        token = await self._tokens.access_token(
            call.scope, consumer_org=self._consumer_org(call.requestor_org)
        )
        headers["Authorization"] = f"Bearer {token.token}"
        return headers, token.token

    async def _exchange(self, call: _Call) -> httpx.Response:
        attempt, reauthorised = 0, False
        while True:
            attempt += 1
            headers, token = await self._headers(call)
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, headers=headers
                )
            except httpx.TransportError as exc:
                failure: AltinnError = AltinnUnavailable(
                    f"no answer from Altinn 2 ({type(exc).__name__})"
                )
                await self._back_off(call, failure, attempt)
                continue
            if response.status_code == 401 and token is not None and not reauthorised:
                consumer = self._consumer_org(call.requestor_org)
                self._tokens.invalidate(call.scope, consumer_org=consumer, token=token)
                reauthorised, attempt = True, attempt - 1
                continue
            error = _failure(response, now=self._clock())
            if error is None:
                return response
            await self._back_off(call, error, attempt)

    async def _back_off(self, call: _Call, error: AltinnError, attempt: int) -> None:
        if not isinstance(error, AltinnUnavailable) or not call.retry:
            raise error
        delay = self._retry.delay(attempt, retry_after=error.retry_after, jitter=self._jitter())
        if delay is None:
            raise error
        logger.warning(
            "Altinn 2 %s failed (%s); attempt %d in %.2f s", call.method, error, attempt + 1, delay
        )
        await self._sleep(delay)


class _Gone(AltinnRefused, ConsentUnavailable):
    """No token because the consent is gone: refused, revoked, discarded or expired."""

    def __init__(self, code: str) -> None:
        super().__init__(code, "Altinn 2 has no valid consent under the code", status=403)


def _failure(response: httpx.Response, *, now: datetime) -> AltinnError | None:
    status = response.status_code
    if 200 <= status < 300:
        return None
    if status == 429 or status >= 500:
        phrase = f"Altinn 2 answered {status}"
        return AltinnUnavailable(phrase, status=status, retry_after=retry_after(response, now=now))
    if status == 400:
        try:
            errors = parse_errors(response.json())
        except ValueError:
            errors = []
        if errors:
            detail = "; ".join(f"{e.code}: {e.description}" for e in errors)
            codes = tuple(e.code for e in errors)
            return AltinnRefused(errors[0].code, detail, status=400, codes=codes)
    names = {401: "unauthorized", 403: "forbidden", 404: "not_found"}
    if 400 <= status < 500:
        code = names.get(status, f"http_{status}")
        return AltinnRefused(code, f"Altinn 2 answered {status}", status=status)
    return AltinnBadResponse(f"Altinn 2 answered {status}", status=status)
