"""The client API's OpenAPI 3.1 document, built in code, and the routes that publish it.

``GET /openapi.json`` serves the document; ``GET /docs`` serves a small HTML page made from it
(operations, schemas, error codes) with no JavaScript and nothing loaded from elsewhere. The
document is kept true by ``tests/app/test_openapi.py``: every response the API tests receive is
validated against it, and its paths are compared with the app's routes both ways.

Schemas are JSON Schema draft 2020-12 (``jsonSchemaDialect``). Response schemas are closed
(``additionalProperties: false``) so that a field added to the API without being documented
fails the tests; clients should still ignore members they do not know.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from broker.consent.model import Language, RevokedBy, State

__all__ = [
    "CLIENT_SECURITY",
    "ERROR_CODES",
    "INTERNAL",
    "PROBLEM_TYPE_PREFIX",
    "STATUS_MEANINGS",
    "UNAUTHENTICATED",
    "ErrorCode",
    "document",
    "json_response",
    "openapi_routes",
    "problem_response",
    "render_docs",
    "schema_ref",
]

PROBLEM_TYPE_PREFIX = "urn:ebevis-broker:problem:"
_JSON = "application/json"
_PROBLEM = "application/problem+json"
_HTML = "text/html"
_CLIENT_SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"maskinporten": []}]


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    meaning: str


ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode("invalid_json", 400, "The body is not valid JSON (or not UTF-8)."),
    ErrorCode(
        "invalid_idempotency_key",
        400,
        "Idempotency-Key must be 1-255 printable ASCII characters, without leading or "
        "trailing spaces.",
    ),
    ErrorCode(
        "unauthenticated",
        401,
        "No credentials, or an API key or Maskinporten token that is unknown, revoked, expired, "
        "lacks the scope or maps to no single client. Always the same answer, on purpose.",
    ),
    ErrorCode(
        "not_found",
        404,
        "No such consent request (or webhook endpoint or delivery) for this client; also the "
        "answer for other clients' ids.",
    ),
    ErrorCode(
        "subject_not_found",
        404,
        "Skatteetaten does not know the subject organisation (its `-008`); `kode` and "
        "`korrelasjonsid` are Skatteetaten's.",
    ),
    ErrorCode("method_not_allowed", 405, "The path exists but not with this method; see `Allow`."),
    ErrorCode(
        "not_acceptable",
        406,
        "The data is available as `application/json` or `application/xml` only (`Accept`).",
    ),
    ErrorCode(
        "invalid_state",
        409,
        "The request is final (denied, expired, revoked, cancelled or failed) and cannot be "
        "cancelled.",
    ),
    ErrorCode(
        "state_changed", 409, "The request changed while it was being cancelled; read it again."
    ),
    ErrorCode(
        "in_progress",
        409,
        "A request with this Idempotency-Key is still being handled; retry in a moment.",
    ),
    ErrorCode(
        "consent_not_granted",
        409,
        "Data is fetched for `granted` requests only; read the request for its status.",
    ),
    ErrorCode(
        "consent_expired",
        409,
        "The grant's `valid_to` has passed; the request is now `expired`.",
    ),
    ErrorCode(
        "endpoint_disabled",
        409,
        "The webhook endpoint is disabled (by you, after a 410, or after failing "
        "continuously); enable it with PUT before redelivering.",
    ),
    ErrorCode(
        "consent_revoked",
        409,
        "The consent is no longer valid: withdrawn in Altinn (Maskinporten, or for an Altinn 2 "
        "consent Altinn 2, refused its token) or refused by Skatteetaten (`-007`, with `kode` "
        "and `korrelasjonsid`); the request is now `revoked`.",
    ),
    ErrorCode(
        "consent_revoked_by_admin",
        409,
        "The broker's operator revoked the request (`request_status` `revoked`, `revoked_by` "
        "`admin`); the reason came in the `consent_request.revoked` webhook. Final: ask the "
        "operator, not the supplier.",
    ),
    ErrorCode("payload_too_large", 413, "The body is larger than 64 KiB."),
    ErrorCode("unsupported_media_type", 415, "Send the body as `application/json`."),
    ErrorCode(
        "validation_failed",
        422,
        "A value is not valid; `errors` lists each field (`field`, `message`).",
    ),
    ErrorCode(
        "idempotency_key_reused",
        422,
        "This Idempotency-Key was used by this client with another body.",
    ),
    ErrorCode("internal_error", 500, "A fault on our side; quote `request_id` when you report it."),
    ErrorCode(
        "upstream_configuration",
        502,
        "Skatteetaten refused the broker's access (`-004`, `-005`): a configuration fault at the "
        "operator's; `kode` and `korrelasjonsid` are Skatteetaten's. Retrying will not help.",
    ),
    ErrorCode(
        "upstream_rejected_request",
        502,
        "Skatteetaten refused the broker's call as malformed (`-006`, `-009`): a defect in the "
        "broker; quote `request_id` and `korrelasjonsid`. Retrying will not help.",
    ),
    ErrorCode(
        "not_ready",
        503,
        "`/readyz` only: the database is unreachable or not migrated; `checks` says which.",
    ),
    ErrorCode(
        "upstream_unavailable",
        503,
        "Skatteetaten (or Maskinporten) did not answer usefully after a few tries (`-001`, "
        "`-002`, `DAS-003`, 5xx, a dropped connection), or the broker paused calls after "
        "repeated failures; retry after `Retry-After` seconds.",
    ),
    ErrorCode(
        "upstream_busy",
        503,
        "Too many calls for the requestor are in flight (Skatteetaten allows 5 at once); retry "
        "after `Retry-After` seconds.",
    ),
    ErrorCode(
        "upstream_timeout",
        504,
        "Skatteetaten did not answer in time, after a few tries; retry after `Retry-After` "
        "seconds.",
    ),
)

STATUS_MEANINGS: dict[State, str] = {
    State.PENDING: "Created; the person has not opened the consent link yet.",
    State.REDIRECTED: "The person was sent to Altinn; no answer is known yet.",
    State.GRANTED: "Consent given and confirmed with Altinn and Maskinporten; data may be fetched.",
    State.DENIED: "The person refused in Altinn.",
    State.EXPIRED: "`valid_to` passed, before an answer or after a grant.",
    State.REVOKED: "A grant ended early (end user in Altinn, Skatteetaten, or an administrator).",
    State.CANCELLED: "The client cancelled the request or withdrew its grant (DELETE).",
    State.FAILED: "The flow cannot complete (Altinn refused, or its answer did not check out).",
}

_ORGNR = {
    "type": "string",
    "pattern": "^[0-9]{9}$",
    "description": "Norwegian organisation number: 9 digits with a valid mod-11 check digit.",
    "examples": ["310200018"],
}
_DATE_TIME = {"type": "string", "format": "date-time"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 200}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _codes(status: int) -> list[str]:
    return [e.code for e in ERROR_CODES if e.status == status]


def _problem(
    status: int, description: str, *codes: str, retry_after: bool = False
) -> dict[str, Any]:
    known = _codes(status)
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise ValueError(f"codes not in ERROR_CODES for {status}: {unknown}")
    headers: dict[str, Any] = {"X-Request-ID": {"$ref": "#/components/headers/XRequestId"}}
    if status == 401:
        headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWWAuthenticate"}
    if retry_after:
        headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
    return {
        "description": description,
        "headers": headers,
        "content": {
            _PROBLEM: {
                "schema": {
                    "allOf": [
                        _ref("Problem"),
                        {
                            "properties": {
                                "status": {"const": status},
                                "code": {"enum": list(codes)},
                            }
                        },
                    ]
                }
            }
        },
    }


def _json(
    description: str,
    schema: dict[str, Any],
    *,
    headers: dict[str, Any] | None = None,
    example: dict[str, Any] | None = None,
) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["examples"] = {"example": {"value": example}}
    return {
        "description": description,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/XRequestId"}, **(headers or {})},
        "content": {_JSON: media},
    }


_UNAUTHENTICATED = _problem(
    401, "Missing or refused credentials (`WWW-Authenticate: Bearer`).", "unauthenticated"
)
_INTERNAL = _problem(500, "A fault on our side.", "internal_error")
_NOT_FOUND = _problem(
    404, "No such consent request for this client (other clients' ids included).", "not_found"
)

# Building blocks for the other features' parts of this document (broker/webhooks/openapi.py).
CLIENT_SECURITY = _CLIENT_SECURITY
UNAUTHENTICATED = _UNAUTHENTICATED
INTERNAL = _INTERNAL
problem_response = _problem
json_response = _json
schema_ref = _ref

_EXAMPLE_ID = "0198f0d2-6c1e-7a4b-9d3e-5a1f2b3c4d5e"
_EXAMPLE_REQUEST = {
    "requestor": "310200018",
    "subject": "310100013",
    "reference": "2025/123 Nybygg Sandvika",
    "return_url": "https://portal.example/ebevis/return",
    "valid_to": "2026-03-01T00:00:00Z",
    "language": "nb",
    "external_reference": "case-4711",
}
_EXAMPLE_CREATED = {
    "id": _EXAMPLE_ID,
    "status": "pending",
    "status_reason": None,
    "requestor": "310200018",
    "subject": "310100013",
    "reference": "2025/123 Nybygg Sandvika",
    "external_reference": "case-4711",
    "language": "nb",
    "return_url": "https://portal.example/ebevis/return",
    "valid_to": "2026-03-01T00:00:00Z",
    "consent_url": f"https://broker.example/consent/{_EXAMPLE_ID}/start?t=eyJyIjoi...",
    "created_at": "2025-12-01T09:30:00.123456Z",
    "updated_at": "2025-12-01T09:30:00.123456Z",
    "grant": None,
}
_EXAMPLE_PROBLEM = {
    "type": PROBLEM_TYPE_PREFIX + "validation_failed",
    "title": "The request is not valid",
    "status": 422,
    "detail": "The request is not valid; see errors",
    "instance": "/v1/consent-requests",
    "code": "validation_failed",
    "request_id": "d7bfc12e-1124-4415-bbf7-7ea7a74bf38a",
    "errors": [{"field": "subject", "message": "must differ from requestor"}],
}


def _schemas() -> dict[str, Any]:
    states = [s.value for s in State]
    return {
        "NewConsentRequest": {
            "type": "object",
            "description": "What the client asks for. Unknown fields are refused.",
            "additionalProperties": False,
            "required": ["requestor", "subject", "reference", "return_url"],
            "properties": {
                "requestor": {
                    **_ORGNR,
                    "description": "The contracting authority that will fetch the data "
                    "(Altinn's `to`). 9 digits, mod-11.",
                },
                "subject": {
                    **_ORGNR,
                    "description": "The supplier who is asked to consent (Altinn's `from`). "
                    "9 digits, mod-11, and not equal to `requestor`.",
                    "examples": ["310100013"],
                },
                "reference": {
                    **_TEXT,
                    "description": "The procurement's reference (e.g. its Doffin or TED id), "
                    "stored and returned. 1-200 characters, not only spaces, no control "
                    "characters.",
                },
                "return_url": {
                    "type": "string",
                    "description": "Where the person's browser is sent afterwards. Must equal "
                    "one of the client's registered return URLs after normalisation (see "
                    "docs/api.md); the registered spelling is stored.",
                },
                "valid_to": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "End of the consent's validity: a date-time with an offset, "
                    "in the future and at most the maximum ahead (BROKER_CONSENT_MAX_DAYS, 90 "
                    "days by default). Absent or null: the maximum.",
                },
                "language": {
                    "type": "string",
                    "enum": [lang.value for lang in Language],
                    "default": Language.NB.value,
                    "description": "Language of the pages the person sees.",
                },
                "external_reference": {
                    "type": ["string", "null"],
                    "minLength": 1,
                    "maxLength": 200,
                    "description": "Your own reference, stored and returned, never shown.",
                },
            },
            "examples": [_EXAMPLE_REQUEST],
        },
        "ConsentRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "id",
                "status",
                "status_reason",
                "requestor",
                "subject",
                "reference",
                "external_reference",
                "language",
                "return_url",
                "valid_to",
                "consent_url",
                "created_at",
                "updated_at",
                "grant",
            ],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "status": {
                    "type": "string",
                    "enum": states,
                    "description": "; ".join(f"`{s.value}`: {STATUS_MEANINGS[s]}" for s in State),
                },
                "status_reason": {
                    "type": ["string", "null"],
                    "description": "Why the status was reached, when known (e.g. `client`, "
                    "`valid_to`, `altinn_not_found`). For people and logs; do not branch on it.",
                },
                "requestor": _ORGNR,
                "subject": _ORGNR,
                "reference": _TEXT,
                "external_reference": {"type": ["string", "null"]},
                "language": {"type": "string", "enum": [lang.value for lang in Language]},
                "return_url": {"type": "string", "format": "uri"},
                "valid_to": {
                    **_DATE_TIME,
                    "description": "End of validity. Once granted, the validity Altinn "
                    "recorded for the consent.",
                },
                "consent_url": {
                    "type": ["string", "null"],
                    "format": "uri",
                    "description": "While `pending` or `redirected`: the link to send the "
                    "person's browser to (a fresh one on each read; each stays usable for "
                    "BROKER_FLOW_START_TTL, 7 days by default). Otherwise null.",
                },
                "created_at": _DATE_TIME,
                "updated_at": {
                    **_DATE_TIME,
                    "description": "Last change of status; the list's order and "
                    "`changed_after` use it.",
                },
                "grant": {
                    "oneOf": [{"type": "null"}, _ref("Grant")],
                    "description": "Set once granted; kept (with `revoked_at`) when it ends.",
                },
            },
            "examples": [_EXAMPLE_CREATED],
        },
        "Grant": {
            "type": "object",
            "additionalProperties": False,
            "required": ["consented_at", "valid_to", "revoked_at", "revoked_by"],
            "properties": {
                "consented_at": _DATE_TIME,
                "valid_to": _DATE_TIME,
                "revoked_at": {"type": ["string", "null"], "format": "date-time"},
                "revoked_by": {
                    "type": ["string", "null"],
                    "enum": [*(r.value for r in RevokedBy), None],
                    "description": "`client` after a DELETE of a granted request.",
                },
            },
        },
        "ConsentRequestPage": {
            "type": "object",
            "additionalProperties": False,
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": _ref("ConsentRequest")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next page; null on the last page.",
                },
            },
        },
        "History": {
            "type": "object",
            "additionalProperties": False,
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": _ref("HistoryEntry")}},
        },
        "HistoryEntry": {
            "type": "object",
            "additionalProperties": False,
            "required": ["at", "action", "state", "reason"],
            "properties": {
                "at": _DATE_TIME,
                "action": {
                    "type": "string",
                    "description": "What happened: `created`, `redirected`, `granted`, "
                    "`denied`, `expired`, `failed`, `cancelled`, `revoked`, `imported` (a "
                    "migrated Altinn 2 grant), `oppdrag.fetch`, `altinn.withdraw`, ...",
                    "examples": ["created"],
                },
                "state": {"type": ["string", "null"], "enum": [*states, None]},
                "reason": {"type": ["string", "null"]},
            },
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details. Branch on `code`, never on `detail`.",
            "additionalProperties": False,
            "required": ["type", "title", "status", "detail", "instance", "code", "request_id"],
            "properties": {
                "type": {
                    "type": "string",
                    "pattern": "^urn:ebevis-broker:problem:[a-z_]+$",
                    "description": f"`{PROBLEM_TYPE_PREFIX}` followed by `code`.",
                },
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "instance": {"type": "string", "description": "The request's path."},
                "code": {
                    "type": "string",
                    "enum": [e.code for e in ERROR_CODES],
                    "description": "Stable error code; see the table of error codes.",
                },
                "request_id": {
                    "type": ["string", "null"],
                    "description": "Equals the `X-Request-ID` response header.",
                },
                "errors": {"type": "array", "items": _ref("FieldError")},
                "checks": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "`not_ready` only.",
                },
                "kode": {
                    "type": ["string", "null"],
                    "description": "Relay errors from Skatteetaten: its error code (e.g. "
                    "`OPPDRAGUTENLANDSKEVIRKSOMHETER-008`), when it gave one.",
                },
                "korrelasjonsid": {
                    "type": ["string", "null"],
                    "description": "Relay errors from Skatteetaten: the call's korrelasjonsid; "
                    "quote it with `request_id` when you report the error.",
                },
                "request_status": {
                    "enum": [state.value for state in State],
                    "description": "`consent_not_granted` and `consent_revoked_by_admin`: the "
                    "consent request's status.",
                },
                "revoked_by": {
                    "const": "admin",
                    "description": "`consent_revoked_by_admin` only: who revoked the request.",
                },
            },
            "examples": [_EXAMPLE_PROBLEM],
        },
        "FieldError": {
            "type": "object",
            "additionalProperties": False,
            "required": ["field", "message"],
            "properties": {
                "field": {
                    "type": "string",
                    "description": "The field (or query parameter); empty for the body.",
                },
                "message": {"type": "string"},
            },
        },
        "Health": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "Readiness": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status", "checks"],
            "properties": {
                "status": {"const": "ready"},
                "checks": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    }


def _consent_paths() -> dict[str, Any]:
    id_param = {"$ref": "#/components/parameters/ConsentRequestId"}
    created = _json(
        "Created; send the person's browser to `consent_url`. A repeat with the same "
        "Idempotency-Key and body gets this answer again.",
        _ref("ConsentRequest"),
        headers={"Location": {"$ref": "#/components/headers/Location"}},
        example=_EXAMPLE_CREATED,
    )
    return {
        "/v1/consent-requests": {
            "post": {
                "operationId": "createConsentRequest",
                "tags": ["Consent requests"],
                "summary": "Create a consent request",
                "description": "Creates a request for `subject` to consent to `requestor` "
                "fetching its data. Send the person's browser to `consent_url`; it comes back "
                "to `return_url` with `consent_request` and `status` in the query. With an "
                "`Idempotency-Key`, a repeat with the same body returns the first answer "
                "(status and body as first sent); another body gives 422 "
                "`idempotency_key_reused`.",
                "security": _CLIENT_SECURITY,
                "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}],
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {
                            "schema": _ref("NewConsentRequest"),
                            "examples": {"example": {"value": _EXAMPLE_REQUEST}},
                        }
                    },
                },
                "responses": {
                    "201": created,
                    "400": _problem(
                        400,
                        "The body is not JSON, or the Idempotency-Key is malformed.",
                        "invalid_json",
                        "invalid_idempotency_key",
                    ),
                    "401": _UNAUTHENTICATED,
                    "409": _problem(
                        409, "A request with this key is still being handled.", "in_progress"
                    ),
                    "413": _problem(413, "The body is larger than 64 KiB.", "payload_too_large"),
                    "415": _problem(
                        415, "The body is not `application/json`.", "unsupported_media_type"
                    ),
                    "422": _problem(
                        422,
                        "A field is not valid (`errors` says which), or the Idempotency-Key "
                        "was used with another body.",
                        "validation_failed",
                        "idempotency_key_reused",
                    ),
                    "500": _INTERNAL,
                },
            },
            "get": {
                "operationId": "listConsentRequests",
                "tags": ["Consent requests"],
                "summary": "List the client's consent requests",
                "description": "Oldest change first (`updated_at`, then `id`). Keyset "
                "pagination: a request that changes while you page moves behind the cursor "
                "and is listed again with its new status, so treat items as upserts by "
                "`id`; none is skipped. Poll with `changed_after` set to the last "
                "`updated_at` you saw.",
                "security": _CLIENT_SECURITY,
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": [s.value for s in State]},
                        "description": "Only requests with this status.",
                    },
                    {
                        "name": "changed_after",
                        "in": "query",
                        "schema": {"type": "string", "format": "date-time"},
                        "description": "Only requests with `updated_at` strictly after this "
                        "date-time (with an offset; encode `+` as `%2B`, or use `Z`).",
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "`next_cursor` of the previous page, unchanged.",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
                    },
                ],
                "responses": {
                    "200": _json("One page.", _ref("ConsentRequestPage")),
                    "401": _UNAUTHENTICATED,
                    "422": _problem(
                        422,
                        "A query parameter is not valid (`errors` names it).",
                        "validation_failed",
                    ),
                    "500": _INTERNAL,
                },
            },
        },
        "/v1/consent-requests/{id}": {
            "parameters": [id_param],
            "get": {
                "operationId": "getConsentRequest",
                "tags": ["Consent requests"],
                "summary": "Read one consent request",
                "security": _CLIENT_SECURITY,
                "responses": {
                    "200": _json("The request as it is now.", _ref("ConsentRequest")),
                    "401": _UNAUTHENTICATED,
                    "404": _NOT_FOUND,
                    "500": _INTERNAL,
                },
            },
            "delete": {
                "operationId": "cancelConsentRequest",
                "tags": ["Consent requests"],
                "summary": "Cancel a request or withdraw its grant",
                "description": "`pending` or `redirected` → `cancelled`; `granted` → "
                "`cancelled` with `grant.revoked_by` = `client`, and the broker uses the "
                "consent no more. Altinn 3 has no way for the broker to withdraw the consent "
                "there; for a client on Altinn 2 the broker also gives it up at Altinn 2 "
                "(the rights are discarded, an unanswered request is deleted), retrying in "
                "the background if Altinn 2 cannot be reached. Final requests give 409 "
                "`invalid_state`.",
                "security": _CLIENT_SECURITY,
                "responses": {
                    "200": _json("The cancelled request.", _ref("ConsentRequest")),
                    "401": _UNAUTHENTICATED,
                    "404": _NOT_FOUND,
                    "409": _problem(
                        409,
                        "The request is final, or changed meanwhile.",
                        "invalid_state",
                        "state_changed",
                    ),
                    "500": _INTERNAL,
                },
            },
        },
        "/v1/consent-requests/{id}/history": {
            "parameters": [id_param],
            "get": {
                "operationId": "getConsentRequestHistory",
                "tags": ["Consent requests"],
                "summary": "What happened to a request, oldest first",
                "security": _CLIENT_SECURITY,
                "responses": {
                    "200": _json("The request's history.", _ref("History")),
                    "401": _UNAUTHENTICATED,
                    "404": _NOT_FOUND,
                    "500": _INTERNAL,
                },
            },
        },
    }


_COUNT = {"type": ["integer", "null"], "minimum": 0}
_EXAMPLE_OPPDRAG = {
    "forespurteOrganisasjon": "310100013",
    "oppdrag": {
        "antallAktiveOppdragSomArbeidsgiver": 44,
        "antallAktiveArbeidstakere": 64,
        "antallRegistrerteOppdragSomOppdragsgiver": 14,
    },
    "levert": "2020-09-17T09:44:42.877055",
}


def _relay_schemas() -> dict[str, Any]:
    return {
        "Oppdrag": {
            "type": "object",
            "description": "Skatteetaten's answer, passed through byte for byte (its "
            "'Oppdrag utenlandske virksomheter' API, rettighetspakke `ebevis`). Skatteetaten may "
            "add members or reorder them without notice: ignore what you do not know, and do "
            "not validate strictly. Counts come from the Oppdrags- og "
            "arbeidsforholdsregisteret.",
            "required": ["forespurteOrganisasjon", "oppdrag", "levert"],
            "properties": {
                "forespurteOrganisasjon": {
                    "type": "string",
                    "pattern": "^[0-9]{9}$",
                    "description": "The organisation asked about: the request's `subject`.",
                },
                "oppdrag": {
                    "type": "object",
                    "properties": {
                        "antallAktiveOppdragSomArbeidsgiver": {
                            **_COUNT,
                            "description": "Active assignments where the organisation is the "
                            "employer or contractor.",
                        },
                        "antallAktiveArbeidstakere": {
                            **_COUNT,
                            "description": "Active employees on those assignments.",
                        },
                        "antallRegistrerteOppdragSomOppdragsgiver": {
                            **_COUNT,
                            "description": "Registered assignments where the organisation is "
                            "the client (oppdragsgiver).",
                        },
                    },
                },
                "levert": {
                    "type": "string",
                    "description": "When Skatteetaten delivered the data: a local (Oslo) "
                    "date-time without offset, with or without a fraction of a second. The "
                    "`Skatteetaten-Levert` header gives it with its offset.",
                },
            },
            "examples": [_EXAMPLE_OPPDRAG],
        },
        "Jwks": {
            "type": "object",
            "description": "The broker's public signing keys (RFC 7517).",
            "required": ["keys"],
            "properties": {
                "keys": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["kty", "kid"],
                        "properties": {
                            "kty": {"const": "RSA"},
                            "kid": {"type": "string"},
                            "use": {"const": "sig"},
                            "alg": {"const": "RS256"},
                            "n": {"type": "string"},
                            "e": {"type": "string"},
                        },
                        "not": {"required": ["d"]},
                    },
                }
            },
        },
    }


def _relay_paths() -> dict[str, Any]:
    id_param = {"$ref": "#/components/parameters/ConsentRequestId"}
    data_headers = {
        "X-Request-ID": {"$ref": "#/components/headers/XRequestId"},
        "Broker-Signature": {
            "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+\\.\\.[A-Za-z0-9_-]+$"},
            "description": "A detached JWS (RFC 7515 Appendix F, RS256) over the exact body: "
            "`<header>..<signature>`. Put the base64url of the body between the dots and "
            "verify with the key `kid` from `/.well-known/jwks.json`; the header's `cty` is "
            "the body's media type.",
        },
        "Skatteetaten-Korrelasjonsid": {
            "required": True,
            "schema": {"type": "string"},
            "description": "Skatteetaten's id for the call; quote it with `X-Request-ID` "
            "when you report a problem with the data.",
        },
        "Skatteetaten-Levert": {
            "required": False,
            "schema": {"type": "string", "format": "date-time"},
            "description": "`levert` from the body, with its offset (Europe/Oslo).",
        },
    }
    unavailable = _problem(
        503,
        "Skatteetaten or Maskinporten is unavailable (after retries, or while calls are "
        "paused), or too many calls are in flight; see `Retry-After`.",
        "upstream_unavailable",
        "upstream_busy",
        retry_after=True,
    )
    return {
        "/v1/consent-requests/{id}/oppdrag": {
            "parameters": [id_param],
            "get": {
                "operationId": "getOppdrag",
                "tags": ["Data"],
                "summary": "Fetch Skatteetaten's data for a granted request",
                "description": "Calls Skatteetaten's 'Oppdrag utenlandske virksomheter' API for "
                "the request's `subject` with the consent, and returns its answer unchanged: "
                "JSON by default, XML with `Accept: application/xml`. Every call is fresh "
                "(nothing is cached) and audited. The body is signed (`Broker-Signature`). "
                "Errors keep Skatteetaten's `kode` and `korrelasjonsid`. A consent that "
                "Skatteetaten or Maskinporten no longer accepts ends the grant (`revoked`).",
                "security": _CLIENT_SECURITY,
                "parameters": [
                    {
                        "name": "Accept",
                        "in": "header",
                        "schema": {"type": "string"},
                        "description": "`application/json` (default, also for `*/*`) or "
                        "`application/xml`; anything else gives 406.",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "Skatteetaten's answer, byte for byte, and signed.",
                        "headers": data_headers,
                        "content": {
                            _JSON: {
                                "schema": _ref("Oppdrag"),
                                "examples": {"example": {"value": _EXAMPLE_OPPDRAG}},
                            },
                            "application/xml": {
                                "schema": {
                                    "type": "string",
                                    "description": "The same data as XML, as Skatteetaten "
                                    "sends it.",
                                }
                            },
                        },
                    },
                    "401": _UNAUTHENTICATED,
                    "404": _problem(
                        404,
                        "No such request for this client, or Skatteetaten does not know the "
                        "subject.",
                        "not_found",
                        "subject_not_found",
                    ),
                    "406": _problem(406, "Neither JSON nor XML is acceptable.", "not_acceptable"),
                    "409": _problem(
                        409,
                        "The request is not granted, its grant has expired, the consent "
                        "was withdrawn, or the operator revoked it.",
                        "consent_not_granted",
                        "consent_expired",
                        "consent_revoked",
                        "consent_revoked_by_admin",
                    ),
                    "500": _INTERNAL,
                    "502": _problem(
                        502,
                        "Skatteetaten refused the broker's access or call; not worth retrying.",
                        "upstream_configuration",
                        "upstream_rejected_request",
                    ),
                    "503": unavailable,
                    "504": _problem(
                        504,
                        "Skatteetaten did not answer in time; see `Retry-After`.",
                        "upstream_timeout",
                        retry_after=True,
                    ),
                },
            },
        },
        "/.well-known/jwks.json": {
            "get": {
                "operationId": "jwks",
                "tags": ["Data"],
                "summary": "The keys that verify `Broker-Signature`",
                "security": [],
                "responses": {
                    "200": _json("The broker's public signing keys.", _ref("Jwks")),
                    "500": _INTERNAL,
                },
            }
        },
    }


def _other_paths() -> dict[str, Any]:
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "tags": ["Operations"],
                "summary": "Liveness: the process answers",
                "security": [],
                "responses": {"200": _json("Alive.", _ref("Health")), "500": _INTERNAL},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "tags": ["Operations"],
                "summary": "Readiness: the database answers and is migrated",
                "security": [],
                "responses": {
                    "200": _json("Ready.", _ref("Readiness")),
                    "500": _INTERNAL,
                    "503": _problem(503, "Not ready; `checks` says why.", "not_ready"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "tags": ["Documentation"],
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": _json("The OpenAPI 3.1 document.", {"type": "object"}),
                    "500": _INTERNAL,
                },
            }
        },
        "/docs": {
            "get": {
                "operationId": "docs",
                "tags": ["Documentation"],
                "summary": "This document as a web page",
                "security": [],
                "responses": {
                    "200": {
                        "description": "HTML, without scripts.",
                        "headers": {"X-Request-ID": {"$ref": "#/components/headers/XRequestId"}},
                        "content": {_HTML: {"schema": {"type": "string"}}},
                    },
                    "500": _INTERNAL,
                },
            }
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a new dict on every call)."""
    # The webhook feature documents its own part with the building blocks above; imported
    # here, when the document is built, because that module imports this one.
    from broker.webhooks import openapi as hooks

    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "eBevis consent broker",
            "version": "1",
            "summary": "Consent for Skatteetaten's 'Oppdrag utenlandske virksomheter' API",
            "description": "A procurement system (client) creates a consent request, sends the "
            "supplier's representative to `consent_url`, and learns the answer from the "
            "redirect to its `return_url` and from this API. Every error is RFC 9457 "
            "`application/problem+json` with a stable `code`. The whole flow, with examples, "
            "is in docs/api.md.",
        },
        "tags": [
            {"name": "Consent requests", "description": "The client API."},
            {
                "name": "Data",
                "description": "Skatteetaten's data for a granted request, signed by the broker.",
            },
            {
                "name": "Webhooks",
                "description": "Signed callbacks when a consent request changes (Standard "
                "Webhooks): the endpoint, its secrets, deliveries; the events under `webhooks`.",
            },
            {"name": "Operations", "description": "Probes for the platform."},
            {"name": "Documentation", "description": "This document."},
        ],
        "paths": {
            **_consent_paths(),
            **_relay_paths(),
            **hooks.webhook_paths(),
            **_other_paths(),
        },
        "webhooks": hooks.webhooks(),
        "components": {
            "schemas": {**_schemas(), **_relay_schemas(), **hooks.webhook_schemas()},
            "parameters": {
                "ConsentRequestId": {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                    "description": "The request's `id`. Anything else (or another client's "
                    "id) gives 404.",
                },
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 255,
                        "pattern": "^[!-~]([ -~]*[!-~])?$",
                    },
                    "description": "Makes the POST safe to repeat: per client, kept at least "
                    "24 hours. Use a fresh random value (e.g. a UUID) per new request.",
                },
            },
            "headers": {
                "XRequestId": {
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "This request's id (yours, if you sent a well-formed "
                    "`X-Request-ID`); quote it when reporting a problem.",
                },
                "Location": {
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "`/v1/consent-requests/{id}` of the created request.",
                },
                "WWWAuthenticate": {
                    "required": True,
                    "schema": {"type": "string"},
                    "description": '`Bearer realm="ebevis-broker"`.',
                },
                "RetryAfter": {
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    "description": "Seconds to wait before trying again.",
                },
            },
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "ebk_<prefix>_<secret>",
                    "description": "An API key issued to the client: shown once, stored only "
                    "as a keyed hash. Several may be active at once, for rotation.",
                },
                "maskinporten": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Maskinporten access token with the scope "
                    "`ebevisbroker:consentrequests` (BROKER_CLIENT_TOKEN_SCOPE). It maps to "
                    "the one active client registered with the token's `supplier` org when "
                    "the token was issued for a delegation, else with its `consumer` org.",
                },
            },
        },
    }


