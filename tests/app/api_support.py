"""Helpers for the client-API tests.

``api_stack`` is ``tests.flow.stack`` with an :class:`OpenApiChecker` on the API client: every
answer the API tests receive is validated against the OpenAPI document as it arrives (operation,
status code, content type, required headers, body schema), so the document is kept true by all
of them. The rest: valid request bodies, problem checks, API keys, Maskinporten tokens, and
moving a request through the browser flow.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import func, select

from broker.consent.openapi import PROBLEM_TYPE_PREFIX, document
from broker.sandbox.maskinporten import SandboxClient
from broker.store.models import ConsentRequest as RequestRow
from tests.flow import AUTHORITY, PORTAL_RETURN, SANDBOX, SUPPLIER, Stack, Tenant, stack
from tests.support import problem

__all__ = [
    "CLIENT_SCOPE",
    "FORMATS",
    "OpenApiChecker",
    "api_stack",
    "denied",
    "expect_problem",
    "expect_refused",
    "field_errors",
    "granted",
    "issue_key",
    "maskinporten_client",
    "maskinporten_token",
    "new_body",
    "post",
    "redirect",
    "register_tenant",
    "request_rows",
    "revoke_key",
    "without",
]

CLIENT_SCOPE = "ebevisbroker:consentrequests"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_DOC_URI = "urn:ebevis-broker:openapi"


def new_body(**fields: Any) -> dict[str, Any]:
    """A valid create body; ``fields`` replace members (``None`` values included)."""
    return {
        "requestor": AUTHORITY,
        "subject": SUPPLIER,
        "reference": "case-42",
        "return_url": PORTAL_RETURN,
        **fields,
    }


def without(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != name}


async def post(
    s: Stack,
    body: Any,
    *,
    tenant: Tenant | None = None,
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    sent = {
        **(tenant or s.tenant).headers,
        "Content-Type": "application/json",
        **(headers or {}),
    }
    if key is not None:
        sent["Idempotency-Key"] = key
    # Serialised here: httpx sends no body at all for ``json=None``.
    content = json.dumps(body).encode()
    return await s.api.post("/v1/consent-requests", content=content, headers=sent)


def expect_problem(response: httpx.Response, status: int, code: str) -> Mapping[str, Any]:
    assert response.status_code == status, response.text
    body = problem(response)
    assert body["code"] == code, body
    assert body["type"] == PROBLEM_TYPE_PREFIX + code
    return body


def expect_refused(response: httpx.Response) -> None:
    """401 ``unauthenticated`` with the challenge, whatever was wrong with the credentials."""
    expect_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == 'Bearer realm="ebevis-broker"'


def field_errors(response: httpx.Response) -> set[str]:
    body = expect_problem(response, 422, "validation_failed")
    errors = body["errors"]
    assert isinstance(errors, list)
    return {e["field"] for e in errors}


# --- Tenants, keys and Maskinporten -----------------------------------------------------------


async def register_tenant(s: Stack, name: str, org: str) -> Tenant:
    clients = s.app.state.clients
    client_id = await clients.register(name=name, org_number=org, return_urls=(PORTAL_RETURN,))
    key = await clients.issue_key(client_id)
    return Tenant(client_id, key.value)


async def issue_key(s: Stack, tenant: Tenant) -> str:
    key = await s.app.state.clients.issue_key(tenant.client_id, label="rotation")
    assert isinstance(key.value, str)
    return key.value


async def revoke_key(s: Stack, tenant: Tenant, api_key: str) -> None:
    assert await s.app.state.clients.revoke_key(tenant.client_id, api_key)


async def request_rows(s: Stack, tenant: Tenant) -> int:
    async with s.app.state.resources.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(RequestRow)
            .where(RequestRow.client_id == tenant.client_id)
        )
    assert isinstance(count, int)
    return count


def maskinporten_client(s: Stack, client_id: str, org: str, scopes: set[str]) -> SandboxClient:
    """Register a Maskinporten client in the sandbox world and return its private half."""
    client = SandboxClient.generate(client_id, org, scopes)
    s.sandbox.maskinporten.register_client(client.registration())
    return client


async def maskinporten_token(
    s: Stack, client: SandboxClient, scope: str, *, consumer_org: str | None = None
) -> str:
    """A real access token from the sandbox's Maskinporten (JWT-bearer grant)."""
    assertion = client.assertion(
        f"{SANDBOX}/maskinporten/",
        now=s.sandbox.clock.timestamp(),
        scope=scope,
        consumer_org=consumer_org,
    )
    response = await s.sandbox_http.post(
        "/maskinporten/token", data={"grant_type": JWT_BEARER, "assertion": assertion}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


# --- Moving requests along the flow -------------------------------------------------------------


async def redirect(s: Stack, created: Mapping[str, Any]) -> str:
    """Open the consent link in a new browser (request → redirected); return the Altinn id."""
    async with s.browser() as browser:
        return await s.go_to_altinn(browser, created["consent_url"])


async def granted(s: Stack, tenant: Tenant | None = None, **fields: Any) -> dict[str, Any]:
    created = await s.create(tenant, **fields)
    async with s.browser() as browser:
        altinn_id = await s.go_to_altinn(browser, created["consent_url"])
        back = await s.come_back(browser, await s.answer(altinn_id, "approve"))
    assert back.status_code == 303, back.text
    assert "status=granted" in back.headers["location"]
    return created


async def denied(s: Stack, tenant: Tenant | None = None, **fields: Any) -> dict[str, Any]:
    created = await s.create(tenant, **fields)
    async with s.browser() as browser:
        altinn_id = await s.go_to_altinn(browser, created["consent_url"])
        back = await s.come_back(browser, await s.answer(altinn_id, "reject"))
    assert "status=denied" in back.headers["location"]
    return created


# --- The OpenAPI checker ------------------------------------------------------------------------

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
FORMATS = FormatChecker(formats=())


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    datetime.fromisoformat(value)
    return _RFC3339.fullmatch(value) is not None


def _uuid(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value


def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


# jsonschema checks no format by default, and "date-time" and "uri" need optional packages.
FORMATS.checks("date-time", raises=ValueError)(_date_time)
FORMATS.checks("uuid", raises=ValueError)(_uuid)
FORMATS.checks("uri")(_uri)


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class OpenApiChecker:
    """Validates answers of the broker against the OpenAPI document and records what it saw."""

    def __init__(self, doc: dict[str, Any] | None = None) -> None:
        self.doc = doc if doc is not None else document()
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_DOC_URI, resource)
        self._paths = [
            (re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"), path)
            for path in self.doc["paths"]
        ]
        self.seen: set[tuple[str, str, str]] = set()  # (path template, method, status)
        self.codes: set[str] = set()

    def validator(self, *pointer: str) -> Draft202012Validator:
        schema = {"$ref": f"{_DOC_URI}#/{_pointer(*pointer)}"}
        return Draft202012Validator(schema, registry=self._registry, format_checker=FORMATS)

    def template(self, path: str) -> str | None:
        return next((template for pattern, template in self._paths if pattern.match(path)), None)

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.check(response)

    def check(self, response: httpx.Response) -> None:
        request = response.request
        path = self.template(request.url.path)
        method = request.method.lower()
        if path is None or method not in self.doc["paths"][path]:
            return  # not an operation of the API (e.g. a 405 for another method)
        status = str(response.status_code)
        responses = self.doc["paths"][path][method]["responses"]
        assert status in responses, f"{method.upper()} {path}: undocumented status {status}"
        self.seen.add((path, method, status))
        documented = responses[status]
        media = response.headers.get("content-type", "").split(";")[0].strip()
        assert media in documented["content"], f"{method} {path} {status}: content type {media}"
        for name, header in documented.get("headers", {}).items():
            if self.resolve(header).get("required"):
                assert name.lower() in response.headers, f"{method} {path} {status}: no {name}"
        pointer = ("paths", path, method, "responses", status, "content", media, "schema")
        if media == "text/html":
            return
        body = response.json()
        _raise_first(self.validator(*pointer), body, f"{method.upper()} {path} {status}")
        if media == "application/problem+json":
            self.codes.add(body["code"])
            assert body["type"] == PROBLEM_TYPE_PREFIX + body["code"]
            assert body["request_id"] == response.headers["x-request-id"]
        self._check_request(request, path, method, response, body)

    def _check_request(
        self,
        request: httpx.Request,
        path: str,
        method: str,
        response: httpx.Response,
        body: Any,
    ) -> None:
        """What the API accepted must match the documented request, and the Idempotency-Key
        schema must agree with the broker's own check of the key."""
        if (path, method) != ("/v1/consent-requests", "post"):
            return
        if response.status_code == 201:
            sent = json.loads(request.content)
            pointer = ("paths", path, method, "requestBody", "content", "application/json")
            _raise_first(self.validator(*pointer, "schema"), sent, "accepted request body")
        key = request.headers.get("idempotency-key")
        if key is None:
            return
        key_ok = self.validator("components", "parameters", "IdempotencyKey", "schema")
        code = body.get("code") if isinstance(body, dict) else None
        if response.status_code == 201 or code == "idempotency_key_reused":
            assert key_ok.is_valid(key), f"accepted key {key!r} breaks the documented schema"
        if code == "invalid_idempotency_key":
            assert not key_ok.is_valid(key), f"refused key {key!r} fits the documented schema"

    def resolve(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = item.get("$ref")
        if not isinstance(ref, str):
            return item
        node: Any = self.doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, Mapping)
        return node


def _raise_first(validator: Draft202012Validator, instance: Any, what: str) -> None:
    error = next(iter(validator.iter_errors(instance)), None)
    if error is not None:
        location = "/".join(str(p) for p in error.absolute_path)
        raise AssertionError(f"{what}: {error.message} at /{location}")


@asynccontextmanager
async def api_stack(
    database_url: str,
    tmp_path: Path,
    *,
    checker: OpenApiChecker | None = None,
    webhooks: httpx.AsyncBaseTransport | None = None,
    **settings: str,
) -> AsyncIterator[Stack]:
    """``tests.flow.stack`` whose API client checks every answer against the document;
    ``webhooks`` is the network to the clients' webhook receivers."""
    async with stack(database_url, tmp_path, None, webhooks, **settings) as s:
        s.api.event_hooks = {"request": [], "response": [(checker or OpenApiChecker()).hook]}
        yield s
