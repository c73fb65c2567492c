"""The webhook API's JSON: request bodies parsed, records rendered. No I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.webhooks.ports import AttemptRow, Delivery, Endpoint, SecretInfo

__all__ = [
    "DELIVERY_STATUSES",
    "MAX_OVERLAP_SECONDS",
    "EndpointBody",
    "FieldError",
    "Invalid",
    "attempt_json",
    "delivery_json",
    "endpoint_json",
    "parse_endpoint",
    "parse_overlap",
    "parse_uuid",
]

DELIVERY_STATUSES = ("pending", "delivered", "failed")
MAX_OVERLAP_SECONDS = 7 * 86400


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class Invalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("invalid")
        self.errors = errors


@dataclass(frozen=True)
class EndpointBody:
    url: str
    enabled: bool


def _object(body: Any, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise Invalid([FieldError("", "the body must be a JSON object")])
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Invalid([FieldError(name, "is not a known field") for name in unknown])
    return body


def parse_endpoint(body: Any) -> EndpointBody:
    obj = _object(body, {"url", "enabled"})
    errors = []
    url = obj.get("url")
    if not isinstance(url, str) or not url:
        errors.append(FieldError("url", "is required: the https:// URL to deliver to"))
    enabled = obj.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.append(FieldError("enabled", "must be true or false"))
    if errors:
        raise Invalid(errors)
    assert isinstance(url, str)
    assert isinstance(enabled, bool)
    return EndpointBody(url, enabled)


def parse_overlap(body: Any, *, default: int) -> int:
    obj = _object({} if body is None else body, {"overlap_seconds"})
    value = obj.get("overlap_seconds", default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_OVERLAP_SECONDS
    ):
        raise Invalid(
            [FieldError("overlap_seconds", f"must be an integer from 0 to {MAX_OVERLAP_SECONDS}")]
        )
    return value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def endpoint_json(endpoint: Endpoint, secrets: Sequence[SecretInfo]) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": _iso(endpoint.failing_since),
        "secrets": [
            {"id": str(s.id), "created_at": _iso(s.created_at), "expires_at": _iso(s.expires_at)}
            for s in secrets
        ],
        "created_at": _iso(endpoint.created_at),
        "updated_at": _iso(endpoint.updated_at),
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": str(delivery.id),
        "type": delivery.event_type,
        "consent_request_id": (
            None if delivery.consent_request_id is None else str(delivery.consent_request_id)
        ),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "last_attempt_at": _iso(delivery.last_attempt_at),
        "last_error": delivery.last_error,
        "delivered_at": _iso(delivery.delivered_at),
        "created_at": _iso(delivery.created_at),
    }


def attempt_json(attempt: AttemptRow) -> dict[str, Any]:
    return {
        "at": _iso(attempt.attempted_at),
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


def parse_uuid(value: str | None, name: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Invalid([FieldError(name, "must be an id (UUID)")]) from None
