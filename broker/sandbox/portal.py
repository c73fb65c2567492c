"""The demo portal: a small procurement system that asks for consent through the broker.

It is a client of the broker's public API only (``/v1/consent-requests``), with its own API key,
so that a person running the demo can click the whole flow:

    GET  /               the start form and the requests this portal created
    POST /start          creates a consent request, then 303 to the broker's ``consent_url``
    GET  /return         where the broker sends the browser back; shows the request
    GET  /requests/{id}  the request as the API reports it, with its history
    GET  /requests/{id}/data  fetches Skatteetaten's data through the broker's relay and
                         verifies its ``Broker-Signature`` against the broker's JWKS
    POST /webhooks       the portal's webhook endpoint (``portal_webhooks.py``): verifies each
                         delivery with the ``standardwebhooks`` library
    GET  /webhooks       the deliveries received, with their verification results

The status shown is always the one read from the API: the query the broker adds to the return URL
(``consent_request``, ``status``) only says which request to read. Routes are relative to the
portal's root and every link carries ``root_path``, so it works mounted under ``/portal``.

Broker answers become pages: a transport failure is a 502 "broker unreachable" page; a problem
(RFC 9457) shows its title, detail and code, with status 404 for 404, 400 for 400/409/422 (the
input) and 502 otherwise; anything else the portal cannot read is a 502. The API key is sent
only in the ``Authorization`` header and is redacted from anything shown.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.sandbox.parties import OrgKind, PartyRegistry
from broker.sandbox.portal_html import (
    LANGUAGES,
    ConsentRequest,
    Grant,
    HistoryEntry,
    OppdragData,
    PortalEntry,
    Problem,
    data_page,
    detail_page,
    form_page,
    message_page,
    problem_page,
    webhooks_page,
)
from broker.sandbox.portal_webhooks import BODY_LIMIT, WebhookInbox

__all__ = [
    "SECURITY_HEADERS",
    "PortalConfig",
    "PortalRequests",
    "SignatureInvalid",
    "create_portal",
    "verify_signature",
]

SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
API_PATH = "/v1/consent-requests"
JWKS_PATH = "/.well-known/jwks.json"
SIGNATURE_HEADER = "Broker-Signature"
_FORM_LIMIT = 8192
_REFERENCE_MAX = 200
_REDACTED = "[redacted]"
_UNEXPECTED = "Unexpected answer from the broker"
_T = TypeVar("_T")


@dataclass(frozen=True)
class PortalConfig:
    broker_url: str  # the broker's public base URL, e.g. http://127.0.0.1:8000
    api_key: str = field(repr=False)
    return_url: str  # the portal's own return page, registered with the broker for this client
    # The signing secrets of the portal's webhook endpoint (current first, then the previous
    # one during a rotation); empty: deliveries cannot be verified and are refused.
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)

    def api_url(self, path: str) -> str:
        return f"{self.broker_url.rstrip('/')}{API_PATH}{path}"

    def jwks_url(self) -> str:
        return f"{self.broker_url.rstrip('/')}{JWKS_PATH}"


class SignatureInvalid(Exception):
    """The detached JWS does not verify over the body with the published keys."""


def verify_signature(signature: str, body: bytes, jwks: Any) -> str:
    """Check the broker's detached JWS (``<header>..<signature>``, RS256) over ``body``
    against the key set ``jwks``; return the key id that verified it."""
    protected, _, rest = signature.partition("..")
    if not protected or not rest or "." in rest:
        raise SignatureInvalid("the signature is not a detached compact JWS")
    payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
    try:
        keys = KeySet.import_key_set(jwks)
        verified = jws.deserialize_compact(
            f"{protected}.{payload}.{rest}", keys, algorithms=["RS256"]
        )
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise SignatureInvalid(f"the signature does not verify ({type(exc).__name__})") from exc
    return str(verified.headers().get("kid", ""))


class PortalRequests:
    """The requests this portal created, newest first; in memory and bounded."""

    def __init__(self, limit: int = 500) -> None:
        self._entries: OrderedDict[str, PortalEntry] = OrderedDict()
        self._limit = limit

    def add(self, entry: PortalEntry) -> None:
        self._entries.pop(entry.id, None)  # an idempotent replay is not a new request
        self._entries[entry.id] = entry
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)

    def newest_first(self) -> list[PortalEntry]:
        return list(reversed(self._entries.values()))


# --- the broker's API ---------------------------------------------------------------------------


class _BrokerFailure(Exception):
    """A call to the broker that gave no usable answer, with the page status to show."""

    def __init__(self, status: int, title: str, message: str, problem: Problem | None = None):
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message
        self.problem = problem


class _Malformed(Exception):
    pass


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _Malformed(key)
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _Malformed(key)
    return value


def _id(data: Mapping[str, Any]) -> str:
    try:
        return str(uuid.UUID(_text(data, "id")))
    except ValueError as exc:
        raise _Malformed("id") from exc


def _consent_request(data: Any) -> ConsentRequest:
    if not isinstance(data, dict):
        raise _Malformed("body")
    grant = data.get("grant")
    if grant is not None and not isinstance(grant, dict):
        raise _Malformed("grant")
    return ConsentRequest(
        id=_id(data),
        status=_text(data, "status"),
        requestor=_text(data, "requestor"),
        subject=_text(data, "subject"),
        reference=_text(data, "reference"),
        language=_text(data, "language"),
        valid_to=_text(data, "valid_to"),
        # The broker gives a consent_url only while the request can still be answered.
        consent_url=_optional_text(data, "consent_url"),
        created_at=_text(data, "created_at"),
        updated_at=_text(data, "updated_at"),
        status_reason=_optional_text(data, "status_reason"),
        grant=None
        if grant is None
        else Grant(
            consented_at=_text(grant, "consented_at"),
            valid_to=_text(grant, "valid_to"),
            revoked_at=_optional_text(grant, "revoked_at"),
            revoked_by=_optional_text(grant, "revoked_by"),
        ),
    )


def _history(data: Any) -> list[HistoryEntry]:
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _Malformed("items")
    return [
        HistoryEntry(
            at=_text(i, "at"),
            action=_text(i, "action"),
            state=_optional_text(i, "state"),
            reason=_optional_text(i, "reason"),
        )
        for i in items
    ]


def _page_status(broker_status: int) -> int:
    if broker_status == 404:
        return 404
    return 400 if broker_status in (400, 409, 422) else 502


class _BrokerApi:
    def __init__(self, config: PortalConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http

    def _safe(self, value: object, fallback: str) -> str:
        text = value if isinstance(value, str) else fallback
        return text.replace(self.config.api_key, _REDACTED) if self.config.api_key else text

    def _problem(self, response: httpx.Response) -> Problem | None:
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/problem+json":
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        return Problem(
            status=response.status_code,
            title=self._safe(body.get("title"), "Error"),
            detail=self._safe(body.get("detail"), ""),
            code=self._safe(body.get("code"), ""),
        )

    async def _send(
        self,
        method: str,
        url: str,
        *,
        json: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = await self.http.request(method, url, json=json, headers=headers)
        except httpx.TransportError as exc:
            message = f"Could not reach the broker ({type(exc).__name__}). Is it running?"
            raise _BrokerFailure(502, "Broker unreachable", message) from exc
        if not response.is_success:
            problem = self._problem(response)
            if problem is None:
                message = f"The broker answered HTTP {response.status_code} without a problem."
                raise _BrokerFailure(502, _UNEXPECTED, message)
            status = _page_status(response.status_code)
            raise _BrokerFailure(status, "The broker refused", problem.title, problem)
        return response

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        sent = {
            "Authorization": f"Bearer {self.config.api_key}",
            "Accept": "application/json",
            **(headers or {}),
        }
        response = await self._send(method, self.config.api_url(path), json=json, headers=sent)
        try:
            return response.json()
        except ValueError as exc:
            raise _BrokerFailure(502, _UNEXPECTED, "The broker's answer was not JSON.") from exc

    async def _read(
        self,
        parse: Callable[[Any], _T],
        method: str,
        path: str,
        *,
        json: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _T:
        body = await self._call(method, path, json=json, headers=headers)
        try:
            return parse(body)
        except _Malformed as exc:
            message = f"The broker's answer lacks a valid '{exc}'."
            raise _BrokerFailure(502, _UNEXPECTED, message) from exc

    async def create(self, body: Mapping[str, str], idempotency_key: str) -> ConsentRequest:
        headers = {"Idempotency-Key": idempotency_key}
        return await self._read(_consent_request, "POST", "", json=body, headers=headers)

    async def get(self, request_id: str) -> ConsentRequest:
        return await self._read(_consent_request, "GET", f"/{request_id}")

    async def history(self, request_id: str) -> list[HistoryEntry]:
        return await self._read(_history, "GET", f"/{request_id}/history")

    async def oppdrag(self, request_id: str) -> httpx.Response:
        """The relay's answer: Skatteetaten's JSON body with the broker's signature."""
        sent = {"Authorization": f"Bearer {self.config.api_key}", "Accept": "application/json"}
        url = self.config.api_url(f"/{request_id}/oppdrag")
        return await self._send("GET", url, headers=sent)

    async def jwks(self) -> Any:
        """The broker's published keys (no credentials: they are public)."""
        response = await self._send("GET", self.config.jwks_url())
        try:
            return response.json()
        except ValueError as exc:
            raise _BrokerFailure(502, _UNEXPECTED, "The broker's JWKS is not JSON.") from exc


