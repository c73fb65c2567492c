"""The fake Skatteetaten "Oppdrag utenlandske virksomheter" API (Altinn 3 and Altinn 2 consent).

``GET /v1/{rettighetspakke}/utenlandskevirksomheter/{orgnr}/oppdrag/antall`` as described in
``shared/reference/skatteetaten.md`` (§6 above all). A call meets its checks in this order, and
the first that fails decides the answer:

1. path and method (only GET on the route above) → 404 -003, or a gateway page (quirk);
2. ``Accept`` → 406 -009 (JSON body: nothing acceptable was asked for);
3. bearer token: one ``Authorization: Bearer``, RS256 signature against the Maskinporten JWKS,
   expiry, ``iss``, ``aud`` unspecified, a ``consumer`` → 401 -004;
4. scope ``skatteetaten:oppdragutenlandskevirksomheter`` → 403 -005;
5. rettighetspakke known (else per config, 400 -006 by default), orgnr valid → 400 -006;
6. the consumer holds the rettighetspakke → 403 -005;
7. ``ebevis`` only, per ``consent_mode``: the Altinn 3 consent in ``authorization_details``, or
   the Altinn 2 consent in ``AltinnSamtykke`` (``skatteetaten_altinn2.py``), and the consent
   still valid at the fake Altinn → 403 -007;
8. the orgnr has a fixture → 404 -008;
9. an injected fault, if any; otherwise 200 with the JSON or XML body.

Every call to the route is counted per consumer org (from a verified token) and outcome, and the
calls in flight per consumer are measured; the limit of 5 is counted, never enforced (§1.5).

Connection reset: the response headers go out (200, no ``Content-Length``) and then the app
raises ``ConnectionReset``, an ``httpx.RemoteProtocolError``. Uvicorn logs it and closes the
socket mid-response, so a real httpx client raises ``httpx.RemoteProtocolError`` ("peer closed
connection without sending complete message body"). ``httpx.ASGITransport`` re-raises the same
exception to the client, provided it runs with ``raise_app_exceptions=True`` (its default); with
``False`` it would turn into a truncated 200. Raising before the headers would not do: uvicorn
then answers 500.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentRegister
from broker.sandbox.skatteetaten_altinn2 import Altinn2View, code_hint
from broker.sandbox.skatteetaten_auth import (
    Caller,
    Refusal,
    authenticate,
    check_consent,
    check_path,
    consent_id_hint,
    require_scope,
)
from broker.sandbox.skatteetaten_bodies import (
    AUTHORISATION,
    BACKEND_ERROR,
    DAS_FORBIDDEN,
    DAS_UNAVAILABLE,
    FORMAT,
    ORG_NOT_FOUND,
    UNEXPECTED_ERROR,
    UNKNOWN_URL,
    ErrorCode,
    Format,
    OppdragFixture,
    error_body,
    format_levert,
    is_uuid,
    negotiate,
    success_body,
    success_document,
)
from broker.sandbox.skatteetaten_config import CONSENT_PACKAGES, SkatteetatenConfig
from broker.sandbox.skatteetaten_state import (
    OUTCOME_OK,
    UNAUTHENTICATED,
    CallRecord,
    Fault,
    SkatteetatenState,
    UnknownUrlStyle,
)

__all__ = ["PATH", "ConnectionReset", "Jwks", "Sleep", "create_app"]

PATH = "/v1/{rettighetspakke}/utenlandskevirksomheter/{orgnr}/oppdrag/antall"

Sleep = Callable[[float], Awaitable[None]]
Jwks = Callable[[], Mapping[str, Any]]

_CODED_FAULTS: dict[Fault, ErrorCode] = {
    Fault.ERROR_001: UNEXPECTED_ERROR,
    Fault.ERROR_002: BACKEND_ERROR,
    Fault.DAS_003: DAS_UNAVAILABLE,
    Fault.DAS_008: DAS_FORBIDDEN,
}
_GATEWAY_FAULTS: dict[Fault, tuple[int, str]] = {
    Fault.BAD_GATEWAY: (502, "502 Bad Gateway"),
    Fault.UNAVAILABLE: (503, "503 Service Temporarily Unavailable"),
}


class ConnectionReset(httpx.RemoteProtocolError):
    """Raised by the app to drop the connection after the response headers (see module doc)."""


@dataclass(frozen=True)
class _Context:
    config: SkatteetatenConfig
    clock: Clock
    state: SkatteetatenState
    register: ConsentRegister
    jwks: Jwks
    sleep: Sleep
    zone: ZoneInfo
    altinn2: Altinn2View | None


@dataclass(frozen=True)
class _Answer:
    response: Response
    outcome: str


def create_app(
    config: SkatteetatenConfig,
    clock: Clock,
    *,
    state: SkatteetatenState,
    register: ConsentRegister,
    jwks: Jwks,
    sleep: Sleep = asyncio.sleep,
    altinn2: Altinn2View | None = None,
) -> Starlette:
    """The API app. ``jwks`` returns the Maskinporten key set and is called on every call;
    ``altinn2`` gives Altinn 2's keys and register, for the ``AltinnSamtykke`` modes."""
    zone = ZoneInfo(config.levert_timezone)
    ctx = _Context(config, clock, state, register, jwks, sleep, zone, altinn2)
    return Starlette(
        routes=[Route(PATH, _OppdragEndpoint(ctx)), Route("/{path:path}", _UnknownUrl(ctx))]
    )


