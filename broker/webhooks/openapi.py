"""The webhook API's part of the OpenAPI document: its operations, schemas and the events it
sends (OpenAPI 3.1 ``webhooks``). Assembled into the whole by ``broker.consent.openapi``."""

from __future__ import annotations

from typing import Any

from broker.consent.openapi import (
    CLIENT_SECURITY,
    INTERNAL,
    UNAUTHENTICATED,
    json_response,
    problem_response,
    schema_ref,
)
from broker.webhooks.payloads import EVENT_EXAMPLES, EVENT_SCHEMAS
from broker.webhooks.schemas import DELIVERY_STATUSES, MAX_OVERLAP_SECONDS

__all__ = ["webhook_paths", "webhook_schemas", "webhooks"]

_JSON = "application/json"
_TAG = "Webhooks"
_DATE_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_EXAMPLE_ENDPOINT = {
    "url": "https://portal.example/ebevis/webhooks",
    "enabled": True,
    "disabled_reason": None,
    "failing_since": None,
    "secrets": [
        {
            "id": "6d1c4f3e-0b8a-4f7e-9f0e-2a9b8c7d6e5f",
            "created_at": "2025-12-01T09:00:00.000000Z",
            "expires_at": None,
        }
    ],
    "created_at": "2025-12-01T09:00:00.000000Z",
    "updated_at": "2025-12-01T09:00:00.000000Z",
}
_EXAMPLE_DELIVERY = {
    "id": "0198f0d2-7b1e-7c4b-8d3e-5a1f2b3c4d5e",
    "type": "consent_request.granted",
    "consent_request_id": "2f44a587-e3a0-44d1-a76e-1da8dab2b42e",
    "status": "pending",
    "attempts": 2,
    "next_attempt_at": "2025-12-01T09:36:17Z",
    "last_attempt_at": "2025-12-01T09:31:17.104523Z",
    "last_error": "HTTP 503",
    "delivered_at": None,
    "created_at": "2025-12-01T09:31:12.003731Z",
}


def _endpoint_schema(with_secret: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "url": {"type": "string", "description": "Where events are POSTed."},
        "enabled": {"type": "boolean"},
        "disabled_reason": {
            "type": ["string", "null"],
            "description": "Why the endpoint is disabled: by you, after a 410 Gone, or after "
            "failing continuously (the first failure's time and the last error).",
        },
        "failing_since": {
            **_NULLABLE_TIME,
            "description": "Since when every attempt has failed (null after any success).",
        },
        "secrets": {
            "type": "array",
            "description": "The secrets that sign now, newest first; during a rotation's "
            "overlap two (each delivery then carries two signatures).",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "created_at", "expires_at"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "created_at": _DATE_TIME,
                    "expires_at": {
                        **_NULLABLE_TIME,
                        "description": "When it stops signing (null: the current one).",
                    },
                },
            },
        },
        "created_at": _DATE_TIME,
        "updated_at": _DATE_TIME,
    }
    required = list(properties)
    if with_secret:
        properties["secret"] = {
            "type": "string",
            "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$",
            "description": "The new signing secret (Standard Webhooks `whsec_` + base64 of "
            "32 bytes). Shown this once: the broker cannot show it again.",
        }
        required.append("secret")
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


