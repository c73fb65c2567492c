"""The OpenAPI document is valid, complete and true.

- valid: OpenAPI 3.1 structure (a subset of the official schema, checked with jsonschema), every
  schema valid draft 2020-12, every ``$ref`` resolvable, every example valid;
- complete: every route of the app's API is documented and every documented operation is routed;
- true: real answers of every documented operation and status validate against it (here in one
  tour, and in every API test through ``api_support.api_stack``), and the enums agree with code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.routing import Route

from broker.admin.auth import Actor
from broker.app import create_app
from broker.consent.model import Language, RevokedBy, State
from broker.consent.openapi import ERROR_CODES, STATUS_MEANINGS, document, openapi_routes
from tests.app.api_support import OpenApiChecker, granted, new_body, post
from tests.app.relay_support import (
    EBEVIS,
    KODE,
    RelayChecker,
    RelayStack,
    advance,
    feil,
    fetch,
    grant,
    relay_stack,
    revoke_in_altinn,
    set_fault,
    set_latency,
)
from tests.flow import AUTHORITY, SUPPLIER, Stack
from tests.support import make_settings, running, sqlite_url

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Routes of the app that are not the client API, and why.
_NOT_API = {
    "/consent/{id}/start": "browser: the person's link into the flow (docs/api.md)",
    "/consent/return": "browser: Altinn sends the person back here (docs/api.md)",
    "/metrics": "operator: scraped by Prometheus, not for clients",
}
# Documented answers no test can provoke on purpose.
# (500 internal_error is documented for every operation and provoked by none.)
_UNREACHABLE = {
    ("/v1/consent-requests", "post", "409"),  # in_progress: the key's row is never committed
}
_UNREACHABLE_CODES = {
    "internal_error",
    "in_progress",
    "state_changed",  # DELETE racing another change inside one request
    "method_not_allowed",  # not an operation's answer
}

_REF = {"$ref": "#/$defs/reference"}
_X: dict[str, Any] = {"^x-": {}}


def _either(name: str) -> dict[str, Any]:
    return {"oneOf": [_REF, {"$ref": f"#/$defs/{name}"}]}


def _map(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": item}


def _closed(needed: list[str], /, **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": needed,
        "properties": properties,
        "patternProperties": _X,
        "additionalProperties": False,
    }


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
# The parts of the official OpenAPI 3.1 schema (spec.openapis.org/oas/3.1/schema) this
# document uses, written out: closed objects, so a misspelt keyword fails.
OPENAPI_31_SUBSET: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    **_closed(
        ["openapi", "info", "paths"],
        openapi={"type": "string", "pattern": r"^3\.1\.\d+(-.+)?$"},
        jsonSchemaDialect={"type": "string", "pattern": "^https?://"},
        info=_closed(
            ["title", "version"], title=_STR, version=_STR, summary=_STR, description=_STR
        ),
        tags={"type": "array", "items": _closed(["name"], name=_STR, description=_STR)},
        paths={
            "type": "object",
            "propertyNames": {"pattern": "^/"},
            "additionalProperties": {"$ref": "#/$defs/path-item"},
        },
        webhooks=_map({"$ref": "#/$defs/path-item"}),
        components=_closed(
            [],
            schemas=_map({"type": ["object", "boolean"]}),
            parameters=_map(_either("parameter")),
            headers=_map(_either("header")),
            securitySchemes=_map(_either("security-scheme")),
        ),
        security={"type": "array", "items": {"$ref": "#/$defs/security-requirement"}},
    ),
    "$defs": {
        "reference": {
            "type": "object",
            "required": ["$ref"],
            "properties": {"$ref": {"type": "string", "pattern": "^#/"}},
            "additionalProperties": False,
        },
        "path-item": _closed(
            [],
            summary=_STR,
            description=_STR,
            parameters={"type": "array", "items": _either("parameter")},
            **{method: {"$ref": "#/$defs/operation"} for method in _METHODS},
        ),
        "operation": _closed(
            ["responses"],
            tags={"type": "array", "items": _STR},
            summary=_STR,
            description=_STR,
            operationId=_STR,
            parameters={"type": "array", "items": _either("parameter")},
            requestBody=_either("request-body"),
            responses={
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": "^([1-5](?:[0-9]{2}|XX)|default)$"},
                "additionalProperties": _either("response"),
            },
            security={"type": "array", "items": {"$ref": "#/$defs/security-requirement"}},
            deprecated=_BOOL,
        ),
        "parameter": {
            **_closed(
                ["name", "in", "schema"],
                name=_STR,
                description=_STR,
                deprecated=_BOOL,
                schema={"type": ["object", "boolean"]},
                required=_BOOL,
                **{"in": {"enum": ["query", "header", "path", "cookie"]}},
            ),
            "if": {"properties": {"in": {"const": "path"}}},
            "then": {"required": ["required"], "properties": {"required": {"const": True}}},
        },
        "header": _closed(
            ["schema"],
            description=_STR,
            required=_BOOL,
            deprecated=_BOOL,
            schema={"type": ["object", "boolean"]},
        ),
        "request-body": _closed(
            ["content"], description=_STR, required=_BOOL, content=_map({"$ref": "#/$defs/media"})
        ),
        "response": _closed(
            ["description"],
            description=_STR,
            headers=_map(_either("header")),
            content=_map({"$ref": "#/$defs/media"}),
        ),
        "media": _closed(
            [],
            schema={"type": ["object", "boolean"]},
            examples=_map(_closed(["value"], summary=_STR, description=_STR, value={})),
        ),
        "security-scheme": {
            **_closed(
                ["type"],
                type={"enum": ["apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"]},
                description=_STR,
                scheme=_STR,
                bearerFormat=_STR,
            ),
            "if": {"properties": {"type": {"const": "http"}}},
            "then": {"required": ["scheme"]},
        },
        "security-requirement": _map({"type": "array", "items": _STR}),
    },
}


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, str(index)))


def _operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, m) for path, item in doc["paths"].items() for m in _METHODS if m in item}


def _schemas_of(doc: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every place the document holds a schema, with its location."""
    for name, schema in doc["components"]["schemas"].items():
        yield ("components", "schemas", name), schema
    for path, node in _walk(doc):
        if path and path[-1] == "schema" and path[:2] != ("components", "schemas"):
            yield path, node


