"""JSON shapes of the Altinn 3 consent API (``../shared/reference/altinn-consent.md`` §2.2).

``ConsentRequestDetailsDto`` for create and read, ``ConsentStatusChangeDto`` for the events feed.
Times are written the way System.Text.Json writes a ``DateTimeOffset`` (UTC, fraction without
trailing zeros). Enum casing is PascalCase by default; the reference infers it (§7.6), so it is a
switch.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from broker.sandbox.consents import ConsentEvent, ConsentRecord, ConsentStatus

__all__ = ["dotnet_time", "request_dto", "status_change_dto", "view_uri"]

_EMPTY_GUID = str(uuid.UUID(int=0))


def dotnet_time(value: datetime) -> str:
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{utc.microsecond:06d}".rstrip("0")
    if fraction:
        text += "." + fraction
    return text + "+00:00"


def enum_text(value: str, *, pascal: bool) -> str:
    return value if pascal else value.lower()


def view_uri(public_base_url: str, consent_id: uuid.UUID) -> str:
    return f"{public_base_url.rstrip('/')}/accessmanagement/ui/consent/request?id={consent_id}"


def _event_dto(event: ConsentEvent, *, pascal: bool) -> dict[str, Any]:
    return {
        "consentEventID": str(event.id),
        "created": dotnet_time(event.created),
        "performedBy": event.performed_by,
        "eventType": enum_text(event.event_type.value, pascal=pascal),
        "consentRequestID": str(event.consent_id),
    }


def _events(record: ConsentRecord, now: datetime, *, pascal: bool) -> list[dict[str, Any]]:
    events = [_event_dto(e, pascal=pascal) for e in record.events]
    expired = any(e.event_type is ConsentStatus.EXPIRED for e in record.events)
    # Synthesised on read only; the stored status stays as it was (reference §2.2, §4.2).
    if record.valid_to < now and not expired:
        events.append(
            {
                "consentEventID": _EMPTY_GUID,
                "created": dotnet_time(record.valid_to),
                "performedBy": record.to_party,
                "eventType": enum_text(ConsentStatus.EXPIRED.value, pascal=pascal),
                "consentRequestID": str(record.id),
            }
        )
    return events


def request_dto(
    record: ConsentRecord, *, now: datetime, public_base_url: str, pascal: bool
) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "from": record.from_party,
        "to": record.to_party,
        "requiredDelegator": record.required_delegator,
        "handledBy": record.handled_by,
        "validTo": dotnet_time(record.valid_to),
        "consentRights": record.consent_rights,
        "requestMessage": record.request_message,
        "status": enum_text(record.status.value, pascal=pascal),
        "consented": None if record.consented is None else dotnet_time(record.consented),
        "redirectUrl": record.redirect_url,
        "consentRequestEvents": _events(record, now, pascal=pascal),
        "viewUri": view_uri(public_base_url, record.id),
        "portalViewMode": enum_text(record.portal_view_mode, pascal=pascal),
    }


def status_change_dto(event: ConsentEvent, *, pascal: bool) -> dict[str, Any]:
    return {
        "consentRequestId": str(event.consent_id),
        "eventType": enum_text(event.event_type.value, pascal=pascal),
        "changedDate": dotnet_time(event.created),
    }
