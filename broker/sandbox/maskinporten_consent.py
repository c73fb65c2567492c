"""``authorization_details`` of type ``urn:altinn:consent``: the request's form, the lookup in
the Altinn 3 consent register and the enriched entry the token carries.

Request and token shapes: ``shared/reference/altinn-consent.md`` §2.3 and §3.2. Lookup rules
and problem codes: §6.1 and Altinn's ``ConsentService.ValidateGetConsentRequest`` (``to`` must be
the request's ``to`` or ``handledBy``; problems accumulate, as Altinn's do).
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.sandbox import maskinporten_errors as errors
from broker.sandbox.consents import (
    ORG_URN,
    PERSON_URN,
    ConsentRecord,
    ConsentRegister,
    ConsentStatus,
    org_urn,
)
from broker.sandbox.maskinporten_config import MaskinportenConfig
from broker.sandbox.orgnr import is_valid_orgnr

__all__ = ["CONSENT_TYPE", "SYSTEMUSER_TYPE", "ConsentQuery", "iso6523", "parse_details"]

CONSENT_TYPE = "urn:altinn:consent"
SYSTEMUSER_TYPE = "urn:altinn:systemuser"
_CONSENT_FIELDS = frozenset({"type", "id", "from"})
_PERSON = re.compile(r"\d{11}")

# Altinn Access Management problem descriptors (Problems.cs), as "code: title".
NOT_FOUND = "AM-00001: Consent not found"
REVOKED = "AM-00011: Consent is revoked"
PARTY_MISMATCH = "AM-00012: The consented party does not match the party requested"
EXPIRED = "AM-00013: Consent is expired"
NOT_ACCEPTED = "AM-00014: Consent is not accepted"


@dataclass(frozen=True)
class ConsentQuery:
    """The one consent a grant asks for: its id and the party that gave it."""

    id: uuid.UUID
    from_party: str

    def lookup(
        self, register: ConsentRegister, *, to_orgnr: str, now: datetime, config: MaskinportenConfig
    ) -> dict[str, Any]:
        """The token's ``authorization_details`` entry, or the consent error."""
        record = register.get(self.id)
        if record is None:
            raise errors.consent_lookup_failed(config, [NOT_FOUND])
        problems = _problems(record, self.from_party, org_urn(to_orgnr), now)
        if problems:
            raise errors.consent_lookup_failed(config, problems)
        return _token_entry(record)


def parse_details(value: object, config: MaskinportenConfig) -> ConsentQuery:
    """Validate the grant's ``authorization_details`` (RFC 9396 array; one entry per grant)."""
    if not isinstance(value, list) or not value:
        raise errors.invalid_details(config, "must be a non-empty array")
    if not all(isinstance(entry, dict) for entry in value):
        raise errors.invalid_details(config, "entries must be objects")
    for entry in value:
        if entry.get("type") not in (CONSENT_TYPE, SYSTEMUSER_TYPE):
            raise errors.unknown_details_type(config, entry.get("type"))
    if len(value) != 1:
        raise errors.invalid_details(config, "only one entry is allowed per grant")
    entry = value[0]
    if entry["type"] == SYSTEMUSER_TYPE:
        raise errors.no_system_user()
    return _consent_query(entry, config)


def _consent_query(entry: dict[str, Any], config: MaskinportenConfig) -> ConsentQuery:
    unknown = sorted(set(entry) - _CONSENT_FIELDS)
    if unknown:
        raise errors.unknown_details_fields(config, unknown)
    consent_id, from_party = entry.get("id"), entry.get("from")
    try:
        parsed = uuid.UUID(consent_id) if isinstance(consent_id, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise errors.invalid_details(config, "id must be a UUID")
    if not isinstance(from_party, str) or not _is_party_urn(from_party):
        raise errors.invalid_details(config, "from must be a person or organization URN")
    return ConsentQuery(parsed, from_party)


def _is_party_urn(value: str) -> bool:
    if value.startswith(ORG_URN):
        return is_valid_orgnr(value.removeprefix(ORG_URN))
    return value.startswith(PERSON_URN) and bool(_PERSON.fullmatch(value.removeprefix(PERSON_URN)))


def _problems(record: ConsentRecord, from_party: str, to: str, now: datetime) -> list[str]:
    problems = []
    if to not in (record.to_party, record.handled_by):
        problems.append(NOT_FOUND)
    if from_party != record.from_party:
        problems.append(PARTY_MISMATCH)
    if record.is_expired(now):
        problems.append(EXPIRED)
    if record.status is ConsentStatus.REVOKED:
        problems.append(REVOKED)
    elif record.status is not ConsentStatus.ACCEPTED:
        problems.append(NOT_ACCEPTED)
    return problems


def _token_entry(record: ConsentRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": CONSENT_TYPE,
        "id": str(record.id),
        "from": record.from_party,
        "to": iso6523(record.to_party.removeprefix(ORG_URN)),
    }
    if record.consented is not None:
        entry["consented"] = _iso8601(record.consented)
    entry["validTo"] = _iso8601(record.valid_to)
    entry["consentRights"] = [_right(right) for right in record.consent_rights]
    return entry


def _right(right: dict[str, Any]) -> dict[str, Any]:
    # "metadata" only when the consent has it (maskinporten_func_samtykke, response table).
    copied = copy.deepcopy(right)
    if copied.get("metadata") is None:
        copied.pop("metadata", None)
    return copied


def iso6523(orgnr: str) -> dict[str, str]:
    """A Norwegian org number as Maskinporten writes parties: ``0192:<orgnr>``."""
    return {"authority": "iso6523-actorid-upis", "ID": f"0192:{orgnr}"}


def _iso8601(moment: datetime) -> str:
    # Altinn's form: UTC offset, fraction without trailing zeros ("…34.836+00:00").
    text = moment.astimezone(UTC).isoformat()
    if "." not in text:
        return text
    stamp, offset = text[:-6], text[-6:]
    return stamp.rstrip("0").rstrip(".") + offset
