"""The fake Altinn 3 consent register, shared in memory by the fakes of one sandbox.

Altinn 3 writes it (create, accept, reject, revoke); Maskinporten reads it to issue consent
tokens; Skatteetaten reads it to refuse a revoked consent. Status values and event types are
Altinn's own (``../shared/reference/altinn-consent.md`` §4.2).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "ORG_URN",
    "PERSON_URN",
    "ConsentEvent",
    "ConsentRecord",
    "ConsentRegister",
    "ConsentStatus",
    "org_urn",
]

ORG_URN = "urn:altinn:organization:identifier-no:"
PERSON_URN = "urn:altinn:person:identifier-no:"


def org_urn(orgnr: str) -> str:
    return ORG_URN + orgnr


class ConsentStatus(StrEnum):
    CREATED = "Created"
    REJECTED = "Rejected"
    ACCEPTED = "Accepted"
    REVOKED = "Revoked"
    DELETED = "Deleted"
    EXPIRED = "Expired"


@dataclass(frozen=True)
class ConsentEvent:
    id: uuid.UUID  # UUIDv7: time-ordered, as Altinn's
    consent_id: uuid.UUID
    event_type: ConsentStatus
    created: datetime
    performed_by: str | None


@dataclass
class ConsentRecord:
    id: uuid.UUID
    from_party: str  # org or person URN
    to_party: str  # org URN
    handled_by: str | None  # org URN of the vendor (Maskinporten ``supplier``), if any
    required_delegator: str | None
    valid_to: datetime
    consent_rights: list[dict[str, Any]]  # wire form: action, resource[], metadata
    request_message: dict[str, str] | None
    redirect_url: str
    portal_view_mode: str
    created: datetime
    status: ConsentStatus = ConsentStatus.CREATED
    consented: datetime | None = None
    events: list[ConsentEvent] = field(default_factory=list)

    @property
    def resources(self) -> list[str]:
        return [r["value"] for right in self.consent_rights for r in right.get("resource", [])]

    def is_expired(self, now: datetime) -> bool:
        return self.valid_to <= now


class ConsentRegister:
    """All consent requests of one sandbox, plus the global event log in creation order."""

    def __init__(self) -> None:
        self._records: dict[uuid.UUID, ConsentRecord] = {}
        self._events: list[ConsentEvent] = []

    def get(self, consent_id: uuid.UUID) -> ConsentRecord | None:
        return self._records.get(consent_id)

    def add(self, record: ConsentRecord, *, performed_by: str | None) -> None:
        if record.id in self._records:
            raise KeyError(f"consent {record.id} exists")
        self._records[record.id] = record
        self._append(record, ConsentStatus.CREATED, record.created, performed_by)

    def set_status(
        self,
        record: ConsentRecord,
        status: ConsentStatus,
        *,
        at: datetime,
        performed_by: str | None,
    ) -> None:
        record.status = status
        if status is ConsentStatus.ACCEPTED:
            record.consented = at
        self._append(record, status, at, performed_by)

    def events(self) -> list[ConsentEvent]:
        return list(self._events)

    def records(self) -> list[ConsentRecord]:
        return list(self._records.values())

    def clear(self) -> None:
        self._records.clear()
        self._events.clear()

    def _append(
        self, record: ConsentRecord, status: ConsentStatus, at: datetime, by: str | None
    ) -> None:
        event_id = uuid7(at)
        if self._events and event_id.int <= self._events[-1].id.int:
            # Altinn's event ids are strictly increasing; random bits within one millisecond
            # (or a clock moved back) would break that, so step on from the last id instead.
            event_id = uuid.UUID(int=self._events[-1].id.int + 1)
        event = ConsentEvent(event_id, record.id, status, at, by)
        record.events.append(event)
        self._events.append(event)


def uuid7(at: datetime) -> uuid.UUID:
    """A UUIDv7 for ``at`` (RFC 9562): 48-bit ms timestamp, version 7, random rest."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(uuid.uuid4().bytes[6:], "big") & ((1 << 74) - 1)
    value = (
        (millis << 80)
        | (0x7 << 76)
        | ((rand >> 62) << 64)
        | (0b10 << 62)
        | (rand & ((1 << 62) - 1))
    )
    return uuid.UUID(int=value)