_COUNTS = (
    "antallAktiveOppdragSomArbeidsgiver",
    "antallAktiveArbeidstakere",
    "antallRegistrerteOppdragSomOppdragsgiver",
)


def _oppdrag(response: httpx.Response, kid: str) -> OppdragData:
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise _Malformed("body") from exc
    if not isinstance(body, dict):
        raise _Malformed("body")
    oppdrag = body.get("oppdrag")
    if not isinstance(oppdrag, dict):
        raise _Malformed("oppdrag")
    counts = []
    for name in _COUNTS:
        value = oppdrag.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise _Malformed(f"oppdrag.{name}")
        counts.append((name, value))
    return OppdragData(
        subject=_optional_text(body, "forespurteOrganisasjon"),
        counts=counts,
        levert=response.headers.get("skatteetaten-levert") or _optional_text(body, "levert"),
        korrelasjonsid=response.headers.get("skatteetaten-korrelasjonsid"),
        request_id=response.headers.get("x-request-id"),
        kid=kid,
    )


# --- the pages ----------------------------------------------------------------------------------


class _SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every response, Starlette's own 404 and 405 included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _prefix(request: Request) -> str:
    """Where the portal is mounted (``root_path``): every link and form action carries it."""
    return str(request.scope.get("root_path", ""))


