"""The admin's inputs parsed and its records rendered, for the pages, the JSON API and the CLI.
No I/O."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from broker.admin.ports import AuditEntry, ClientDetails, KeyInfo, SearchCursor, SearchFilters
from broker.consent.identifiers import is_valid_fnr, is_valid_orgnr
from broker.consent.model import ConsentRequest, State
from broker.consent.schemas import request_json
from broker.errors import ValidationFailed

__all__ = [
    "REASON_MAX",
    "audit_json",
    "client_json",
    "decode_cursor",
    "encode_cursor",
    "entry_json",
    "invalid",
    "key_json",
    "parse_filters",
    "parse_reason",
    "parse_return_urls",
    "request_admin_json",
]

REASON_MIN = 3
REASON_MAX = 500
_ELEVEN_DIGITS = re.compile(r"(?<!\d)\d{11}(?!\d)")
SEARCH_FIELDS = ("id", "subject", "requestor", "client", "status", "created_from", "created_to")


def invalid(errors: list[tuple[str, str]]) -> ValidationFailed:
    return ValidationFailed(
        "The request is not valid; see errors",
        extensions={"errors": [{"field": f, "message": m} for f, m in errors]},
    )


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_reason(value: object) -> str:
    """Why an admin acts: required, kept in the audit trail and sent to the client in the
    webhook, so it must not carry a personal number."""
    if not isinstance(value, str):
        raise invalid([("reason", "is required")])
    text = " ".join(value.split())
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise invalid([("reason", f"must be {REASON_MIN}-{REASON_MAX} characters")])
    if not text.isprintable():
        raise invalid([("reason", "must not contain control characters")])
    if any(is_valid_fnr(found) for found in _ELEVEN_DIGITS.findall(text)):
        raise invalid([("reason", "must not contain a personal number (fødselsnummer)")])
    return text


def parse_filters(query: Mapping[str, str]) -> SearchFilters:
    """The search form's fields (empty ones ignored); every fault is named."""
    values = {k: query.get(k, "").strip() for k in SEARCH_FIELDS}
    errors: list[tuple[str, str]] = []
    request_id = _uuid(values["id"], "id", errors)
    client_id = _uuid(values["client"], "client", errors)
    for name in ("subject", "requestor"):
        if values[name] and not is_valid_orgnr(values[name]):
            errors.append((name, "must be a valid 9-digit organisation number"))
    state = None
    if values["status"]:
        try:
            state = State(values["status"])
        except ValueError:
            errors.append(("status", f"must be one of {', '.join(s.value for s in State)}"))
    start = _day(values["created_from"], "created_from", errors)
    end = _day(values["created_to"], "created_to", errors)
    if errors:
        raise invalid(errors)
    return SearchFilters(
        request_id=request_id,
        subject=values["subject"] or None,
        requestor=values["requestor"] or None,
        client_id=client_id,
        state=state,
        created_from=start,
        # "to" is the last day included.
        created_to=end + timedelta(days=1) if end else None,
    )


def _uuid(value: str, name: str, errors: list[tuple[str, str]]) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        errors.append((name, "must be a UUID"))
        return None


def _day(value: str, name: str, errors: list[tuple[str, str]]) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError:
        errors.append((name, "must be a date (YYYY-MM-DD)"))
        return None


def encode_cursor(request: ConsentRequest) -> str:
    raw = f"{request.created_at.isoformat()}|{request.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str | None) -> SearchCursor | None:
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        at, _, ident = raw.partition("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return SearchCursor(parsed, uuid.UUID(ident))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid([("cursor", "is not a cursor this search gave")]) from None


def parse_return_urls(value: object) -> tuple[str, ...]:
    """One URL per line (a form's textarea) or a JSON list; blank lines ignored."""
    if isinstance(value, str):
        urls = [line.strip() for line in value.splitlines() if line.strip()]
    elif isinstance(value, list) and all(isinstance(u, str) for u in value):
        urls = [u.strip() for u in value if u.strip()]
    else:
        raise invalid([("return_urls", "must be a list of URLs")])
    if not urls:
        raise invalid([("return_urls", "at least one URL is required")])
    return tuple(dict.fromkeys(urls))


def request_admin_json(request: ConsentRequest) -> dict[str, Any]:
    """The client API's view plus what only operators see (never the Altinn consent id,
    which is credential-like)."""
    return {
        **request_json(request, consent_url=None),
        "client_id": str(request.client_id),
        "resource": request.resource,
        "generation": request.generation.value,
    }


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "occurred_at": iso(entry.occurred_at),
        "actor": {"type": entry.actor_type, "id": entry.actor_id},
        "action": entry.action,
        "object": {"type": entry.object_type, "id": entry.object_id},
        "client_id": str(entry.client_id) if entry.client_id else None,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "request_id": entry.correlation_id,
        "upstream_correlation_id": entry.upstream_correlation_id,
        "details": dict(entry.details),
        "prev_hash": entry.prev_hash,
        "row_hash": entry.row_hash,
    }


def audit_json(
    request: ConsentRequest, entries: list[AuditEntry], *, exported_by: str, at: datetime
) -> dict[str, Any]:
    return {
        "consent_request": request_admin_json(request),
        "audit_events": [entry_json(e) for e in entries],
        "exported_at": iso(at),
        "exported_by": exported_by,
    }


def client_json(client: ClientDetails) -> dict[str, Any]:
    return {
        "id": str(client.id),
        "name": client.name,
        "org_number": client.org_number,
        "status": "active" if client.active else "disabled",
        "return_urls": list(client.return_urls),
        "generation": client.generation.value,
        "created_at": iso(client.created_at),
        "updated_at": iso(client.updated_at),
    }


def key_json(key: KeyInfo) -> dict[str, Any]:
    return {
        "prefix": key.prefix,
        "label": key.label,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "revoked_at": iso(key.revoked_at),
    }