class _UnknownUrl:
    def __init__(self, ctx: _Context) -> None:
        self._ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        korrelasjonsid = _korrelasjonsid(self._ctx.config, request)
        fmt = negotiate(_accept(request)) or Format.JSON
        answer = _unknown_url(self._ctx, fmt, korrelasjonsid)
        _record(self._ctx, request, UNAUTHENTICATED, answer, korrelasjonsid, None)
        await answer.response(scope, receive, send)


class _OppdragEndpoint:
    def __init__(self, ctx: _Context) -> None:
        self._ctx = ctx
        self._unknown_url = _UnknownUrl(ctx)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx, request = self._ctx, Request(scope, receive)
        if request.method != "GET":
            await self._unknown_url(scope, receive, send)
            return
        korrelasjonsid = _korrelasjonsid(ctx.config, request)
        identity = _identify(ctx, request)
        caller = identity if isinstance(identity, Caller) else None
        consumer = caller.consumer if caller else UNAUTHENTICATED
        ctx.state.enter(consumer, limit=ctx.config.concurrency_limit)
        try:
            latency = ctx.state.switches.latency_seconds
            if latency > 0:
                await ctx.sleep(latency)
            answer = _answer(ctx, request, identity, korrelasjonsid)
            hint = consent_id_hint(caller) or code_hint(request.headers.get("altinnsamtykke"))
            _record(ctx, request, consumer, answer, korrelasjonsid, hint)
            await answer.response(scope, receive, send)
        finally:
            ctx.state.leave(consumer)


def _identify(ctx: _Context, request: Request) -> Caller | Refusal:
    try:
        return authenticate(
            request.headers.getlist("authorization"),
            ctx.jwks(),
            config=ctx.config,
            now=ctx.clock.timestamp(),
        )
    except Refusal as refusal:
        return refusal


def _accept(request: Request) -> str | None:
    values = request.headers.getlist("accept")
    return ", ".join(values) if values else None


def _answer(
    ctx: _Context, request: Request, identity: Caller | Refusal, korrelasjonsid: str
) -> _Answer:
    fmt = negotiate(_accept(request))
    if fmt is None:
        detail = f"Accept-verdien {_accept(request)!r} støttes ikke."
        return _error(ctx, Refusal(FORMAT, detail), Format.JSON, korrelasjonsid)
    try:
        orgnr, fixture = _check(ctx, request, identity)
    except Refusal as failed:
        if failed.code is UNKNOWN_URL:
            return _unknown_url(ctx, fmt, korrelasjonsid)
        return _error(ctx, failed, fmt, korrelasjonsid)
    return _deliver(ctx, orgnr, fixture, fmt, korrelasjonsid)


def _check(
    ctx: _Context, request: Request, identity: Caller | Refusal
) -> tuple[str, OppdragFixture]:
    if isinstance(identity, Refusal):
        raise identity
    caller = identity
    require_scope(caller)
    package, orgnr = request.path_params["rettighetspakke"], request.path_params["orgnr"]
    check_path(package, orgnr, config=ctx.config)
    if not ctx.state.holds_package(caller.consumer, package):
        raise Refusal(AUTHORISATION, f"Konsumenten har ikke rettighetspakken {package!r}.")
    if package in CONSENT_PACKAGES:
        check_consent(
            caller,
            orgnr,
            config=ctx.config,
            register=ctx.register,
            now=ctx.clock.now(),
            altinn_samtykke=request.headers.get("altinnsamtykke"),
            altinn2=ctx.altinn2,
        )
    fixture = ctx.state.fixture_for(orgnr)
    if fixture is None:
        raise Refusal(ORG_NOT_FOUND, f"Organisasjonsnummer {orgnr} finnes ikke.")
    return orgnr, fixture


