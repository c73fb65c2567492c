"""The JSON Schema (draft 2020-12) and an example of each webhook event's body.

These are published in ``docs/webhooks.md`` (a test keeps the document equal to them) and in
the OpenAPI document's ``webhooks``; tests validate every body the broker really delivers
against them. The schemas are closed (``additionalProperties: false``) so that a member added
to a payload without being documented fails the tests; receivers should still ignore members
they do not know, since members may be added within version 1.
"""

from __future__ import annotations

from typing import Any

from broker.consent.model import RevokedBy
from broker.consent.notices import EventType

__all__ = ["EVENT_EXAMPLES", "EVENT_SCHEMAS", "event_schema"]

_DATE_TIME = {"type": "string", "format": "date-time"}
_ORGNR = {"type": "string", "pattern": "^[0-9]{9}$"}

_STATUS = {
    EventType.GRANTED: ["granted"],
    EventType.DENIED: ["denied"],
    EventType.EXPIRED: ["expired"],
    EventType.REVOKED: ["revoked", "cancelled"],
    EventType.FAILED: ["failed"],
}
_MEANING = {
    EventType.GRANTED: "The consent was given and confirmed with Altinn and Maskinporten; the "
    "data may be fetched until `valid_to`.",
    EventType.DENIED: "The person refused in Altinn.",
    EventType.EXPIRED: "`valid_to` passed: before anyone answered, or at the end of a grant.",
    EventType.REVOKED: "A grant ended before `valid_to`: `revocation` says who and why. Status "
    "`revoked` (the end user in Altinn, Skatteetaten, an administrator) or `cancelled` (your "
    "own DELETE of a granted request, `revocation.by` = `client`).",
    EventType.FAILED: "The request cannot complete (Altinn refused it, or its answer did not "
    "check out); `status_reason` says why.",
}


def _revocation(kind: EventType) -> dict[str, Any]:
    if kind is not EventType.REVOKED:
        return {"type": "null", "description": "Only `consent_request.revoked` has one."}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["by", "reason"],
        "description": "Who ended the grant, and why.",
        "properties": {
            "by": {
                "enum": [r.value for r in RevokedBy],
                "description": "`end_user`: withdrawn in Altinn; `skatteetaten`: Skatteetaten "
                "refused the consent (`-007`); `admin`: the broker's operator; `client`: your "
                "DELETE.",
            },
            "reason": {
                "type": "string",
                "minLength": 1,
                "description": "A short code for people and logs, e.g. `withdrawn_in_altinn`, "
                "`OPPDRAGUTENLANDSKEVIRKSOMHETER-007`, `withdrawn_by_client`. Do not branch "
                "on it.",
            },
        },
    }


def event_schema(kind: EventType) -> dict[str, Any]:
    statuses = _STATUS[kind]
    status: dict[str, Any] = {"const": statuses[0]} if len(statuses) == 1 else {"enum": statuses}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:ebevis-broker:webhook:{kind.value}",
        "title": kind.value,
        "description": _MEANING[kind],
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"const": kind.value},
            "timestamp": {**_DATE_TIME, "description": "When the change happened (UTC)."},
            "data": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "id",
                    "status",
                    "status_reason",
                    "requestor",
                    "subject",
                    "external_reference",
                    "valid_to",
                    "revocation",
                ],
                "properties": {
                    "id": {
                        "type": "string",
                        "format": "uuid",
                        "description": "The consent request's `id` (GET "
                        "/v1/consent-requests/{id} for the whole request).",
                    },
                    "status": {**status, "description": "The request's status after the change."},
                    "status_reason": {
                        "type": ["string", "null"],
                        "description": "Why, where known (`valid_to`, `client`, `altinn_…`, "
                        "`end_user`, `skatteetaten`); for people and logs.",
                    },
                    "requestor": _ORGNR,
                    "subject": _ORGNR,
                    "external_reference": {
                        "type": ["string", "null"],
                        "maxLength": 200,
                        "description": "Your own reference, as you sent it.",
                    },
                    "valid_to": {
                        **_DATE_TIME,
                        "description": "The end of the consent's validity (for a grant: as "
                        "Altinn recorded it).",
                    },
                    "revocation": _revocation(kind),
                },
            },
        },
    }


EVENT_SCHEMAS: dict[str, dict[str, Any]] = {kind.value: event_schema(kind) for kind in EventType}

_ID = "2f44a587-e3a0-44d1-a76e-1da8dab2b42e"


def _example(kind: EventType, status: str, reason: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind.value,
        "timestamp": "2025-12-01T09:31:12.003731Z",
        "data": {
            "id": _ID,
            "status": status,
            "status_reason": reason,
            "requestor": "310200018",
            "subject": "310100013",
            "external_reference": "case-4711",
            "valid_to": "2026-02-28T23:00:00Z",
            "revocation": None,
            **extra,
        },
    }


EVENT_EXAMPLES: dict[str, dict[str, Any]] = {
    EventType.GRANTED.value: _example(EventType.GRANTED, "granted", None),
    EventType.DENIED.value: _example(EventType.DENIED, "denied", None),
    EventType.EXPIRED.value: _example(EventType.EXPIRED, "expired", "valid_to"),
    EventType.REVOKED.value: _example(
        EventType.REVOKED,
        "revoked",
        "skatteetaten",
        revocation={"by": "skatteetaten", "reason": "OPPDRAGUTENLANDSKEVIRKSOMHETER-007"},
    ),
    EventType.FAILED.value: _example(EventType.FAILED, "failed", "altinn_AM-00008"),
}
