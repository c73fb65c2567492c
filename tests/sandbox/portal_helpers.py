"""Builders for the demo portal's tests: a fake broker implementing the public consent request
API strictly (auth, Idempotency-Key, exact body, problem+json), the portal wired to it over
``httpx.ASGITransport`` (optionally mounted under a prefix), and the form's steps.

The fixtures are registered under their short names; a test module imports them with
``from tests.sandbox.portal_helpers import broker_fixture, portal_fixture``."""

from __future__ import annotations

import base64
import functools
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from json import JSONDecodeError
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from broker.sandbox.parties import default_parties
from broker.sandbox.portal import PortalConfig, PortalRequests, create_portal

API_KEY = "portal-demo-key-7Qz2xV9c"
BROKER = "http://broker.test"
PORTAL = "http://portal.test"
RETURN_URL = f"{PORTAL}/return"
MOUNTED_RETURN_URL = f"{PORTAL}/portal/return"
CREATED_AT = "2026-03-02T09:00:00+00:00"
VALID_TO = "2026-03-09T09:00:00+00:00"
ANSWERED_AT = "2026-03-02T09:05:00+00:00"
GRANT_VALID_TO = "2027-03-02T09:05:00+00:00"

AUTHORITY = "310200018"  # DIREKTORATET FOR SANDKASSEBYGG
AUTHORITY_2 = "310200026"  # FJELLBYGD KOMMUNE
SUPPLIER = "310100013"  # NORDBYGG POLSKA NUF
SUPPLIER_2 = "310100048"  # SVENSK ELINSTALLATION NUF
BROKER_ORG = "310300012"

CONTRACT_KEYS = {"requestor", "subject", "reference", "return_url", "language"}
PROBLEM = "application/problem+json"
KORRELASJONSID = "7d1f0b8e-3c2a-4e59-9a61-2f0c8d9e1a33"
LEVERT = "2026-03-02T10:05:00.123456+01:00"
OPPDRAG = {
    "forespurteOrganisasjon": SUPPLIER,
    "oppdrag": {
        "antallAktiveOppdragSomArbeidsgiver": 44,
        "antallAktiveArbeidstakere": 64,
        "antallRegistrerteOppdragSomOppdragsgiver": 14,
    },
    "levert": "2026-03-02T10:05:00.123456",
}


@functools.cache
def signing_key(kid: str = "fake-broker-1") -> RSAKey:
    """One RSA key per kid for the whole test session (generating one takes a while)."""
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def detached(body: bytes, key: RSAKey, content_type: str = "application/json") -> str:
    header = {"alg": "RS256", "kid": str(key.kid), "cty": content_type}
    protected, _, signature = jws.serialize_compact(header, body, key).split(".")
    return f"{protected}..{signature}"


def public_jwks(*keys: RSAKey) -> dict[str, Any]:
    return dict(KeySet(list(keys)).as_dict(private=False))


PAGE_HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def problem_response(status: int, code: str, title: str, detail: str) -> JSONResponse:
    body = {"type": f"urn:test:{code}", "title": title, "status": status, "detail": detail}
    return JSONResponse({**body, "code": code}, status_code=status, media_type=PROBLEM)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any