def test_the_document_is_valid_openapi_3_1_as_far_as_json_schema_can_check() -> None:
    doc = document()
    Draft202012Validator.check_schema(OPENAPI_31_SUBSET)
    errors = sorted(Draft202012Validator(OPENAPI_31_SUBSET).iter_errors(doc), key=str)
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    assert json.loads(json.dumps(doc)) == doc  # plain JSON, nothing Python-only

    schemas = list(_schemas_of(doc))
    assert len(schemas) > len(doc["components"]["schemas"])
    for where, schema in schemas:
        Draft202012Validator.check_schema(schema)  # raises with the location in the traceback
        assert where

    for where, node in _walk(doc):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            target: Any = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                assert isinstance(target, dict), ("/".join(where), node)
                assert part in target, ("/".join(where), node)
                target = target[part]

    checker = OpenApiChecker(doc)
    examples = 0
    for name, schema in doc["components"]["schemas"].items():
        for example in schema.get("examples", []):
            assert checker.validator("components", "schemas", name).is_valid(example), name
            examples += 1
    for where, node in _walk(doc):
        if where and where[-1] == "examples" and isinstance(node, dict) and "schema" not in node:
            media = where[:-1]
            for example in node.values():
                assert checker.validator(*media, "schema").is_valid(example["value"]), media
                examples += 1
    assert examples >= 4

    operation_ids = [doc["paths"][p][m]["operationId"] for p, m in _operations(doc)]
    assert len(operation_ids) == len(set(operation_ids))
    for path, item in doc["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        declared = {
            checker.resolve(p)["name"]
            for p in item.get("parameters", [])
            if checker.resolve(p)["in"] == "path"
        }
        assert names == declared, path


