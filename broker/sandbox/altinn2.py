"""Fake Altinn 2: the consent request API, consent tokens, Altinn's keys, and the consent page.

Follows ``../shared/reference/altinn-consent.md`` §1.1 (flow), §2.1 (endpoints and fields),
§3.1 (token), §4.1 (status model), §5.3 (errors) and §6.3 (what a faithful fake does)::

    POST   /api/consentRequests                       create (201; HAL _links on request)
    GET    /api/consentRequests/{code}                read (403 when unknown or not yours)
    DELETE /api/consentRequests/{code}                withdraw while unanswered (204)
    GET    /api/authorization/token/{code}            a JSON string holding a 30 s RS256 JWT
    DELETE /api/authorization/token/{code}            discard the rights (204)
    POST   /api/authorization/token/{code}/loguse     log a use (204; ends a one-time consent)
    GET    /api/metadata/jwk                          primary and secondary signing key
    GET    /api/metadata/well-known, /.well-known/oauth-authorization-server
    GET    /ui/AccessConsent/request?id={code}        the consent page (``altinn2_page.py``)
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.sandbox.altinn2_auth import A2Caller, JwksSource, authenticate, forbidden
from broker.sandbox.altinn2_config import (
    CONSENT_REQUEST_READ_SCOPES,
    CONSENT_REQUEST_SCOPES,
    CONSENT_TOKEN_SCOPES,
    ISSUER,
    Altinn2Config,
    redirect_allowed,
)
from broker.sandbox.altinn2_page import page_routes
from broker.sandbox.altinn2_state import A2Request, Altinn2ActionError, Altinn2State
from broker.sandbox.altinn2_tokens import Altinn2Keys, token_claims
from broker.sandbox.altinn2_validation import (
    BAD_BODY,
    BAD_REDIRECT,
    A2Error,
    bind,
    parse_datetime,
    validate_create,
)
from broker.sandbox.clock import Clock

__all__ = ["API_PATH", "Altinn2Config", "create_app", "gui_url", "request_dto"]

API_PATH = "/api/consentRequests"
TOKEN_PATH = "/api/authorization/token"  # noqa: S105 - a path, not a password
HAL = "application/hal+json"


def _errors(errors: list[A2Error]) -> Response:
    return JSONResponse([e.wire() for e in errors], status_code=400)


def _local(moment: Any, zone: ZoneInfo) -> str | None:
    # .NET writes DateTime without an offset: local time with milliseconds (§2.1 example).
    return None if moment is None else moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def gui_url(base: str, code: uuid.UUID) -> str:
    return f"{base}/ui/AccessConsent/request?id={code}"


def request_dto(request: A2Request, *, base: str, zone: ZoneInfo, hal: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AuthorizationCode": str(request.code),
        "RequestStatus": request.status.value,
        "CoveredBy": request.covered_by,
        "OfferedBy": request.offered_by,
        "OfferedByName": request.offered_by_name,
        "HandledBy": request.handled_by,
        "RequiredDelegator": request.required_delegator,
        "ValidTo": _local(request.valid_to, zone),
        "RedirectUrl": request.redirect_url,
        "RequestResources": [
            {
                "ServiceCode": r.service.code,
                "ServiceEditionCode": r.service.edition,
                "Metadata": r.metadata,
            }
            for r in request.resources
        ],
        "RequestMessage": request.request_message,
        "PortalViewMode": request.portal_view_mode,
        "Created": _local(request.created, zone),
        "LastChanged": _local(request.last_changed, zone),
    }
    if hal:
        body["_links"] = {
            "self": {"href": f"{base}{API_PATH}/{request.code}"},
            "gui": {"href": gui_url(base, request.code)},
        }
    return body


@dataclass
class _Api:
    config: Altinn2Config
    clock: Clock
    state: Altinn2State
    keys: Altinn2Keys
    maskinporten_jwks: JwksSource

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.config.local_timezone)

    def routes(self) -> list[Route]:
        faulty = self._faulty
        return [
            Route(API_PATH, faulty(self.create), methods=["POST"]),
            Route(f"{API_PATH}/{{code}}", faulty(self.read), methods=["GET"]),
            Route(f"{API_PATH}/{{code}}", faulty(self.withdraw), methods=["DELETE"]),
            Route(f"{TOKEN_PATH}/{{code}}", faulty(self.token), methods=["GET"]),
            Route(f"{TOKEN_PATH}/{{code}}", faulty(self.discard), methods=["DELETE"]),
            Route(f"{TOKEN_PATH}/{{code}}/loguse", faulty(self.loguse), methods=["POST"]),
            Route("/api/metadata/jwk", self.jwk, methods=["GET"]),
            Route("/api/metadata/well-known", self.metadata, methods=["GET"]),
            Route("/.well-known/oauth-authorization-server", self.metadata, methods=["GET"]),
        ]

    def _faulty(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            status = self.state.take_fault()
            if status is not None:  # an injected fault, before any check
                return Response(f"{status} (sandbox fault)", status_code=status)
            return await handler(request)

        return run

    def _caller(self, request: Request, scopes: frozenset[str]) -> A2Caller | Response:
        return authenticate(
            request,
            config=self.config,
            jwks=self.maskinporten_jwks,
            now=self.clock.timestamp(),
            scopes=scopes,
        )

    def _dto(self, request: Request, record: A2Request, status: int) -> Response:
        hal = HAL in request.headers.get("accept", "").lower()
        body = request_dto(record, base=self._base(request), zone=self.zone, hal=hal)
        return JSONResponse(body, status_code=status, media_type=HAL if hal else None)

    def _base(self, request: Request) -> str:
        return self.config.public_base_url

    def _mine(
        self, request: Request, scopes: frozenset[str]
    ) -> tuple[A2Caller, A2Request] | Response:
        caller = self._caller(request, scopes)
        if isinstance(caller, Response):
            return caller
        record = self.state.get(request.path_params["code"])
        if record is None or not caller.acts_for(record):
            return forbidden()  # unknown and not yours look alike (§2.1)
        return caller, record

    async def create(self, request: Request) -> Response:
        caller = self._caller(request, CONSENT_REQUEST_SCOPES)
        if isinstance(caller, Response):
            return caller
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in ("application/json", HAL):
            return Response(status_code=415)
        body = bind(await request.body())
        if isinstance(body, A2Error):
            return _errors([body])
        now = self.clock.now()
        record = validate_create(body, config=self.config, parties=self.state.parties, now=now)
        if isinstance(record, list):
            return _errors(record)
        handled_by = self._handled_by(caller, record)
        if handled_by is None:
            return forbidden("The authenticated party may not ask for consent for CoveredBy.")
        record.handled_by = handled_by or None
        if not redirect_allowed(record.redirect_url, self._redirect_domains(caller, record)):
            return _errors([A2Error(BAD_REDIRECT, "RedirectUrl is not allowed for CoveredBy.")])
        self.state.add(record)
        return self._dto(request, record, 201)

    def _handled_by(self, caller: A2Caller, record: A2Request) -> str | None:
        """The handler to record ("" for none), or None when the caller may not ask: the
        token's consumer is ``CoveredBy`` and its supplier the handler; with the API key alone
        the key's org is ``CoveredBy``, or its SRR-approved ``HandledBy`` (§2.1)."""
        if caller.consumer is not None:
            allowed = record.covered_by == caller.consumer and record.handled_by in (
                None,
                caller.supplier,
            )
            return (caller.supplier or "") if allowed else None
        if record.handled_by is None:
            return "" if record.covered_by == caller.key.org else None
        srr = self.config.srr.get(record.covered_by)
        approved = srr is not None and caller.key.org in srr.handled_by
        return record.handled_by if approved and record.handled_by == caller.key.org else None

    def _redirect_domains(self, caller: A2Caller, record: A2Request) -> tuple[str, ...]:
        srr = self.config.srr.get(record.covered_by)
        if srr is not None and srr.redirect_domains:
            return srr.redirect_domains  # SRR wins when present (§2.1)
        return caller.key.redirect_domains

    async def read(self, request: Request) -> Response:
        found = self._mine(request, CONSENT_REQUEST_READ_SCOPES)
        if isinstance(found, Response):
            return found
        return self._dto(request, found[1], 200)

    async def withdraw(self, request: Request) -> Response:
        found = self._mine(request, CONSENT_REQUEST_SCOPES)
        if isinstance(found, Response):
            return found
        try:
            self.state.withdraw(found[1].code)
        except Altinn2ActionError as exc:
            return _errors([A2Error(BAD_BODY, exc.message)])
        return Response(status_code=204)

    async def token(self, request: Request) -> Response:
        found = self._mine(request, CONSENT_TOKEN_SCOPES)
        if isinstance(found, Response):
            return found
        caller, record = found
        now = self.clock.now()
        if record.token_refusal(now) is not None:
            return forbidden()
        handled_by = record.handled_by if caller.handles(record) else None
        claims = token_claims(
            record,
            now=now,
            lifetime=self.config.token_lifetime_seconds,
            handled_by=handled_by,
        )
        self.state.tokens_issued += 1
        return JSONResponse(self.keys.sign(claims))

    async def discard(self, request: Request) -> Response:
        found = self._mine(request, CONSENT_TOKEN_SCOPES)
        if isinstance(found, Response):
            return found
        try:
            self.state.discard(found[1].code)
        except Altinn2ActionError:
            return forbidden()
        return Response(status_code=204)

    async def loguse(self, request: Request) -> Response:
        found = self._mine(request, CONSENT_TOKEN_SCOPES)
        if isinstance(found, Response):
            return found
        record = found[1]
        if record.token_refusal(self.clock.now()) is not None:
            return forbidden()
        body = bind(await request.body())
        if isinstance(body, A2Error):
            return _errors([body])
        code, edition = body.get("servicecode"), body.get("serviceeditioncode")
        match = [
            r.service
            for r in record.resources
            if (r.service.code, r.service.edition) == (str(code), edition)
        ]
        used_at = parse_datetime(body.get("usagedatetime"), self.zone)
        errors = []
        if not match:
            errors.append(A2Error(BAD_BODY, "The consent does not cover this service."))
        if used_at is None:
            errors.append(A2Error(BAD_BODY, "UsageDateTime must be yyyy-MM-ddTHH:mm:ss."))
        if errors:
            return _errors(errors)
        assert used_at is not None
        self.state.log_use(record, match[0], used_at)
        return Response(status_code=204)

    async def jwk(self, request: Request) -> Response:
        return JSONResponse(
            self.keys.public_jwks(), headers={"Cache-Control": "public, max-age=86400"}
        )

    async def metadata(self, request: Request) -> Response:
        base = self._base(request)
        return JSONResponse({"issuer": ISSUER, "jwks_uri": f"{base}/api/metadata/jwk"})


def create_app(
    config: Altinn2Config,
    clock: Clock,
    *,
    state: Altinn2State,
    keys: Altinn2Keys,
    maskinporten_jwks: Callable[[], Any],
) -> Starlette:
    """The fake's ASGI app. ``maskinporten_jwks`` returns the Maskinporten fake's key set (read
    on every call); ``keys`` are Altinn's own token-signing keys."""
    if state.clock is not clock:
        raise ValueError("the state and the app must share one clock")
    api = _Api(config, clock, state, keys, maskinporten_jwks)
    return Starlette(routes=api.routes() + page_routes(state, config))