def _delivery_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "id": {
            "type": "string",
            "format": "uuid",
            "description": "The event's id: the `webhook-id` header of every attempt.",
        },
        "type": {"enum": list(EVENT_SCHEMAS)},
        "consent_request_id": {"type": ["string", "null"], "format": "uuid"},
        "status": {
            "enum": list(DELIVERY_STATUSES),
            "description": "`pending`: an attempt is due at `next_attempt_at`; `delivered`: a "
            "2xx came back; `failed`: retries used up or the endpoint disabled.",
        },
        "attempts": {
            "type": "integer",
            "minimum": 0,
            "description": "Attempts since the event was (last) queued.",
        },
        "next_attempt_at": _NULLABLE_TIME,
        "last_attempt_at": _NULLABLE_TIME,
        "last_error": {
            "type": ["string", "null"],
            "description": "Why the last attempt failed (`HTTP 503`, `timeout: …`, `HTTP 302: "
            "redirects are not followed`, `refused: …`, `endpoint disabled`).",
        },
        "delivered_at": _NULLABLE_TIME,
        "created_at": _DATE_TIME,
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def webhook_schemas() -> dict[str, Any]:
    detail = _delivery_schema()
    detail = {
        **detail,
        "required": [*detail["required"], "history"],
        "properties": {
            **detail["properties"],
            "history": {
                "type": "array",
                "description": "Every attempt, oldest first (across redeliveries too).",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["at", "status_code", "error", "duration_ms"],
                    "properties": {
                        "at": _DATE_TIME,
                        "status_code": {"type": ["integer", "null"]},
                        "error": {"type": ["string", "null"]},
                        "duration_ms": {"type": "integer", "minimum": 0},
                    },
                },
            },
        },
    }
    return {
        "WebhookEndpointRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                "url": {
                    "type": "string",
                    "maxLength": 2048,
                    "description": "An `https://` URL that resolves only to public addresses "
                    "(no loopback, private, link-local or metadata address; no user info).",
                },
                "enabled": {
                    "type": "boolean",
                    "default": True,
                    "description": "`false` stops deliveries; `true` starts them again and "
                    "clears a disabled reason.",
                },
            },
            "examples": [{"url": "https://portal.example/ebevis/webhooks"}],
        },
        "WebhookEndpoint": {**_endpoint_schema(False), "examples": [_EXAMPLE_ENDPOINT]},
        "WebhookEndpointWithSecret": _endpoint_schema(True),
        "SecretRotation": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "overlap_seconds": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_OVERLAP_SECONDS,
                    "description": "How long the secrets in use now keep signing (default "
                    "`BROKER_WEBHOOK_SECRET_OVERLAP`, 86400).",
                }
            },
        },
        "WebhookDelivery": {**_delivery_schema(), "examples": [_EXAMPLE_DELIVERY]},
        "WebhookDeliveryDetail": detail,
        "WebhookDeliveryPage": {
            "type": "object",
            "additionalProperties": False,
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": schema_ref("WebhookDelivery")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
    }


def _body(name: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {_JSON: {"schema": schema_ref(name)}}}


_NO_ENDPOINT = problem_response(
    404, "No webhook endpoint is registered for this client.", "not_found"
)


def _endpoint_paths() -> dict[str, Any]:
    write_errors = {
        "400": problem_response(400, "The body is not JSON.", "invalid_json"),
        "401": UNAUTHENTICATED,
        "413": problem_response(413, "The body is larger than 64 KiB.", "payload_too_large"),
        "415": problem_response(
            415, "The body is not `application/json`.", "unsupported_media_type"
        ),
    }
    return {
        "/v1/webhook-endpoint": {
            "get": {
                "operationId": "getWebhookEndpoint",
                "tags": [_TAG],
                "summary": "Read the client's webhook endpoint",
                "security": CLIENT_SECURITY,
                "responses": {
                    "200": json_response("The endpoint.", schema_ref("WebhookEndpoint")),
                    "401": UNAUTHENTICATED,
                    "404": _NO_ENDPOINT,
                    "500": INTERNAL,
                },
            },
            "put": {
                "operationId": "putWebhookEndpoint",
                "tags": [_TAG],
                "summary": "Register the webhook endpoint, or change its URL or enable it",
                "description": "The first PUT registers the endpoint and answers 201 with its "
                "signing secret, shown once. Later PUTs change the URL or `enabled` (200). "
                "The URL is checked against the SSRF rules every time (docs/webhooks.md).",
                "security": CLIENT_SECURITY,
                "requestBody": _body("WebhookEndpointRequest"),
                "responses": {
                    "200": json_response("Changed.", schema_ref("WebhookEndpoint")),
                    "201": json_response(
                        "Registered; keep `secret`.", schema_ref("WebhookEndpointWithSecret")
                    ),
                    **write_errors,
                    "422": problem_response(
                        422,
                        "A field is not valid, or the URL is refused (`errors` says why).",
                        "validation_failed",
                    ),
                    "500": INTERNAL,
                },
            },
        },
        "/v1/webhook-endpoint/secrets": {
            "post": {
                "operationId": "rotateWebhookSecret",
                "tags": [_TAG],
                "summary": "Rotate the signing secret",
                "description": "Makes a new secret (answered once) and lets the secrets in "
                "use keep signing for `overlap_seconds`: meanwhile every delivery carries a "
                "signature by each. Deploy the new secret, then let the overlap run out. The "
                "body is optional.",
                "security": CLIENT_SECURITY,
                "requestBody": _body("SecretRotation", required=False),
                "responses": {
                    "201": json_response(
                        "The new secret, and the endpoint.",
                        schema_ref("WebhookEndpointWithSecret"),
                    ),
                    **write_errors,
                    "404": _NO_ENDPOINT,
                    "422": problem_response(
                        422, "`overlap_seconds` is not valid.", "validation_failed"
                    ),
                    "500": INTERNAL,
                },
            },
        },
    }