def test_the_document_agrees_with_the_code_on_values_and_error_codes() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    states = [s.value for s in State]
    assert schemas["ConsentRequest"]["properties"]["status"]["enum"] == states
    assert set(STATUS_MEANINGS) == set(State)
    assert schemas["HistoryEntry"]["properties"]["state"]["enum"] == [*states, None]
    languages = [lang.value for lang in Language]
    assert schemas["NewConsentRequest"]["properties"]["language"]["enum"] == languages
    assert schemas["Grant"]["properties"]["revoked_by"]["enum"] == [
        *(r.value for r in RevokedBy),
        None,
    ]
    codes = [e.code for e in ERROR_CODES]
    assert len(codes) == len(set(codes))
    assert schemas["Problem"]["properties"]["code"]["enum"] == codes
    used: set[str] = set()
    for path, method in _operations(doc):
        for status, response in doc["paths"][path][method]["responses"].items():
            media = response["content"].get("application/problem+json")
            if media is None:
                assert status.startswith("2"), (path, method, status)
                continue
            rule = media["schema"]["allOf"][1]["properties"]
            assert rule["status"]["const"] == int(status)
            for code in rule["code"]["enum"]:
                assert code in codes
                assert next(e for e in ERROR_CODES if e.code == code).status == int(status)
                used.add(code)
    assert set(codes) - used == {"method_not_allowed"}  # any path, any wrong method


def test_every_api_route_is_documented_and_every_operation_is_routed(tmp_path: Path) -> None:
    app = create_app(make_settings(database_url=sqlite_url(tmp_path)))
    routes = [r for r in app.routes if isinstance(r, Route)]
    if not any(r.path == "/openapi.json" for r in routes):
        routes += openapi_routes()  # until the lead wires them into create_app
    served: set[tuple[str, str]] = set()
    for route in routes:
        if route.path in _NOT_API:
            continue
        for method in route.methods or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET
                served.add((route.path, method.lower()))
    documented = _operations(document())
    assert served - documented == set(), "routed but not documented"
    assert documented - served == set(), "documented but not routed"
    assert {r.path for r in routes} >= set(_NOT_API), "an exclusion names no route any more"