def _html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status)


def _uuid(raw: str | None, *, version: int | None = None) -> str | None:
    try:
        value = uuid.UUID(raw) if raw else None
    except ValueError:
        return None
    if value is None or (version is not None and value.version != version):
        return None
    return str(value)


async def _form(request: Request) -> dict[str, str] | None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return None
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        return None
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


class _Portal:
    def __init__(
        self,
        config: PortalConfig,
        http: httpx.AsyncClient,
        parties: PartyRegistry,
        requests: PortalRequests,
    ) -> None:
        self.config = config
        self.api = _BrokerApi(config, http)
        self.parties = parties
        self.requests = requests
        self.inbox = WebhookInbox(config.webhook_secrets)
        self.csrf = secrets.token_urlsafe(32)  # per process: enough for a local demo
        self.authorities = self._choices(OrgKind.CONTRACTING_AUTHORITY)
        self.suppliers = self._choices(OrgKind.FOREIGN_SUPPLIER)

    def _choices(self, kind: OrgKind) -> list[tuple[str, str]]:
        return [(o.orgnr, f"{o.name} ({o.orgnr})") for o in self.parties.of_kind(kind)]

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/start", self.start, methods=["POST"]),
            Route("/return", self.returned, methods=["GET"]),
            Route("/requests/{id}", self.show, methods=["GET"]),
            Route("/requests/{id}/data", self.data, methods=["GET"]),
            Route("/webhooks", self.webhooks, methods=["GET", "POST"]),
        ]

    def party(self, orgnr: str) -> str:
        org = self.parties.organisation(orgnr)
        return f"{org.name} ({org.orgnr})" if org else orgnr

    def _form_page(
        self,
        request: Request,
        *,
        values: Mapping[str, str] | None = None,
        errors: list[str] | None = None,
    ) -> HTMLResponse:
        key = _uuid((values or {}).get("idempotency_key"), version=4) or str(uuid.uuid4())
        page = form_page(
            prefix=_prefix(request),
            csrf=self.csrf,
            idempotency_key=key,
            authorities=self.authorities,
            suppliers=self.suppliers,
            entries=self.requests.newest_first(),
            party=self.party,
            values=values,
            errors=errors or [],
        )
        return _html(page, 400 if errors else 200)

    def _failure(self, request: Request, failure: _BrokerFailure) -> HTMLResponse:
        prefix = _prefix(request)
        if failure.problem is not None:
            heading = "The broker did not accept the call."
            return _html(
                problem_page(failure.problem, heading=heading, prefix=prefix), failure.status
            )
        return _html(message_page(failure.title, failure.message, prefix=prefix), failure.status)

    def _validate(self, form: Mapping[str, str]) -> list[str]:
        errors = []
        if form.get("requestor") not in dict(self.authorities):
            errors.append("Choose a contracting authority from the list.")
        if form.get("subject") not in dict(self.suppliers):
            errors.append("Choose a supplier from the list.")
        reference = form.get("reference", "").strip()
        if not reference or len(reference) > _REFERENCE_MAX:
            errors.append(f"Write a reference of 1 to {_REFERENCE_MAX} characters.")
        elif any(not c.isprintable() for c in reference):
            errors.append("The reference may not contain control characters.")
        if form.get("language") not in dict(LANGUAGES):
            errors.append("Choose a language from the list.")
        if _uuid(form.get("idempotency_key"), version=4) is None:
            errors.append("The form has expired; submit it again.")
        return errors

    async def index(self, request: Request) -> Response:
        return self._form_page(request)

    async def start(self, request: Request) -> Response:
        form = await _form(request)
        if form is None or not hmac.compare_digest(
            form.get("csrf", "").encode(), self.csrf.encode()
        ):
            message = "The form has expired or did not come from this portal; reload it."
            return _html(message_page("Form expired", message, prefix=_prefix(request)), 403)
        errors = self._validate(form)
        if errors:
            return self._form_page(request, values=form, errors=errors)
        body = {
            "requestor": form["requestor"],
            "subject": form["subject"],
            "reference": form["reference"].strip(),
            "return_url": self.config.return_url,
            "language": form["language"],
        }
        try:
            created = await self.api.create(body, str(uuid.UUID(form["idempotency_key"])))
        except _BrokerFailure as failure:
            return self._failure(request, failure)
        if not (created.consent_url or "").startswith(("https://", "http://")):
            message = "The broker's consent_url is not an http(s) URL."
            page = message_page(_UNEXPECTED, message, prefix=_prefix(request))
            return _html(page, 502)
        self.requests.add(
            PortalEntry(
                created.id,
                created.requestor,
                created.subject,
                created.reference,
                created.created_at,
            )
        )
        assert created.consent_url is not None
        return RedirectResponse(created.consent_url, status_code=303)

    async def _detail(self, request: Request, raw_id: str | None, *, returned: bool) -> Response:
        prefix = _prefix(request)
        request_id = _uuid(raw_id)
        if request_id is None:
            message = "The link does not name a consent request."
            page = message_page("Unknown consent request", message, prefix=prefix)
            return _html(page, 400 if returned else 404)
        try:
            consent = await self.api.get(request_id)
            history = await self.api.history(request_id)
        except _BrokerFailure as failure:
            return self._failure(request, failure)
        page = detail_page(
            prefix=prefix, request=consent, history=history, party=self.party, returned=returned
        )
        return _html(page)

    async def returned(self, request: Request) -> Response:
        # The query's "status" is a hint only: the page shows what the API says.
        return await self._detail(
            request, request.query_params.get("consent_request"), returned=True
        )

    async def show(self, request: Request) -> Response:
        return await self._detail(request, request.path_params["id"], returned=False)

    async def data(self, request: Request) -> Response:
        """Fetch through the relay; show the data only once its signature verifies."""
        prefix = _prefix(request)
        request_id = _uuid(request.path_params["id"])
        if request_id is None:
            message = "The link does not name a consent request."
            return _html(message_page("Unknown consent request", message, prefix=prefix), 404)
        try:
            answer = await self.api.oppdrag(request_id)
            jwks = await self.api.jwks()
        except _BrokerFailure as failure:
            return self._failure(request, failure)
        signature = answer.headers.get(SIGNATURE_HEADER)
        try:
            if not signature:
                raise SignatureInvalid("the answer has no Broker-Signature")
            kid = verify_signature(signature, answer.content, jwks)
        except SignatureInvalid as exc:
            page = data_page(prefix=prefix, request_id=request_id, data=None, error=str(exc))
            return _html(page, 502)
        try:
            data = _oppdrag(answer, kid)
        except _Malformed as exc:
            message = f"The data lacks a valid '{exc}'."
            return _html(message_page(_UNEXPECTED, message, prefix=prefix), 502)
        return _html(data_page(prefix=prefix, request_id=request_id, data=data, error=None))

    async def webhooks(self, request: Request) -> Response:
        if request.method != "POST":
            received = self.inbox.newest_first()
            return _html(webhooks_page(prefix=_prefix(request), received=received))
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > BODY_LIMIT:
                break
        entry = self.inbox.receive(body, request.headers)
        # 2xx only for a delivery that verifies: the broker retries anything else.
        return Response(status_code=204 if entry.verified else 400)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Page not found", 405: "Method not allowed"}
        title = titles.get(exc.status_code, "Error")
        message = f"{title} (HTTP {exc.status_code})."
        page = message_page(title, message, prefix=_prefix(request))
        return HTMLResponse(page, status_code=exc.status_code, headers=exc.headers)


def create_portal(
    config: PortalConfig,
    http: httpx.AsyncClient,
    parties: PartyRegistry,
    *,
    requests: PortalRequests | None = None,
) -> Starlette:
    """The portal app. ``http`` reaches the broker (the caller owns and closes it); the
    contracting authorities and foreign suppliers of ``parties`` fill the form's selects."""
    portal = _Portal(config, http, parties, PortalRequests() if requests is None else requests)
    return Starlette(
        routes=portal.routes(),
        middleware=[Middleware(_SecurityHeaders)],
        exception_handlers={HTTPException: portal.http_error},
    )