def _delivery_paths() -> dict[str, Any]:
    id_param = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
        "description": "The delivery's `id` (the `webhook-id` header).",
    }
    not_found = problem_response(404, "No such delivery for this client.", "not_found")
    return {
        "/v1/webhook-deliveries": {
            "get": {
                "operationId": "listWebhookDeliveries",
                "tags": [_TAG],
                "summary": "List the client's webhook events and their delivery, newest first",
                "security": CLIENT_SECURITY,
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"enum": list(DELIVERY_STATUSES)},
                    },
                    {
                        "name": "consent_request",
                        "in": "query",
                        "schema": {"type": "string", "format": "uuid"},
                        "description": "Only the events of this consent request.",
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
                    "200": json_response("One page.", schema_ref("WebhookDeliveryPage")),
                    "401": UNAUTHENTICATED,
                    "422": problem_response(
                        422, "A query parameter is not valid.", "validation_failed"
                    ),
                    "500": INTERNAL,
                },
            }
        },
        "/v1/webhook-deliveries/{id}": {
            "parameters": [id_param],
            "get": {
                "operationId": "getWebhookDelivery",
                "tags": [_TAG],
                "summary": "One event's delivery, with every attempt",
                "security": CLIENT_SECURITY,
                "responses": {
                    "200": json_response("The delivery.", schema_ref("WebhookDeliveryDetail")),
                    "401": UNAUTHENTICATED,
                    "404": not_found,
                    "500": INTERNAL,
                },
            },
        },
        "/v1/webhook-deliveries/{id}/redeliver": {
            "parameters": [id_param],
            "post": {
                "operationId": "redeliverWebhook",
                "tags": [_TAG],
                "summary": "Send an event again",
                "description": "Queues the event again, due at once, with the same "
                "`webhook-id` and the whole retry schedule ahead: for a `failed` event after "
                "you fixed your receiver, or a `delivered` one you lost.",
                "security": CLIENT_SECURITY,
                "responses": {
                    "202": json_response("Queued.", schema_ref("WebhookDelivery")),
                    "401": UNAUTHENTICATED,
                    "404": not_found,
                    "409": problem_response(
                        409, "The endpoint is disabled; enable it first.", "endpoint_disabled"
                    ),
                    "500": INTERNAL,
                },
            },
        },
    }


def webhook_paths() -> dict[str, Any]:
    return {**_endpoint_paths(), **_delivery_paths()}


def webhooks() -> dict[str, Any]:
    """OpenAPI 3.1 ``webhooks``: what the broker POSTs to the client's endpoint."""
    headers = {
        name: {"required": True, "schema": {"type": "string"}, "description": text}
        for name, text in (
            ("webhook-id", "The event's id: the same on every attempt; deduplicate on it."),
            ("webhook-timestamp", "Unix seconds of this attempt; refuse it beyond ±5 minutes."),
            (
                "webhook-signature",
                "`v1,<base64 HMAC-SHA256>` per secret in use, space-separated, over "
                "`{webhook-id}.{webhook-timestamp}.{raw body}` (Standard Webhooks).",
            ),
        )
    }
    return {
        kind: {
            "post": {
                "operationId": f"webhook_{kind.replace('.', '_')}",
                "tags": [_TAG],
                "summary": schema["description"],
                "parameters": [
                    {"name": name, "in": "header", **header} for name, header in headers.items()
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {
                            "schema": {k: v for k, v in schema.items() if k != "$schema"},
                            "examples": {"example": {"value": EVENT_EXAMPLES[kind]}},
                        }
                    },
                },
                "responses": {
                    "2XX": {"description": "Received. Anything else is retried (410: disabled)."}
                },
            }
        }
        for kind, schema in EVENT_SCHEMAS.items()
    }