async def test_the_document_and_its_page_are_served_without_scripts() -> None:
    app = Starlette(routes=openapi_routes())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as client:
        served = await client.get("/openapi.json")
        page = await client.get("/docs")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.json() == document()

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    html = page.text
    for forbidden in ("<script", "javascript:", "<link", "<iframe", "src=", "@import", "url("):
        assert forbidden not in html.lower(), forbidden
    assert not re.search(r"(?:href|action)=\"(?!#|/openapi\.json\")", html)  # nothing external
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    csp = page.headers["content-security-policy"]
    assert f"style-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp
    assert "script-src" not in csp

    doc = document()
    for path, method in _operations(doc):
        assert re.search(rf">{method}</span> <code>{re.escape(path)}</code>", html), (method, path)
    for name in doc["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    for error in ERROR_CODES:
        assert f"<td><code>{error.code}</code></td><td>{error.status}</td>" in html
    for state in State:
        assert f"<td><code>{state.value}</code></td>" in html


def test_the_integrator_guide_lists_the_same_error_codes_and_statuses() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    errors = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", guide, re.M)
    assert errors == [(e.code, str(e.status)) for e in ERROR_CODES]
    statuses = re.findall(r"^\| `([a-z]+)` \| [^|]+ \| (?:yes|no|until it ends) \|$", guide, re.M)
    assert statuses == [s.value for s in State]
    for path, method in _operations(document()):
        if path.startswith("/v1"):
            assert f"`{method.upper()} {path}" in guide, (method, path)


async def _tour(s: Stack) -> None:
    """Provoke every documented answer of every operation that a client can provoke."""
    h, other = s.tenant.headers, s.other.headers
    created = (await post(s, new_body(), key="tour-1")).json()
    await post(s, new_body(reference="x"), key="tour-1")  # 422 idempotency_key_reused
    await post(s, new_body(reference=""))  # 422 validation_failed
    await post(s, new_body(), key=" bad")  # 400 invalid_idempotency_key
    await s.api.post(
        "/v1/consent-requests", content=b"{", headers={**h, "content-type": "application/json"}
    )
    await s.api.post("/v1/consent-requests", content=b"{}", headers=h)  # 415
    await s.api.post(
        "/v1/consent-requests",
        content=b" " * 70_000,
        headers={**h, "content-type": "application/json"},
    )  # 413
    await s.api.post("/v1/consent-requests", json=new_body())  # 401
    item = f"/v1/consent-requests/{created['id']}"
    for path in ("/v1/consent-requests", item, f"{item}/history"):
        await s.api.get(path, headers=h)  # 200
        await s.api.get(path)  # 401
    await s.api.get("/v1/consent-requests?limit=0", headers=h)  # 422
    await s.api.get(item, headers=other)  # 404
    await s.api.get(f"{item}/history", headers=other)  # 404
    await s.api.delete(item)  # 401
    await s.api.delete(item, headers=other)  # 404
    await s.api.delete(item, headers=h)  # 200
    await s.api.delete(item, headers=h)  # 409 invalid_state
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        await s.api.get(path)


async def _relay_tour(rs: RelayStack) -> None:
    """Every documented answer of the relay, against the sandbox where it can give it."""
    s = rs.s
    request_id, _ = await grant(s)
    await fetch(s, request_id)  # 200 JSON
    await fetch(s, request_id, accept="application/xml")  # 200 XML
    await s.api.get(f"/v1/consent-requests/{request_id}/oppdrag")  # 401
    await fetch(s, request_id, tenant=s.other)  # 404 not_found
    await fetch(s, request_id, accept="text/html")  # 406
    await fetch(s, (await s.create())["id"])  # 409 consent_not_granted
    ske = s.sandbox.skatteetaten
    ske.remove_org(SUPPLIER)
    await fetch(s, request_id)  # 404 subject_not_found (-008)
    ske.set_fixture(SUPPLIER)
    ske.withdraw_package(AUTHORITY, EBEVIS)
    await fetch(s, request_id)  # 502 upstream_configuration (-005)
    ske.grant_package(AUTHORITY, EBEVIS)
    rs.tap.substitute = lambda request: feil(400, KODE + "006")
    await fetch(s, request_id)  # 502 upstream_rejected_request (-006)
    rs.tap.substitute = None
    await set_fault(s, "unavailable", times=3)
    await fetch(s, request_id)  # 503 upstream_unavailable, after 3 tries
    await set_latency(s, 1.0)  # beyond BROKER_HTTP_READ_TIMEOUT
    await fetch(s, request_id)  # 504 upstream_timeout, after 3 tries
    await set_latency(s, 0.2)  # the breaker has counted 6 failures: it is open
    await advance(s, 60)  # ... until its cool-down has passed
    slow = asyncio.create_task(fetch(s, request_id))  # holds the requestor's only slot
    await asyncio.sleep(0.05)
    await fetch(s, request_id)  # 503 upstream_busy
    await slow
    await set_latency(s, 0)
    revoked, altinn_id = await grant(s)
    await revoke_in_altinn(s, altinn_id)
    await fetch(s, revoked)  # 409 consent_revoked (-007)
    stopped, _ = await grant(s)
    await s.app.state.admin.service.revoke(
        Actor.cli("tour"), stopped, "stopped by the operator", correlation_id=None
    )
    await fetch(s, stopped)  # 409 consent_revoked_by_admin
    valid_to = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    expiring, _ = await grant(s, valid_to=valid_to)
    await advance(s, 2 * 86400)
    await fetch(s, expiring)  # 409 consent_expired
    await s.api.get("/.well-known/jwks.json")  # 200


async def _webhook_tour(s: Stack) -> None:
    """Every documented answer of the webhook API (the other tenant, so the relay tour's
    requests queue nothing)."""
    h = s.other.headers
    endpoint, rotate = "/v1/webhook-endpoint", "/v1/webhook-endpoint/secrets"
    as_json = {**h, "content-type": "application/json"}
    await s.api.get(endpoint, headers=h)  # 404
    await s.api.post(rotate, headers=h)  # 404
    await s.api.put(endpoint, json={"url": "http://93.184.216.34/hook"}, headers=h)  # 422
    await s.api.put(endpoint, content=b"{", headers=as_json)  # 400
    await s.api.put(endpoint, content=b"{}", headers=h)  # 415
    await s.api.put(endpoint, content=b" " * 70_000, headers=as_json)  # 413
    for path in (endpoint, rotate):
        await (s.api.put if path == endpoint else s.api.post)(path, json={})  # 401
    await s.api.put(endpoint, json={"url": "https://93.184.216.34/hook"}, headers=h)  # 201
    await s.api.put(endpoint, json={"url": "https://93.184.216.35/hook"}, headers=h)  # 200
    await s.api.get(endpoint, headers=h)  # 200
    await s.api.get(endpoint)  # 401
    await s.api.post(rotate, json={"overlap_seconds": 60}, headers=h)  # 201
    await s.api.post(rotate, json={"overlap_seconds": -1}, headers=h)  # 422
    await s.api.post(rotate, content=b"{", headers=as_json)  # 400
    await s.api.post(rotate, content=b"{}", headers=h)  # 415
    await s.api.post(rotate, content=b" " * 70_000, headers=as_json)  # 413
    await granted(s, s.other)  # queues consent_request.granted
    listed = (await s.api.get("/v1/webhook-deliveries", headers=h)).json()  # 200
    await s.api.get("/v1/webhook-deliveries?limit=0", headers=h)  # 422
    await s.api.get("/v1/webhook-deliveries")  # 401
    one = f"/v1/webhook-deliveries/{listed['items'][0]['id']}"
    unknown = f"/v1/webhook-deliveries/{uuid.uuid4()}"
    await s.api.get(one, headers=h)  # 200
    await s.api.get(one)  # 401
    await s.api.get(unknown, headers=h)  # 404
    await s.api.post(f"{one}/redeliver", headers=h)  # 202
    await s.api.post(f"{one}/redeliver")  # 401
    await s.api.post(f"{unknown}/redeliver", headers=h)  # 404
    await s.api.put(
        endpoint, json={"url": "https://93.184.216.35/hook", "enabled": False}, headers=h
    )
    await s.api.post(f"{one}/redeliver", headers=h)  # 409 endpoint_disabled


async def test_real_answers_of_every_documented_operation_match_the_document(
    database_url: str, tmp_path: Path
) -> None:
    checker = RelayChecker()
    settings: dict[str, Any] = {
        "http_read_timeout": "0.3",
        "skatteetaten_concurrency": "1",
        "skatteetaten_slot_timeout": "0.05",
    }
    async with relay_stack(database_url, tmp_path, checker=checker, **settings) as rs:
        s = rs.s
        if not any(getattr(r, "path", None) == "/openapi.json" for r in s.app.routes):
            s.app.router.routes.extend(openapi_routes())  # until the lead wires them
        await _tour(s)
        await _relay_tour(rs)
        await _webhook_tour(s)

    # /readyz's 503: an app whose database was never migrated.
    unmigrated = create_app(make_settings(database_url=sqlite_url(tmp_path / "empty")))
    async with running(unmigrated) as client:
        not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503
    checker.check(not_ready)

    doc = document()
    documented = {
        (path, method, status)
        for path, method in _operations(doc)
        for status in doc["paths"][path][method]["responses"]
        if status != "500"
    }
    missing = documented - checker.seen - _UNREACHABLE
    assert missing == set(), "documented answers no test produced"
    assert checker.codes == {e.code for e in ERROR_CODES} - _UNREACHABLE_CODES
