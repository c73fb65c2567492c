"""The client API's wire format: parsing of requests and rendering of consent requests."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.consent.identifiers import is_valid_orgnr
from broker.consent.model import ConsentRequest, HistoryEntry, Language, State
from broker.consent.ports import PageCursor

__all__ = [
    "FieldError",
    "Invalid",
    "NewRequest",
    "decode_cursor",
    "encode_cursor",
    "history_json",
    "parse_new_request",
    "request_json",
]

_FIELDS = {
    "requestor",
    "subject",
    "reference",
    "return_url",
    "valid_to",
    "language",
    "external_reference",
}
_REQUIRED = ("requestor", "subject", "reference", "return_url")


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class Invalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class NewRequest:
    requestor: str
    subject: str
    reference: str
    return_url: str
    valid_to: datetime | None
    language: Language
    external_reference: str | None


def parse_new_request(body: Any) -> NewRequest:
    """Check shape and formats; rules that need the client or the clock are the service's."""
    if not isinstance(body, dict):
        raise Invalid([FieldError("", "the body must be a JSON object")])
    errors = [FieldError(name, "unknown field") for name in sorted(set(body) - _FIELDS)]
    errors += [FieldError(name, "is required") for name in _REQUIRED if name not in body]
    for name in ("requestor", "subject"):
        value = body.get(name)
        if name in body and not (isinstance(value, str) and is_valid_orgnr(value)):
            errors.append(FieldError(name, "must be a valid 9-digit organisation number"))
    errors += _text(body, "reference", required=True) + _text(body, "external_reference")
    if "return_url" in body and not isinstance(body["return_url"], str):
        errors.append(FieldError("return_url", "must be a string"))
    valid_to = _datetime(body.get("valid_to"), errors)
    language = body.get("language", Language.NB.value)
    if not isinstance(language, str) or language not in {lang.value for lang in Language}:
        errors.append(FieldError("language", "must be nb, nn or en"))
    if body.get("requestor") is not None and body.get("requestor") == body.get("subject"):
        errors.append(FieldError("subject", "must differ from requestor"))
    if errors:
        raise Invalid(errors)
    return NewRequest(
        requestor=body["requestor"],
        subject=body["subject"],
        reference=body["reference"],
        return_url=body["return_url"],
        valid_to=valid_to,
        language=Language(language),
        external_reference=body.get("external_reference"),
    )


def _text(body: Mapping[str, Any], name: str, *, required: bool = False) -> list[FieldError]:
    if name not in body or (body[name] is None and not required):
        return []
    value = body[name]
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        return [FieldError(name, "must be a non-empty string of at most 200 characters")]
    if any(unicodedata.category(c) == "Cc" for c in value):  # C0, DEL and C1
        return [FieldError(name, "must not contain control characters")]
    return []


def _datetime(value: Any, errors: list[FieldError]) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    errors.append(FieldError("valid_to", "must be an ISO 8601 date-time with an offset"))
    return None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def request_json(request: ConsentRequest, *, consent_url: str | None) -> dict[str, Any]:
    grant = request.grant
    return {
        "id": str(request.id),
        "status": request.state.value,
        "status_reason": request.state_reason,
        "requestor": request.requestor_org,
        "subject": request.subject_org,
        "reference": request.reference,
        "external_reference": request.external_reference,
        "language": request.language.value,
        "return_url": request.return_url,
        "valid_to": _iso(request.valid_to),
        "consent_url": consent_url,
        "created_at": _iso(request.created_at),
        "updated_at": _iso(request.updated_at),
        "grant": None
        if grant is None
        else {
            "consented_at": _iso(grant.consented_at),
            "valid_to": _iso(grant.valid_to),
            "revoked_at": _iso(grant.revoked_at),
            "revoked_by": grant.revoked_by.value if grant.revoked_by else None,
        },
    }


def history_json(entries: list[HistoryEntry]) -> dict[str, Any]:
    return {
        "items": [
            {
                "at": _iso(e.at),
                "action": e.action,
                "state": e.state.value if e.state else None,
                "reason": e.reason,
            }
            for e in entries
        ]
    }


def _cursor_mac(payload: str, key: bytes) -> str:
    digest = hmac.new(key, f"cursor:{payload}".encode(), hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode_cursor(request: ConsentRequest, key: bytes) -> str:
    """An opaque position, signed so that only cursors this API gave out are accepted."""
    raw = f"{request.updated_at.astimezone(UTC).isoformat()}|{request.id}"
    payload = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    return f"{payload}.{_cursor_mac(payload, key)}"


def decode_cursor(value: str, key: bytes) -> PageCursor:
    refused = Invalid([FieldError("cursor", "is not a cursor this API gave out")])
    payload, _, mac = value.partition(".")
    if not hmac.compare_digest(mac.encode(), _cursor_mac(payload, key).encode()):
        raise refused
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        at, _, request_id = raw.partition("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise refused
        return PageCursor(parsed.astimezone(UTC), uuid.UUID(request_id))
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise refused from None


def parse_state(value: str | None) -> State | None:
    if value is None:
        return None
    try:
        return State(value)
    except ValueError:
        allowed = ", ".join(s.value for s in State)
        raise Invalid([FieldError("status", f"must be one of {allowed}")]) from None