def _deliver(
    ctx: _Context, orgnr: str, fixture: OppdragFixture, fmt: Format, korrelasjonsid: str
) -> _Answer:
    fault = ctx.state.take_fault()
    if fault is not None and fault in _CODED_FAULTS:
        code = _CODED_FAULTS[fault]
        return _error(ctx, Refusal(code, "Simulert feil."), fmt, korrelasjonsid)
    if fault is not None and fault in _GATEWAY_FAULTS:
        status, title = _GATEWAY_FAULTS[fault]
        page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return _Answer(HTMLResponse(page, status_code=status), f"gateway-{status}")
    if fault is Fault.CONNECTION_RESET:
        return _Answer(_ResetResponse(fmt), "connection-reset")
    body = _success_body(ctx, orgnr, fixture, fmt)
    headers = _korrelasjonsid_header(ctx.config, korrelasjonsid)
    if fault is Fault.SLOW_BODY:
        stream = _trickle(body, ctx.state, ctx.sleep)
        return _Answer(StreamingResponse(stream, media_type=fmt, headers=headers), OUTCOME_OK)
    return _Answer(Response(body, media_type=fmt, headers=headers), OUTCOME_OK)


def _success_body(ctx: _Context, orgnr: str, fixture: OppdragFixture, fmt: Format) -> bytes:
    quirks = ctx.state.switches.quirks
    with_fraction = ctx.state.next_levert_has_fraction()
    levert = format_levert(ctx.clock.now(), ctx.zone, with_fraction=with_fraction)
    document = success_document(
        orgnr,
        fixture,
        levert,
        extra_field=quirks.extra_unknown_field,
        reordered=quirks.reordered_keys,
    )
    return success_body(document, fmt, root=ctx.config.xml_root, namespace=ctx.config.xml_namespace)


async def _trickle(body: bytes, state: SkatteetatenState, sleep: Sleep) -> AsyncIterator[bytes]:
    size = max(1, state.switches.slow_chunk_size)
    for start in range(0, len(body), size):
        await sleep(state.switches.slow_chunk_delay_seconds)
        yield body[start : start + size]


class _ResetResponse(Response):
    def __init__(self, fmt: Format) -> None:
        super().__init__(status_code=200)
        # No Content-Length: the client must be left waiting for a body that never comes.
        self.raw_headers = [(b"content-type", fmt.value.encode("latin-1"))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        await send(start)
        raise ConnectionReset("the fake Skatteetaten dropped the connection (injected fault)")


def _error(ctx: _Context, refusal: Refusal, fmt: Format, korrelasjonsid: str) -> _Answer:
    body = error_body(refusal.code, refusal.melding, korrelasjonsid, fmt)
    headers = _korrelasjonsid_header(ctx.config, korrelasjonsid)
    response = Response(body, status_code=refusal.code.status, media_type=fmt, headers=headers)
    return _Answer(response, refusal.code.kode)


def _unknown_url(ctx: _Context, fmt: Format, korrelasjonsid: str) -> _Answer:
    style = ctx.state.switches.quirks.unknown_url_style
    if style is UnknownUrlStyle.GATEWAY:
        return _Answer(PlainTextResponse("404 NOT FOUND", status_code=404), "gateway-404")
    if style is UnknownUrlStyle.UNKNOWN_INSTANCE:
        text = f"Unknown instance. ID={uuid.uuid4().hex}"
        return _Answer(PlainTextResponse(text, status_code=404), "unknown-instance")
    return _error(ctx, Refusal(UNKNOWN_URL, "Sjekk adressen."), fmt, korrelasjonsid)


def _korrelasjonsid(config: SkatteetatenConfig, request: Request) -> str:
    sent = request.headers.get("korrelasjonsid")
    if config.echo_korrelasjonsid and sent is not None and is_uuid(sent):
        return sent
    return str(uuid.uuid4())


def _korrelasjonsid_header(config: SkatteetatenConfig, korrelasjonsid: str) -> dict[str, str]:
    return {"Korrelasjonsid": korrelasjonsid} if config.korrelasjonsid_response_header else {}


def _record(
    ctx: _Context,
    request: Request,
    consumer: str,
    answer: _Answer,
    korrelasjonsid: str,
    consent_id: str | None,
) -> None:
    call = CallRecord(
        at=ctx.clock.now(),
        consumer=consumer,
        method=request.method,
        path=request.url.path,
        status=answer.response.status_code,
        outcome=answer.outcome,
        korrelasjonsid=korrelasjonsid,
        consent_id=consent_id,
    )
    ctx.state.record(call)
