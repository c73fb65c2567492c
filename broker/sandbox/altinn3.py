"""Fake Altinn 3 Access Management: the enterprise consent API and the consent page.

Follows ``../shared/reference/altinn-consent.md`` §2.2 (endpoints, fields, responses), §4.2
(status model), §5.1 (errors), §5.4 (redirect) and §6.2. Compose it with the shared consent
register (which the Maskinporten and Skatteetaten fakes read) and the Maskinporten fake's JWKS::

    state = Altinn3State(register=register, parties=default_parties(), clock=clock)
    app = create_app(config, clock, state=state, maskinporten_jwks=maskinporten_keys.public_jwks)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.sandbox.altinn3_auth import (
    CREATE_SCOPES,
    ORG_SCOPE,
    READ_SCOPES,
    Caller,
    JwksSource,
    authenticate,
    empty,
)
from broker.sandbox.altinn3_binding import BindingError, ConsentRequestInput, PartyUrn, bind_request
from broker.sandbox.altinn3_events import bind_query, next_link, select_events, validate
from broker.sandbox.altinn3_page import page_routes
from broker.sandbox.altinn3_problems import AM, Problem, problem_response, validation_problem
from broker.sandbox.altinn3_resources import default_requestconsent
from broker.sandbox.altinn3_state import Altinn3State
from broker.sandbox.altinn3_validation import validate_request
from broker.sandbox.altinn3_wire import request_dto, status_change_dto
from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentRecord, org_urn

__all__ = ["API_PATH", "Altinn3Config", "create_app"]

API_PATH = "/accessmanagement/api/v1/enterprise/consentrequests"


@dataclass(frozen=True)
class Altinn3Config:
    # Where the consent page is reached from a browser: the base of ``viewUri``.
    public_base_url: str = "http://localhost:8002"
    # Maskinporten's issuer: tokens with another ``iss`` are refused.
    maskinporten_issuer: str = "http://localhost:8001/"
    token_leeway_seconds: int = 0  # (inferred) no clock skew
    # resource id -> consumer orgnrs with the ``requestconsent`` right (else 403).
    requestconsent: Mapping[str, frozenset[str]] = field(default_factory=default_requestconsent)
    events_page_size: int = 100
    events_safety_lag_seconds: int = 300
    pascal_case_event_types: bool = True  # events feed: ``Accepted`` (code) vs docs' ``accepted``
    pascal_case_enums: bool = True  # (inferred) status/eventType/portalViewMode in the DTO
    multiple_problems_as_500: bool = True  # Altinn's STD-00001 quirk
    logout_hop: bool = True  # end the page session on the way back, as Altinn does


class _Api:
    def __init__(self, config: Altinn3Config, clock: Clock, state: Altinn3State, jwks: JwksSource):
        self.config = config
        self.clock = clock
        self.state = state
        self.jwks = jwks

    def routes(self) -> list[Route]:
        return [
            Route(API_PATH, self.create, methods=["POST"]),
            Route(f"{API_PATH}/", self.create, methods=["POST"]),
            Route(f"{API_PATH}/events", self.events, methods=["GET"]),
            Route(f"{API_PATH}/{{id}}", self.read, methods=["GET"]),
        ]

    def _authenticate(self, request: Request, scopes: frozenset[str]) -> Caller | Response:
        return authenticate(
            request,
            jwks=self.jwks,
            issuer=self.config.maskinporten_issuer,
            now=self.clock.timestamp(),
            leeway=self.config.token_leeway_seconds,
            scopes=scopes,
        )

    def _problem(self, problem: Problem) -> Response:
        return problem_response(problem, multiple_as_500=self.config.multiple_problems_as_500)

    def _dto(
        self, record: ConsentRecord, status: int, headers: dict[str, str] | None = None
    ) -> Response:
        body = request_dto(
            record,
            now=self.clock.now(),
            public_base_url=self.config.public_base_url,
            pascal=self.config.pascal_case_enums,
        )
        return JSONResponse(body, status_code=status, headers=headers)

    async def create(self, request: Request) -> Response:
        caller = self._authenticate(request, CREATE_SCOPES)
        if isinstance(caller, Response):
            return caller
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return _unsupported_media_type()
        try:
            req = bind_request(await request.body())
        except BindingError as exc:
            return self._problem(validation_problem([exc.error]))
        if caller.consumer is None:
            return empty(401)
        allowed, handled_by = _handled_by(caller.consumer, caller, req)
        if not allowed or not self._may_request_consent(caller.consumer, req):
            return empty(403)
        return self._store(request, caller.consumer, req, handled_by)

    def _may_request_consent(self, consumer: str, req: ConsentRequestInput) -> bool:
        # Altinn asks its PDP about the first resource of each right; an empty list is left
        # to validation here (Altinn would fail on it with a 500).
        for right in req.consent_rights:
            if not right.resource:
                continue
            allowed = self.config.requestconsent.get(right.resource[0]["value"], frozenset())
            if consumer not in allowed:
                return False
        return True

    def _store(
        self, request: Request, consumer: str, req: ConsentRequestInput, handled_by: PartyUrn | None
    ) -> Response:
        now = self.clock.now()
        existing = self.state.get(req.id)
        if existing is not None:
            # Same id and parties: the stored request, whatever else differs, and nothing is
            # validated again (altinn-consent.md §2.2, §5.4).
            same = (existing.from_party, existing.to_party) == (
                req.from_party.urn,
                req.to_party.urn,
            )
            if same:
                return self._dto(existing, 200)
            return self._problem(AM.ID_EXISTS.with_extensions(requestId=str(req.id)))
        problem = validate_request(
            req,
            handled_by=handled_by,
            parties=self.state.parties,
            resources=self.state.resources,
            now=now,
        )
        if problem is not None:
            return self._problem(problem)
        record = _record(req, handled_by, now)
        self.state.register.add(record, performed_by=org_urn(consumer))
        root = request.scope.get("root_path", "")
        location = f"{request.url.scheme}://{request.url.netloc}{root}{API_PATH}/{record.id}"
        return self._dto(record, 201, {"Location": location})

    async def read(self, request: Request) -> Response:
        try:
            consent_id = uuid.UUID(request.path_params["id"])
        except ValueError:
            return Response(status_code=404)  # the ``{id:guid}`` route does not match
        caller = self._authenticate(request, READ_SCOPES)
        if isinstance(caller, Response):
            return caller
        if caller.consumer is None:
            return empty(401)
        record = self.state.get(consent_id)
        if record is None:
            return self._problem(AM.NOT_FOUND)
        if record.to_party != org_urn(caller.consumer):  # handledBy does not count (§2.2)
            return self._problem(AM.NOT_AUTHORIZED)
        return self._dto(record, 200)

    async def events(self, request: Request) -> Response:
        caller = self._authenticate(request, READ_SCOPES)
        if isinstance(caller, Response):
            return caller
        bound = bind_query(request.query_params)
        if isinstance(bound, Problem):
            return self._problem(bound)
        if caller.consumer is None:
            return empty(401)
        query = validate(bound)
        if isinstance(query, Problem):
            return self._problem(query)
        page = select_events(
            self.state.register,
            to_party=org_urn(caller.consumer),
            query=query,
            now=self.clock.now(),
            lag_seconds=self.config.events_safety_lag_seconds,
            page_size=self.config.events_page_size,
        )
        links: dict[str, str] = {}
        if page and len(page) == self.config.events_page_size:
            links["next"] = next_link(request.url, request.query_params, query, page[-1])
        pascal = self.config.pascal_case_event_types
        data = [status_change_dto(e, pascal=pascal) for e in page]
        return JSONResponse({"links": links, "data": data})


def _handled_by(
    consumer: str, caller: Caller, req: ConsentRequestInput
) -> tuple[bool, PartyUrn | None]:
    """Whether the caller may ask, and who handles the request: the ``supplier`` if any; when
    ``to`` is not the caller only ``.org`` may ask, and the caller handles it (AM-CTRL: "Used
    in EBEVIS where Digdir request consent")."""
    caller_party = PartyUrn(True, consumer)
    if req.to_party != caller_party:
        return ORG_SCOPE in caller.scopes, caller_party
    return True, None if caller.supplier is None else PartyUrn(True, caller.supplier)


def _record(req: ConsentRequestInput, handled_by: PartyUrn | None, now: datetime) -> ConsentRecord:
    return ConsentRecord(
        id=req.id,
        from_party=req.from_party.urn,
        to_party=req.to_party.urn,
        handled_by=None if handled_by is None else handled_by.urn,
        required_delegator=None if req.required_delegator is None else req.required_delegator.urn,
        valid_to=req.valid_to,
        consent_rights=[right.wire() for right in req.consent_rights],
        request_message=req.request_message,
        redirect_url=req.redirect_url,
        portal_view_mode=req.portal_view_mode,
        created=now,
    )


def _unsupported_media_type() -> Response:
    body = {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.16",
        "title": "Unsupported Media Type",
        "status": 415,
    }
    return JSONResponse(body, status_code=415, media_type="application/problem+json")


def create_app(
    config: Altinn3Config,
    clock: Clock,
    *,
    state: Altinn3State,
    maskinporten_jwks: JwksSource,
) -> Starlette:
    """The fake's ASGI app. ``state`` must use the same clock; ``maskinporten_jwks`` returns the
    Maskinporten fake's public JWKS (read on every request, so key rotation shows at once)."""
    if state.clock is not clock:
        raise ValueError("the state and the app must share one clock")
    api = _Api(config, clock, state, maskinporten_jwks)
    routes = api.routes() + page_routes(state, logout_hop=config.logout_hop)
    return Starlette(routes=routes)