class FakeBroker:
    """The broker's public API as the contract says, with the requests it created in memory."""

    def __init__(self, return_urls: tuple[str, ...] = (RETURN_URL, MOUNTED_RETURN_URL)) -> None:
        self.return_urls = return_urls
        self.requests: dict[str, dict[str, Any]] = {}
        self.histories: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[Call] = []
        self.keys: dict[str, tuple[dict[str, Any], str]] = {}
        self.refusal: Response | None = None  # when set, every call gets this answer
        self.key = signing_key()
        self.published = [self.key]  # the keys at /.well-known/jwks.json
        self.oppdrag_body = json.dumps(OPPDRAG).encode()
        self.tamper: bytes | None = None  # when set, sent instead of the signed body
        self.signature: str | None = None  # when set, sent instead of the real signature
        self.app = Starlette(
            routes=[
                Route("/v1/consent-requests", self.create, methods=["POST"]),
                Route("/v1/consent-requests/{id}", self.read, methods=["GET"]),
                Route("/v1/consent-requests/{id}/history", self.history, methods=["GET"]),
                Route("/v1/consent-requests/{id}/oppdrag", self.oppdrag, methods=["GET"]),
                Route("/.well-known/jwks.json", self.jwks, methods=["GET"]),
            ]
        )

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BROKER)

    async def _record(self, request: Request) -> Response | None:
        body = await request.body()
        self.calls.append(Call(request.method, request.url.path, dict(request.headers), body))
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return problem_response(401, "unauthenticated", "Unauthenticated", "Bad API key.")
        return self.refusal

    def _invalid(self, body: Any) -> str | None:
        if not isinstance(body, dict) or set(body) != CONTRACT_KEYS:
            return "the body must have exactly the contract's members"
        if not all(isinstance(v, str) for v in body.values()):
            return "every member is a string"
        for party in ("requestor", "subject"):
            if re.fullmatch(r"[0-9]{9}", body[party]) is None:
                return f"{party} is not an organisation number"
        if not 0 < len(body["reference"]) <= 200:
            return "reference is 1 to 200 characters"
        if body["return_url"] not in self.return_urls:
            return "return_url is not registered for this client"
        if body["language"] not in ("nb", "nn", "en"):
            return "language is nb, nn or en"
        return None

    async def create(self, request: Request) -> Response:
        refused = await self._record(request)
        if refused is not None:
            return refused
        key = request.headers.get("idempotency-key", "")
        try:
            uuid.UUID(key)
        except ValueError:
            return problem_response(400, "idempotency_key", "Bad request", "Idempotency-Key.")
        if request.headers.get("content-type") != "application/json":
            return problem_response(415, "media_type", "Unsupported", "Send application/json.")
        try:
            body = await request.json()
        except JSONDecodeError:
            return problem_response(400, "invalid_json", "Invalid JSON", "The body is not JSON.")
        invalid = self._invalid(body)
        if invalid is not None:
            return problem_response(422, "validation_failed", "Validation failed", invalid)
        if key in self.keys:
            earlier, request_id = self.keys[key]
            if earlier != body:
                return problem_response(409, "idempotency_conflict", "Conflict", "Key reused.")
            return JSONResponse(self.requests[request_id], status_code=201)
        request_id = self._new(body)
        self.keys[key] = (body, request_id)
        return JSONResponse(self.requests[request_id], status_code=201)

    def _new(self, body: Mapping[str, str]) -> str:
        request_id = str(uuid.uuid4())
        self.requests[request_id] = {
            "id": request_id,
            "status": "pending",
            **{k: body[k] for k in ("requestor", "subject", "reference")},
            "external_reference": None,
            "language": body["language"],
            "return_url": body["return_url"],
            "valid_to": VALID_TO,
            "consent_url": f"{BROKER}/consent/start?t={request_id}.signed",
            "created_at": CREATED_AT,
            "updated_at": CREATED_AT,
            "status_reason": None,
            "grant": None,
        }
        self.histories[request_id] = [
            {"at": CREATED_AT, "action": "created", "state": "pending", "reason": None}
        ]
        return request_id

    def _known(self, request: Request) -> str | Response:
        request_id = request.path_params["id"]
        if request_id not in self.requests:
            return problem_response(404, "not_found", "Not found", "No such consent request.")
        return str(request_id)

    async def read(self, request: Request) -> Response:
        refused = await self._record(request)
        known = refused or self._known(request)
        return known if isinstance(known, Response) else JSONResponse(self.requests[known])

    async def history(self, request: Request) -> Response:
        refused = await self._record(request)
        known = refused or self._known(request)
        if isinstance(known, Response):
            return known
        return JSONResponse({"items": self.histories[known]})

    async def oppdrag(self, request: Request) -> Response:
        """The relay: JSON only here, for granted requests, signed like the broker signs."""
        refused = await self._record(request)
        known = refused or self._known(request)
        if isinstance(known, Response):
            return known
        status = self.requests[known]["status"]
        if status != "granted":
            detail = f"The consent request is {status}, not granted"
            return problem_response(409, "consent_not_granted", "Conflict", detail)
        if request.headers.get("accept") != "application/json":
            return problem_response(406, "not_acceptable", "Not acceptable", "JSON or XML.")
        signature = self.signature
        if signature is None:
            signature = detached(self.oppdrag_body, self.key)
        headers = {
            "Skatteetaten-Korrelasjonsid": KORRELASJONSID,
            "Skatteetaten-Levert": LEVERT,
            "X-Request-ID": "relay-request-1",
        }
        if signature:  # "" leaves the header out
            headers["Broker-Signature"] = signature
        body = self.tamper if self.tamper is not None else self.oppdrag_body
        return Response(body, media_type="application/json", headers=headers)

    async def jwks(self, request: Request) -> Response:
        self.calls.append(Call(request.method, request.url.path, dict(request.headers), b""))
        return JSONResponse(public_jwks(*self.published))

    def answer(self, request_id: str, status: str, reason: str | None = None) -> None:
        """The person answered at Altinn (through ``redirected``)."""
        record = self.requests[request_id]
        for action, state in (("redirected", "redirected"), (status, status)):
            self.histories[request_id].append(
                {"at": ANSWERED_AT, "action": action, "state": state, "reason": None}
            )
        self.histories[request_id][-1]["reason"] = reason
        record.update(status=status, updated_at=ANSWERED_AT, status_reason=reason)
        # As the real broker: a consent_url only while the request can still be answered.
        record["consent_url"] = None
        if status == "granted":
            record["grant"] = {
                "consented_at": ANSWERED_AT,
                "valid_to": GRANT_VALID_TO,
                "revoked_at": None,
                "revoked_by": None,
            }

    def seed_request(self, status: str = "pending", **fields: Any) -> str:
        """A request created outside the portal (e.g. before a restart); returns its id."""
        body = {
            "requestor": AUTHORITY,
            "subject": SUPPLIER,
            "reference": "Tender 7",
            "return_url": RETURN_URL,
            "language": "nb",
        }
        request_id = self._new(body)
        if status != "pending":
            self.answer(request_id, status)
        self.requests[request_id].update(fields)
        return request_id

    def posts(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST"]


def config(prefix: str = "") -> PortalConfig:
    return PortalConfig(broker_url=BROKER, api_key=API_KEY, return_url=f"{PORTAL}{prefix}/return")


@asynccontextmanager
async def portal_client(
    broker_http: httpx.AsyncClient,
    *,
    prefix: str = "",
    requests: PortalRequests | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client for the portal that reaches the broker with ``broker_http``;
    with ``prefix`` the portal is mounted there, as the composed sandbox does."""
    portal = create_portal(config(prefix), broker_http, default_parties(), requests=requests)
    app = Starlette(routes=[Mount(prefix, app=portal)]) if prefix else portal
    transport = httpx.ASGITransport(app=app)
    async with broker_http, httpx.AsyncClient(transport=transport, base_url=PORTAL) as client:
        yield client


def unreachable() -> httpx.AsyncClient:
    """A broker client whose every call fails to connect."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url=BROKER)


def hidden(page: httpx.Response, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', page.text)
    assert match is not None, page.text
    return match.group(1)


def form(page: httpx.Response, **overrides: str) -> dict[str, str]:
    """The start form as a browser would submit it: its hidden fields plus typical choices."""
    fields = {
        "csrf": hidden(page, "csrf"),
        "idempotency_key": hidden(page, "idempotency_key"),
        "requestor": AUTHORITY,
        "subject": SUPPLIER,
        "reference": "Tender 2026/42",
        "language": "en",
    }
    fields.update(overrides)
    return fields


async def start(client: httpx.AsyncClient, prefix: str = "", **overrides: str) -> httpx.Response:
    page = await client.get(f"{prefix}/")
    assert page.status_code == 200, page.text
    return await client.post(f"{prefix}/start", data=form(page, **overrides))


def assert_page_headers(response: httpx.Response) -> None:
    for name, value in PAGE_HEADERS.items():
        assert response.headers[name] == value, name


def element_text(page: httpx.Response, element_id: str) -> str:
    match = re.search(rf'<[a-z0-9]+ id="{element_id}">(.*?)</', page.text)
    assert match is not None, page.text
    return match.group(1)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(name="broker")
def broker_fixture() -> FakeBroker:
    return FakeBroker()


@pytest.fixture(name="portal")
async def portal_fixture(broker: FakeBroker) -> AsyncIterator[httpx.AsyncClient]:
    async with portal_client(broker.http()) as client:
        yield client