# --- The HTML page --------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.45;color:#1b1b1b}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem;width:100%}"
    "th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}"
    "th{background:#f2f2f2}code{background:#f6f6f6;padding:0 .2rem}"
    "h3 code{font-size:1.05em}.method{font-weight:bold;text-transform:uppercase}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
DOCS_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; frame-ancestors 'none'; "
    "form-action 'none'; base-uri 'none'"
)
_METHODS = ("get", "post", "put", "patch", "delete")


def _prose(text: str) -> str:
    """Escaped text with `backticks` shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def _type_text(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if "allOf" in schema:
        return " &amp; ".join(_type_text(part) for part in schema["allOf"] if "$ref" in part)
    if "oneOf" in schema:
        return " | ".join(_type_text(part) for part in schema["oneOf"])
    if "const" in schema:
        return f"<code>{escape(json.dumps(schema['const']))}</code>"
    kinds = schema.get("type", "")
    text = " | ".join(kinds) if isinstance(kinds, list) else str(kinds)
    if text.startswith("array") and "items" in schema:
        text = f"array of {_type_text(schema['items'])}"
    else:
        text = escape(text)
    if "format" in schema:
        text += f" ({escape(schema['format'])})"
    if "enum" in schema:
        values = ", ".join(f"<code>{escape(json.dumps(v))}</code>" for v in schema["enum"])
        text += f": one of {values}"
    return text


def _rules(schema: dict[str, Any]) -> str:
    names = ("minLength", "maxLength", "minimum", "maximum", "pattern", "default")
    rules = [f"{name} <code>{escape(str(schema[name]))}</code>" for name in names if name in schema]
    return "; ".join(rules)


def _codes_of(response: dict[str, Any]) -> str:
    media = response.get("content", {}).get(_PROBLEM)
    if media is None:
        return ""
    codes: list[str] = []
    for part in media["schema"].get("allOf", []):
        codes += part.get("properties", {}).get("code", {}).get("enum", [])
    return ", ".join(f"<code>{escape(c)}</code>" for c in codes)


def _operation_html(
    path: str, method: str, op: dict[str, Any], shared: list[Any], components: dict[str, Any]
) -> list[str]:
    out = [
        f'<h3 id="{escape(op["operationId"])}"><span class="method">{method}</span> '
        f"<code>{escape(path)}</code></h3>",
        f"<p><strong>{escape(op.get('summary', ''))}</strong></p>",
    ]
    if op.get("description"):
        out.append(f"<p>{_prose(op['description'])}</p>")
    auth = "API key or Maskinporten token" if op.get("security") else "none"
    out.append(f"<p>Authentication: {auth}.</p>")
    parameters = [*shared, *op.get("parameters", [])]
    if parameters:
        out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>notes</th></tr>")
        for param in parameters:
            p = _resolve(param, components)
            notes = "; ".join(
                x for x in (_rules(p["schema"]), _prose(p.get("description", ""))) if x
            )
            required = " (required)" if p.get("required") else ""
            out.append(
                f"<tr><td><code>{escape(p['name'])}</code>{required}</td>"
                f"<td>{escape(p['in'])}</td><td>{_type_text(p['schema'])}</td>"
                f"<td>{notes}</td></tr>"
            )
        out.append("</table>")
    if "requestBody" in op:
        body = op["requestBody"]["content"][_JSON]["schema"]
        out.append(f"<p>Request body (<code>{_JSON}</code>): {_type_text(body)}</p>")
    out.append("<table><tr><th>status</th><th>meaning</th><th>body</th><th>codes</th></tr>")
    for status, response in op["responses"].items():
        media = next(iter(response.get("content", {})), "")
        schema = response.get("content", {}).get(media, {}).get("schema", {})
        out.append(
            f"<tr><td>{escape(status)}</td><td>{_prose(response['description'])}</td>"
            f"<td><code>{escape(media)}</code> {_type_text(schema)}</td>"
            f"<td>{_codes_of(response)}</td></tr>"
        )
    out.append("</table>")
    return out


def _resolve(item: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in item:
        return item
    _, _, kind, name = str(item["$ref"]).split("/")
    resolved = components[kind][name]
    assert isinstance(resolved, dict)
    return resolved


def _schema_html(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f'<h3 id="schema-{escape(name)}">{escape(name)}</h3>']
    if schema.get("description"):
        out.append(f"<p>{_prose(schema['description'])}</p>")
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    out.append("<table><tr><th>field</th><th>type</th><th>rules and meaning</th></tr>")
    for field, spec in properties.items():
        notes = "; ".join(x for x in (_rules(spec), _prose(spec.get("description", ""))) if x)
        out.append(
            f"<tr><td><code>{escape(field)}</code>{' (required)' if field in required else ''}"
            f"</td><td>{_type_text(spec)}</td><td>{notes}</td></tr>"
        )
    out.append("</table>")
    return out


def render_docs(doc: dict[str, Any]) -> str:
    """The HTML page for ``doc``: operations, schemas, status values and error codes."""
    info = doc["info"]
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(info['title'])} API</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(info['title'])} API, version {escape(info['version'])}</h1>",
        f"<p>{_prose(info['description'])}</p>",
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>',
        "<h2>Authentication</h2><ul>",
    ]
    for name, scheme in doc["components"]["securitySchemes"].items():
        out.append(f"<li><strong>{escape(name)}</strong>: {_prose(scheme['description'])}</li>")
    out.append("</ul><h2>Operations</h2>")
    for path, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method in _METHODS:
            if method in item:
                out += _operation_html(path, method, item[method], shared, doc["components"])
    out.append("<h2>Status values</h2><table><tr><th>status</th><th>meaning</th></tr>")
    for state, meaning in STATUS_MEANINGS.items():
        out.append(f"<tr><td><code>{state.value}</code></td><td>{_prose(meaning)}</td></tr>")
    out.append("</table><h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        out += _schema_html(name, schema)
    out.append('<h2 id="error-codes">Error codes</h2>')
    out.append("<table><tr><th>code</th><th>status</th><th>meaning</th></tr>")
    for error in ERROR_CODES:
        out.append(
            f"<tr><td><code>{escape(error.code)}</code></td><td>{error.status}</td>"
            f"<td>{_prose(error.meaning)}</td></tr>"
        )
    out.append("</table></body></html>")
    return "\n".join(out)


def openapi_routes() -> list[Route]:
    """``GET /openapi.json`` and ``GET /docs``; neither needs authentication."""
    doc = document()
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    page = render_docs(doc)

    async def openapi_json(request: Request) -> Response:
        return Response(body, media_type=_JSON)

    async def docs(request: Request) -> Response:
        # The page's one inline style is allowed by its hash; nothing else may load.
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
